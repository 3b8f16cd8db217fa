/* grpc/timeout.c: the grpc-timeout grammar (1 to 8 digits, then H M S m u n) and the formatter
 * that writes a remaining budget for upstream. Pure functions: no allocation to fail. */
#include "grpc/timeout.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static int parse(const char *text, uint64_t *ns)
{
    return ml_grpc_timeout_parse((struct ml_slice){(const uint8_t *)text, strlen(text)}, ns);
}

static void test_every_unit_is_read(void **state)
{
    uint64_t ns;

    assert_int_equal(parse("2H", &ns), 0);
    assert_true(ns == 2ULL * 3600 * 1000000000ULL);
    assert_int_equal(parse("3M", &ns), 0);
    assert_true(ns == 180ULL * 1000000000ULL);
    assert_int_equal(parse("1S", &ns), 0);
    assert_true(ns == 1000000000ULL);
    assert_int_equal(parse("300m", &ns), 0);
    assert_true(ns == 300000000ULL);
    assert_int_equal(parse("250u", &ns), 0);
    assert_true(ns == 250000ULL);
    assert_int_equal(parse("7n", &ns), 0);
    assert_true(ns == 7ULL);
}

static void test_eight_digits_and_zero_are_accepted(void **state)
{
    uint64_t ns;

    assert_int_equal(parse("99999999H", &ns), 0);
    assert_true(ns == 99999999ULL * 3600 * 1000000000ULL);
    assert_int_equal(parse("00000001S", &ns), 0);
    assert_true(ns == 1000000000ULL);
    assert_int_equal(parse("0m", &ns), 0); /* expired at once, not malformed */
    assert_true(ns == 0);
}

static void test_what_breaks_the_grammar_is_refused(void **state)
{
    static const char *const bad[] = {"",     "S",   "5",    "123456789m", "1x", "-5S",
                                      "+5S",  " 5S", "5S ",  "5 S",        "5s", "5h",
                                      "1.5S", "5SS", "0x5m", "5mS",        "m5"};
    uint64_t ns = 42;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &ns) != -EINVAL) {
            fail_msg("\"%s\" was accepted", bad[i]);
        }
    }
}

static void test_a_value_is_read_only_within_its_length(void **state)
{
    const char text[] = "300mXYZ";
    uint64_t ns;

    assert_int_equal(ml_grpc_timeout_parse((struct ml_slice){(const uint8_t *)text, 4}, &ns), 0);
    assert_true(ns == 300000000ULL);
}

static void test_format_uses_milliseconds_while_they_fit(void **state)
{
    char buf[ML_GRPC_TIMEOUT_TEXT_MAX];

    assert_string_equal(ml_grpc_timeout_format(1, buf, sizeof(buf)), "1m");
    assert_string_equal(ml_grpc_timeout_format(299, buf, sizeof(buf)), "299m");
    assert_string_equal(ml_grpc_timeout_format(99999999, buf, sizeof(buf)), "99999999m");
}

static void test_format_rounds_down_to_a_larger_unit(void **state)
{
    char buf[ML_GRPC_TIMEOUT_TEXT_MAX];

    /* 100000000 ms do not fit in 8 digits of ms: seconds, rounded down */
    assert_string_equal(ml_grpc_timeout_format(100000999, buf, sizeof(buf)), "100000S");
    assert_string_equal(ml_grpc_timeout_format(99999999ULL * 1000 * 60, buf, sizeof(buf)),
                        "99999999M");
    assert_string_equal(ml_grpc_timeout_format(UINT64_MAX, buf, sizeof(buf)), "99999999H");
}

static void test_format_parses_back_to_no_more_than_it_was_given(void **state)
{
    static const uint64_t ms[] = {0, 1, 999, 1000, 123456789, 9999999999ULL, 1ULL << 40};
    char buf[ML_GRPC_TIMEOUT_TEXT_MAX];
    uint64_t ns;

    for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
        ml_grpc_timeout_format(ms[i], buf, sizeof(buf));
        assert_int_equal(parse(buf, &ns), 0);
        assert_true(ns <= ms[i] * 1000000ULL);
        assert_true(ns / 1000000ULL * 2 >= ms[i] || ms[i] < 2); /* and not much less */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_unit_is_read),
        cmocka_unit_test(test_eight_digits_and_zero_are_accepted),
        cmocka_unit_test(test_what_breaks_the_grammar_is_refused),
        cmocka_unit_test(test_a_value_is_read_only_within_its_length),
        cmocka_unit_test(test_format_uses_milliseconds_while_they_fit),
        cmocka_unit_test(test_format_rounds_down_to_a_larger_unit),
        cmocka_unit_test(test_format_parses_back_to_no_more_than_it_was_given),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
