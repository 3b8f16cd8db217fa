/* core/clock.c: inside a hold every reader gets the time the outermost hold began; outside,
 * every read is fresh; ml_clock_read_us is fresh either way. */
#include "core/clock.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

/* Longer than the clock's resolution (1 us) by far, short enough to keep the test quick. */
#define WAIT_US 2000

static void wait_us(long us)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = us * 1000L};

    nanosleep(&ts, NULL);
}

static void test_a_hold_keeps_one_reading_until_its_release(void **state)
{
    uint64_t held, outside;

    (void)state;
    ml_clock_hold();
    held = ml_clock_now_us();
    wait_us(WAIT_US);
    assert_int_equal(ml_clock_now_us(), held);
    assert_int_equal(ml_clock_now_ms(), held / 1000u);
    assert_true(ml_clock_read_us() >= held + WAIT_US); /* fresh, hold or not */

    ml_clock_hold(); /* nested: the outermost hold's reading stays */
    wait_us(WAIT_US);
    assert_int_equal(ml_clock_now_us(), held);
    ml_clock_release();
    assert_int_equal(ml_clock_now_us(), held);
    ml_clock_release();

    outside = ml_clock_now_us();
    assert_true(outside >= held + 2 * WAIT_US);
    wait_us(WAIT_US);
    assert_true(ml_clock_now_us() >= outside + WAIT_US);
}

static void test_a_new_hold_reads_the_clock_again(void **state)
{
    uint64_t first;

    (void)state;
    ml_clock_hold();
    first = ml_clock_now_us();
    ml_clock_release();
    wait_us(WAIT_US);
    ml_clock_hold();
    assert_true(ml_clock_now_us() >= first + WAIT_US);
    ml_clock_release();
}

static void test_a_release_without_a_hold_changes_nothing(void **state)
{
    uint64_t before;

    (void)state;
    ml_clock_release();
    before = ml_clock_now_us();
    wait_us(WAIT_US);
    assert_true(ml_clock_now_us() >= before + WAIT_US); /* still fresh: no hold was left */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_hold_keeps_one_reading_until_its_release),
        cmocka_unit_test(test_a_new_hold_reads_the_clock_again),
        cmocka_unit_test(test_a_release_without_a_hold_changes_nothing),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
