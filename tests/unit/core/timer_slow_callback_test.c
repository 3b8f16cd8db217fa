/* core/timer.c: a timer armed by a callback that took long (a burst of work on the loop) runs
 * when it is due, not later by the time that callback took. lws works out its poll()'s wait as
 * "the earliest sul minus the time its pass over the suls began", and that pass began before the
 * callback ran; the timer's run must make lws work the wait out again. */
#include "core/timer.h"

#include "core/loop.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

/* How long the slow callback holds the loop, the delay it arms the other timer with, and how
 * late that one may run: generous (a poll's rounding is 1 ms), and well below SLOW_MS, by which
 * it was late. */
#define SLOW_MS 300
#define DELAY_MS 10
#define LATE_BOUND_MS 150
/* The loop's stop if the armed timer were lost. */
#define GUARD_MS 10000

struct slow {
    struct ml_loop *loop;
    struct ml_timer *next;
    uint64_t due_ms; /* when next is due: DELAY_MS after the slow callback armed it */
    uint64_t ran_ms; /* when next ran; 0 = not yet */
};

/* The test's own clock: ml_time_now_ms inside a callback is the event's reading (core/clock.h),
 * 300 ms old by the end of the slow one. */
static uint64_t fresh_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void on_slow(void *user)
{
    struct slow *s = user;
    struct timespec hold = {.tv_sec = SLOW_MS / 1000, .tv_nsec = (SLOW_MS % 1000) * 1000000L};

    nanosleep(&hold, NULL); /* the loop is held: as by a long run of work */
    ml_timer_arm(s->next, DELAY_MS);
    s->due_ms = fresh_ms() + DELAY_MS;
}

static void on_next(void *user)
{
    struct slow *s = user;

    s->ran_ms = fresh_ms();
    ml_loop_stop(s->loop);
}

static void stop_loop(void *user)
{
    ml_loop_stop(user);
}

static void test_a_timer_armed_by_a_slow_callback_runs_when_due_not_that_much_later(void **state)
{
    struct slow s = {.loop = ml_loop_new()};
    struct ml_timer *slow, *guard;

    assert_non_null(s.loop);
    assert_non_null(slow = ml_timer_new(s.loop, on_slow, &s));
    assert_non_null(s.next = ml_timer_new(s.loop, on_next, &s));
    assert_non_null(guard = ml_timer_new(s.loop, stop_loop, s.loop));
    ml_timer_arm(guard, GUARD_MS);
    ml_timer_arm(slow, 1);
    assert_int_equal(ml_loop_run(s.loop), 0);
    assert_int_not_equal(s.ran_ms, 0);
    assert_true(s.ran_ms >= s.due_ms - 1); /* due_ms was read just after the arm */
    assert_true(s.ran_ms < s.due_ms + LATE_BOUND_MS);
    ml_timer_free(guard);
    ml_timer_free(s.next);
    ml_timer_free(slow);
    ml_loop_free(s.loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_timer_armed_by_a_slow_callback_runs_when_due_not_that_much_later),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
