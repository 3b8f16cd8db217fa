/* balance/share.c: how many stream slots (and queue places) one downstream connection may take
 * of a cluster, and that a share exists exactly while it holds or waits. No socket: the shares
 * are driven directly (ml_share_join / hold / release), as ml_cluster_pick and the pool's
 * dispatch do; the end-to-end behaviour is tests/integration/test_fair_share.py. */
#include "balance/balance.h"

#include "balance/balance_int.h"
#include "config/errors.h"
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

#define HEAD                                                                                       \
    "[listener l]\nbind = 127.0.0.1:15001\n"                                                       \
    "[route r]\nlistener = l\nto = c\n"

struct fixture {
    struct ml_snapshot *snap;
    struct ml_balance *b;
    struct ml_cluster *cl;
    uint32_t ids;
};

static void setup_with(struct fixture *f, const char *cluster_lines)
{
    struct ml_config_errors errs;
    char text[512];

    snprintf(text, sizeof(text), HEAD "[cluster c]\nendpoint = 127.0.0.1:50001\n%s\n",
             cluster_lines);
    ml_config_errors_init(&errs);
    assert_int_equal(ml_config_load_text(text, strlen(text), NULL, &errs, &f->snap), 0);
    ml_config_errors_deinit(&errs);
    f->ids = 0;
    assert_int_equal(ml_balance_new(NULL, f->snap, &f->ids, &f->b), 0);
    f->cl = ml_balance_cluster(f->b, 0);
}

static void teardown_fixture(struct fixture *f)
{
    assert_int_equal(f->cl->n_shares, 0); /* nothing left behind */
    ml_balance_free(f->b);
    ml_snapshot_unref(f->snap);
}

static int teardown(void **state)
{
    ml_alloc_fail_after(-1);
    return 0;
}

/* w (of tenant) takes a slot, as ml_cluster_pick does when one is free. */
static void take(struct fixture *f, struct ml_balance_waiter *w, const void *tenant)
{
    w->tenant = tenant;
    assert_int_equal(ml_share_join(f->cl, w), 0);
    assert_true(ml_share_may_hold(w));
    ml_share_hold(w);
}

static void test_a_connection_alone_holds_max_share_of_the_slots(void **state)
{
    struct fixture f;
    struct ml_balance_waiter w[5] = {0};
    int a;

    /* capacity: 1 connection x 8 streams; max_share 50 */
    setup_with(&f, "max_streams_per_connection = 8\nmax_share = 50");
    assert_int_equal(ml_share_hold_max(f.cl), 4);
    for (int i = 0; i < 4; i++) {
        take(&f, &w[i], &a);
    }
    assert_int_equal(f.cl->n_shares, 1); /* one connection, one share */
    w[4].tenant = &a;
    assert_int_equal(ml_share_join(f.cl, &w[4]), 0);
    assert_false(ml_share_may_hold(&w[4])); /* the fifth waits */
    ml_balance_waiter_release(&w[0]);
    assert_true(ml_share_may_hold(&w[4])); /* one ended: it may go */
    ml_share_settle(&w[4]);
    ml_balance_waiter_release(&w[0]); /* a second release is a no-op */
    for (int i = 1; i < 4; i++) {
        ml_balance_waiter_release(&w[i]);
    }
    teardown_fixture(&f);
}

static void test_the_slots_split_evenly_between_the_connections_that_want_them(void **state)
{
    struct fixture f;
    struct ml_balance_waiter w[3] = {0};
    int t[3];

    setup_with(&f, "max_streams_per_connection = 12\nmax_share = 100");
    assert_int_equal(ml_share_hold_max(f.cl), 12); /* alone with max_share 100: everything */
    for (int i = 0; i < 3; i++) {
        take(&f, &w[i], &t[i]);
        assert_int_equal(ml_share_hold_max(f.cl), 12 / (i + 1));
    }
    ml_balance_waiter_release(&w[1]); /* its share goes: the others' grow */
    assert_int_equal(f.cl->n_shares, 2);
    assert_int_equal(ml_share_hold_max(f.cl), 6);
    ml_balance_waiter_release(&w[0]);
    ml_balance_waiter_release(&w[2]);
    teardown_fixture(&f);
}

