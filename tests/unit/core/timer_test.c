/* core/timer.c on a real loop: a timer armed at an absolute time further away than one lws wait
 * (49.7 days; lowered here through the loop's timer_step_max_ms so that the test sees the steps)
 * wakes in steps and runs its callback once, only when the due time is reached: a long gRPC
 * deadline is neither cut to 49.7 days nor lost. */
#include "core/timer.h"

#include "core/alloc.h"
#include "core/loop.h"
#include "core/loop_int.h" /* timer_step_max_ms, stop */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

struct fired {
    struct ml_loop *loop;
    int n;
    uint64_t at_ms;
};

static void on_fire(void *user)
{
    struct fired *f = user;

    f->n++;
    f->at_ms = ml_time_now_ms();
    ml_loop_stop(f->loop);
}

static void stop_loop(void *user)
{
    ml_loop_stop(user);
}

/* Runs the loop until something stops it, at most limit_ms. */
static void run_for(struct ml_loop *loop, uint32_t limit_ms)
{
    struct ml_timer *guard = ml_timer_new(loop, stop_loop, loop);

    assert_non_null(guard);
    loop->stop = 0;
    ml_timer_arm(guard, limit_ms);
    assert_int_equal(ml_loop_run(loop), 0);
    ml_timer_free(guard);
}

static void test_a_due_time_beyond_one_wait_fires_once_when_due_not_at_the_first_step(void **state)
{
    struct ml_loop *loop = ml_loop_new();
    struct fired f = {.loop = loop};
    struct ml_timer *t;
    uint64_t due;

    assert_non_null(loop);
    loop->timer_step_max_ms = 20; /* stands in for 49.7 days */
    assert_non_null(t = ml_timer_new(loop, on_fire, &f));
    due = ml_time_now_ms() + 200;
    ml_timer_arm_at(t, due);
    run_for(loop, 10000);
    assert_int_equal(f.n, 1);
    assert_true(f.at_ms >= due);       /* never early (the old clamp fired at the first step) */
    assert_true(f.at_ms < due + 5000); /* and not lost */
    assert_true(ml_timer_steps(t) >= 3);
    assert_false(ml_timer_armed(t));
    ml_timer_free(t);
    ml_loop_free(loop);
}

static void test_a_due_time_past_uint32_ms_stays_armed_and_does_not_fire(void **state)
{
    struct ml_loop *loop = ml_loop_new();
    struct fired f = {.loop = loop};
    struct ml_timer *t;

    assert_non_null(loop);
    loop->timer_step_max_ms = 10;
    assert_non_null(t = ml_timer_new(loop, on_fire, &f));
    /* 99999999H, the longest grpc-timeout: far beyond what uint32 ms can say */
    ml_timer_arm_at(t, ml_time_now_ms() + 99999999ULL * 3600 * 1000);
    run_for(loop, 150);
    assert_int_equal(f.n, 0);
    assert_true(ml_timer_armed(t));
    assert_true(ml_timer_steps(t) >= 2);
    ml_timer_free(t); /* disarms: it never runs */
    ml_loop_free(loop);
}

static void test_a_due_time_in_the_past_fires_at_the_next_turn(void **state)
{
    struct ml_loop *loop = ml_loop_new();
    struct fired f = {.loop = loop};
    struct ml_timer *t;

    assert_non_null(loop);
    assert_non_null(t = ml_timer_new(loop, on_fire, &f));
    ml_timer_arm_at(t, 0);
    run_for(loop, 10000);
    assert_int_equal(f.n, 1);
    assert_int_equal(ml_timer_steps(t), 0);
    /* a relative arm after an absolute one is relative again */
    ml_timer_arm_at(t, ml_time_now_ms() + 99999999ULL * 3600 * 1000);
    ml_timer_arm(t, 0);
    run_for(loop, 10000);
    assert_int_equal(f.n, 2);
    ml_timer_free(t);
    ml_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_due_time_beyond_one_wait_fires_once_when_due_not_at_the_first_step),
        cmocka_unit_test(test_a_due_time_past_uint32_ms_stays_armed_and_does_not_fire),
        cmocka_unit_test(test_a_due_time_in_the_past_fires_at_the_next_turn),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
