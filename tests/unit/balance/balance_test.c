/* balance/balance.c, the parts that need no socket: the smooth weighted round robin over a
 * cluster's endpoints, the active-call cap, and making and freeing the clusters.
 *
 * Which endpoint a pick chose is observed without connecting anywhere: with max_pending = 0 and
 * no connection in the pool, ml_cluster_pick stops at the pending cap after choosing (-EBUSY,
 * nothing opened) and w.endpoint says which endpoint it chose; every endpoint here has its own
 * port. */
#include "balance/balance.h"

#include "balance/balance_int.h"
#include "config/errors.h"
#include "config/snapshot-t.h"
#include "config/snapshot.h"
#include "core/alloc.h"
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

#include "config/unimplemented.h"

/* Link seam: clusters found by dns (no endpoints until resolved) are refused by this version's
 * config check (config/unimplemented.c); the balancer must still cope with a cluster without
 * endpoints, so this empty table keeps unimplemented.o out of the link and lets them load. */
bool ml_config_unimplemented(int key, const char **off_text)
{
    (void)key;
    (void)off_text;
    return false;
}

bool ml_config_unimplemented_is_off(int key, const void *obj)
{
    (void)key;
    (void)obj;
    return true;
}

bool ml_config_kind_unimplemented(enum ml_config_kind kind)
{
    (void)kind;
    return false;
}

static int teardown(void **state)
{
    ml_alloc_fail_after(-1);
    return 0;
}

/* The port of the endpoint ml_cluster_pick chose (see the top of the file). */
static unsigned pick_port(struct ml_cluster *cl)
{
    struct ml_balance_waiter w = {.on_ready = no_ready, .on_fail = no_fail};
    struct ml_h2_conn *conn = (struct ml_h2_conn *)&w;
    char why[200] = "";
    const char *colon;
    unsigned port;

    assert_int_equal(ml_cluster_pick(cl, &w, NULL, &conn, why, sizeof(why)), -EBUSY);
    assert_null(conn);
    assert_null(w.pool); /* not waiting */
    /* the reason names the limit, not the address (clients read it): w says which one */
    colon = strstr(ml_cluster_endpoint_text(cl, w.endpoint), ":50");
    if (colon == NULL || sscanf(colon + 1, "%u", &port) != 1) {
        fail_msg("no endpoint port after \"%s\"", why);
    }
    return port;
}

#define HEAD                                                                                       \
    "[listener l]\nbind = 127.0.0.1:15001\n"                                                       \
    "[route r]\nlistener = l\nto = c\n"

static void test_equal_weights_are_plain_round_robin_in_config_order(void **state)
{
    struct ml_snapshot *s = load(HEAD "[cluster c]\nmax_pending = 0\n"
                                      "endpoint = 127.0.0.1:50001\n"
                                      "endpoint = 127.0.0.1:50002\n"
                                      "endpoint = 127.0.0.1:50003\n");
    uint32_t ids = 0;
    struct ml_balance *b;

    assert_int_equal(ml_balance_new(NULL, s, &ids, &b), 0);
    for (unsigned round = 0; round < 4; round++) {
        assert_int_equal(pick_port(ml_balance_cluster(b, 0)), 50001);
        assert_int_equal(pick_port(ml_balance_cluster(b, 0)), 50002);
        assert_int_equal(pick_port(ml_balance_cluster(b, 0)), 50003);
    }
    assert_int_equal(ids, 0); /* no connection was opened */
    ml_balance_free(b);
    ml_snapshot_unref(s);
}

static void test_single_endpoint_is_always_picked(void **state)
{
    struct ml_snapshot *s = load(HEAD "[cluster c]\nmax_pending = 0\n"
                                      "endpoint = 127.0.0.1:50009 weight=7\n");
    uint32_t ids = 0;
    struct ml_balance *b;

    assert_int_equal(ml_balance_new(NULL, s, &ids, &b), 0);
    for (unsigned i = 0; i < 10; i++) {
        assert_int_equal(pick_port(ml_balance_cluster(b, 0)), 50009);
    }
    ml_balance_free(b);
    ml_snapshot_unref(s);
}

/* nginx's smooth weighted round robin: weights 5, 1, 1 give a a b a c a a, the heavy endpoint
 * spread out rather than in one run. */
