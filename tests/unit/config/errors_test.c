/* config/errors.c: the list of error lines, printed for `meshlet check` and joined (cut at
 * 4 KiB with "... and N more") for a Nack or a failed POST /config. */
#include "config/errors.h"

#include "core/alloc.h"
#include "meshlet_config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static int setup(void **state)
{
    struct ml_config_errors *e = malloc(sizeof(*e));

    if (e == NULL) {
        return -1;
    }
    ml_config_errors_init(e);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    ml_alloc_fail_after(-1);
    ml_config_errors_deinit(*state);
    free(*state);
    return 0;
}

/* What ml_config_errors_print writes, as one string (caller frees). */
static char *printed(const struct ml_config_errors *e, const char *file)
{
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);

    assert_non_null(f);
    ml_config_errors_print(e, file, f);
    fclose(f);
    return text;
}

static size_t count_lines(const char *s)
{
    size_t n = *s ? 1 : 0;

    for (; *s; s++) {
        n += *s == '\n';
    }
    return n;
}

static const char *last_line(const char *s)
{
    const char *nl = strrchr(s, '\n');

    return nl ? nl + 1 : s;
}

/* ---- collecting ----------------------------------------------------------------------------- */

static void test_add_keeps_line_and_formatted_text(void **state)
{
    struct ml_config_errors *e = *state;

    assert_int_equal(ml_config_errors_add(e, 23, "[cluster %s] %s: expected %s, got \"%s\"",
                                          "greeter", "lb", "round_robin", "x"),
                     0);
    assert_int_equal(ml_config_errors_count(e), 1);
    assert_int_equal(e->v[0].line, 23);
    assert_string_equal(e->v[0].text, "[cluster greeter] lb: expected round_robin, got \"x\"");
}

