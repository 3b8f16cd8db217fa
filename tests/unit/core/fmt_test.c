/* core/fmt.h: the snprintf-free formatting of the call path gives what snprintf gives, cut the
 * same way. */
#include "core/fmt.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static void test_u64_is_what_snprintf_writes(void **state)
{
    static const uint64_t values[] = {0, 1, 9, 10, 99, 100, 12345, 4294967295u, UINT64_MAX};
    char got[32], want[32];

    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        snprintf(want, sizeof(want), "%llu", (unsigned long long)values[i]);
        assert_int_equal(ml_fmt_u64(got, sizeof(got), values[i]), strlen(want));
        assert_string_equal(got, want);
    }
}

static void test_a_short_buffer_cuts_like_snprintf(void **state)
{
    char got[4];

    assert_int_equal(ml_fmt_u64(got, sizeof(got), 123456), 3);
    assert_string_equal(got, "123");
    assert_int_equal(ml_fmt_copy(got, sizeof(got), "abcdef", 6), 3);
    assert_string_equal(got, "abc");
    assert_int_equal(ml_fmt_copy(got, 1, "abcdef", 6), 0);
    assert_string_equal(got, "");
    assert_int_equal(ml_fmt_copy(got, sizeof(got), NULL, 0), 0); /* an empty value */
    assert_string_equal(got, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_u64_is_what_snprintf_writes),
        cmocka_unit_test(test_a_short_buffer_cuts_like_snprintf),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