static void test_smooth_weighted_order_spreads_the_heavy_endpoint(void **state)
{
    static const unsigned want[] = {50001, 50001, 50002, 50001, 50003, 50001, 50001};
    struct ml_snapshot *s = load(HEAD "[cluster c]\nmax_pending = 0\n"
                                      "endpoint = 127.0.0.1:50001 weight=5\n"
                                      "endpoint = 127.0.0.1:50002\n"
                                      "endpoint = 127.0.0.1:50003 weight=1\n");
    uint32_t ids = 0;
    struct ml_balance *b;

    assert_int_equal(ml_balance_new(NULL, s, &ids, &b), 0);
    for (unsigned cycle = 0; cycle < 3; cycle++) {
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
            assert_int_equal(pick_port(ml_balance_cluster(b, 0)), want[i]);
        }
    }
    ml_balance_free(b);
    ml_snapshot_unref(s);
}

static void test_each_cycle_of_total_weight_picks_each_endpoint_weight_times(void **state)
{
    static const unsigned weights[] = {3, 1, 128, 2, 17};
    struct ml_snapshot *s = load(HEAD "[cluster c]\nmax_pending = 0\n"
                                      "endpoint = 127.0.0.1:50000 weight=3\n"
                                      "endpoint = 127.0.0.1:50001 weight=1\n"
                                      "endpoint = 127.0.0.1:50002 weight=128\n"
                                      "endpoint = 127.0.0.1:50003 weight=2\n"
                                      "endpoint = 127.0.0.1:50004 weight=17\n");
    const unsigned total = 3 + 1 + 128 + 2 + 17;
    uint32_t ids = 0;
    struct ml_balance *b;

    assert_int_equal(ml_balance_new(NULL, s, &ids, &b), 0);
    for (unsigned cycle = 0; cycle < 5; cycle++) {
        unsigned hits[5] = {0}, run = 0, longest_light_run = 0;

        for (unsigned i = 0; i < total; i++) {
            unsigned port = pick_port(ml_balance_cluster(b, 0));

            assert_true(port >= 50000 && port <= 50004);
            hits[port - 50000]++;
            /* How long the light endpoints wait: the heavy one never runs much longer than
             * its share between two of theirs. */
            run = port == 50002 ? run + 1 : 0;
            if (run > longest_light_run) {
                longest_light_run = run;
            }
        }
        for (unsigned e = 0; e < 5; e++) {
            assert_int_equal(hits[e], weights[e]);
        }
        assert_true(longest_light_run <= 128 / (total - 128) + 2);
    }
    ml_balance_free(b);
    ml_snapshot_unref(s);
}

static void test_clusters_keep_their_own_round_robin(void **state)
{
    struct ml_snapshot *s = load(HEAD "[cluster c]\nmax_pending = 0\n"
                                      "endpoint = 127.0.0.1:50001\nendpoint = 127.0.0.1:50002\n"
                                      "[cluster d]\nmax_pending = 0\n"
                                      "endpoint = 127.0.0.1:50011\nendpoint = 127.0.0.1:50012\n");
    uint32_t ids = 0;
    struct ml_balance *b;

    assert_int_equal(ml_balance_new(NULL, s, &ids, &b), 0);
    assert_int_equal(pick_port(ml_balance_cluster(b, 0)), 50001);
    assert_int_equal(pick_port(ml_balance_cluster(b, 1)), 50011);
    assert_int_equal(pick_port(ml_balance_cluster(b, 1)), 50012);
    assert_int_equal(pick_port(ml_balance_cluster(b, 0)), 50002);
    assert_string_equal(ml_cluster_name(ml_balance_cluster(b, 1)), "d");
    ml_balance_free(b);
    ml_snapshot_unref(s);
}

static void test_cluster_without_endpoints_is_enoent(void **state)
{
    struct ml_snapshot *s = load(HEAD "[cluster c]\ndns = greeter.internal:50051\n");
    struct ml_balance_waiter w = {.on_ready = no_ready, .on_fail = no_fail};
    struct ml_h2_conn *conn;
    uint32_t ids = 0;
    struct ml_balance *b;
    char why[200] = "";

    assert_int_equal(ml_balance_new(NULL, s, &ids, &b), 0);
    assert_int_equal(ml_cluster_pick(ml_balance_cluster(b, 0), &w, NULL, &conn, why, sizeof(why)),
                     -ENOENT);
    assert_null(conn);
    assert_non_null(strstr(why, "no endpoint"));
    ml_balance_free(b);
    ml_snapshot_unref(s);
}

