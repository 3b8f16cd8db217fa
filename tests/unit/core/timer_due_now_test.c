/* core/timer.c: a timer due now (armed with 0, or re-armed so from its own callback) runs at the
 * next turn of the loop, on a loop with nothing else to wake it: no socket, only a timer far
 * away. lws runs a sul only if it was due when its pass over the suls began: a timer's sul set
 * even 1 us ahead is missed by a turn that begins within that microsecond (most turns, on a
 * fast machine), and a caller turning lws_service until the timer ran then waits in the poll()
 * of the turn that runs it for whatever comes next. ml_loop_run turns again at once either way
 * (the second test guards that path: it passed before the fix too). */
#include "core/timer.h"

#include "core/loop.h"
#include "core/loop_int.h" /* lws, stop */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* The timer that is far away: what the loop would wait for if the due one were missed. Its
 * callback stops the loop, so a miss shows as a wait of FAR_MS and a count short of the goal. */
#define FAR_MS 60000
/* Runs of the timer re-arming itself with 0, and the bound on their time: generous (each run is
 * microseconds; a miss costs FAR_MS). */
#define N_REARMS 50
#define REARMS_BOUND_MS 2000
/* Arm-then-turn rounds in the one-turn test: one miss fails it. */
#define N_ROUNDS 200

struct due {
    struct ml_loop *loop;
    struct ml_timer *timer;
    int n_fired;
    int rearm_until; /* re-arms itself with 0 until it ran this many times */
    bool far_fired;
};

static void on_due(void *user)
{
    struct due *d = user;

    d->n_fired++;
    if (d->n_fired < d->rearm_until) {
        ml_timer_arm(d->timer, 0);
    } else {
        ml_loop_stop(d->loop); /* also wakes lws's poll(): the turn ends at once */
    }
}

static void on_far(void *user)
{
    struct due *d = user;

    d->far_fired = true;
    ml_loop_stop(d->loop);
}

static void test_a_timer_armed_with_0_runs_in_the_next_service_turn(void **state)
{
    struct due d = {.loop = ml_loop_new()};
    struct ml_timer *far;

    assert_non_null(d.loop);
    assert_non_null(far = ml_timer_new(d.loop, on_far, &d));
    assert_non_null(d.timer = ml_timer_new(d.loop, on_due, &d));
    ml_timer_arm(far, FAR_MS);
    for (int i = 0; i < N_ROUNDS; i++) {
        d.rearm_until = d.n_fired + 1; /* runs once, then stops the loop: the turn returns */
        ml_timer_arm(d.timer, 0);
        /* one turn, made right after the arm (within the same microsecond, on a fast machine) */
        assert_int_equal(lws_service(d.loop->lws, 0), 0);
        assert_int_equal(d.n_fired, i + 1);
        assert_false(ml_timer_armed(d.timer));
    }
    assert_false(d.far_fired);
    assert_true(ml_timer_armed(far));
    ml_timer_free(d.timer);
    ml_timer_free(far);
    ml_loop_free(d.loop);
}

static void test_a_timer_rearming_itself_with_0_runs_on_an_idle_loop_without_waiting(void **state)
{
    struct due d = {.loop = ml_loop_new(), .rearm_until = N_REARMS};
    struct ml_timer *far;
    uint64_t start_ms, took_ms;

    assert_non_null(d.loop);
    assert_non_null(far = ml_timer_new(d.loop, on_far, &d));
    assert_non_null(d.timer = ml_timer_new(d.loop, on_due, &d));
    ml_timer_arm(far, FAR_MS);
    ml_timer_arm(d.timer, 0);
    start_ms = ml_time_now_ms();
    assert_int_equal(ml_loop_run(d.loop), 0);
    took_ms = ml_time_now_ms() - start_ms;
    assert_int_equal(d.n_fired, N_REARMS);
    assert_false(d.far_fired);
    assert_true(took_ms < REARMS_BOUND_MS);
    ml_timer_free(d.timer);
    ml_timer_free(far);
    ml_loop_free(d.loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_timer_armed_with_0_runs_in_the_next_service_turn),
        cmocka_unit_test(test_a_timer_rearming_itself_with_0_runs_on_an_idle_loop_without_waiting),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
