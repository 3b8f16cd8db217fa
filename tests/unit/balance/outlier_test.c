/* balance/outlier.c: outlier_errors failures in a row eject a host, a success resets the count,
 * outcomes that say nothing of the host neither count nor reset, the ejection time grows with
 * the ejections, outlier_max_percent keeps hosts in, and the ejection ends by itself (its timer,
 * run on a real loop). Endpoints here listen nowhere; outcomes are fed as the call code would
 * at each attempt's end. */
#include "balance/balance.h"

#include "balance/balance_int.h"
#include "balance/host.h"
#include "balance/lb.h"
#include "config/errors.h"
#include "config/snapshot.h"
#include "core/loop.h"
#include "core/timer.h"
#include "grpc/status-t.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "balance_fixture.h"

/* The most a test waits for a 1 s ejection to end: generous, a loaded machine is slow. */
#define WAIT_MAX_MS 20000
#define POLL_MS 50

#define HEAD                                                                                       \
    "[listener l]\nbind = 127.0.0.1:15001\n"                                                       \
    "[route r]\nlistener = l\nto = c\n"                                                            \
    "[cluster c]\nmax_pending = 0\noutlier_errors = 3\noutlier_ejection = 1s\n"                    \
    "endpoint = 127.0.0.1:50001\nendpoint = 127.0.0.1:50002\n"                                     \
    "endpoint = 127.0.0.1:50003\nendpoint = 127.0.0.1:50004\n"

static const struct ml_attempt_outcome unavailable = {
    .end = ML_ATTEMPT_RESPONDED, .grpc_status = ML_GRPC_UNAVAILABLE, .http_status = 200};
static const struct ml_attempt_outcome ok = {
    .end = ML_ATTEMPT_RESPONDED, .grpc_status = 0, .http_status = 200};

struct fixture {
    struct ml_snapshot *snap;
    struct ml_loop *loop;
    struct ml_balance *b;
    struct ml_cluster *cl;
};

static void setup(struct fixture *f, const char *text)
{
    uint32_t ids = 0;

    f->snap = load(text);
    f->loop = ml_loop_new();
    assert_non_null(f->loop);
    assert_int_equal(ml_balance_new(f->loop, f->snap, &ids, &f->b), 0);
    f->cl = ml_balance_cluster(f->b, 0);
}

static void teardown_fixture(struct fixture *f)
{
    ml_balance_free(f->b);
    ml_loop_free(f->loop);
    ml_snapshot_unref(f->snap);
}

static struct ml_host *host(struct fixture *f, uint32_t i)
{
    return ml_lb_host(&f->cl->lb, i);
}

static void end(struct ml_host *h, const struct ml_attempt_outcome *o)
{
    ml_outlier_attempt_end(h, o, ml_attempt_failed(o));
}

static void fail_n(struct ml_host *h, int n)
{
    for (int i = 0; i < n; i++) {
        end(h, &unavailable);
    }
}

static void test_failures_in_a_row_eject_and_a_success_resets_the_count(void **state)
{
    struct fixture f;
    struct ml_host *h;
    uint64_t now;

    setup(&f, HEAD);
    h = host(&f, 0);
    fail_n(h, 2);
    end(h, &ok);
    fail_n(h, 2);
    assert_true(ml_host_usable(h));
    assert_int_equal(h->outlier.consecutive_failures, 2);
    now = ml_time_now_ms();
    fail_n(h, 1);
    assert_false(ml_host_usable(h));
    assert_true(h->state & ML_HOST_EJECTED);
    assert_int_equal(h->outlier.n_ejections, 1);
    assert_int_equal(h->outlier.ejections_total, 1);
    assert_true(h->outlier.ejected_until_ms >= now + 1000);
    assert_true(h->outlier.ejected_until_ms <= ml_time_now_ms() + 1000);
    /* the others are untouched */
    assert_true(ml_host_usable(host(&f, 1)));
    teardown_fixture(&f);
}

static void test_outcomes_that_say_nothing_of_the_host_neither_count_nor_reset(void **state)
{
    static const struct ml_attempt_outcome quiet[] = {
        {.end = ML_ATTEMPT_NOT_SENT, .grpc_status = -1},
        {.end = ML_ATTEMPT_REFUSED, .grpc_status = -1},
        {.end = ML_ATTEMPT_CANCELLED, .grpc_status = -1},
    };
    struct ml_attempt_outcome refused_connect = {.end = ML_ATTEMPT_CONNECT_FAILED,
                                                 .grpc_status = -1};
    struct ml_attempt_outcome reset = {.end = ML_ATTEMPT_RESET, .grpc_status = -1};
    struct fixture f;
    struct ml_host *h;

    setup(&f, HEAD);
    h = host(&f, 0);
    end(h, &refused_connect);
    for (size_t i = 0; i < sizeof(quiet) / sizeof(quiet[0]); i++) {
        end(h, &quiet[i]);
    }
    assert_int_equal(h->outlier.consecutive_failures, 1);
    end(h, &reset);
    assert_true(ml_host_usable(h));
    end(h, &(struct ml_attempt_outcome){
               .end = ML_ATTEMPT_RESPONDED, .grpc_status = -1, .http_status = 503});
    assert_true(h->state & ML_HOST_EJECTED); /* connect failure, reset, 5xx: three in a row */
    teardown_fixture(&f);
}

