/* core/stats_render.c: renderings in pieces, with no size bound; Prometheus units and names. */
#include "core/stats.h"

#include "config/errors.h"
#include "config/snapshot.h"
#include "core/alloc.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static struct ml_snapshot *load_text(const char *text)
{
    struct ml_config_errors errs;
    struct ml_snapshot *s = NULL;

    ml_config_errors_init(&errs);
    if (ml_config_load_text(text, strlen(text), NULL, &errs, &s) != 0) {
        char lines[1024];
        ml_config_errors_join(&errs, "t", lines, sizeof(lines));
        fail_msg("config: %s", lines);
    }
    ml_config_errors_deinit(&errs);
    return s;
}

/* n_clusters clusters of n_eps endpoints each, one listener and route. */
static struct ml_snapshot *load_sized(int n_clusters, int n_eps)
{
    size_t cap = 64 + (size_t)n_clusters * (40 + (size_t)n_eps * 40) + 200;
    char *text = malloc(cap);
    size_t n = 0;
    struct ml_snapshot *s;

    n += (size_t)snprintf(text + n, cap - n,
                          "[node]\nstate_dir = /tmp\n[listener in]\nbind = 127.0.0.1:15001\n"
                          "[route all]\nlistener = in\nto = c0\n");
    for (int c = 0; c < n_clusters; c++) {
        n += (size_t)snprintf(text + n, cap - n, "[cluster c%d]\n", c);
        for (int e = 0; e < n_eps; e++) {
            n += (size_t)snprintf(text + n, cap - n, "endpoint = 127.0.%d.%d:%d\n", c, e + 1,
                                  50000 + e);
        }
    }
    s = load_text(text);
    free(text);
    return s;
}

/* The whole of format f, piece by piece through a buffer of cap bytes (malloc'd). */
static char *render_all(const struct ml_stats *st, enum ml_stats_format f, size_t cap, size_t *len,
                        int *pieces)
{
    struct ml_stats_cursor cur = {0};
    char *buf = malloc(cap), *all = NULL;
    size_t n = 0;

    *pieces = 0;
    while (!cur.done) {
        long k = ml_stats_render_part(st, f, &cur, buf, cap);

        assert_true(k >= 0);
        assert_int_equal(strlen(buf), (size_t)k);
        all = realloc(all, n + (size_t)k + 1);
        memcpy(all + n, buf, (size_t)k);
        n += (size_t)k;
        ++*pieces;
    }
    all[n] = '\0';
    *len = n;
    free(buf);
    return all;
}

/* memchr/memcmp with the text's end, not strchr/strncmp: under ASan's strict_string_checks each
 * str* call reads the whole rest of the string, which made this walk quadratic (minutes on the
 * 64 x 64 rendering). */
static int count_lines_starting(const char *text, const char *prefix)
{
    int n = 0;
    size_t k = strlen(prefix);
    const char *end = text + strlen(text);

    for (const char *p = text; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

        n += len >= k && memcmp(p, prefix, k) == 0;
        p += len + 1;
    }
    return n;
}

static void test_pieces_join_to_the_whole_rendering(void **state)
{
    struct ml_snapshot *snap = load_sized(3, 4);
    struct ml_stats *st = ml_stats_new(snap);
    enum ml_stats_format fs[] = {ML_STATS_TEXT, ML_STATS_PROMETHEUS, ML_STATS_JSON};
    size_t big = 1 << 20;
    char *whole = malloc(big);

    for (size_t i = 0; i < sizeof(fs) / sizeof(fs[0]); i++) {
        struct ml_stats_cursor cur = {0};
        long n = ml_stats_render_part(st, fs[i], &cur, whole, big);
        size_t len;
        int pieces;
        char *joined;

        assert_true(n > 0);
        assert_true(cur.done);
        joined = render_all(st, fs[i], 4096, &len, &pieces);
        assert_true(pieces > 1);
        assert_int_equal(len, (size_t)n);
        assert_string_equal(joined, whole);
        free(joined);
    }
    free(whole);
    ml_stats_free(st);
    ml_snapshot_unref(snap);
}

/* 64 clusters of 64 endpoints (what Kconfig allows) once gave a 500: a rendering in pieces has
 * no bound, and each endpoint is in it. 32 of them: as many as the default config size
 * (CONFIG_ML_MAX_CONFIG_BYTES, 60 KiB) holds, and still megabytes of output. */
static void test_32_clusters_of_64_endpoints_render_whole(void **state)
{
    struct ml_snapshot *snap = load_sized(32, 64);
    struct ml_stats *st = ml_stats_new(snap);
    size_t len;
    int pieces;
    char *text;

    assert_non_null(st);
    text = render_all(st, ML_STATS_PROMETHEUS, 16384, &len, &pieces);
    assert_true(len > 1024 * 1024);
    assert_int_equal(count_lines_starting(text, "meshlet_upstream_cx_failed_total{"), 32 * 64);
    assert_int_equal(count_lines_starting(text, "meshlet_endpoint_calls_total{"), 32 * 64 * 18);
    assert_non_null(strstr(text, "meshlet_endpoint_calls_active{cluster=\"c31\",endpoint=\"127.0."
                                 "31.64:50063\"} 0\n"));
    free(text);
    text = render_all(st, ML_STATS_TEXT, 16384, &len, &pieces);
    assert_non_null(strstr(text, "\ncluster.c31.endpoint.127.0.31.64:50063.rq_total 0\n"));
    free(text);
    text = render_all(st, ML_STATS_JSON, 16384, &len, &pieces);
    assert_non_null(strstr(text, "{\"name\":\"127.0.31.64:50063\",\"cluster\":\"c31\""));
    assert_true(len > 2 && text[len - 2] == '}' && text[len - 1] == '\n');
    free(text);
    ml_stats_free(st);
    ml_snapshot_unref(snap);
}

