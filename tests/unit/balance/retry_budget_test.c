/* balance/balance.c's retry budget (max_retries): ml_cluster_retry_begin admits retries while
 * fewer than max_retries are in flight on the cluster, refuses the next one naming the limit and
 * counts it (per cluster, as a circuit-breaker trip); an end gives the slot back. */
#include "balance/balance.h"

#include "config/errors.h"
#include "config/snapshot.h"
#include "core/stats.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "balance_fixture.h"

static void test_max_retries_in_flight_then_refused_and_counted(void **state)
{
    struct ml_snapshot *s = load("[listener l]\nbind = 127.0.0.1:15001\n"
                                 "[route r]\nlistener = l\nto = c\n"
                                 "[cluster c]\nmax_retries = 2\nendpoint = 127.0.0.1:50001\n"
                                 "[cluster d]\nmax_retries = 0\nendpoint = 127.0.0.1:50002\n");
    struct ml_stats *st = ml_stats_new(s);
    uint32_t ids = 0;
    struct ml_balance *b;
    struct ml_cluster *c, *d;
    char why[200] = "", text[16384];

    assert_non_null(st);
    assert_int_equal(ml_balance_new(NULL, s, &ids, &b), 0);
    ml_balance_set_stats(b, st);
    c = ml_balance_cluster(b, 0);
    d = ml_balance_cluster(b, 1);
    assert_int_equal(ml_cluster_retry_begin(c, why, sizeof(why)), 0);
    assert_int_equal(ml_cluster_retry_begin(c, why, sizeof(why)), 0);
    assert_int_equal(ml_cluster_retry_begin(c, why, sizeof(why)), -EBUSY);
    assert_string_equal(why, "cluster c: max_retries (2) retries in flight");
    /* per cluster: d has its own (0 admits none) */
    assert_int_equal(ml_cluster_retry_begin(d, why, sizeof(why)), -EBUSY);
    ml_cluster_retry_end(c);
    assert_int_equal(ml_cluster_retry_begin(c, why, sizeof(why)), 0);
    ml_cluster_retry_end(c);
    ml_cluster_retry_end(c);
    assert_int_equal(ml_cluster_retry_begin(c, why, sizeof(why)), 0);
    assert_int_equal(ml_cluster_retry_begin(c, why, sizeof(why)), 0);
    assert_int_equal(ml_cluster_retry_begin(c, why, sizeof(why)), -EBUSY);
    assert_true(ml_stats_render_text(st, text, sizeof(text)) > 0);
    assert_non_null(strstr(text, "cluster.c.upstream_cb_max_retries 2\n"));
    assert_non_null(strstr(text, "cluster.d.upstream_cb_max_retries 1\n"));
    ml_balance_free(b);
    ml_stats_free(st);
    ml_snapshot_unref(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_max_retries_in_flight_then_refused_and_counted),
    };
    return cmocka_run_group_tests_name("balance/retry_budget", tests, NULL, NULL);
}