static void test_capacity_is_bounded_by_max_requests_and_the_peer_settings(void **state)
{
    struct fixture f;

    setup_with(&f, "max_connections = 4\nmax_streams_per_connection = 100\nmax_requests = 40\n"
                   "max_share = 50");
    assert_int_equal(ml_share_hold_max(f.cl), 20); /* min(400, 40) / 2 */
    f.cl->slots[0].pool->conn_streams = 5;         /* the peer's SETTINGS allow 5 per connection */
    assert_int_equal(ml_share_hold_max(f.cl), 10); /* 4 x 5 = 20, / 2 */
    teardown_fixture(&f);
}

static void test_a_tiny_cluster_still_gives_each_connection_one_slot(void **state)
{
    struct fixture f;
    struct ml_balance_waiter w[3] = {0};
    int t[3];

    setup_with(&f, "max_streams_per_connection = 1\nmax_pending = 1");
    for (int i = 0; i < 3; i++) {
        take(&f, &w[i], &t[i]);
    }
    assert_int_equal(ml_share_hold_max(f.cl), 1);
    assert_int_equal(ml_share_wait_max(f.cl), 1);
    for (int i = 0; i < 3; i++) {
        ml_balance_waiter_release(&w[i]);
    }
    teardown_fixture(&f);
}

static void test_the_queue_is_shared_like_the_slots(void **state)
{
    struct fixture f;
    struct ml_balance_waiter w[3] = {0};
    int t[3];

    setup_with(&f, "max_pending = 10");
    assert_int_equal(ml_share_wait_max(f.cl), 10); /* alone with max_share 100 (the default) */
    for (int i = 0; i < 3; i++) {
        take(&f, &w[i], &t[i]);
    }
    assert_int_equal(ml_share_wait_max(f.cl), 3); /* 10 / 3 */
    for (int i = 0; i < 3; i++) {
        ml_balance_waiter_release(&w[i]);
    }
    teardown_fixture(&f);
    memset(w, 0, sizeof(w));
    setup_with(&f, "max_pending = 10\nmax_share = 50");
    assert_int_equal(ml_share_wait_max(f.cl), 5); /* 50 % of 10 */
    for (int i = 0; i < 3; i++) {
        take(&f, &w[i], &t[i]);
    }
    assert_int_equal(ml_share_wait_max(f.cl), 3); /* 10 / 3 */
    for (int i = 0; i < 3; i++) {
        ml_balance_waiter_release(&w[i]);
    }
    teardown_fixture(&f);
}

static void test_a_pick_that_fails_leaves_no_share_behind(void **state)
{
    struct fixture f;
    struct ml_balance_waiter w = {0};
    struct ml_h2_conn *conn;
    char why[256] = "";
    int a;

    setup_with(&f, "max_pending = 0");
    w.tenant = &a;
    assert_int_equal(ml_cluster_pick(f.cl, &w, NULL, &conn, why, sizeof(why)), -EBUSY);
    assert_null(w.share);
    assert_false(w.holding);
    teardown_fixture(&f);
}

static void test_no_memory_for_a_share_is_enomem_and_nothing_changes(void **state)
{
    struct fixture f;
    struct ml_balance_waiter w = {0}, v = {0};
    struct ml_h2_conn *conn;
    char why[256] = "";
    int a;

    setup_with(&f, "");
    w.tenant = &a;
    ml_alloc_fail_after(0);
    assert_int_equal(ml_share_join(f.cl, &w), -ENOMEM);
    assert_null(w.share);
    v.tenant = &a;
    assert_int_equal(ml_cluster_pick(f.cl, &v, NULL, &conn, why, sizeof(why)), -ENOMEM);
    ml_alloc_fail_after(-1);
    assert_non_null(strstr(why, "out of memory"));
    assert_null(v.share);
    assert_int_equal(f.cl->n_shares, 0);
    /* without a tenant no share is made at all */
    w.tenant = NULL;
    assert_int_equal(ml_share_join(f.cl, &w), 0);
    assert_null(w.share);
    assert_true(ml_share_may_hold(&w));
    teardown_fixture(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_connection_alone_holds_max_share_of_the_slots),
        cmocka_unit_test(test_the_slots_split_evenly_between_the_connections_that_want_them),
        cmocka_unit_test(test_capacity_is_bounded_by_max_requests_and_the_peer_settings),
        cmocka_unit_test(test_a_tiny_cluster_still_gives_each_connection_one_slot),
        cmocka_unit_test(test_the_queue_is_shared_like_the_slots),
        cmocka_unit_test(test_a_pick_that_fails_leaves_no_share_behind),
        cmocka_unit_test_teardown(test_no_memory_for_a_share_is_enomem_and_nothing_changes,
                                  teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
