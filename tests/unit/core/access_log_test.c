/* core/access_log.c: the logfmt line builder and the file sink with its reopen. */
#include "core/access_log.h"

#include "config/snapshot-t.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static void test_plain_values_are_bare_and_empty_ones_a_dash(void **state)
{
    char buf[128];
    size_t n = 0;

    n = ml_logfmt_add(buf, n, sizeof(buf), "a", "x/y.Z");
    n = ml_logfmt_add(buf, n, sizeof(buf), "b", "");
    n = ml_logfmt_add(buf, n, sizeof(buf), "c", NULL);
    assert_string_equal(buf, "a=x/y.Z b=- c=-");
    assert_int_equal(n, strlen(buf));
}

static void test_spaces_quotes_and_control_bytes_are_quoted_and_escaped(void **state)
{
    char buf[128];
    size_t n = 0;

    n = ml_logfmt_add(buf, n, sizeof(buf), "p", "a b");
    n = ml_logfmt_add(buf, n, sizeof(buf), "q", "say \"hi\"\\");
    n = ml_logfmt_add_len(buf, n, sizeof(buf), "r", "x\ny=\x01", 5);
    assert_string_equal(buf, "p=\"a b\" q=\"say \\\"hi\\\"\\\\\" r=\"x\\x0ay=\\x01\"");
}

static void test_a_full_buffer_is_cut_and_stays_terminated(void **state)
{
    char buf[12];
    size_t n = 0;

    n = ml_logfmt_add(buf, n, sizeof(buf), "key", "a long value");
    n = ml_logfmt_add(buf, n, sizeof(buf), "more", "x");
    assert_true(n < sizeof(buf));
    assert_int_equal(strlen(buf), n);
}

static void test_reopen_after_rename_writes_to_a_new_file(void **state)
{
    char dir[] = "/tmp/ml-access-log-XXXXXX", path[256], old[256], text[256];
    struct ml_cfg_node node = {.access_log = ML_CFG_ACCESS_LOG_FILE};
    struct ml_access_log *al;
    char why[128];
    FILE *f;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/access.log", dir);
    snprintf(old, sizeof(old), "%s/access.log.1", dir);
    node.access_log_path = path;
    assert_int_equal(ml_access_log_new(&node, why, sizeof(why), &al), 0);
    assert_true(ml_access_log_enabled(al));
    ml_access_log_write(al, "one", 3);
    assert_int_equal(rename(path, old), 0);
    ml_access_log_write(al, "two", 3); /* still the old file */
    assert_int_equal(ml_access_log_reopen(al), 0);
    ml_access_log_write(al, "three", 5);
    ml_access_log_free(al);
    f = fopen(old, "r");
    assert_non_null(f);
    assert_int_equal(fread(text, 1, sizeof(text) - 1, f), 8);
    fclose(f);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(fread(text, 1, sizeof(text) - 1, f), 6);
    fclose(f);
    unlink(old);
    unlink(path);
    rmdir(dir);
}

static void test_an_unopenable_file_is_an_error_naming_it(void **state)
{
    struct ml_cfg_node node = {.access_log = ML_CFG_ACCESS_LOG_FILE,
                               .access_log_path = "/nonexistent-dir/access.log"};
    struct ml_access_log *al = (void *)1;
    char why[128];

    assert_int_equal(ml_access_log_new(&node, why, sizeof(why), &al), -ENOENT);
    assert_null(al);
    assert_non_null(strstr(why, "/nonexistent-dir/access.log"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_values_are_bare_and_empty_ones_a_dash),
        cmocka_unit_test(test_spaces_quotes_and_control_bytes_are_quoted_and_escaped),
        cmocka_unit_test(test_a_full_buffer_is_cut_and_stays_terminated),
        cmocka_unit_test(test_reopen_after_rename_writes_to_a_new_file),
        cmocka_unit_test(test_an_unopenable_file_is_an_error_naming_it),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
