/* core/stats.c: the proxy's counters, histograms and their two renderings. */
#include "core/stats.h"

#include "config/errors.h"
#include "config/snapshot.h"
#include "core/alloc.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const char ini[] = "[node]\nstate_dir = /tmp\n"
                          "[listener ingress]\nbind = 127.0.0.1:15001\n"
                          "[route echo]\nlistener = ingress\nto = three\n"
                          "[cluster three]\nendpoint = 127.0.0.1:50051\n"
                          "endpoint = 127.0.0.1:50052\n";

static struct ml_snapshot *load_text(const char *text)
{
    struct ml_config_errors errs;
    struct ml_snapshot *s = NULL;

    ml_config_errors_init(&errs);
    assert_int_equal(ml_config_load_text(text, strlen(text), NULL, &errs, &s), 0);
    ml_config_errors_deinit(&errs);
    return s;
}

static struct ml_snapshot *load(void)
{
    return load_text(ini);
}

/* After a hot apply of ini: the listener and cluster three remain (three keeps 50052 and gains
 * 50053), route echo is renamed, and a new cluster four has 50051. */
static const char ini2[] = "[node]\nstate_dir = /tmp\n"
                           "[listener ingress]\nbind = 127.0.0.1:15002\n"
                           "[route echo2]\nlistener = ingress\nto = four\n"
                           "[route rest]\nlistener = ingress\nto = three\n"
                           "[cluster four]\nendpoint = 127.0.0.1:50051\n"
                           "[cluster three]\nendpoint = 127.0.0.1:50053\n"
                           "endpoint = 127.0.0.1:50052\n";

static int teardown(void **state)
{
    ml_alloc_fail_after(-1);
    return 0;
}

static void expect_line(const char *text, const char *line)
{
    char want[256];

    snprintf(want, sizeof(want), "\n%s\n", line);
    if (strncmp(text, want + 1, strlen(want + 1)) != 0 && strstr(text, want) == NULL) {
        fail_msg("no line \"%s\" in:\n%s", line, text);
    }
}

static void test_histogram_buckets_include_their_upper_bound(void **state)
{
    struct ml_stats_hist h;

    memset(&h, 0, sizeof(h));
    ml_stats_hist_add(&h, 0);
    ml_stats_hist_add(&h, 50);
    ml_stats_hist_add(&h, 51);
    ml_stats_hist_add(&h, 10000000);
    ml_stats_hist_add(&h, 10000001);
    assert_int_equal(h.buckets[0], 2);                     /* <= 50 µs */
    assert_int_equal(h.buckets[1], 1);                     /* <= 100 µs */
    assert_int_equal(h.buckets[ML_STATS_N_BOUNDS - 1], 1); /* <= 10 s */
    assert_int_equal(h.buckets[ML_STATS_N_BOUNDS], 1);     /* +Inf */
    assert_int_equal(h.count, 5);
    assert_int_equal(h.sum_us, 20000102);
}

