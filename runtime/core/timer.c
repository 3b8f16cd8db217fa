#include "core/timer.h"

#include "core/alloc.h"
#include "core/loop.h"
#include "core/loop_int.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* The longest single wait handed to lws for a timer armed at an absolute time: what ml_timer_arm
 * can express (uint32 ms, 49.7 days). A due time further away is reached in steps: the timer
 * wakes, sees it is early and waits again, so a deadline of years neither fires early nor is
 * lost. struct ml_loop's timer_step_max_ms may lower it (tests). */
#define TIMER_STEP_MAX_MS UINT32_MAX

struct ml_timer {
    lws_sorted_usec_list_t sul; /* lws's scheduler entry; first, for the container_of below */
    struct ml_loop *loop;
    ml_timer_fn *fn;
    void *user;
    bool armed;
    uint64_t due_ms;  /* ml_timer_arm_at: ml_time_now_ms() at which fn runs; 0 = armed relative */
    uint32_t n_steps; /* times it woke before due_ms and waited again (since ml_timer_arm_at) */
};

static void on_sul(lws_sorted_usec_list_t *sul);

/* Schedules the next step towards t->due_ms: the time left, at most one step. */
static void schedule_step(struct ml_timer *t, uint64_t now)
{
    uint64_t step_max =
        t->loop->timer_step_max_ms != 0 ? t->loop->timer_step_max_ms : TIMER_STEP_MAX_MS;
    uint64_t left = t->due_ms > now ? t->due_ms - now : 0;

    lws_sul_schedule(t->loop->lws, 0, &t->sul, on_sul,
                     (lws_usec_t)(left < step_max ? left : step_max) * LWS_US_PER_MS);
    t->armed = true;
}

static void on_sul(lws_sorted_usec_list_t *sul)
{
    struct ml_timer *t = lws_container_of(sul, struct ml_timer, sul);
    struct ml_loop *loop = t->loop;
    uint64_t now;

    if (t->due_ms != 0 && (now = ml_time_now_ms()) < t->due_ms) {
        t->n_steps++;
        schedule_step(t, now); /* a step of a long wait: not due yet */
        return;
    }
    t->armed = false;
    loop->depth++;
    t->fn(t->user); /* may free t */
    if (--loop->depth == 0) {
        ml_loop_run_deferred(loop);
    }
}

struct ml_timer *ml_timer_new(struct ml_loop *loop, ml_timer_fn *fn, void *user)
{
    struct ml_timer *t = ml_calloc(1, sizeof(*t));

    if (t != NULL) {
        t->loop = loop;
        t->fn = fn;
        t->user = user;
    }
    return t;
}

void ml_timer_free(struct ml_timer *t)
{
    if (t != NULL) {
        ml_timer_disarm(t);
        ml_free(t);
    }
}

void ml_timer_arm(struct ml_timer *t, uint32_t delay_ms)
{
    /* lws_sul's clock is CLOCK_MONOTONIC (lws_now_usecs); a 0 delay fires at the next service. */
    t->due_ms = 0;
    lws_sul_schedule(t->loop->lws, 0, &t->sul, on_sul, (lws_usec_t)delay_ms * LWS_US_PER_MS);
    t->armed = true;
}

void ml_timer_arm_at(struct ml_timer *t, uint64_t due_ms)
{
    uint64_t now = ml_time_now_ms();

    /* 0 means "relative" in due_ms: a due time of 0 has passed anyway, 1 fires just as soon. */
    t->due_ms = due_ms != 0 ? due_ms : 1;
    t->n_steps = 0;
    schedule_step(t, now);
}

uint32_t ml_timer_steps(const struct ml_timer *t)
{
    return t->n_steps;
}

void ml_timer_disarm(struct ml_timer *t)
{
    if (t->armed) {
        lws_sul_cancel(&t->sul);
        t->armed = false;
    }
}

bool ml_timer_armed(const struct ml_timer *t)
{
    return t->armed;
}

uint64_t ml_time_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