static void test_max_requests_caps_active_calls_and_ending_one_frees_a_place(void **state)
{
    struct ml_snapshot *s = load(HEAD "[cluster c]\nendpoint = 127.0.0.1:50001\n"
                                      "max_requests = 3\n");
    struct ml_cluster *cl;
    uint32_t ids = 0;
    struct ml_balance *b;
    char why[200] = "";

    assert_int_equal(ml_balance_new(NULL, s, &ids, &b), 0);
    cl = ml_balance_cluster(b, 0);
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(ml_cluster_call_begin(cl, why, sizeof(why)), 0);
    }
    assert_int_equal(ml_cluster_call_begin(cl, why, sizeof(why)), -EBUSY);
    assert_non_null(strstr(why, "max_requests (3)"));
    assert_int_equal(ml_cluster_call_begin(cl, why, sizeof(why)), -EBUSY); /* not counted */
    ml_cluster_call_end(cl);
    assert_int_equal(ml_cluster_call_begin(cl, why, sizeof(why)), 0);
    assert_int_equal(ml_cluster_call_begin(cl, why, sizeof(why)), -EBUSY);
    for (unsigned i = 0; i < 3; i++) {
        ml_cluster_call_end(cl);
    }
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(ml_cluster_call_begin(cl, why, sizeof(why)), 0);
    }
    ml_balance_free(b);
    ml_snapshot_unref(s);
}

static void test_max_retries_caps_retries_in_flight(void **state)
{
    struct ml_snapshot *s = load(HEAD "[cluster c]\nendpoint = 127.0.0.1:50001\n"
                                      "max_retries = 2\n");
    struct ml_cluster *cl;
    uint32_t ids = 0;
    struct ml_balance *b;
    char why[200] = "";
    (void)state;

    assert_int_equal(ml_balance_new(NULL, s, &ids, &b), 0);
    cl = ml_balance_cluster(b, 0);
    assert_int_equal(ml_cluster_retry_begin(cl, why, sizeof(why)), 0);
    assert_int_equal(ml_cluster_retry_begin(cl, why, sizeof(why)), 0);
    assert_int_equal(ml_cluster_retry_begin(cl, why, sizeof(why)), -EBUSY);
    assert_non_null(strstr(why, "max_retries (2)"));
    ml_cluster_retry_end(cl); /* a retried attempt is over: room for one */
    assert_int_equal(ml_cluster_retry_begin(cl, why, sizeof(why)), 0);
    assert_int_equal(ml_cluster_retry_begin(cl, why, sizeof(why)), -EBUSY);
    ml_cluster_retry_end(cl);
    ml_cluster_retry_end(cl);
    ml_balance_free(b);
    ml_snapshot_unref(s);
}

static void test_pending_cap_refuses_without_queueing(void **state)
{
    struct ml_snapshot *s = load(HEAD "[cluster c]\nmax_pending = 0\n"
                                      "endpoint = 127.0.0.1:50001\n");
    uint32_t ids = 0;
    struct ml_balance *b;
    char why[200] = "";
    struct ml_balance_waiter w = {.on_ready = no_ready, .on_fail = no_fail};
    struct ml_h2_conn *conn;

    assert_int_equal(ml_balance_new(NULL, s, &ids, &b), 0);
    assert_int_equal(ml_cluster_pick(ml_balance_cluster(b, 0), &w, NULL, &conn, why, sizeof(why)),
                     -EBUSY);
    assert_non_null(strstr(why, "max_pending (0)"));
    assert_null(w.pool);
    ml_balance_waiter_cancel(&w); /* not waiting: a no-op */
    ml_balance_free(b);
    ml_snapshot_unref(s);
}

/* Each allocation failing in turn: -ENOMEM and nothing left behind, then success. */
static void test_each_failing_allocation_in_balance_new_is_enomem(void **state)
{
    struct ml_snapshot *s = load(HEAD "[cluster c]\nmax_pending = 0\n"
                                      "endpoint = 127.0.0.1:50001\nendpoint = 127.0.0.1:50002\n"
                                      "[cluster d]\nmax_pending = 0\n"
                                      "endpoint = 127.0.0.1:50011\n"
                                      "[cluster e]\ndns = e.internal:1\n");
    uint32_t ids = 0;
    struct ml_balance *b = NULL;
    long fail_at;
    int rv;

    for (fail_at = 0;; fail_at++) {
        ml_alloc_fail_after(fail_at);
        rv = ml_balance_new(NULL, s, &ids, &b);
        ml_alloc_fail_after(-1);
        if (rv == 0) {
            break;
        }
        assert_int_equal(rv, -ENOMEM);
        assert_null(b);
    }
    assert_true(fail_at >= 3); /* the balance, the clusters, a pool array each */
    assert_int_equal(pick_port(ml_balance_cluster(b, 0)), 50001);
    assert_int_equal(pick_port(ml_balance_cluster(b, 1)), 50011);
    ml_balance_free(b);
    ml_balance_free(NULL);
    ml_snapshot_unref(s);
}

