/* balance/host.c and the attempt API of balance/balance.c: a host per (cluster name, address)
 * shared by the old and the new balance across a hot apply with its state and counters; a
 * removed host drains; usability changes reach every cluster that has the host; an attempt's
 * end carries host and outcome to the counters and the policy. Endpoints here listen nowhere:
 * with max_pending = 0 a pick stops after choosing (-EBUSY), nothing is opened. */
#include "balance/balance.h"

#include "balance/balance_int.h"
#include "balance/host.h"
#include "balance/lb.h"
#include "config/errors.h"
#include "config/snapshot.h"
#include "core/loop.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "balance_fixture.h"

/* The index of the host a pick chose (the pick ends at max_pending = 0). */
static int pick(struct ml_cluster *cl, const struct ml_lb_pick_ctx *ctx)
{
    struct ml_balance_waiter w = {.on_ready = no_ready, .on_fail = no_fail};
    struct ml_h2_conn *conn;
    char why[200] = "";

    assert_int_equal(ml_cluster_pick(cl, &w, ctx, &conn, why, sizeof(why)), -EBUSY);
    assert_null(w.host); /* the attempt ended already: nothing was sent */
    return w.endpoint;
}

#define HEAD                                                                                       \
    "[listener l]\nbind = 127.0.0.1:15001\n"                                                       \
    "[route r]\nlistener = l\nto = c\n"

#define S1                                                                                         \
    HEAD "[cluster c]\nmax_pending = 0\n"                                                          \
         "endpoint = 127.0.0.1:50001\nendpoint = 127.0.0.1:50002\n"

/* 50001 goes, 50002 stays (now second), 50003 comes. */
#define S2                                                                                         \
    HEAD "[cluster c]\nmax_pending = 0\n"                                                          \
         "endpoint = 127.0.0.1:50003\nendpoint = 127.0.0.1:50002\n"

static void free_balance(void *user)
{
    ml_balance_free(user);
}

static void test_host_outlives_a_hot_apply_with_its_state_and_counters(void **state)
{
    struct ml_snapshot *s1 = load(S1), *s2 = load(S2);
    struct ml_loop *loop = ml_loop_new();
    uint32_t ids = 0;
    struct ml_balance *b1, *b2;
    struct ml_cluster *c1, *c2;
    struct ml_host *kept, *gone;
    char why[200];

    assert_int_equal(ml_balance_new(loop, s1, &ids, &b1), 0);
    c1 = ml_balance_cluster(b1, 0);
    kept = ml_lb_host(&c1->lb, 1);
    gone = ml_lb_host(&c1->lb, 0);
    assert_int_equal(pick(c1, NULL), 0);
    assert_int_equal(pick(c1, NULL), 1);
    assert_int_equal(kept->counters.calls, 1);
    assert_int_equal(kept->counters.active, 0);
    kept->outlier.n_ejections = 2; /* as the outlier code would leave it */

    assert_int_equal(ml_balance_prepare(b1, s2, &b2), 0);
    c2 = ml_balance_cluster(b2, 0);
    assert_ptr_equal(ml_lb_host(&c2->lb, 1), kept); /* same name, same address */
    assert_ptr_not_equal(ml_lb_host(&c2->lb, 0), gone);
    assert_int_equal(ml_cluster_call_begin(c1, why, sizeof(why)), 0); /* a call holds b1 */
    ml_balance_commit(b2, b1, free_balance, b1);
    assert_int_equal(kept->outlier.n_ejections, 2);
    assert_int_equal(kept->counters.calls, 1);
    assert_true(ml_host_usable(kept));
    assert_false(ml_host_usable(gone));
    assert_true(gone->state & ML_HOST_DRAINING);
    /* the old cluster's replays go to what the new config kept */
    assert_int_equal(pick(c1, NULL), 1);
    assert_int_equal(pick(c1, NULL), 1);
    assert_int_equal(kept->counters.calls, 3);
    ml_cluster_call_end(c1);
    ml_loop_run_deferred(loop); /* b1 goes, and with it the drained host */
    assert_int_equal(kept->refs, 1);
    ml_balance_free(b2);
    ml_loop_free(loop);
    ml_snapshot_unref(s2);
    ml_snapshot_unref(s1);
}