static void test_an_empty_list_prints_and_joins_nothing(void **state)
{
    struct ml_config_errors *e = *state;
    char buf[64] = "junk";
    char *out = printed(e, "meshlet.ini");

    assert_int_equal(ml_config_errors_count(e), 0);
    assert_string_equal(out, "");
    free(out);
    assert_int_equal(ml_config_errors_join(e, "push", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
}

static void test_sort_orders_by_line_and_keeps_order_within_a_line(void **state)
{
    struct ml_config_errors *e = *state;
    static const int lines[] = {30, 5, 12, 5, 0, 30, 12};
    static const char *const texts[] = {"a30", "b5", "c12", "d5", "e0", "f30", "g12"};
    static const char *const sorted[] = {"e0", "b5", "d5", "c12", "g12", "a30", "f30"};

    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(ml_config_errors_add(e, lines[i], "%s", texts[i]), 0);
    }
    ml_config_errors_sort(e);
    for (size_t i = 0; i < 7; i++) {
        assert_string_equal(e->v[i].text, sorted[i]);
    }
}

static void test_clear_drops_every_error_and_the_list_stays_usable(void **state)
{
    struct ml_config_errors *e = *state;

    for (int i = 0; i < 40; i++) {
        assert_int_equal(ml_config_errors_add(e, i + 1, "error %d", i), 0);
    }
    ml_config_errors_clear(e);
    assert_int_equal(ml_config_errors_count(e), 0);
    assert_int_equal(ml_config_errors_add(e, 3, "again"), 0);
    assert_int_equal(ml_config_errors_count(e), 1);
    assert_string_equal(e->v[0].text, "again");
}

static void test_errors_past_the_kconfig_maximum_are_counted_not_kept(void **state)
{
    struct ml_config_errors *e = *state;

    for (int i = 0; i < CONFIG_ML_CONFIG_MAX_ERRORS + 25; i++) {
        assert_int_equal(ml_config_errors_add(e, i + 1, "error %d", i), 0);
    }
    assert_int_equal(e->n, CONFIG_ML_CONFIG_MAX_ERRORS);
    assert_int_equal(e->n_dropped, 25);
    assert_int_equal(ml_config_errors_count(e), CONFIG_ML_CONFIG_MAX_ERRORS + 25);
    assert_true(e->cap <= CONFIG_ML_CONFIG_MAX_ERRORS);
}

static void test_an_add_without_memory_still_counts_the_error(void **state)
{
    struct ml_config_errors *e = *state;

    ml_alloc_fail_after(0);
    assert_int_equal(ml_config_errors_add(e, 7, "lost"), -ENOMEM);
    ml_alloc_fail_after(-1);
    assert_int_equal(ml_config_errors_count(e), 1); /* so a failed add still fails the config */
    assert_int_equal(e->n, 0);

    /* the array exists, the text's allocation fails */
    assert_int_equal(ml_config_errors_add(e, 8, "kept"), 0);
    ml_alloc_fail_after(0);
    assert_int_equal(ml_config_errors_add(e, 9, "lost too"), -ENOMEM);
    ml_alloc_fail_after(-1);
    assert_int_equal(ml_config_errors_count(e), 3);
    assert_int_equal(e->n, 1);
}

/* ---- printing (meshlet check) --------------------------------------------------------------- */

static void test_print_writes_file_line_text_per_error(void **state)
{
    struct ml_config_errors *e = *state;
    char *out;

    ml_config_errors_add(e, 3, "[node] log: expected error, warn, info or debug, got \"loud\"");
    ml_config_errors_add(e, 17,
                         "[route all] to: expected the name of a [cluster] section, got \"x\"");
    out = printed(e, "conf/meshlet.ini");
    assert_string_equal(out,
                        "conf/meshlet.ini:3: [node] log: expected error, warn, info or debug, "
                        "got \"loud\"\n"
                        "conf/meshlet.ini:17: [route all] to: expected the name of a [cluster] "
                        "section, got \"x\"\n");
    free(out);
}

static void test_print_line_zero_is_about_the_whole_file(void **state)
{
    struct ml_config_errors *e = *state;
    char *out;

    ml_config_errors_add(e, 0, "cannot read: No such file or directory");
    out = printed(e, "missing.ini");
    assert_string_equal(out, "missing.ini: cannot read: No such file or directory\n");
    free(out);
}

static void test_print_ends_with_the_count_of_dropped_errors(void **state)
{
    struct ml_config_errors *e = *state;
    char *out;

    for (int i = 0; i < CONFIG_ML_CONFIG_MAX_ERRORS + 3; i++) {
        ml_config_errors_add(e, i + 1, "e");
    }
    out = printed(e, "big.ini");
    assert_string_equal(last_line(out), ""); /* every line ends with a newline */
    assert_int_equal(count_lines(out) - 1, CONFIG_ML_CONFIG_MAX_ERRORS + 1);
    assert_non_null(strstr(out, "\nbig.ini: ... and 3 more errors\n"));
    free(out);
}

/* ---- joining (Nack, POST /config) ----------------------------------------------------------- */

static void test_join_separates_lines_by_newlines_without_a_trailing_one(void **state)
{
    struct ml_config_errors *e = *state;
    char buf[ML_CONFIG_ERRORS_TEXT_MAX];
    size_t n;

    ml_config_errors_add(e, 0, "whole");
    ml_config_errors_add(e, 4, "four");
    ml_config_errors_add(e, 9, "nine");
    n = ml_config_errors_join(e, "push", buf, sizeof(buf));
    assert_string_equal(buf, "push: whole\npush:4: four\npush:9: nine");
    assert_int_equal(n, strlen(buf));
}

static void test_join_cuts_at_4_KiB_with_and_N_more(void **state)
{
    struct ml_config_errors *e = *state;
    char buf[ML_CONFIG_ERRORS_TEXT_MAX], expect[64];
    size_t n, kept, more;
    const int total = 200;

    for (int i = 0; i < total; i++) {
        ml_config_errors_add(e, i + 1, "[cluster c%03d] lb: expected round_robin, got \"x\"", i);
    }
    n = ml_config_errors_join(e, "push", buf, sizeof(buf));
    assert_int_equal(n, strlen(buf));
    assert_true(n < ML_CONFIG_ERRORS_TEXT_MAX);
    kept = count_lines(buf) - 1;
    assert_true(kept > 10 && kept < (size_t)total);
    more = (size_t)total - kept;
    snprintf(expect, sizeof(expect), "... and %zu more", more);
    assert_string_equal(last_line(buf), expect);
    /* the lines kept are the first ones, whole */
    assert_memory_equal(buf,
                        "push:1: [cluster c000] lb: expected round_robin, got \"x\"\npush:2: ", 65);
    /* and as many as fit: the next line, with room kept for "... and N-1 more", would not */
    {
        char next[128], rest[64];
        size_t before = n - 1 - strlen(expect);
        int ln = snprintf(next, sizeof(next),
                          "push:%zu: [cluster c%03zu] lb: expected round_robin, got \"x\"",
                          kept + 1, kept);
        int rn = snprintf(rest, sizeof(rest), "... and %zu more", more - 1);
        assert_true(before + 1 + (size_t)ln + 1 + (size_t)rn >= ML_CONFIG_ERRORS_TEXT_MAX);
    }
}

static void test_join_exactly_full_keeps_every_line(void **state)
{
    struct ml_config_errors *e = *state;
    char big[ML_CONFIG_ERRORS_TEXT_MAX * 2], *buf;
    size_t all, n;

    for (int i = 0; i < 10; i++) {
        ml_config_errors_add(e, i + 1, "error number %d", i);
    }
    all = ml_config_errors_join(e, "f", big, sizeof(big));
    buf = malloc(all + 1);
    assert_non_null(buf);
    n = ml_config_errors_join(e, "f", buf, all + 1); /* just room for the NUL */
    assert_int_equal(n, all);
    assert_string_equal(buf, big);
    n = ml_config_errors_join(e, "f", buf, all); /* one byte short: the last line goes */
    assert_true(n < all);
    assert_string_equal(last_line(buf), "... and 1 more");
    free(buf);
}

static void test_join_counts_dropped_errors_in_and_N_more(void **state)
{
    struct ml_config_errors *e = *state;
    char buf[ML_CONFIG_ERRORS_TEXT_MAX], expect[64];
    size_t kept;

    for (int i = 0; i < CONFIG_ML_CONFIG_MAX_ERRORS + 40; i++) {
        ml_config_errors_add(e, i + 1, "e%d", i);
    }
    ml_config_errors_join(e, "push", buf, sizeof(buf));
    kept = count_lines(buf) - 1;
    snprintf(expect, sizeof(expect), "... and %zu more",
             (size_t)CONFIG_ML_CONFIG_MAX_ERRORS + 40 - kept);
    assert_string_equal(last_line(buf), expect);
}

static void test_join_with_only_dropped_errors_after_the_kept_ones(void **state)
{
    struct ml_config_errors *e = *state;
    char buf[ML_CONFIG_ERRORS_TEXT_MAX];

    ml_config_errors_add(e, 2, "kept");
    e->n_dropped = 5; /* as after five adds that ran out of memory */
    ml_config_errors_join(e, "push", buf, sizeof(buf));
    assert_string_equal(buf, "push:2: kept\n... and 5 more");
}

static void test_join_into_a_tiny_buffer_never_overflows(void **state)
{
    struct ml_config_errors *e = *state;
    char buf[64];

    for (int i = 0; i < 30; i++) {
        ml_config_errors_add(e, i + 1, "an error that is longer than the buffer it is joined into");
    }
    for (size_t cap = 1; cap < sizeof(buf); cap++) {
        memset(buf, 'Z', sizeof(buf));
        size_t n = ml_config_errors_join(e, "push", buf, cap);
        assert_true(n < cap);
        assert_int_equal(strlen(buf), n);
        for (size_t i = cap; i < sizeof(buf); i++) {
            assert_int_equal(buf[i], 'Z');
        }
        if (n > 0) {
            assert_string_equal(buf, "... and 30 more");
        }
    }
    assert_int_equal(ml_config_errors_join(e, "push", buf, 0), 0);
}

static void test_join_cuts_an_overlong_line_on_a_character_boundary(void **state)
{
    struct ml_config_errors *e = *state;
    char text[1200], buf[ML_CONFIG_ERRORS_TEXT_MAX];
    size_t n;

    /* "é" is two bytes: a cut at an odd place would split one */
    for (size_t i = 0; i + 2 < sizeof(text); i += 2) {
        text[i] = (char)0xc3;
        text[i + 1] = (char)0xa9;
    }
    text[sizeof(text) - 2] = '\0';
    ml_config_errors_add(e, 1, "x%s", text); /* "push:1: x" is 9 bytes: odd */
    n = ml_config_errors_join(e, "push", buf, sizeof(buf));
    assert_true(n <= 1023);
    assert_true(n > 1000);
    assert_int_equal((unsigned char)buf[n - 2], 0xc3);
    assert_int_equal((unsigned char)buf[n - 1], 0xa9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_add_keeps_line_and_formatted_text),
        T(test_an_empty_list_prints_and_joins_nothing),
        T(test_sort_orders_by_line_and_keeps_order_within_a_line),
        T(test_clear_drops_every_error_and_the_list_stays_usable),
        T(test_errors_past_the_kconfig_maximum_are_counted_not_kept),
        T(test_an_add_without_memory_still_counts_the_error),
        T(test_print_writes_file_line_text_per_error),
        T(test_print_line_zero_is_about_the_whole_file),
        T(test_print_ends_with_the_count_of_dropped_errors),
        T(test_join_separates_lines_by_newlines_without_a_trailing_one),
        T(test_join_cuts_at_4_KiB_with_and_N_more),
        T(test_join_exactly_full_keeps_every_line),
        T(test_join_counts_dropped_errors_in_and_N_more),
        T(test_join_with_only_dropped_errors_after_the_kept_ones),
        T(test_join_into_a_tiny_buffer_never_overflows),
        T(test_join_cuts_an_overlong_line_on_a_character_boundary),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
