/* core/stats_sum.c: [node] workers' counters summed into one table, matched by name. */
#include "core/stats.h"

#include "config/errors.h"
#include "config/snapshot.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const char ini[] = "[node]\nstate_dir = /tmp\n"
                          "[listener ingress]\nbind = 127.0.0.1:15001\n"
                          "[route echo]\nlistener = ingress\nto = three\n"
                          "[cluster three]\nendpoint = 127.0.0.1:50051\n"
                          "endpoint = 127.0.0.1:50052\n";

/* A worker mid-apply: its table is of another snapshot, in another order, with a cluster the
 * others do not have. Names decide, not places. */
static const char ini_other[] = "[node]\nstate_dir = /tmp\n"
                                "[listener ingress]\nbind = 127.0.0.1:15001\n"
                                "[route new]\nlistener = ingress\nto = four\n"
                                "[route echo]\nlistener = ingress\nto = three\n"
                                "[cluster four]\nendpoint = 127.0.0.1:50053\n"
                                "[cluster three]\nendpoint = 127.0.0.1:50052\n"
                                "endpoint = 127.0.0.1:50051\n";

static struct ml_snapshot *load_text(const char *text)
{
    struct ml_config_errors errs;
    struct ml_snapshot *s = NULL;

    ml_config_errors_init(&errs);
    assert_int_equal(ml_config_load_text(text, strlen(text), NULL, &errs, &s), 0);
    ml_config_errors_deinit(&errs);
    return s;
}

/* One call through listener 0, route `route`, cluster `cluster`, endpoint `ep`, ending status. */
static void one_call(struct ml_stats *st, int route, int cluster, int ep, int status)
{
    struct ml_stats_call c;

    ml_stats_call_begin(st, &c, 0);
    ml_stats_call_route(st, &c, route, cluster);
    ml_stats_call_endpoint(st, &c, ep);
    ml_stats_call_end(st, &c, status, 1, 10, 20);
}

static long value_of(const struct ml_stats *st, const char *name)
{
    static char text[64 * 1024];
    char want[160];
    const char *p;

    text[0] = '\n'; /* every line, the first too, starts after a newline */
    assert_true(ml_stats_render_text(st, text + 1, sizeof(text) - 1) > 0);
    snprintf(want, sizeof(want), "\n%s ", name);
    p = strstr(text, want);
    if (p == NULL) {
        fail_msg("no line %s in:\n%s", name, text);
    }
    return strtol(p + strlen(want), NULL, 10);
}

static void sums_by_name_across_snapshots(void **state)
{
    struct ml_snapshot *a = load_text(ini), *b = load_text(ini_other);
    struct ml_stats *w0 = ml_stats_new(a), *w1 = ml_stats_new(b), *sum = ml_stats_new(a);

    (void)state;
    /* worker 0: 2 calls to three's 50051 (ep 0); worker 1: 3 to three's 50051 (its ep 1),
     * 1 failing to four */
    one_call(w0, 0, 0, 0, 0);
    one_call(w0, 0, 0, 0, 0);
    for (int i = 0; i < 3; i++) {
        one_call(w1, 1, 1, 1, 0);
    }
    one_call(w1, 0, 0, 0, 14);
    ml_stats_downstream(w0, 0, ML_STATS_DOWN_ACCEPTED);
    ml_stats_downstream(w1, 0, ML_STATS_DOWN_ACCEPTED);
    ml_stats_downstream(w1, 0, ML_STATS_DOWN_ACCEPTED);
    /* both workers eject the same endpoint: it is ejected (1), not twice */
    ml_stats_upstream(w0, 0, 1, ML_STATS_UP_EJECTED);
    ml_stats_upstream(w1, 1, 0, ML_STATS_UP_EJECTED);

    ml_stats_sum_add(sum, w0);
    ml_stats_sum_add(sum, w1);
    assert_int_equal(value_of(sum, "calls.rq_total"), 6);
    assert_int_equal(value_of(sum, "listener.ingress.downstream_cx_accepted"), 3);
    assert_int_equal(value_of(sum, "route.echo.rq_total"), 5);
    assert_int_equal(value_of(sum, "cluster.three.upstream_rq_total"), 5);
    assert_int_equal(value_of(sum, "cluster.three.endpoint.127.0.0.1:50051.rq_total"), 5);
    assert_int_equal(value_of(sum, "cluster.three.endpoint.127.0.0.1:50052.ejected"), 1);
    assert_int_equal(value_of(sum, "cluster.three.endpoint.127.0.0.1:50052.ejections"), 2);
    /* the parts are unchanged */
    assert_int_equal(value_of(w0, "calls.rq_total"), 2);

    uint64_t cx, active, calls;
    ml_stats_worker_totals(w1, &cx, &active, &calls);
    assert_true(cx == 2 && active == 2 && calls == 4);

    ml_stats_free(sum);
    ml_stats_free(w0);
    ml_stats_free(w1);
    ml_snapshot_unref(a);
    ml_snapshot_unref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sums_by_name_across_snapshots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