static void test_an_ejected_host_sits_out_round_robin_until_it_is_back(void **state)
{
    struct ml_snapshot *s = load(HEAD "[cluster c]\nmax_pending = 0\n"
                                      "endpoint = 127.0.0.1:50001\nendpoint = 127.0.0.1:50002\n"
                                      "endpoint = 127.0.0.1:50003\n");
    uint32_t ids = 0;
    struct ml_balance *b;
    struct ml_cluster *cl;
    char why[200];

    assert_int_equal(ml_balance_new(NULL, s, &ids, &b), 0);
    cl = ml_balance_cluster(b, 0);
    ml_host_state_set(ml_lb_host(&cl->lb, 1), ML_HOST_EJECTED, true);
    for (unsigned i = 0; i < 6; i++) {
        assert_int_equal(pick(cl, NULL), (int)(i % 2) * 2);
    }
    ml_host_state_set(ml_lb_host(&cl->lb, 1), ML_HOST_EJECTED, false);
    assert_true(ml_lb_usable(&cl->lb, 1));
    {
        unsigned seen[3] = {0};

        for (unsigned i = 0; i < 3; i++) {
            seen[pick(cl, NULL)]++;
        }
        assert_int_equal(seen[1], 1);
    }
    /* none usable: -ENOENT, saying why */
    for (uint32_t h = 0; h < 3; h++) {
        ml_host_state_set(ml_lb_host(&cl->lb, h), ML_HOST_UNHEALTHY, true);
    }
    {
        struct ml_balance_waiter w = {.on_ready = no_ready, .on_fail = no_fail};
        struct ml_h2_conn *conn;

        assert_int_equal(ml_cluster_pick(cl, &w, NULL, &conn, why, sizeof(why)), -ENOENT);
        assert_non_null(strstr(why, "no usable endpoint"));
        assert_null(w.host);
    }
    ml_balance_free(b);
    ml_snapshot_unref(s);
}

static void test_a_call_avoids_hosts_it_tried_while_another_is_usable(void **state)
{
    struct ml_snapshot *s = load(HEAD "[cluster c]\nmax_pending = 0\n"
                                      "endpoint = 127.0.0.1:50001\nendpoint = 127.0.0.1:50002\n");
    struct ml_lb_tried tried = {0};
    struct ml_lb_pick_ctx ctx = {.tried = &tried};
    uint32_t ids = 0;
    struct ml_balance *b;
    struct ml_cluster *cl;

    assert_int_equal(ml_balance_new(NULL, s, &ids, &b), 0);
    cl = ml_balance_cluster(b, 0);
    ctx.rand = &b->rand;
    ml_lb_tried_add(&tried, 0);
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(pick(cl, &ctx), 1);
    }
    ml_lb_tried_add(&tried, 1); /* both tried: one of them again rather than none */
    assert_true(pick(cl, &ctx) >= 0);
    ml_host_state_set(ml_lb_host(&cl->lb, 0), ML_HOST_EJECTED, true);
    assert_int_equal(pick(cl, &ctx), 1); /* tried, but the only usable one */
    ml_balance_free(b);
    ml_snapshot_unref(s);
}

/* A policy that records what it hears. */
static unsigned spy_takes, spy_drops, spy_states;
static struct ml_attempt_outcome spy_last;

static void spy_on_take(struct ml_lb *lb, uint32_t host)
{
    spy_takes++;
}

static void spy_on_drop(struct ml_lb *lb, uint32_t host, const struct ml_attempt_outcome *o)
{
    spy_drops++;
    spy_last = *o;
}

static void spy_on_host_state(struct ml_lb *lb, uint32_t host)
{
    spy_states++;
}