/* ---- hot apply ---------------------------------------------------------------------------- */

#define S1                                                                                         \
    HEAD "[cluster c]\nmax_pending = 0\n"                                                          \
         "endpoint = 127.0.0.1:50001\nendpoint = 127.0.0.1:50002\n"                                \
         "[cluster d]\nmax_pending = 0\nendpoint = 127.0.0.1:50011\n"

/* c keeps 50002, drops 50001, gains 50003; d is gone; e has d's address (another name). */
#define S2                                                                                         \
    HEAD "[cluster e]\nmax_pending = 0\nendpoint = 127.0.0.1:50011\n"                              \
         "[cluster c]\nmax_pending = 0\nmax_requests = 7\n"                                        \
         "endpoint = 127.0.0.1:50003\nendpoint = 127.0.0.1:50002\n"

static int idle_runs;

static void on_idle(void *user)
{
    idle_runs++;
    ml_balance_free(user);
}

static void test_prepare_shares_pools_by_cluster_name_and_address(void **state)
{
    struct ml_snapshot *s1 = load(S1), *s2 = load(S2);
    uint32_t ids = 0;
    struct ml_balance *b1, *b2;
    struct ml_cluster *c1, *c2;

    assert_int_equal(ml_balance_new(NULL, s1, &ids, &b1), 0);
    assert_int_equal(ml_balance_prepare(b1, s2, &b2), 0);
    c1 = ml_balance_cluster(b1, 0);
    c2 = ml_balance_cluster(b2, 1);
    assert_string_equal(ml_cluster_name(c2), "c");
    assert_ptr_equal(c2->slots[1].pool, c1->slots[1].pool); /* 50002 */
    assert_false(c2->slots[1].linked);                      /* not before the commit */
    assert_ptr_equal(ml_pool_cluster(c1->slots[1].pool), c1);
    assert_ptr_not_equal(c2->slots[0].pool, c1->slots[0].pool);
    assert_ptr_not_equal(ml_balance_cluster(b2, 0)->slots[0].pool,
                         ml_balance_cluster(b1, 1)->slots[0].pool); /* e is not d */
    assert_string_equal(ml_cluster_endpoint_text(c2, 1), "127.0.0.1:50002");
    /* an abort: the prepared balance goes, the running one is as it was */
    ml_balance_free(b2);
    assert_int_equal(pick_port(c1), 50001);
    assert_int_equal(pick_port(c1), 50002);
    ml_balance_free(b1);
    ml_snapshot_unref(s2);
    ml_snapshot_unref(s1);
}

static void test_commit_hands_shared_pools_over_and_frees_the_old_once_idle(void **state)
{
    struct ml_snapshot *s1 = load(S1), *s2 = load(S2);
    struct ml_loop *loop = ml_loop_new();
    uint32_t ids = 0;
    struct ml_balance *b1, *b2;
    struct ml_cluster *c1, *c2;
    char why[200];

    assert_non_null(loop);
    assert_int_equal(ml_balance_new(loop, s1, &ids, &b1), 0);
    assert_int_equal(ml_balance_prepare(b1, s2, &b2), 0);
    c1 = ml_balance_cluster(b1, 0);
    c2 = ml_balance_cluster(b2, 1);
    assert_int_equal(ml_cluster_call_begin(c1, why, sizeof(why)), 0); /* a call in flight */
    idle_runs = 0;
    ml_balance_commit(b2, b1, on_idle, b1);
    assert_true(c2->slots[1].linked);
    assert_ptr_equal(ml_pool_cluster(c2->slots[1].pool), c2); /* the new owner */
    assert_true(c1->slots[0].pool->retired);                  /* 50001 is gone */
    assert_false(c2->slots[1].pool->retired);
    ml_loop_run_deferred(loop);
    assert_int_equal(idle_runs, 0); /* the call holds b1 */
    /* the old cluster still picks for its calls (a replay), over its own endpoints that the
     * new config kept: 50001 is draining (balance/host.h) */
    assert_int_equal(pick_port(c1), 50002);
    assert_int_equal(pick_port(c1), 50002);
    ml_cluster_call_end(c1);
    assert_int_equal(idle_runs, 0); /* never from inside call_end */
    ml_loop_run_deferred(loop);
    assert_int_equal(idle_runs, 1); /* b1 freed, the shared pool stays with b2 */
    assert_int_equal(ml_balance_cluster(b2, 1)->n_slots, 2);
    assert_int_equal(pick_port(c2), 50003);
    assert_int_equal(pick_port(c2), 50002);
    assert_ptr_equal(ml_pool_cluster(c2->slots[1].pool), c2);
    ml_balance_free(b2);
    ml_loop_free(loop);
    ml_snapshot_unref(s2);
    ml_snapshot_unref(s1);
}

