/* balance/balance.c's ml_cluster_dns_answer and a dns cluster across a hot apply, without a
 * resolver: the loop never turns (its timers never fire), answers are handed in directly.
 *
 * Which host a pick chose is observed without connecting anywhere, as in balance_test.c: with
 * max_pending = 0 ml_cluster_pick stops at the pending cap after choosing (-EBUSY) and its reason
 * names the host's address; the hosts here differ in the last byte of 127.0.0.x. */
#include "balance/balance.h"

#include "balance/balance_int.h"
#include "config/errors.h"
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
#include <sys/socket.h>

#include <cmocka.h>

#include "balance_fixture.h"

#define CONFIG                                                                                     \
    "[listener l]\nbind = 127.0.0.1:15001\n"                                                       \
    "[route r]\nlistener = l\nto = c\n"                                                            \
    "[cluster c]\nmax_pending = 0\ndns = c.internal:50051\n"

static struct ml_loop *loop; /* never run: its defers and timers stay queued */

/* x of the host 127.0.0.x a pick chose; 0: no usable host. */
static unsigned pick(struct ml_cluster *cl)
{
    struct ml_balance_waiter w = {.on_ready = no_ready, .on_fail = no_fail};
    struct ml_h2_conn *conn = NULL;
    char why[200] = "";
    const char *at;
    unsigned x;
    int rv = ml_cluster_pick(cl, &w, NULL, &conn, why, sizeof(why));

    if (rv == -ENOENT) {
        return 0;
    }
    assert_int_equal(rv, -EBUSY);
    /* the reason names the limit, not the address (clients read it): w says which host */
    at = strstr(ml_cluster_endpoint_text(cl, w.endpoint), "127.0.0.");
    if (at == NULL || sscanf(at + strlen("127.0.0."), "%u", &x) != 1) {
        fail_msg("no host address in \"%s\"", why);
    }
    return x;
}

/* n hosts 127.0.0.x for the xs given, port 50051. */
static uint32_t answer(struct ml_cluster *cl, const unsigned *xs, uint32_t n)
{
    struct ml_sock_addr a[8];

    for (uint32_t i = 0; i < n; i++) {
        a[i] = (struct ml_sock_addr){.family = AF_INET, .port = 50051, .ip = {127, 0, 0, xs[i]}};
    }
    return ml_cluster_dns_answer(cl, a, n);
}

static void test_no_answer_yet_is_no_endpoint(void **state)
{
    struct ml_snapshot *s = load(CONFIG);
    uint32_t ids = 0;
    struct ml_balance *b;

    assert_int_equal(ml_balance_new(loop, s, &ids, &b), 0);
    assert_int_equal(pick(ml_balance_cluster(b, 0)), 0);
    ml_balance_free(b);
    ml_snapshot_unref(s);
}

static void test_each_address_becomes_a_host_picked_in_turn(void **state)
{
    static const unsigned xs[] = {1, 2, 3};
    struct ml_snapshot *s = load(CONFIG);
    struct ml_cluster *cl;
    uint32_t ids = 0;
    unsigned seen[4] = {0};
    struct ml_balance *b;

    assert_int_equal(ml_balance_new(loop, s, &ids, &b), 0);
    cl = ml_balance_cluster(b, 0);
    assert_int_equal(answer(cl, xs, 3), 3);
    for (unsigned i = 0; i < 30; i++) {
        seen[pick(cl)]++;
    }
    assert_int_equal(seen[0], 0);
    assert_int_equal(seen[1], 10);
    assert_int_equal(seen[2], 10);
    assert_int_equal(seen[3], 10);
    assert_int_equal(ids, 0); /* nothing was connected */
    ml_balance_free(b);
    ml_snapshot_unref(s);
}

static void test_a_changed_answer_drops_gone_hosts_and_adds_new_ones(void **state)
{
    static const unsigned first[] = {1, 2}, second[] = {2, 3}, third[] = {1};
    struct ml_snapshot *s = load(CONFIG);
    struct ml_cluster *cl;
    struct ml_host *two;
    uint32_t ids = 0;
    struct ml_balance *b;

    assert_int_equal(ml_balance_new(loop, s, &ids, &b), 0);
    cl = ml_balance_cluster(b, 0);
    assert_int_equal(answer(cl, first, 2), 2);
    two = cl->slots[1].pool->host;
    /* 1 is gone and idle: freed at once; 2 stays the same host (its pool, its counters) */
    assert_int_equal(answer(cl, second, 2), 2);
    assert_ptr_equal(cl->slots[1].pool->host, two);
    for (unsigned i = 0; i < 10; i++) {
        unsigned x = pick(cl);

        assert_true(x == 2 || x == 3);
    }
    assert_int_equal(answer(cl, third, 1), 1);
    for (unsigned i = 0; i < 5; i++) {
        assert_int_equal(pick(cl), 1);
    }
    ml_balance_free(b);
    ml_snapshot_unref(s);
}

