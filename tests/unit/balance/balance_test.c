/* balance/balance.c, the parts that need no socket: the smooth weighted round robin over a
 * cluster's endpoints, the active-call cap, and making and freeing the clusters.
 *
 * Which endpoint a pick chose is observed without connecting anywhere: with max_pending = 0 and
 * no connection in the pool, ml_cluster_pick stops at the pending cap after choosing (-EBUSY,
 * nothing opened) and its reason names the endpoint's address; every endpoint here has its own
 * port. */
#include "balance/balance.h"

#include "config/errors.h"
#include "config/snapshot-t.h"
#include "config/snapshot.h"
#include "core/alloc.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static int teardown(void **state)
{
    ml_alloc_fail_after(-1);
    return 0;
}

static struct ml_snapshot *load(const char *text)
{
    struct ml_config_errors errs;
    struct ml_snapshot *s = NULL;
    int rv;

    ml_config_errors_init(&errs);
    rv = ml_config_load_text(text, strlen(text), NULL, &errs, &s);
    for (size_t i = 0; i < errs.n; i++) {
        print_error("  %d: %s\n", errs.v[i].line, errs.v[i].text);
    }
    ml_config_errors_deinit(&errs);
    assert_int_equal(rv, 0);
    return s;
}

static void no_ready(struct ml_balance_waiter *w, struct ml_h2_conn *conn)
{
    fail_msg("on_ready ran");
}

static void no_fail(struct ml_balance_waiter *w, int reason, const char *why)
{
    fail_msg("on_fail ran: %s", why);
}

/* The port of the endpoint ml_cluster_pick chose (see the top of the file). */
static unsigned pick_port(struct ml_cluster *cl)
{
    struct ml_balance_waiter w = {.on_ready = no_ready, .on_fail = no_fail};
    struct ml_h2_conn *conn = (struct ml_h2_conn *)&w;
    char why[200] = "";
    const char *colon;
    unsigned port;

    assert_int_equal(ml_cluster_pick(cl, &w, &conn, why, sizeof(why)), -EBUSY);
    assert_null(conn);
    assert_null(w.pool); /* not waiting */
    colon = strstr(why, ":50");
    if (colon == NULL || sscanf(colon + 1, "%u", &port) != 1) {
        fail_msg("no endpoint port in \"%s\"", why);
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
    assert_int_equal(ml_cluster_pick(ml_balance_cluster(b, 0), &w, &conn, why, sizeof(why)),
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
    assert_int_equal(ml_cluster_pick(ml_balance_cluster(b, 0), &w, &conn, why, sizeof(why)),
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
        T(test_pending_cap_refuses_without_queueing),
        T(test_each_failing_allocation_in_balance_new_is_enomem),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
