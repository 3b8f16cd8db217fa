#include "core/timer.h"

#include "core/alloc.h"
#include "core/loop.h"
#include "core/loop_int.h"

#include <stddef.h>
#include <time.h>

struct ml_timer {
    lws_sorted_usec_list_t sul; /* lws's scheduler entry; first, for the container_of below */
    struct ml_loop *loop;
    ml_timer_fn *fn;
    void *user;
    bool armed;
};

static void on_sul(lws_sorted_usec_list_t *sul)
{
    struct ml_timer *t = lws_container_of(sul, struct ml_timer, sul);
    struct ml_loop *loop = t->loop;

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
    lws_sul_schedule(t->loop->lws, 0, &t->sul, on_sul, (lws_usec_t)delay_ms * LWS_US_PER_MS);
    t->armed = true;
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