static void test_each_ejection_lasts_outlier_ejection_times_the_ejections(void **state)
{
    struct fixture f;
    struct ml_host *h;
    uint64_t before;

    setup(&f, HEAD);
    h = host(&f, 0);
    for (uint32_t n = 1; n <= 3; n++) {
        before = ml_time_now_ms();
        fail_n(h, 3);
        assert_true(h->state & ML_HOST_EJECTED);
        assert_int_equal(h->outlier.n_ejections, n);
        assert_true(h->outlier.ejected_until_ms >= before + 1000 * n);
        assert_true(h->outlier.ejected_until_ms <= ml_time_now_ms() + 1000 * n);
        /* failures of attempts picked before the ejection do not eject it again */
        fail_n(h, 5);
        assert_int_equal(h->outlier.n_ejections, n);
        ml_host_state_set(h, ML_HOST_EJECTED, false); /* as if its time were up */
        h->outlier.consecutive_failures = 0;
    }
    teardown_fixture(&f);
}

static void test_outlier_max_percent_keeps_hosts_in(void **state)
{
    struct fixture f;

    /* 4 hosts at 50 %: 2 may be out at once, a third stays in however it fails */
    setup(&f, HEAD "outlier_max_percent = 50\n");
    fail_n(host(&f, 0), 3);
    fail_n(host(&f, 1), 3);
    fail_n(host(&f, 2), 10);
    assert_false(ml_host_usable(host(&f, 0)));
    assert_false(ml_host_usable(host(&f, 1)));
    assert_true(ml_host_usable(host(&f, 2)));
    assert_int_equal(host(&f, 2)->outlier.ejections_total, 0);
    teardown_fixture(&f);

    /* 0 %: never one */
    setup(&f, HEAD "outlier_max_percent = 0\n");
    fail_n(host(&f, 0), 10);
    assert_true(ml_host_usable(host(&f, 0)));
    teardown_fixture(&f);
}

static void test_outlier_errors_zero_never_ejects(void **state)
{
    struct fixture f;

    setup(&f, "[listener l]\nbind = 127.0.0.1:15001\n[route r]\nlistener = l\nto = c\n"
              "[cluster c]\noutlier_errors = 0\nendpoint = 127.0.0.1:50001\n"
              "endpoint = 127.0.0.1:50002\n");
    fail_n(host(&f, 0), 100);
    assert_true(ml_host_usable(host(&f, 0)));
    assert_int_equal(host(&f, 0)->outlier.consecutive_failures, 0);
    teardown_fixture(&f);
}

struct waiter {
    struct ml_loop *loop;
    struct ml_host *h;
    struct ml_timer *t;
    uint64_t give_up_ms;
};

static void poll_usable(void *user)
{
    struct waiter *w = user;

    if (ml_host_usable(w->h) || ml_time_now_ms() >= w->give_up_ms) {
        ml_loop_stop(w->loop);
        return;
    }
    ml_timer_arm(w->t, POLL_MS);
}

static void test_an_ejection_ends_by_itself(void **state)
{
    struct fixture f;
    struct waiter w;
    uint64_t ejected_at;

    setup(&f, HEAD);
    w = (struct waiter){.loop = f.loop, .h = host(&f, 3)};
    fail_n(w.h, 3);
    ejected_at = ml_time_now_ms();
    assert_false(ml_host_usable(w.h));
    w.t = ml_timer_new(f.loop, poll_usable, &w);
    assert_non_null(w.t);
    w.give_up_ms = ejected_at + WAIT_MAX_MS;
    ml_timer_arm(w.t, POLL_MS);
    ml_loop_run(f.loop);
    assert_true(ml_host_usable(w.h));
    assert_true(ml_time_now_ms() >= ejected_at + 1000); /* not before its time */
    assert_int_equal(w.h->outlier.consecutive_failures, 0);
    assert_int_equal(w.h->outlier.n_ejections, 1); /* the next one lasts 2 s */
    ml_timer_free(w.t);
    teardown_fixture(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failures_in_a_row_eject_and_a_success_resets_the_count),
        cmocka_unit_test(test_outcomes_that_say_nothing_of_the_host_neither_count_nor_reset),
        cmocka_unit_test(test_each_ejection_lasts_outlier_ejection_times_the_ejections),
        cmocka_unit_test(test_outlier_max_percent_keeps_hosts_in),
        cmocka_unit_test(test_outlier_errors_zero_never_ejects),
        cmocka_unit_test(test_an_ejection_ends_by_itself),
    };
    return cmocka_run_group_tests_name("balance/outlier", tests, NULL, NULL);
}