static void test_commit_of_an_idle_balance_frees_it_at_the_end_of_the_event(void **state)
{
    struct ml_snapshot *s1 = load(S1), *s2 = load(S2), *s3 = load(S1);
    struct ml_loop *loop = ml_loop_new();
    uint32_t ids = 0;
    struct ml_balance *b1, *b2, *b3;

    assert_int_equal(ml_balance_new(loop, s1, &ids, &b1), 0);
    assert_int_equal(ml_balance_prepare(b1, s2, &b2), 0);
    idle_runs = 0;
    ml_balance_commit(b2, b1, on_idle, b1);
    ml_loop_run_deferred(loop);
    assert_int_equal(idle_runs, 1);
    /* and back: c's 50002 has gone through three balances */
    assert_int_equal(ml_balance_prepare(b2, s3, &b3), 0);
    ml_balance_commit(b3, b2, on_idle, b2);
    ml_loop_run_deferred(loop);
    assert_int_equal(idle_runs, 2);
    assert_int_equal(pick_port(ml_balance_cluster(b3, 0)), 50001);
    assert_int_equal(pick_port(ml_balance_cluster(b3, 0)), 50002);
    assert_int_equal(pick_port(ml_balance_cluster(b3, 1)), 50011);
    ml_balance_free(b3);
    ml_loop_free(loop);
    ml_snapshot_unref(s3);
    ml_snapshot_unref(s2);
    ml_snapshot_unref(s1);
}

static void test_each_failing_allocation_in_prepare_is_enomem(void **state)
{
    struct ml_snapshot *s1 = load(S1), *s2 = load(S2);
    uint32_t ids = 0;
    struct ml_balance *b1, *b2 = NULL;
    long fail_at;
    int rv;

    assert_int_equal(ml_balance_new(NULL, s1, &ids, &b1), 0);
    for (fail_at = 0;; fail_at++) {
        ml_alloc_fail_after(fail_at);
        rv = ml_balance_prepare(b1, s2, &b2);
        ml_alloc_fail_after(-1);
        if (rv == 0) {
            break;
        }
        assert_int_equal(rv, -ENOMEM);
        assert_null(b2);
        assert_ptr_equal(ml_pool_cluster(ml_balance_cluster(b1, 0)->slots[1].pool),
                         ml_balance_cluster(b1, 0));
    }
    assert_true(fail_at >= 5);
    ml_balance_free(b2);
    ml_balance_free(b1);
    ml_snapshot_unref(s2);
    ml_snapshot_unref(s1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_teardown(f, teardown)
        T(test_equal_weights_are_plain_round_robin_in_config_order),
        T(test_single_endpoint_is_always_picked),
        T(test_smooth_weighted_order_spreads_the_heavy_endpoint),
        T(test_each_cycle_of_total_weight_picks_each_endpoint_weight_times),
        T(test_clusters_keep_their_own_round_robin),
        T(test_cluster_without_endpoints_is_enoent),
        T(test_max_requests_caps_active_calls_and_ending_one_frees_a_place),
        T(test_max_retries_caps_retries_in_flight),
        T(test_pending_cap_refuses_without_queueing),
        T(test_each_failing_allocation_in_balance_new_is_enomem),
        T(test_prepare_shares_pools_by_cluster_name_and_address),
        T(test_commit_hands_shared_pools_over_and_frees_the_old_once_idle),
        T(test_commit_of_an_idle_balance_frees_it_at_the_end_of_the_event),
        T(test_each_failing_allocation_in_prepare_is_enomem),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