static void test_a_call_is_counted_where_it_went(void **state)
{
    struct ml_snapshot *snap = load();
    struct ml_stats *st = ml_stats_new(snap);
    struct ml_stats_call c;
    char out[65536];

    assert_non_null(st);
    ml_stats_downstream(st, 0, ML_STATS_DOWN_ACCEPTED);
    ml_stats_upstream(st, 0, 1, ML_STATS_UP_OPENED);
    ml_stats_upstream(st, 0, 1, ML_STATS_UP_CONNECTED);
    ml_stats_upstream(st, 0, 0, ML_STATS_UP_FAILED);
    ml_stats_call_begin(st, &c, 0);
    ml_stats_call_route(st, &c, 0, 0);
    ml_stats_call_endpoint(st, &c, 1);
    assert_true(ml_stats_render_text(st, out, sizeof(out)) > 0);
    expect_line(out, "calls.rq_active 1");
    expect_line(out, "cluster.three.endpoint.127.0.0.1:50052.rq_active 1");
    ml_stats_call_end(st, &c, 0, 7, 6, 9);
    /* and one that never found a route */
    ml_stats_call_begin(st, &c, 0);
    ml_stats_call_end(st, &c, 12, 0, 6, 0);
    assert_true(ml_stats_render_text(st, out, sizeof(out)) > 0);
    expect_line(out, "calls.rq_total 2");
    expect_line(out, "calls.rq_active 0");
    expect_line(out, "calls.grpc_status.0 1");
    expect_line(out, "calls.grpc_status.12 1");
    expect_line(out, "calls.bytes_in 12");
    expect_line(out, "calls.duration_us.le_5000 1");
    expect_line(out, "calls.duration_us.le_10000 2");
    expect_line(out, "calls.duration_us.sum 7000");
    expect_line(out, "listener.ingress.downstream_cx_active 1");
    expect_line(out, "listener.ingress.downstream_rq_total 2");
    expect_line(out, "route.echo.rq_total 1");
    expect_line(out, "cluster.three.upstream_rq_total 1");
    expect_line(out, "cluster.three.upstream_cx_opened 1");
    expect_line(out, "cluster.three.upstream_cx_active 1");
    expect_line(out, "cluster.three.upstream_cx_failed 1");
    expect_line(out, "cluster.three.endpoint.127.0.0.1:50052.rq_total 1");
    expect_line(out, "cluster.three.endpoint.127.0.0.1:50051.rq_total 0");
    assert_true(ml_stats_render_prometheus(st, out, sizeof(out)) > 0);
    expect_line(out, "meshlet_calls_total{grpc_code=\"UNIMPLEMENTED\"} 1");
    expect_line(out, "meshlet_endpoint_calls_total{cluster=\"three\",endpoint=\"127.0.0.1:50052\","
                     "grpc_code=\"OK\"} 1");
    expect_line(out, "meshlet_call_duration_seconds_bucket{le=\"0.01\"} 2");
    expect_line(out, "meshlet_call_duration_seconds_sum 0.007000");
    expect_line(out, "# TYPE meshlet_upstream_cx_failed_total counter");
    ml_stats_free(st);
    ml_snapshot_unref(snap);
}

static void test_bad_indexes_and_null_stats_count_nothing(void **state)
{
    struct ml_snapshot *snap = load();
    struct ml_stats *st = ml_stats_new(snap);
    struct ml_stats_call c;
    char out[65536];

    ml_stats_downstream(NULL, 0, ML_STATS_DOWN_ACCEPTED);
    ml_stats_downstream(st, 5, ML_STATS_DOWN_ACCEPTED);
    ml_stats_upstream(st, 0, 2, ML_STATS_UP_OPENED);
    ml_stats_upstream(st, -1, 0, ML_STATS_UP_OPENED);
    ml_stats_call_begin(NULL, &c, 0);
    ml_stats_call_end(NULL, &c, 0, 1, 1, 1);
    ml_stats_downstream(st, 0, ML_STATS_DOWN_CLOSED); /* never below 0 */
    assert_true(ml_stats_render_text(st, out, sizeof(out)) > 0);
    expect_line(out, "listener.ingress.downstream_cx_accepted 0");
    expect_line(out, "listener.ingress.downstream_cx_active 0");
    expect_line(out, "cluster.three.upstream_cx_opened 0");
    ml_stats_free(st);
    ml_snapshot_unref(snap);
}

static void test_a_rendering_that_does_not_fit_is_enobufs_with_whole_lines(void **state)
{
    struct ml_snapshot *snap = load();
    struct ml_stats *st = ml_stats_new(snap);
    char out[4000]; /* the first piece fits, not the whole */
    size_t n;

    assert_int_equal(ml_stats_render_text(st, out, sizeof(out)), -ENOBUFS);
    n = strlen(out);
    assert_true(n < sizeof(out));
    assert_true(n > 0 && out[n - 1] == '\n');
    assert_int_equal(ml_stats_render_prometheus(st, out, sizeof(out)), -ENOBUFS);
    assert_int_equal(ml_stats_render_text(st, out, 0), -ENOBUFS);
    ml_stats_free(st);
    ml_snapshot_unref(snap);
}

static void test_each_failing_allocation_gives_null_and_no_leak(void **state)
{
    struct ml_snapshot *snap = load();
    struct ml_stats *st;
    long n;

    for (n = 0;; n++) {
        ml_alloc_fail_after(n);
        st = ml_stats_new(snap);
        ml_alloc_fail_after(-1);
        if (st != NULL) {
            break;
        }
    }
    assert_true(n >= 4);
    ml_stats_free(st);
    ml_snapshot_unref(snap);
}

