/* core/timer.c's heap on a real loop: timers run in the order of their due times (equal ones in
 * the order they were armed), never early, exactly once; a timer cancelled or freed from another
 * timer's callback never runs; one re-armed from its own callback runs again at the next turn,
 * not in a loop within this one; 10 000 pending timers keep all of that. */
#include "core/timer.h"

#include "core/alloc.h"
#include "core/loop.h"
#include "core/loop_int.h" /* stop */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

/* The big test's timer count, and the spread of their due times. */
#define MANY 10000
#define MANY_SPREAD_MS 200

struct run;

struct probe {
    struct run *run;
    struct ml_timer *timer;
    int id;
    uint64_t due_ms;
    int n_fired;
    uint64_t fired_ms;
    int rearm_left;       /* re-arms itself with a delay of 0 this many more times */
    struct probe *victim; /* disarmed (or freed, free_victim) by this one's callback */
    bool free_victim;
};

struct run {
    struct ml_loop *loop;
    int order[MANY]; /* ids in the order they fired */
    int n_fired;
    int stop_at; /* stops the loop once this many fired */
    uint64_t fired_turn[MANY];
};

static void on_fire(void *user)
{
    struct probe *m = user;
    struct run *r = m->run;

    m->n_fired++;
    m->fired_ms = ml_time_now_ms();
    r->order[r->n_fired++] = m->id;
    if (m->victim != NULL) {
        if (m->free_victim) {
            ml_timer_free(m->victim->timer);
            m->victim->timer = NULL;
        } else {
            ml_timer_disarm(m->victim->timer);
        }
    }
    if (m->rearm_left > 0) {
        m->rearm_left--;
        ml_timer_arm(m->timer, 0);
    }
    if (r->n_fired == r->stop_at) {
        ml_loop_stop(r->loop);
    }
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

static void probe_init(struct probe *m, struct run *r, int id)
{
    m->run = r;
    m->id = id;
    assert_non_null(m->timer = ml_timer_new(r->loop, on_fire, m));
}

static void test_timers_run_in_the_order_of_their_due_times_not_of_arming(void **state)
{
    static const int delay_ms[] = {60, 10, 40, 20, 50, 30};
    struct run r = {.loop = ml_loop_new(), .stop_at = 6};
    struct probe m[6] = {0};
    uint64_t now;

    assert_non_null(r.loop);
    now = ml_time_now_ms();
    for (int i = 0; i < 6; i++) {
        probe_init(&m[i], &r, i);
        m[i].due_ms = now + (uint64_t)delay_ms[i];
        ml_timer_arm_at(m[i].timer, m[i].due_ms);
    }
    run_for(r.loop, 10000);
    assert_int_equal(r.n_fired, 6);
    assert_int_equal(r.order[0], 1); /* 10 ms */
    assert_int_equal(r.order[1], 3); /* 20 */
    assert_int_equal(r.order[2], 5);
    assert_int_equal(r.order[3], 2);
    assert_int_equal(r.order[4], 4);
    assert_int_equal(r.order[5], 0); /* 60 */
    for (int i = 0; i < 6; i++) {
        assert_int_equal(m[i].n_fired, 1);
        assert_true(m[i].fired_ms >= m[i].due_ms);
        assert_false(ml_timer_armed(m[i].timer));
        ml_timer_free(m[i].timer);
    }
    ml_loop_free(r.loop);
}

static void test_equal_due_times_run_in_the_order_they_were_armed(void **state)
{
    struct run r = {.loop = ml_loop_new(), .stop_at = 8};
    struct probe m[8] = {0};
    uint64_t due;

    assert_non_null(r.loop);
    due = ml_time_now_ms() + 20;
    for (int i = 0; i < 8; i++) {
        probe_init(&m[i], &r, i);
    }
    /* armed 7, 6, ..., 0; then 3 re-armed last: it goes behind the others */
    for (int i = 7; i >= 0; i--) {
        ml_timer_arm_at(m[i].timer, due);
    }
    ml_timer_arm_at(m[3].timer, due);
    run_for(r.loop, 10000);
    assert_int_equal(r.n_fired, 8);
    assert_int_equal(r.order[0], 7);
    assert_int_equal(r.order[1], 6);
    assert_int_equal(r.order[2], 5);
    assert_int_equal(r.order[3], 4);
    assert_int_equal(r.order[4], 2);
    assert_int_equal(r.order[5], 1);
    assert_int_equal(r.order[6], 0);
    assert_int_equal(r.order[7], 3);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(m[i].n_fired, 1);
        ml_timer_free(m[i].timer);
    }
    ml_loop_free(r.loop);
}

