#include "core/timer.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/loop.h"
#include "core/loop_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* The loop's pending timers live in a binary min-heap ordered by wake time, and only the
 * earliest of them is handed to lws, through one lws_sul per loop. lws keeps its suls in a
 * sorted list (an insert walks it): with a sul per timer, arming a call's deadline cost a walk
 * over every call in flight (180 000 instructions per arm+cancel at 10 000 pending timers,
 * tests/bench/timer_bench.sh); with the heap an arm or a cancel is O(log n) and lws's list
 * holds one entry of ours. */

/* The longest single wait for a timer armed at an absolute time: what ml_timer_arm can express
 * (uint32 ms, 49.7 days). A due time further away is reached in steps: the timer wakes, sees it
 * is early and waits again, so a deadline of years neither fires early nor is lost. struct
 * ml_loop's timer_step_max_ms may lower it (tests). */
#define TIMER_STEP_MAX_MS UINT32_MAX

/* heap_at of a timer that is not armed */
#define TIMER_NOT_ARMED UINT32_MAX

/* The heap's first allocation, in slots; it doubles from there. */
#define TIMERS_MIN_SLOTS 16

#define US_PER_MS 1000u

/* lws's poll() waits in whole milliseconds: a run of timers this long makes its wait stale. */
#define POLL_RESOLUTION_US 1000u

/* struct ml_timer: core/timer-t.h. Its heap_at makes a cancel O(log n): no search. */

/* One per loop (loop->timers): made by the first ml_timer_new, freed with the last
 * ml_timer_free. The slots grow in ml_timer_new (one per live timer, armed or not), so arming
 * never allocates and never fails; their number is bounded by the owners of the timers (calls,
 * connections, endpoints: each capped by its own budget). */
struct ml_timers {
    lws_sorted_usec_list_t sul; /* the one lws entry: wakes the loop for heap[0] */
    struct ml_loop *loop;
    struct ml_timer **heap; /* [0, n_armed): a min-heap on (wake_us, seq) */
    uint32_t n_armed;
    uint32_t n_slots; /* heap's size, >= n_live */
    uint32_t n_live;  /* timers made and not freed on this loop */
    uint64_t next_seq;
    uint64_t sul_wake_us; /* when the sul is set to fire; 0 = not set */
    bool firing;          /* on_sul is running timers: the struct must outlive its last free */
};

/* The clock lws_sul runs on (lws_now_usecs), so a wake is never before the sul fires; read
 * fresh, not the event's reading (core/clock.h), so that a delay counts from the arm. */
static uint64_t now_us(void)
{
    return ml_clock_read_us();
}

static bool earlier(const struct ml_timer *a, const struct ml_timer *b)
{
    return a->wake_us < b->wake_us || (a->wake_us == b->wake_us && a->seq < b->seq);
}

static void heap_put(struct ml_timers *ts, uint32_t i, struct ml_timer *t)
{
    ts->heap[i] = t;
    t->heap_at = i;
}