static void test_next_carries_the_counters_of_names_that_remain(void **state)
{
    struct ml_snapshot *s1 = load(), *s2 = load_text(ini2);
    struct ml_stats *st1 = ml_stats_new(s1), *st2;
    struct ml_stats_call before, after;
    uint64_t total, failed;
    char out[32768];

    assert_non_null(st1);
    ml_stats_downstream(st1, 0, ML_STATS_DOWN_ACCEPTED);
    ml_stats_upstream(st1, 0, 1, ML_STATS_UP_OPENED);
    ml_stats_upstream(st1, 0, 1, ML_STATS_UP_CONNECTED);
    ml_stats_call_begin(st1, &before, 0);
    ml_stats_call_route(st1, &before, 0, 0);
    ml_stats_call_endpoint(st1, &before, 1); /* 50052 */
    st2 = ml_stats_next(st1, s2);
    assert_non_null(st2);
    /* a call on the new config, while `before` goes on in st1 (which its call holds) */
    ml_stats_call_begin(st2, &after, 0);
    ml_stats_call_route(st2, &after, 1, 1); /* rest -> three */
    ml_stats_call_endpoint(st2, &after, 1); /* 50052 */
    ml_stats_call_end(st2, &after, 0, 3, 1, 1);
    ml_stats_upstream(st2, 1, 1, ML_STATS_UP_CLOSED); /* the pooled connection, now at index 1 */
    assert_true(ml_stats_render_text(st2, out, sizeof(out)) > 0);
    expect_line(out, "calls.rq_total 1");
    expect_line(out, "calls.rq_active 1"); /* `before` still runs */
    expect_line(out, "listener.ingress.downstream_cx_accepted 1");
    expect_line(out, "listener.ingress.downstream_rq_total 1");
    expect_line(out, "listener.ingress.downstream_rq_active 1");
    expect_line(out, "route.echo2.rq_total 0");
    expect_line(out, "route.rest.rq_total 1");
    expect_line(out, "cluster.three.upstream_rq_total 1");
    expect_line(out, "cluster.three.upstream_rq_active 1");
    expect_line(out, "cluster.three.upstream_cx_opened 1");
    expect_line(out, "cluster.three.upstream_cx_active 0");
    expect_line(out, "cluster.three.endpoint.127.0.0.1:50052.rq_total 1");
    expect_line(out, "cluster.three.endpoint.127.0.0.1:50052.rq_active 1");
    expect_line(out, "cluster.three.endpoint.127.0.0.1:50053.cx_opened 0");
    expect_line(out, "cluster.four.endpoint.127.0.0.1:50051.cx_opened 0");
    assert_null(strstr(out, "route.echo."));
    ml_stats_call_end(st1, &before, 0, 3, 1, 1);
    ml_stats_free(st1);
    assert_true(ml_stats_render_text(st2, out, sizeof(out)) > 0);
    expect_line(out, "calls.rq_total 2");
    expect_line(out, "listener.ingress.downstream_rq_active 0");
    expect_line(out, "cluster.three.endpoint.127.0.0.1:50052.rq_total 2");
    ml_stats_totals(st2, &total, &failed);
    assert_int_equal(total, 2);
    assert_int_equal(failed, 0);
    ml_stats_free(st2);
    ml_snapshot_unref(s2);
    ml_snapshot_unref(s1);
}