static void test_a_timer_cancelled_or_freed_by_another_due_at_the_same_time_never_runs(void **state)
{
    struct run r = {.loop = ml_loop_new(), .stop_at = -1};
    struct probe m[4] = {0};

    assert_non_null(r.loop);
    for (int i = 0; i < 4; i++) {
        probe_init(&m[i], &r, i);
    }
    m[0].victim = &m[1]; /* disarms 1 */
    m[2].victim = &m[3]; /* frees 3 */
    m[2].free_victim = true;
    for (int i = 0; i < 4; i++) {
        ml_timer_arm_at(m[i].timer, 0); /* all due at the next turn, in this order */
    }
    run_for(r.loop, 100);
    assert_int_equal(r.n_fired, 2);
    assert_int_equal(m[0].n_fired, 1);
    assert_int_equal(m[1].n_fired, 0);
    assert_false(ml_timer_armed(m[1].timer));
    assert_int_equal(m[2].n_fired, 1);
    assert_int_equal(m[3].n_fired, 0);
    assert_null(m[3].timer);
    /* a disarmed timer arms again as usual */
    r.stop_at = 3;
    ml_timer_arm(m[1].timer, 1);
    run_for(r.loop, 10000);
    assert_int_equal(m[1].n_fired, 1);
    for (int i = 0; i < 3; i++) {
        ml_timer_free(m[i].timer);
    }
    ml_loop_free(r.loop);
}

static void on_fire_free_self(void *user)
{
    struct probe *m = user;

    m->n_fired++;
    ml_timer_free(m->timer); /* the loop's last timer but the guard: the heap must survive */
    m->timer = NULL;
}

/* The same, then stops the loop (nothing else would end its turn: no timer is left). */
static void on_fire_free_self_and_stop(void *user)
{
    struct probe *m = user;

    on_fire_free_self(m);
    ml_loop_stop(m->run->loop);
}

static void test_a_timer_freed_by_its_own_callback_leaves_the_others_working(void **state)
{
    struct run r = {.loop = ml_loop_new(), .stop_at = 1};
    struct probe self = {0}, other = {0};

    assert_non_null(r.loop);
    self.run = &r;
    assert_non_null(self.timer = ml_timer_new(r.loop, on_fire_free_self, &self));
    probe_init(&other, &r, 1);
    ml_timer_arm(self.timer, 0);
    ml_timer_arm(other.timer, 20);
    run_for(r.loop, 10000);
    assert_int_equal(self.n_fired, 1);
    assert_null(self.timer);
    assert_int_equal(other.n_fired, 1);
    ml_timer_free(other.timer);
    /* and the last timer of a loop freed from its own callback (the guard is not armed): the
     * loop's timer state goes with it, ASan sees no use after free */
    self.n_fired = 0;
    assert_non_null(self.timer = ml_timer_new(r.loop, on_fire_free_self_and_stop, &self));
    ml_timer_arm(self.timer, 0);
    r.loop->stop = 0;
    assert_int_equal(ml_loop_run(r.loop), 0);
    assert_int_equal(self.n_fired, 1);
    assert_null(r.loop->timers);
    ml_loop_free(r.loop);
}