static void sift_up(struct ml_timers *ts, uint32_t i)
{
    struct ml_timer *t = ts->heap[i];

    while (i > 0 && earlier(t, ts->heap[(i - 1) / 2])) {
        heap_put(ts, i, ts->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_put(ts, i, t);
}

static void sift_down(struct ml_timers *ts, uint32_t i)
{
    struct ml_timer *t = ts->heap[i];

    for (;;) {
        uint32_t c = 2 * i + 1;

        if (c >= ts->n_armed) {
            break;
        }
        if (c + 1 < ts->n_armed && earlier(ts->heap[c + 1], ts->heap[c])) {
            c++;
        }
        if (!earlier(ts->heap[c], t)) {
            break;
        }
        heap_put(ts, i, ts->heap[c]);
        i = c;
    }
    heap_put(ts, i, t);
}

static void heap_remove(struct ml_timers *ts, struct ml_timer *t)
{
    uint32_t i = t->heap_at;
    struct ml_timer *last = ts->heap[--ts->n_armed];

    t->heap_at = TIMER_NOT_ARMED;
    if (last == t) {
        return;
    }
    heap_put(ts, i, last);
    if (i > 0 && earlier(last, ts->heap[(i - 1) / 2])) {
        sift_up(ts, i);
    } else {
        sift_down(ts, i);
    }
}

static void on_sul(lws_sorted_usec_list_t *sul);

/* Hands lws wake_us (its clock is ours: CLOCK_MONOTONIC in us). A time passed gives a delay of 0:
 * the sul is ripe for the next pass of lws over its suls, whichever it is (a pass runs every sul
 * due when it began), so a timer armed with 0 runs at the next turn of the loop. */
static void sul_set(struct ml_timers *ts, uint64_t wake_us)
{
    uint64_t now = now_us();

    lws_sul_schedule(ts->loop->lws, 0, &ts->sul, on_sul,
                     wake_us > now ? (lws_usec_t)(wake_us - now) : 0);
    ts->sul_wake_us = wake_us > 0 ? wake_us : 1;
}

/* Makes the sul fire for heap[0] if it would fire later (or not at all). A sul left early by a
 * cancel is not moved: it fires, finds nothing due and is set again, which costs less than an
 * lws insert on every cancel. */
static void sul_update(struct ml_timers *ts)
{
    uint64_t wake;

    if (ts->firing || ts->n_armed == 0) {
        return; /* on_sul sets it once it is done */
    }
    wake = ts->heap[0]->wake_us;
    if (ts->sul_wake_us != 0 && ts->sul_wake_us <= wake) {
        return;
    }
    sul_set(ts, wake);
}

/* The end of on_sul's run, begun at began_us (inside one of lws's passes over its ripe suls,
 * which come before its poll()): sets the sul for what is left, and makes sure lws's poll() does
 * not wait past it. Two things would make it wait:
 * - lws works out poll()'s wait as "the earliest sul minus the time its pass began", and waits
 *   that long from after the pass: late by as long as the timers' callbacks ran;
 * - a timer armed by those callbacks and due already (re-armed with 0) must not run again in
 *   this pass (a callback re-arming itself would spin in it), so its sul is set for the
 *   microsecond after the run began: lws's pass began before that, and sees it not ripe. lws
 *   rounds a wait that short to its poll resolution (1 ms) or to none, depending on which of its
 *   two passes it is in, and on how long the run took.
 * In either case lws_cancel_service() makes the poll() return at once (lws's wake-up eventfd:
 * one write), and the next turn works the wait out afresh, or runs the timer due. */
static void sul_after_run(struct ml_timers *ts, uint64_t began_us)
{
    uint64_t wake = ts->heap[0]->wake_us;
    uint64_t end = now_us();

    if (wake <= end || end - began_us >= POLL_RESOLUTION_US) {
        lws_cancel_service(ts->loop->lws);
    }
    sul_set(ts, wake > began_us ? wake : began_us + 1);
}

/* (Re)inserts t to wake at wake_us. */
static void heap_arm(struct ml_timer *t, uint64_t wake_us)
{
    struct ml_timers *ts = t->timers;

    if (t->heap_at != TIMER_NOT_ARMED) {
        heap_remove(ts, t);
    }
    t->wake_us = wake_us;
    t->seq = ts->next_seq++;
    heap_put(ts, ts->n_armed++, t); /* n_slots >= n_live >= n_armed + 1: ml_timer_new made room */
    sift_up(ts, t->heap_at);
}

/* The next wake towards t->due_ms: the time left, at most one step. */
static uint64_t step_wake_us(const struct ml_timer *t, uint64_t now_us_)
{
    uint64_t step_max = t->timers->loop->timer_step_max_ms != 0 ? t->timers->loop->timer_step_max_ms
                                                                : TIMER_STEP_MAX_MS;
    uint64_t now_ms = now_us_ / US_PER_MS;
    uint64_t left_ms = t->due_ms > now_ms ? t->due_ms - now_ms : 0;

    if (left_ms > step_max) {
        return now_us_ + step_max * US_PER_MS;
    }
    /* due_ms is at most now_ms + 49.7 days here: the product cannot overflow */
    return t->due_ms * US_PER_MS;
}

static void timers_free(struct ml_timers *ts)
{
    lws_sul_cancel(&ts->sul);
    ts->loop->timers = NULL;
    ml_free(ts->heap);
    ml_free(ts);
}

/* Runs every timer due now and armed before this run (one re-armed from its own callback with a
 * delay of 0 runs at the next turn, not in a loop here), then sets the sul for what is left. */
static void on_sul(lws_sorted_usec_list_t *sul)
{
    struct ml_timers *ts = lws_container_of(sul, struct ml_timers, sul);
    struct ml_loop *loop = ts->loop;
    uint64_t now = now_us();
    uint64_t seq_end = ts->next_seq;

    ts->sul_wake_us = 0; /* lws took it off its list before calling */
    ts->firing = true;
    while (ts->n_armed > 0) {
        struct ml_timer *t = ts->heap[0];

        if (t->wake_us > now || t->seq >= seq_end) {
            break;
        }
        if (t->due_ms != 0 && now / US_PER_MS < t->due_ms) {
            t->n_steps++;
            heap_arm(t, step_wake_us(t, now)); /* a step of a long wait: not due yet */
            continue;
        }
        heap_remove(ts, t);
        loop->depth++;
        ml_clock_hold(); /* the timer's work shares one reading of the clock */
        t->fn(t->user);  /* may arm, disarm or free any timer, t included */
        ml_clock_release();
        if (--loop->depth == 0) {
            ml_loop_run_deferred(loop);
        }
    }
    ts->firing = false;
    if (ts->n_live == 0) {
        timers_free(ts);
        return;
    }
    if (ts->n_armed > 0) {
        sul_after_run(ts, now);
    }
}

int ml_timer_init(struct ml_timer *t, struct ml_loop *loop, ml_timer_fn *fn, void *user)
{
    struct ml_timers *ts = loop->timers;

    memset(t, 0, sizeof(*t));
    if (ts == NULL) {
        if ((ts = ml_calloc(1, sizeof(*ts))) == NULL) {
            return -ENOMEM;
        }
        ts->loop = loop;
        loop->timers = ts;
    }
    if (ts->n_live == ts->n_slots) {
        uint32_t n = ts->n_slots != 0 ? 2 * ts->n_slots : TIMERS_MIN_SLOTS;
        struct ml_timer **heap = ml_realloc(ts->heap, n * sizeof(*heap));

        if (heap == NULL) {
            if (ts->n_live == 0 && !ts->firing) {
                timers_free(ts);
            }
            return -ENOMEM;
        }
        ts->heap = heap;
        ts->n_slots = n;
    }
    t->timers = ts;
    t->fn = fn;
    t->user = user;
    t->heap_at = TIMER_NOT_ARMED;
    ts->n_live++;
    return 0;
}

void ml_timer_deinit(struct ml_timer *t)
{
    struct ml_timers *ts = t->timers;

    if (ts == NULL) {
        return;
    }
    ml_timer_disarm(t);
    t->timers = NULL;
    if (--ts->n_live == 0 && !ts->firing) {
        timers_free(ts);
    }
}

struct ml_timer *ml_timer_new(struct ml_loop *loop, ml_timer_fn *fn, void *user)
{
    struct ml_timer *t = ml_malloc(sizeof(*t));

    if (t != NULL && ml_timer_init(t, loop, fn, user) < 0) {
        ml_free(t);
        t = NULL;
    }
    return t;
}

void ml_timer_free(struct ml_timer *t)
{
    if (t != NULL) {
        ml_timer_deinit(t);
        ml_free(t);
    }
}

void ml_timer_arm(struct ml_timer *t, uint32_t delay_ms)
{
    t->due_ms = 0;
    heap_arm(t, now_us() + (uint64_t)delay_ms * US_PER_MS);
    sul_update(t->timers);
}

void ml_timer_arm_at(struct ml_timer *t, uint64_t due_ms)
{
    /* 0 means "relative" in due_ms: a due time of 0 has passed anyway, 1 fires just as soon. */
    t->due_ms = due_ms != 0 ? due_ms : 1;
    t->n_steps = 0;
    heap_arm(t, step_wake_us(t, now_us()));
    sul_update(t->timers);
}

uint32_t ml_timer_steps(const struct ml_timer *t)
{
    return t->n_steps;
}

void ml_timer_disarm(struct ml_timer *t)
{
    if (t->timers != NULL && t->heap_at != TIMER_NOT_ARMED) {
        heap_remove(t->timers, t);
    }
}

bool ml_timer_armed(const struct ml_timer *t)
{
    return t->timers != NULL && t->heap_at != TIMER_NOT_ARMED;
}

uint64_t ml_time_now_ms(void)
{
    return ml_clock_now_ms();
}