static void test_a_call_in_flight_ends_where_it_started_after_next(void **state)
{
    struct ml_snapshot *s1 = load(), *s2 = load_text(ini2);
    struct ml_stats *st1 = ml_stats_new(s1), *st2;
    struct ml_stats_call c;
    uint64_t total, failed;
    char out[32768];

    ml_stats_call_begin(st1, &c, 0);
    ml_stats_call_route(st1, &c, 0, 0); /* echo -> three */
    ml_stats_call_endpoint(st1, &c, 0); /* 50051: gone from three in s2 */
    st2 = ml_stats_next(st1, s2);
    ml_stats_call_end(st1, &c, 14, 5, 2, 2); /* in its own table */
    ml_stats_free(st1);
    assert_true(ml_stats_render_text(st2, out, sizeof(out)) > 0);
    expect_line(out, "calls.rq_total 1");
    expect_line(out, "calls.rq_active 0");
    expect_line(out, "calls.grpc_status.14 1");
    expect_line(out, "listener.ingress.downstream_rq_total 1");
    expect_line(out, "cluster.three.upstream_rq_total 1");
    expect_line(out, "cluster.three.upstream_rq_active 0");
    expect_line(out, "cluster.three.endpoint.127.0.0.1:50052.rq_total 0");
    ml_stats_totals(st2, &total, &failed);
    assert_int_equal(total, 1);
    assert_int_equal(failed, 1);
    ml_stats_totals(NULL, &total, &failed);
    assert_int_equal(total, 0);
    ml_stats_free(st2);
    ml_snapshot_unref(s2);
    ml_snapshot_unref(s1);
}

static void test_each_failing_allocation_in_next_gives_null_and_no_leak(void **state)
{
    struct ml_snapshot *s1 = load(), *s2 = load_text(ini2);
    struct ml_stats *st1 = ml_stats_new(s1), *st2;
    char out[32768];
    long n;

    ml_stats_call_begin(st1, &(struct ml_stats_call){0}, 0);
    for (n = 0;; n++) {
        ml_alloc_fail_after(n);
        st2 = ml_stats_next(st1, s2);
        ml_alloc_fail_after(-1);
        if (st2 != NULL) {
            break;
        }
        /* st1 is as it was */
        assert_true(ml_stats_render_text(st1, out, sizeof(out)) > 0);
        expect_line(out, "calls.rq_active 1");
    }
    assert_true(n >= 6);
    ml_stats_free(st1);
    assert_true(ml_stats_render_text(st2, out, sizeof(out)) > 0);
    expect_line(out, "calls.rq_active 1");
    ml_stats_free(st2);
    ml_snapshot_unref(s2);
    ml_snapshot_unref(s1);
}

static void test_route_events_are_counted_per_route_in_text_and_prometheus(void **state)
{
    struct ml_snapshot *snap = load();
    struct ml_stats *st = ml_stats_new(snap);
    char out[32768];
    (void)state;

    assert_non_null(st);
    ml_stats_route(st, 0, ML_STATS_ROUTE_RETRY);
    ml_stats_route(st, 0, ML_STATS_ROUTE_RETRY);
    ml_stats_route(st, 0, ML_STATS_ROUTE_RATE_LIMITED);
    ml_stats_route(st, -1, ML_STATS_ROUTE_RETRY); /* no route: nowhere */
    ml_stats_route(st, 7, ML_STATS_ROUTE_RETRY);
    ml_stats_route(NULL, 0, ML_STATS_ROUTE_RETRY);
    assert_true(ml_stats_render_text(st, out, sizeof(out)) > 0);
    expect_line(out, "route.echo.rq_retry 2");
    expect_line(out, "route.echo.rq_retry_overflow 0");
    expect_line(out, "route.echo.rq_fault_delayed 0");
    expect_line(out, "route.echo.rq_fault_aborted 0");
    expect_line(out, "route.echo.rq_rate_limited 1");
    assert_true(ml_stats_render_prometheus(st, out, sizeof(out)) > 0);
    expect_line(out, "# TYPE meshlet_route_rq_retry_total counter");
    expect_line(out, "meshlet_route_rq_retry_total{route=\"echo\"} 2");
    expect_line(out, "meshlet_route_rq_rate_limited_total{route=\"echo\"} 1");
    ml_stats_free(st);
    ml_snapshot_unref(snap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_teardown(f, teardown)
        T(test_histogram_buckets_include_their_upper_bound),
        T(test_a_call_is_counted_where_it_went),
        T(test_bad_indexes_and_null_stats_count_nothing),
        T(test_a_rendering_that_does_not_fit_is_enobufs_with_whole_lines),
        T(test_each_failing_allocation_gives_null_and_no_leak),
        T(test_next_carries_the_counters_of_names_that_remain),
        T(test_a_call_in_flight_ends_where_it_started_after_next),
        T(test_each_failing_allocation_in_next_gives_null_and_no_leak),
        T(test_route_events_are_counted_per_route_in_text_and_prometheus),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
