/* core/stats.c: ml_stats_bucket, the bucket a duration falls in, found once per call (not once
 * per record the call counts in) and by halving the bounds: every value at, just past and
 * between the bounds lands where a walk over the bounds puts it. */
#include "core/stats.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* The definition: the first bound >= us, else +Inf (ML_STATS_N_BOUNDS). */
static int walk(uint64_t us)
{
    const uint32_t *b = ml_stats_bucket_bounds_us();
    int i = 0;

    while (i < ML_STATS_N_BOUNDS && us > b[i]) {
        i++;
    }
    return i;
}

static void test_each_bound_is_in_its_own_bucket(void **state)
{
    const uint32_t *b = ml_stats_bucket_bounds_us();

    for (int i = 0; i < ML_STATS_N_BOUNDS; i++) {
        assert_int_equal(ml_stats_bucket(b[i]), i);
        assert_int_equal(ml_stats_bucket((uint64_t)b[i] + 1), i + 1);
        assert_int_equal(ml_stats_bucket((uint64_t)b[i] - 1),
                         i == 0 || b[i] - 1 > b[i - 1] ? i : i - 1);
    }
}

static void test_buckets_match_a_walk_over_the_bounds(void **state)
{
    assert_int_equal(ml_stats_bucket(0), 0);
    assert_int_equal(ml_stats_bucket(UINT64_MAX), ML_STATS_N_BOUNDS);
    for (uint64_t us = 0; us < 12000000; us += 997) {
        assert_int_equal(ml_stats_bucket(us), walk(us));
    }
    for (uint64_t us = 1; us != 0 && us < UINT64_MAX / 3; us = us * 3 + 1) {
        assert_int_equal(ml_stats_bucket(us), walk(us));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_bound_is_in_its_own_bucket),
        cmocka_unit_test(test_buckets_match_a_walk_over_the_bounds),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