static void test_same_answer_changes_nothing(void **state)
{
    static const unsigned xs[] = {1, 2};
    struct ml_snapshot *s = load(CONFIG);
    struct ml_cluster *cl;
    uint32_t ids = 0;
    struct ml_balance *b;

    assert_int_equal(ml_balance_new(loop, s, &ids, &b), 0);
    cl = ml_balance_cluster(b, 0);
    assert_int_equal(answer(cl, xs, 2), 2);
    assert_int_equal(pick(cl), 1);
    /* the policy is not started over: the turn after 1 is still 2's */
    assert_int_equal(answer(cl, xs, 2), 2);
    assert_int_equal(pick(cl), 2);
    ml_balance_free(b);
    ml_snapshot_unref(s);
}

/* Every policy copes with a free slot (a gone host's number) and is rebuilt over the new set. */
static void test_every_policy_picks_only_hosts_of_the_last_answer(void **state)
{
    static const char *const lbs[] = {"round_robin", "random", "least_request", "ring_hash",
                                      "maglev"};
    static const unsigned first[] = {1, 2, 3}, second[] = {2, 3}, third[] = {2, 3, 4};

    for (size_t i = 0; i < sizeof(lbs) / sizeof(lbs[0]); i++) {
        char text[512];
        struct ml_snapshot *s;
        struct ml_cluster *cl;
        uint32_t ids = 0;
        struct ml_balance *b;

        snprintf(text, sizeof(text), CONFIG "lb = %s\n", lbs[i]);
        s = load(text);
        assert_int_equal(ml_balance_new(loop, s, &ids, &b), 0);
        cl = ml_balance_cluster(b, 0);
        assert_int_equal(answer(cl, first, 3), 3);
        assert_int_equal(answer(cl, second, 2), 2); /* 1's slot is free now */
        for (unsigned k = 0; k < 50; k++) {
            unsigned x = pick(cl);

            assert_true(x == 2 || x == 3);
        }
        assert_int_equal(answer(cl, third, 3), 3); /* 4 takes the free slot */
        for (unsigned k = 0; k < 50; k++) {
            unsigned x = pick(cl);

            assert_true(x >= 2 && x <= 4);
        }
        ml_balance_free(b);
        ml_snapshot_unref(s);
    }
}

static void test_hot_apply_keeps_the_resolved_hosts(void **state)
{
    static const unsigned xs[] = {4, 5};
    struct ml_snapshot *s = load(CONFIG);
    struct ml_snapshot *s2 = load(CONFIG "max_requests = 7\n");
    struct ml_cluster *cl;
    struct ml_host *four;
    uint32_t ids = 0;
    struct ml_balance *b, *next;

    assert_int_equal(ml_balance_new(loop, s, &ids, &b), 0);
    cl = ml_balance_cluster(b, 0);
    assert_int_equal(answer(cl, xs, 2), 2);
    four = cl->slots[0].pool->host;
    assert_int_equal(ml_balance_prepare(b, s2, &next), 0);
    /* the running cluster's resolver drops a host before the commit: the prepared cluster's
     * own reference keeps it */
    assert_int_equal(answer(cl, xs + 1, 1), 1);
    ml_balance_commit(next, b, NULL, NULL);
    cl = ml_balance_cluster(next, 0);
    assert_ptr_equal(cl->slots[0].pool->host, four);
    /* 4 came over draining (the old answer said so), 5 is usable before next resolves */
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(pick(cl), 5);
    }
    /* next's own answer brings 4 back */
    assert_int_equal(answer(cl, xs, 2), 2);
    assert_int_equal(pick(cl) + pick(cl), 9);
    ml_balance_free(b);
    ml_balance_free(next);
    ml_snapshot_unref(s);
    ml_snapshot_unref(s2);
}

static void test_each_failing_allocation_in_an_answer_keeps_a_consistent_cluster(void **state)
{
    static const unsigned xs[] = {1, 2, 3};
    struct ml_snapshot *s = load(CONFIG);
    uint32_t ids = 0;
    struct ml_balance *b;

    for (long fail_at = 0; fail_at < 12; fail_at++) {
        struct ml_cluster *cl;
        uint32_t n;

        assert_int_equal(ml_balance_new(loop, s, &ids, &b), 0);
        cl = ml_balance_cluster(b, 0);
        ml_alloc_fail_after(fail_at);
        n = answer(cl, xs, 3);
        ml_alloc_fail_after(-1);
        assert_true(n <= 3);
        /* whatever was made is picked, or nothing is; never a crash */
        for (unsigned i = 0; i < 6; i++) {
            unsigned x = pick(cl);

            assert_true(x <= 3);
        }
        assert_int_equal(answer(cl, xs, 3), 3);
        ml_balance_free(b);
    }
    ml_snapshot_unref(s);
}

static int teardown(void **state)
{
    ml_alloc_fail_after(-1);
    return 0;
}

#define T(f) cmocka_unit_test_teardown(f, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_no_answer_yet_is_no_endpoint),
        T(test_each_address_becomes_a_host_picked_in_turn),
        T(test_a_changed_answer_drops_gone_hosts_and_adds_new_ones),
        T(test_same_answer_changes_nothing),
        T(test_every_policy_picks_only_hosts_of_the_last_answer),
        T(test_hot_apply_keeps_the_resolved_hosts),
        T(test_each_failing_allocation_in_an_answer_keeps_a_consistent_cluster),
    };

    int failed;

    loop = ml_loop_new();
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    ml_loop_free(loop);
    return failed;
}
