/* fleet/backoff.c: delays stay within [min, min(max, min*2^(k+1))], never below the lower bound
 * (no busy loop), saturate at max without overflow, are reproducible from a seed, spread over
 * the whole window (full jitter), and start from the bottom again after a reset. */
#include "fleet/backoff.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static void test_first_delay_within_min_and_twice_min(void **state)
{
    assert_int_equal(ml_fleet_backoff_delay_ms(100, 400, 0, 0), 100);
    assert_int_equal(ml_fleet_backoff_delay_ms(100, 400, 0, 100), 200);
    assert_int_equal(ml_fleet_backoff_delay_ms(100, 400, 0, UINT64_MAX), 100 + UINT64_MAX % 101);
    for (uint64_t r = 0; r < 1000; r++) {
        uint32_t d = ml_fleet_backoff_delay_ms(100, 400, 0, r * 7919);

        assert_in_range(d, 100, 200);
    }
}

static void test_window_doubles_then_saturates_at_max(void **state)
{
    /* The largest draw of each attempt is the window's top: 2, 4, 8, 16 x min, then max. */
    static const uint32_t top[] = {1000, 2000, 4000, 8000, 10000, 10000, 10000};

    for (uint32_t k = 0; k < sizeof(top) / sizeof(top[0]); k++) {
        uint64_t span = top[k] - 500 + 1;

        assert_int_equal(ml_fleet_backoff_delay_ms(500, 10000, k, span - 1), top[k]);
        assert_int_equal(ml_fleet_backoff_delay_ms(500, 10000, k, span), 500);
    }
}

static void test_huge_attempt_counts_do_not_overflow(void **state)
{
    uint32_t ks[] = {30, 31, 32, 33, 63, 64, 1000, UINT32_MAX};

    for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
        for (uint64_t r = 0; r < 200; r++) {
            uint32_t d = ml_fleet_backoff_delay_ms(3, 3600000, ks[i], r * 0x9e3779b97f4a7c15ull);

            assert_in_range(d, 3, 3600000);
        }
    }
    assert_int_equal(ml_fleet_backoff_delay_ms(UINT32_MAX, UINT32_MAX, 5, 12345), UINT32_MAX);
}

static void test_bad_bounds_are_clamped_never_zero(void **state)
{
    struct ml_fleet_backoff b;

    assert_int_equal(ml_fleet_backoff_delay_ms(0, 0, 0, 0), 1);
    assert_int_equal(ml_fleet_backoff_delay_ms(0, 0, 9, 999), 1);
    assert_int_equal(ml_fleet_backoff_delay_ms(50, 10, 3, 999), 50);
    ml_fleet_backoff_init(&b, 0, 0, 1);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(ml_fleet_backoff_next(&b), 1);
    }
}

static void test_same_seed_same_delays(void **state)
{
    struct ml_fleet_backoff a, b, c;
    int differ = 0;

    ml_fleet_backoff_init(&a, 100, 400, 42);
    ml_fleet_backoff_init(&b, 100, 400, 42);
    ml_fleet_backoff_init(&c, 100, 400, 43);
    for (int i = 0; i < 50; i++) {
        uint32_t x = ml_fleet_backoff_next(&a), y = ml_fleet_backoff_next(&b);

        assert_int_equal(x, y);
        differ += x != ml_fleet_backoff_next(&c);
    }
    assert_true(differ > 0);
}

static void test_full_jitter_covers_the_window(void **state)
{
    /* Long past the doubling, draws are spread over [min, max]: both ends' tenths are hit and
     * the mean is near the middle. */
    struct ml_fleet_backoff b;
    uint64_t sum = 0;
    int low = 0, high = 0, n = 20000;

    ml_fleet_backoff_init(&b, 100, 400, 7);
    for (int i = 0; i < 5; i++) {
        ml_fleet_backoff_next(&b);
    }
    for (int i = 0; i < n; i++) {
        uint32_t d = ml_fleet_backoff_next(&b);

        assert_in_range(d, 100, 400);
        sum += d;
        low += d < 130;
        high += d > 370;
    }
    assert_true(low > n / 20);
    assert_true(high > n / 20);
    assert_in_range(sum / n, 235, 265);
}

static void test_reset_starts_from_the_bottom(void **state)
{
    struct ml_fleet_backoff b;

    ml_fleet_backoff_init(&b, 100, 10000, 3);
    for (int i = 0; i < 20; i++) {
        ml_fleet_backoff_next(&b);
    }
    assert_int_equal(b.attempts, 20);
    ml_fleet_backoff_reset(&b);
    assert_int_equal(b.attempts, 0);
    for (int i = 0; i < 100; i++) {
        ml_fleet_backoff_reset(&b);
        assert_in_range(ml_fleet_backoff_next(&b), 100, 200);
    }
}

static void test_new_bounds_keep_the_count(void **state)
{
    struct ml_fleet_backoff b;

    ml_fleet_backoff_init(&b, 100, 400, 11);
    ml_fleet_backoff_next(&b);
    ml_fleet_backoff_next(&b);
    ml_fleet_backoff_set_bounds(&b, 1000, 2000);
    assert_int_equal(b.attempts, 2);
    for (int i = 0; i < 100; i++) {
        assert_in_range(ml_fleet_backoff_next(&b), 1000, 2000);
    }
}

static void test_random_never_sticks_at_zero(void **state)
{
    uint64_t s = 0, prev = 0;

    for (int i = 0; i < 1000; i++) {
        uint64_t r = ml_fleet_backoff_random(&s);

        assert_true(s != 0);
        assert_true(r != prev);
        prev = r;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_delay_within_min_and_twice_min),
        cmocka_unit_test(test_window_doubles_then_saturates_at_max),
        cmocka_unit_test(test_huge_attempt_counts_do_not_overflow),
        cmocka_unit_test(test_bad_bounds_are_clamped_never_zero),
        cmocka_unit_test(test_same_seed_same_delays),
        cmocka_unit_test(test_full_jitter_covers_the_window),
        cmocka_unit_test(test_reset_starts_from_the_bottom),
        cmocka_unit_test(test_new_bounds_keep_the_count),
        cmocka_unit_test(test_random_never_sticks_at_zero),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
