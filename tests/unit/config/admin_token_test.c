/* config/validate_node.c: [node] admin_token, the file read when the config is checked (issue 7). */
#include "config/errors.h"
#include "config/snapshot.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static char token_path[64];

static int setup(void **state)
{
    int fd;

    snprintf(token_path, sizeof(token_path), "/tmp/ml-admin-token-XXXXXX");
    fd = mkstemp(token_path);
    assert_true(fd >= 0);
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    unlink(token_path);
    return 0;
}

static void write_token(const char *content)
{
    FILE *f = fopen(token_path, "w");

    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

/* Loads [node] with admin_token = the temp file (and extra lines); the errors joined, "" when
 * it loaded (then *out). */
static void load(const char *extra, char *errors, size_t cap, struct ml_snapshot **out)
{
    char text[512];
    struct ml_config_errors errs;
    int rv;

    snprintf(text, sizeof(text), "[node]\nadmin_token = %s\n%s", token_path, extra);
    ml_config_errors_init(&errs);
    *out = NULL;
    rv = ml_config_load_text(text, strlen(text), NULL, &errs, out);
    errors[0] = '\0';
    if (rv < 0) {
        ml_config_errors_join(&errs, "t", errors, cap);
    }
    ml_config_errors_deinit(&errs);
}

static void test_token_is_the_file_without_its_trailing_newline(void **state)
{
    struct ml_snapshot *s;
    char errors[1024];

    write_token("0123456789abcdef-token\n");
    load("", errors, sizeof(errors), &s);
    assert_string_equal(errors, "");
    assert_string_equal(s->node.admin_token_value, "0123456789abcdef-token");
    assert_int_equal(s->node.admin_token_bytes, 22);
    ml_snapshot_unref(s);

    write_token("0123456789abcdef-crlf\r\n");
    load("", errors, sizeof(errors), &s);
    assert_string_equal(s->node.admin_token_value, "0123456789abcdef-crlf");
    ml_snapshot_unref(s);
}

static void test_remote_admin_with_a_token_is_allowed(void **state)
{
    struct ml_snapshot *s;
    char errors[1024];

    write_token("0123456789abcdef\n");
    load("admin = 0.0.0.0:15000\nadmin_remote = on\n", errors, sizeof(errors), &s);
    assert_string_equal(errors, "");
    assert_true(s->node.admin_remote);
    assert_int_equal(s->node.admin_line, 3);
    ml_snapshot_unref(s);
}

static void test_unusable_token_files_are_errors_at_the_key_line(void **state)
{
    static const char *const bad[] = {
        "", "\n", "short\n", "0123456789abcde\n", "0123456789 abcdef\n", "0123456789abcdef\n\n"};
    struct ml_snapshot *s;
    char errors[1024];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_token(bad[i]);
        load("", errors, sizeof(errors), &s);
        assert_null(s);
        assert_non_null(strstr(errors, "t:2: [node] admin_token: expected a file holding one "
                                       "token of 16..256 visible ASCII characters"));
        assert_null(strstr(errors, "0123456789")); /* never the content */
    }
    unlink(token_path);
    load("", errors, sizeof(errors), &s);
    assert_null(s);
    assert_non_null(strstr(errors, "t:2: [node] admin_token: expected a readable file holding "
                                   "the admin token"));
    assert_non_null(strstr(errors, "No such file or directory"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_token_is_the_file_without_its_trailing_newline, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_remote_admin_with_a_token_is_allowed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unusable_token_files_are_errors_at_the_key_line, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
