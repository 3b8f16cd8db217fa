/* The timer's type, apart from its functions (core/timer.h), so that an owner can embed one
 * (ml_timer_init) instead of allocating it (ml_timer_new): a call's deadline and stall check
 * then cost no allocation. The fields are core/timer.c's: read and write them only there. */
#ifndef ML_CORE_TIMER_T_H
#define ML_CORE_TIMER_T_H

#include <stdint.h>

struct ml_timers;

/* Runs on the loop when the timer fires; the timer is disarmed by then and may be re-armed or
 * freed from here. */
typedef void ml_timer_fn(void *user);

struct ml_timer {
    struct ml_timers *timers; /* the loop's heap (core/timer.c); NULL: not initialised */
    ml_timer_fn *fn;
    void *user;
    uint64_t wake_us; /* the heap's key: when the loop next looks at this timer (monotonic us) */
    uint64_t seq;     /* the heap's tie-break: equal wake times run in the order they were armed */
    uint64_t due_ms;  /* ml_timer_arm_at: ml_time_now_ms() at which fn runs; 0 = armed relative */
    uint32_t heap_at; /* index in the heap, or UINT32_MAX: not armed */
    uint32_t n_steps; /* times it woke before due_ms and waited again (since ml_timer_arm_at) */
};

#endif
