#ifndef ML_CORE_CLOCK_H
#define ML_CORE_CLOCK_H

#include <stdint.h>

/* The loop's monotonic clock (CLOCK_MONOTONIC, the clock lws's timers run on), read once per
 * event instead of once per question.
 *
 * A proxied call asked for the time about 18 times (its deadline, stall check, stats, outlier
 * and circuit-breaker bookkeeping), and one socket read can carry a hundred calls: at 10x10
 * clock_gettime was 5 % of meshlet's CPU (perf, tests/bench/README.md). While an event is being
 * handled (ml_clock_hold .. ml_clock_release, nested) every reader gets the time at which the
 * outermost hold began, as nghttpx (ev_now) and Envoy (the dispatcher's approximate time) do.
 * The time is then up to one event's handling old: a due time computed from it (a call's
 * deadline, from the grpc-timeout its request carried) counts from the event that brought the
 * request, and a call's duration runs from the event that began it to the one that ended it.
 * A timer armed with a delay counts from a fresh reading (ml_clock_read_us). Outside a hold,
 * every read is fresh.
 * The hold is per thread: each worker's loop has its own. */

/* The time in microseconds and in milliseconds (the same clock): the event's reading inside a
 * hold, a fresh one outside. */
uint64_t ml_clock_now_us(void);
uint64_t ml_clock_now_ms(void);

/* A fresh reading, hold or not: for what must not run early by an event's age, a timer armed
 * with a delay (core/timer.c: "10 ms from now" is from now, after however long the event took). */
uint64_t ml_clock_read_us(void);

/* An event begins: the first hold reads the clock and keeps it until its release. */
void ml_clock_hold(void);
void ml_clock_release(void);

#endif
