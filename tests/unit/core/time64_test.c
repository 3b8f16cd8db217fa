/* Every board's build has a 64-bit time_t (boards/linux-gnu.cmake adds -D_TIME_BITS=64 for the
 * 32-bit glibc boards; musl and the 64-bit boards have it anyway): this test runs on each board's
 * own binary (qemu-user for ARM), so a board that lost the flag fails here, not in 2038. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

static void test_time_t_holds_dates_past_2038(void **state)
{
    /* 2038-01-20 00:00:00 UTC: a day past the last second a signed 32-bit time_t holds */
    time_t t = (time_t)INT32_MAX + 1 + 86400 - (time_t)((INT32_MAX + 1LL) % 86400);
    struct tm tm;

    (void)state;
    assert_int_equal(sizeof(time_t), 8);
    assert_non_null(gmtime_r(&t, &tm));
    assert_int_equal(tm.tm_year + 1900, 2038);
    assert_int_equal(tm.tm_mon + 1, 1);
    assert_int_equal(tm.tm_mday, 20);
    assert_int_equal(timegm(&tm), t);
}

static void test_file_times_and_offsets_are_64_bit(void **state)
{
    struct stat st;

    (void)state;
    assert_int_equal(sizeof(st.st_mtime), 8); /* config files' times (controller/configs.c) */
    assert_int_equal(sizeof(off_t), 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_t_holds_dates_past_2038),
        cmocka_unit_test(test_file_times_and_offsets_are_64_bit),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