static void test_a_timer_rearmed_from_its_callback_runs_again_at_a_later_turn(void **state)
{
    struct run r = {.loop = ml_loop_new(), .stop_at = 4};
    struct probe m = {0};

    assert_non_null(r.loop);
    probe_init(&m, &r, 0);
    m.rearm_left = 3;
    ml_timer_arm(m.timer, 0);
    /* one service turn runs it, and does not spin on it: each of lws's passes over its ripe suls
     * (one before the poll, one in working out its timeout) runs it at most once, the re-arm
     * with 0 waits for the next pass (and makes the poll return at once) */
    assert_int_equal(lws_service(r.loop->lws, 0), 0);
    assert_in_range(m.n_fired, 1, 2);
    assert_true(ml_timer_armed(m.timer));
    run_for(r.loop, 10000);
    assert_int_equal(m.n_fired, 4);
    assert_false(ml_timer_armed(m.timer));
    /* re-arming an armed timer moves it: it runs once, at the new time */
    r.stop_at = 5;
    ml_timer_arm(m.timer, 5000);
    ml_timer_arm(m.timer, 10);
    run_for(r.loop, 1000);
    assert_int_equal(m.n_fired, 5);
    ml_timer_arm(m.timer, 10);
    ml_timer_arm(m.timer, 5000);
    run_for(r.loop, 100);
    assert_int_equal(m.n_fired, 5);
    assert_true(ml_timer_armed(m.timer));
    ml_timer_free(m.timer);
    ml_loop_free(r.loop);
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void
test_ten_thousand_pending_timers_each_run_once_in_order_and_cancelled_ones_never(void **state)
{
    struct run *r = calloc(1, sizeof(*r));
    struct probe *m = calloc(MANY, sizeof(*m));
    uint64_t seed = 88172645463325252ull;
    uint64_t now;
    int n_cancelled = 0;

    assert_non_null(r);
    assert_non_null(m);
    assert_non_null(r->loop = ml_loop_new());
    now = ml_time_now_ms();
    for (int i = 0; i < MANY; i++) {
        probe_init(&m[i], r, i);
        m[i].due_ms = now + 10 + rng_next(&seed) % MANY_SPREAD_MS;
        ml_timer_arm_at(m[i].timer, m[i].due_ms);
    }
    for (int i = 0; i < MANY; i += 3) { /* a third end before their deadline */
        ml_timer_disarm(m[i].timer);
        n_cancelled++;
    }
    r->stop_at = MANY - n_cancelled;
    run_for(r->loop, 30000);
    assert_int_equal(r->n_fired, MANY - n_cancelled);
    for (int i = 0; i < MANY; i++) {
        assert_int_equal(m[i].n_fired, i % 3 == 0 ? 0 : 1);
        if (m[i].n_fired) {
            assert_true(m[i].fired_ms >= m[i].due_ms);
        }
    }
    for (int k = 1; k < r->n_fired; k++) {
        struct probe *a = &m[r->order[k - 1]], *b = &m[r->order[k]];

        /* by due time; equal ones in the order armed (here: by id) */
        assert_true(a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->id < b->id));
    }
    for (int i = 0; i < MANY; i++) {
        ml_timer_free(m[i].timer);
    }
    assert_null(r->loop->timers); /* the last free took the heap with it */
    ml_loop_free(r->loop);
    free(m);
    free(r);
}