static void test_a_piece_larger_than_the_buffer_is_enobufs(void **state)
{
    struct ml_snapshot *snap = load_sized(1, 1);
    struct ml_stats *st = ml_stats_new(snap);
    struct ml_stats_cursor cur = {0};
    char out[64];

    assert_int_equal(ml_stats_render_part(st, ML_STATS_PROMETHEUS, &cur, out, sizeof(out)),
                     -ENOBUFS);
    assert_int_equal(cur.part, 0);
    assert_int_equal(cur.item, 0);
    assert_false(cur.done);
    assert_string_equal(out, "");
    ml_stats_free(st);
    ml_snapshot_unref(snap);
}

static void test_prometheus_counts_seconds_with_code_names(void **state)
{
    struct ml_snapshot *snap = load_sized(1, 2);
    struct ml_stats *st = ml_stats_new(snap);
    struct ml_stats_call c;
    size_t len;
    int pieces;
    char *text;

    /* a 120 µs call whose upstream took 80 µs, then one that never reached an upstream */
    ml_stats_call_begin(st, &c, 0);
    ml_stats_call_route(st, &c, 0, 0);
    ml_stats_call_endpoint(st, &c, 1);
    ml_stats_call_end_us(st, &c, 0, 120, 80, 5, 7);
    ml_stats_call_begin(st, &c, 0);
    ml_stats_call_route(st, &c, 0, 0);
    ml_stats_call_end_us(st, &c, 14, 40, ML_STATS_NO_UPSTREAM, 0, 0);
    text = render_all(st, ML_STATS_PROMETHEUS, 16384, &len, &pieces);
    assert_non_null(strstr(text, "\nmeshlet_calls_total{grpc_code=\"OK\"} 1\n"));
    assert_non_null(strstr(text, "\nmeshlet_calls_total{grpc_code=\"UNAVAILABLE\"} 1\n"));
    assert_non_null(strstr(text, "\nmeshlet_calls_total{grpc_code=\"DATA_LOSS\"} 0\n"));
    /* an entity without a single call has each series, at 0 */
    assert_non_null(strstr(text, "\nmeshlet_endpoint_calls_total{cluster=\"c0\",endpoint="
                                 "\"127.0.0.1:50000\",grpc_code=\"UNAUTHENTICATED\"} 0\n"));
    assert_non_null(strstr(text, "\nmeshlet_call_duration_seconds_bucket{le=\"5e-05\"} 1\n"));
    assert_non_null(strstr(text, "\nmeshlet_call_duration_seconds_bucket{le=\"0.0001\"} 1\n"));
    assert_non_null(strstr(text, "\nmeshlet_call_duration_seconds_bucket{le=\"0.00025\"} 2\n"));
    assert_non_null(strstr(text, "\nmeshlet_call_duration_seconds_bucket{le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(text, "\nmeshlet_call_duration_seconds_sum 0.000160\n"));
    assert_non_null(strstr(text, "\nmeshlet_upstream_duration_seconds_bucket{le=\"0.0001\"} 1\n"));
    assert_non_null(strstr(text, "\nmeshlet_upstream_duration_seconds_count 1\n"));
    assert_non_null(strstr(text, "\nmeshlet_cluster_upstream_duration_seconds_sum{cluster=\"c0\"} "
                                 "0.000080\n"));
    assert_null(strstr(text, "code=\"0\""));
    free(text);
    text = render_all(st, ML_STATS_JSON, 16384, &len, &pieces);
    assert_non_null(strstr(text, "\"total\":2,\"active\":0,\"errors\":1"));
    assert_non_null(strstr(text, "\"codes\":{\"OK\":1,\"UNAVAILABLE\":1}"));
    free(text);
    ml_stats_free(st);
    ml_snapshot_unref(snap);
}

static void test_bucket_names(void **state)
{
    assert_string_equal(ml_stats_bucket_le(0), "5e-05");
    assert_string_equal(ml_stats_bucket_le(ML_STATS_N_BOUNDS - 1), "10");
    assert_string_equal(ml_stats_bucket_le(ML_STATS_N_BOUNDS), "+Inf");
    assert_int_equal(ml_stats_bucket_bounds_us()[0], 50);
    assert_string_equal(ml_stats_status_name(14), "UNAVAILABLE");
    assert_string_equal(ml_stats_status_name(ML_STATS_STATUS_NONE), "none");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pieces_join_to_the_whole_rendering),
        cmocka_unit_test(test_32_clusters_of_64_endpoints_render_whole),
        cmocka_unit_test(test_a_piece_larger_than_the_buffer_is_enobufs),
        cmocka_unit_test(test_prometheus_counts_seconds_with_code_names),
        cmocka_unit_test(test_bucket_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