static void test_attempt_end_carries_host_and_outcome_to_counters_and_policy(void **state)
{
    struct ml_snapshot *s = load(HEAD "[cluster c]\nmax_pending = 4\nconnect_timeout = 5s\n"
                                      "endpoint = 127.0.0.1:1\n");
    struct ml_loop *loop = ml_loop_new();
    struct ml_lb_ops spy;
    struct ml_balance_waiter w = {.on_ready = no_ready, .on_fail = no_fail};
    struct ml_attempt_outcome reset = {.end = ML_ATTEMPT_RESET, .grpc_status = -1, .h2_error = 2};
    struct ml_h2_conn *conn;
    uint32_t ids = 0;
    struct ml_balance *b;
    struct ml_cluster *cl;
    struct ml_host *h;
    char why[200];

    assert_int_equal(ml_balance_new(loop, s, &ids, &b), 0);
    cl = ml_balance_cluster(b, 0);
    spy = *cl->lb.ops;
    spy.on_take = spy_on_take;
    spy.on_drop = spy_on_drop;
    spy.on_host_state = spy_on_host_state;
    cl->lb.ops = &spy;
    h = ml_lb_host(&cl->lb, 0);
    /* a connection is being made (nothing runs the loop): the call waits, the attempt is on */
    assert_int_equal(ml_cluster_pick(cl, &w, NULL, &conn, why, sizeof(why)), -EINPROGRESS);
    assert_ptr_equal(w.host, h);
    assert_int_equal(h->counters.active, 1);
    assert_int_equal(spy_takes, 1);
    ml_balance_waiter_cancel(&w);
    ml_cluster_attempt_end(cl, &w, &reset);
    assert_null(w.host);
    assert_int_equal(h->counters.active, 0);
    assert_int_equal(h->counters.calls, 1);
    assert_int_equal(h->counters.failures, 1);
    assert_int_equal(spy_drops, 1);
    assert_int_equal(spy_last.end, ML_ATTEMPT_RESET);
    assert_int_equal(spy_last.h2_error, 2);
    assert_true(spy_last.latency_ms < 60000);
    ml_cluster_attempt_end(cl, &w, &reset); /* no attempt: a no-op */
    assert_int_equal(spy_drops, 1);
    /* usability changes reach the policy; other state changes do not */
    ml_host_state_set(h, ML_HOST_EJECTED, true);
    ml_host_state_set(h, ML_HOST_UNHEALTHY, true);
    ml_host_state_set(h, ML_HOST_EJECTED | ML_HOST_UNHEALTHY, false);
    assert_int_equal(spy_states, 2);
    ml_balance_free(b);
    ml_loop_free(loop);
    ml_snapshot_unref(s);
}

static void test_which_outcomes_count_as_failures(void **state)
{
    struct ml_attempt_outcome o = {.grpc_status = -1};

    o.end = ML_ATTEMPT_CONNECT_FAILED;
    assert_true(ml_attempt_failed(&o));
    o.end = ML_ATTEMPT_REFUSED;
    assert_false(ml_attempt_failed(&o));
    o.end = ML_ATTEMPT_CANCELLED;
    assert_false(ml_attempt_failed(&o));
    o.end = ML_ATTEMPT_RESPONDED;
    o.grpc_status = 0;
    assert_false(ml_attempt_failed(&o));
    o.grpc_status = 5; /* NOT_FOUND: the host works */
    assert_false(ml_attempt_failed(&o));
    o.grpc_status = 14;
    assert_true(ml_attempt_failed(&o));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_outlives_a_hot_apply_with_its_state_and_counters),
        cmocka_unit_test(test_an_ejected_host_sits_out_round_robin_until_it_is_back),
        cmocka_unit_test(test_a_call_avoids_hosts_it_tried_while_another_is_usable),
        cmocka_unit_test(test_attempt_end_carries_host_and_outcome_to_counters_and_policy),
        cmocka_unit_test(test_which_outcomes_count_as_failures),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