static void
test_each_allocation_of_a_new_timer_failing_leaves_nothing_and_the_others_working(void **state)
{
    struct run r = {.loop = ml_loop_new(), .stop_at = 1};
    struct probe armed = {0};
    struct ml_timer *t;
    long k;

    assert_non_null(r.loop);
    /* on a loop without timers: the loop's timer state, its heap, the timer */
    for (k = 0;; k++) {
        ml_alloc_fail_after(k);
        t = ml_timer_new(r.loop, on_fire, &armed);
        ml_alloc_fail_after(-1);
        if (t != NULL) {
            break;
        }
        assert_null(r.loop->timers); /* nothing half made stays behind */
    }
    assert_int_equal(k, 3);
    ml_timer_free(t);
    assert_null(r.loop->timers);
    /* beside an armed timer, with the heap full (16 slots: the 16th new timer grows it) */
    probe_init(&armed, &r, 0);
    ml_timer_arm(armed.timer, 20);
    struct ml_timer *more[15];
    for (int i = 0; i < 15; i++) {
        assert_non_null(more[i] = ml_timer_new(r.loop, on_fire, &armed));
    }
    for (k = 0;; k++) {
        ml_alloc_fail_after(k);
        t = ml_timer_new(r.loop, on_fire, &armed);
        ml_alloc_fail_after(-1);
        if (t != NULL) {
            break;
        }
        assert_true(ml_timer_armed(armed.timer));
    }
    assert_int_equal(k, 2); /* the heap's growth, the timer */
    ml_timer_free(t);
    for (int i = 0; i < 15; i++) {
        ml_timer_free(more[i]);
    }
    run_for(r.loop, 10000);
    assert_int_equal(armed.n_fired, 1);
    ml_timer_free(armed.timer);
    ml_loop_free(r.loop);
}

static void test_an_embedded_timer_runs_like_an_allocated_one_and_costs_no_allocation(void **state)
{
    struct run r = {.loop = ml_loop_new(), .stop_at = 2};
    struct probe keep = {0}, emb = {0};
    struct ml_timer t = {0}, failed;

    assert_non_null(r.loop);
    ml_timer_deinit(&t); /* zeroed: a no-op */
    assert_false(ml_timer_armed(&t));
    probe_init(&keep, &r, 0); /* the loop's heap exists, with room */
    emb.run = &r;
    emb.id = 1;
    /* a call's deadline embedded in the call: init, arm, fire, deinit without one allocation */
    ml_alloc_fail_after(0);
    assert_int_equal(ml_timer_init(&t, r.loop, on_fire, &emb), 0);
    emb.timer = &t;
    ml_timer_arm_at(&t, ml_time_now_ms() + 5);
    ml_timer_arm(keep.timer, 20);
    assert_int_equal(ml_alloc_fail_after(-1), 0);
    run_for(r.loop, 10000); /* (its guard timer is allocated) */
    assert_int_equal(emb.n_fired, 1);
    assert_int_equal(keep.n_fired, 1);
    ml_alloc_fail_after(0);
    ml_timer_arm(&t, 5000);
    ml_timer_deinit(&t); /* armed: disarms; it never runs */
    ml_timer_deinit(&t); /* twice: a no-op */
    assert_int_equal(ml_alloc_fail_after(-1), 0);
    /* an init that fails (the heap must grow, the allocation fails) leaves a no-op timer */
    struct ml_timer *more[15];
    for (int i = 0; i < 15; i++) {
        assert_non_null(more[i] = ml_timer_new(r.loop, on_fire, &emb));
    }
    ml_alloc_fail_after(0);
    assert_int_equal(ml_timer_init(&failed, r.loop, on_fire, &emb), -ENOMEM);
    ml_alloc_fail_after(-1);
    assert_false(ml_timer_armed(&failed));
    ml_timer_deinit(&failed);
    for (int i = 0; i < 15; i++) {
        ml_timer_free(more[i]);
    }
    ml_timer_free(keep.timer);
    assert_null(r.loop->timers);
    ml_loop_free(r.loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers_run_in_the_order_of_their_due_times_not_of_arming),
        cmocka_unit_test(test_equal_due_times_run_in_the_order_they_were_armed),
        cmocka_unit_test(
            test_a_timer_cancelled_or_freed_by_another_due_at_the_same_time_never_runs),
        cmocka_unit_test(test_a_timer_freed_by_its_own_callback_leaves_the_others_working),
        cmocka_unit_test(test_a_timer_rearmed_from_its_callback_runs_again_at_a_later_turn),
        cmocka_unit_test(
            test_ten_thousand_pending_timers_each_run_once_in_order_and_cancelled_ones_never),
        cmocka_unit_test(
            test_each_allocation_of_a_new_timer_failing_leaves_nothing_and_the_others_working),
        cmocka_unit_test(test_an_embedded_timer_runs_like_an_allocated_one_and_costs_no_allocation),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
