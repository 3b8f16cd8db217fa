/* One-shot timers on the loop (lws_sul underneath), on the monotonic clock. */
#ifndef ML_CORE_TIMER_H
#define ML_CORE_TIMER_H

#include "core/loop-t.h"
#include "core/timer-t.h"

#include <stdbool.h>
#include <stdint.h>

/* A disarmed timer that will call fn(user); NULL when out of memory. Free with ml_timer_free. */
struct ml_timer *ml_timer_new(struct ml_loop *loop, ml_timer_fn *fn, void *user);
/* Disarms and frees; NULL is a no-op. fn never runs afterwards. */
void ml_timer_free(struct ml_timer *t);

/* The same for a timer the caller embeds: 0, or -ENOMEM (t is then left uninitialised and
 * ml_timer_deinit of it a no-op). It allocates only when the loop has more timers than it ever
 * had (its heap grows), so in a steady state never. */
int ml_timer_init(struct ml_timer *t, struct ml_loop *loop, ml_timer_fn *fn, void *user);
/* Disarms; fn never runs afterwards. A zeroed or failed-init timer is a no-op; twice too (and
 * ml_timer_disarm and ml_timer_armed take such a timer as disarmed; the arms need an init). */
void ml_timer_deinit(struct ml_timer *t);

/* (Re)arms the timer to fire delay_ms from now (0: at the next turn of the loop). */
void ml_timer_arm(struct ml_timer *t, uint32_t delay_ms);
/* (Re)arms the timer to fire once ml_time_now_ms() reaches due_ms (a past time: at the next turn
 * of the loop). Any distance works: beyond what one lws wait holds (49.7 days) the timer wakes
 * in steps and waits again, and fn runs only when due_ms is reached, never earlier. */
void ml_timer_arm_at(struct ml_timer *t, uint64_t due_ms);
/* Since the last ml_timer_arm_at: the times the timer woke before its due time and waited
 * again (tests; logs). */
uint32_t ml_timer_steps(const struct ml_timer *t);
void ml_timer_disarm(struct ml_timer *t);
bool ml_timer_armed(const struct ml_timer *t);

/* Milliseconds on the monotonic clock (never jumps with the wall clock). */
uint64_t ml_time_now_ms(void);

#endif
