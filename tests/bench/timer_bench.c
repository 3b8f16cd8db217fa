/* tests/bench/timer_bench.c — the cost of one arm + cancel of a timer (core/timer.c) with P
 * timers already pending on the same loop, P = 10, 1 000, 10 000 (or the counts given).
 *
 * Shaped like a proxied call: the pending timers are other calls' deadlines, armed at
 * now + 30 s + i ms (one a millisecond, as calls arrive); the measured timer is the new call's
 * deadline, armed at now + 60 s (after all of them, where a call's deadline lands: "late") and
 * cancelled (the call ends before it); "early" arms it before all of them (now + 1 s: a short
 * timer among long ones, e.g. a stall check among deadlines; a heap's worst case, up to the root).
 * Built by timer_bench.sh against build/host's libmeshlet_core.a; no loop turn runs, so it measures
 * the timer structure alone.
 *
 * Output: one line per P: ns per arm+cancel (clock_gettime over ITERS pairs; noisy on a shared
 * machine) — run it under `valgrind --tool=callgrind --toggle-collect=measure` for instruction
 * counts (timer_bench.sh --callgrind does). */
#include "core/loop.h"
#include "core/timer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Pairs measured per pending count: enough for a stable ns figure, few enough for callgrind. */
#define ITERS 20000
/* The pending timers' deadlines: 30 s ahead, one per ms; the measured one 60 s (late) or 1 s
 * (early) ahead. */
#define PENDING_BASE_MS 30000
#define MEASURED_MS 60000
#define EARLY_MS 1000

static void never(void *user)
{
    (void)user;
    abort(); /* nothing is due within the run */
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void arm_cancel(struct ml_timer *t, uint64_t due, int iters)
{
    for (int i = 0; i < iters; i++) {
        ml_timer_arm_at(t, due + (uint64_t)(i & 7));
        ml_timer_disarm(t);
    }
}

/* The measured work, in functions of their own so callgrind can collect only them. */
__attribute__((noinline)) void measure_late(struct ml_timer *t, uint64_t due, int iters)
{
    arm_cancel(t, due, iters);
}

__attribute__((noinline)) void measure_early(struct ml_timer *t, uint64_t due, int iters)
{
    arm_cancel(t, due, iters);
}

static int run(int pending)
{
    struct ml_loop *loop = ml_loop_new();
    struct ml_timer **held = calloc((size_t)pending, sizeof(*held));
    struct ml_timer *t;
    uint64_t now, late, early, t0, t1, t2;

    if (loop == NULL || held == NULL) {
        fprintf(stderr, "timer_bench: out of memory\n");
        return 1;
    }
    now = ml_time_now_ms();
    for (int i = 0; i < pending; i++) {
        if ((held[i] = ml_timer_new(loop, never, NULL)) == NULL) {
            return 1;
        }
        ml_timer_arm_at(held[i], now + PENDING_BASE_MS + (uint64_t)i);
    }
    if ((t = ml_timer_new(loop, never, NULL)) == NULL) {
        return 1;
    }
    late = now + MEASURED_MS;
    early = now + EARLY_MS;
    measure_late(t, late, 100); /* warm */
    measure_early(t, early, 100);
    t0 = now_ns();
    measure_late(t, late, ITERS);
    t1 = now_ns();
    measure_early(t, early, ITERS);
    t2 = now_ns();
    printf("pending %6d: %8.1f ns per arm+cancel late, %8.1f early (%d pairs each)\n", pending,
           (double)(t1 - t0) / ITERS, (double)(t2 - t1) / ITERS, ITERS);
    ml_timer_free(t);
    for (int i = 0; i < pending; i++) {
        ml_timer_free(held[i]);
    }
    free(held);
    ml_loop_free(loop);
    return 0;
}

int main(int argc, char **argv)
{
    static const int defaults[] = {10, 1000, 10000};
    int rc = 0;

    if (argc > 1) {
        for (int i = 1; i < argc && rc == 0; i++) {
            rc = run(atoi(argv[i]));
        }
        return rc;
    }
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]) && rc == 0; i++) {
        rc = run(defaults[i]);
    }
    return rc;
}
