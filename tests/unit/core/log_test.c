/* core/log.c: every entry is one line whatever its message holds, and a budget of lines holds
 * back an event's flood with an "N more like this" summary on the next line logged. */
#include "core/log.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "stderr_capture.h"

static int count_lines(const char *s)
{
    int n = 0;

    for (; *s; s++) {
        n += *s == '\n';
    }
    return n;
}

static void test_a_message_with_newlines_and_control_bytes_is_one_line(void **state)
{
    const char *out;

    capture_start();
    ML_LOG_ERR("peer said \"%s\"", "a\nb\r\x01"
                                   "c\x7f");
    out = capture_end();
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, " meshlet error: peer said \"a\\x0ab\\x0d\\x01c\\x7f\"\n"));
}

static void test_the_budget_passes_its_lines_then_counts(void **state)
{
    struct ml_log_limit lim = {0};
    int passed = 0;

    for (int i = 0; i < 50; i++) {
        passed += ml_log_limit_take(&lim, 1000 + (uint64_t)i); /* all in one window */
    }
    assert_int_equal(passed, ML_LOG_LIMIT_LINES);
    assert_int_equal(lim.suppressed, 50 - ML_LOG_LIMIT_LINES);
    assert_int_equal(lim.events, 50);
    /* a new window passes lines again */
    assert_true(ml_log_limit_take(&lim, 1000 + ML_LOG_LIMIT_WINDOW_MS + 60));
}

static void test_the_next_line_after_a_flood_says_how_many_were_held(void **state)
{
    struct ml_log_limit lim = {0};
    const char *out;

    capture_start();
    for (int i = 0; i < 20; i++) {
        ML_LOG_LIMITED(&lim, ML_LOG_LEVEL_ERR, "call %d failed", i);
    }
    lim.window_start_ms -= ML_LOG_LIMIT_WINDOW_MS; /* as if a second went by */
    ML_LOG_LIMITED(&lim, ML_LOG_LEVEL_ERR, "call %d failed", 20);
    ML_LOG_LIMITED(&lim, ML_LOG_LEVEL_ERR, "call %d failed", 21);
    out = capture_end();
    assert_int_equal(count_lines(out), ML_LOG_LIMIT_LINES + 2);
    assert_non_null(strstr(out, "call 20 failed (15 more like this in the last "));
    assert_non_null(strstr(out, " s not logged)\n"));
    assert_null(strstr(strstr(out, "call 21 failed"), "more like this")); /* said once */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_message_with_newlines_and_control_bytes_is_one_line),
        cmocka_unit_test(test_the_budget_passes_its_lines_then_counts),
        cmocka_unit_test(test_the_next_line_after_a_flood_says_how_many_were_held),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
