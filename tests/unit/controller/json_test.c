/* controller/json.c: GET /fleet stays valid and bounded whatever nodes send: a record never
 * passes ML_CTL_JSON_NODE_MAX_BYTES, a full table of worst-case records renders (no 500), a
 * Nack's long error is cut at a whole character with the marker, and each failing allocation
 * is a clean -ENOMEM. */
#include "controller/controller_int.h"

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

#define HEAD "{\"nodes\":["
#define TAIL "]}\n"

static int teardown(void **state)
{
    ml_alloc_fail_after(-1);
    return 0;
}

static void fill(char *dst, size_t n, char c)
{
    memset(dst, c, n);
    dst[n] = '\0';
}

/* A node whose every string is as long as the wire allows and escapes to 6 bytes a byte. */
static struct ml_ctl_node *worst_node(size_t i)
{
    struct ml_ctl_node *n = calloc(1, sizeof(*n));

    assert_non_null(n);
    snprintf(n->id, sizeof(n->id), "%0*zu", ML_CTL_NODE_ID_MAX, i);
    fill(n->board, ML_CTL_TEXT_MAX, '\x01');
    fill(n->version, ML_CTL_TEXT_MAX, '\x02');
    fill(n->config_version, ML_CTL_TEXT_MAX, '\x03');
    n->n_features = ML_CTL_FEATURES_MAX;
    for (size_t f = 0; f < ML_CTL_FEATURES_MAX; f++) {
        fill(n->features[f], ML_CTL_FEATURE_MAX, '\x04');
    }
    n->conn = (struct ml_ctl_conn *)n; /* only compared with NULL */
    n->has_nack = true;
    fill(n->nack_version, ML_CTL_TEXT_MAX, '\x05');
    fill(n->nack_error, ML_CTL_ERROR_MAX, '\x06');
    n->has_status = true;
    fill(n->status.config_version, ML_CTL_TEXT_MAX, '\x07');
    n->status.uptime_s = n->status.calls_total = n->status.calls_failed = UINT64_MAX;
    n->status.endpoints_healthy = n->status.endpoints_total = UINT32_MAX;
    return n;
}

static struct ml_ctl *new_ctl(size_t n_nodes)
{
    struct ml_ctl *ctl = calloc(1, sizeof(*ctl));

    assert_non_null(ctl);
    for (size_t i = 0; i < n_nodes; i++) {
        ctl->nodes[i] = worst_node(i);
    }
    ctl->n_nodes = n_nodes;
    return ctl;
}

static void free_ctl(struct ml_ctl *ctl)
{
    for (size_t i = 0; i < ctl->n_nodes; i++) {
        free(ctl->nodes[i]);
    }
    free(ctl);
}

static void test_worst_case_record_fits_its_cap(void **state)
{
    struct ml_ctl *ctl = new_ctl(1);
    char *out;
    size_t n;

    assert_int_equal(ml_ctl_json_fleet(ctl, NULL, NULL, &out, &n), 0);
    assert_true(n - strlen(HEAD) - strlen(TAIL) <= ML_CTL_JSON_NODE_MAX_BYTES);
    assert_non_null(strstr(out, ML_CTL_JSON_CUT_MARKER "\""));
    assert_null(memchr(out, '\x06', n)); /* escaped, never raw */
    ml_free(out);
    free_ctl(ctl);
}

static void test_full_table_of_worst_records_renders(void **state)
{
    struct ml_ctl *ctl = new_ctl(ML_CTL_MAX_NODES);
    char *out;
    size_t n;

    assert_int_equal(ml_ctl_json_fleet(ctl, NULL, NULL, &out, &n), 0);
    assert_true(n <= ML_CTL_MAX_JSON_BYTES);
    assert_memory_equal(out, HEAD, strlen(HEAD));
    assert_memory_equal(out + n - strlen(TAIL), TAIL, strlen(TAIL));
    ml_free(out);
    free_ctl(ctl);
}

/* The rendered error of ctl's only node, between its quotes, into got[cap]. */
static void rendered_error(struct ml_ctl *ctl, char *got, size_t cap)
{
    const char *key = "\"error\":\"";
    char *out, *at, *end;
    size_t n;

    assert_int_equal(ml_ctl_json_fleet(ctl, NULL, NULL, &out, &n), 0);
    assert_non_null(at = strstr(out, key));
    at += strlen(key);
    assert_non_null(end = strstr(at, "\"},\"last_status\""));
    assert_true((size_t)(end - at) < cap);
    memcpy(got, at, (size_t)(end - at));
    got[end - at] = '\0';
    ml_free(out);
}

static void test_error_within_the_cap_is_whole(void **state)
{
    struct ml_ctl *ctl = new_ctl(1);
    char got[2 * ML_CTL_JSON_ERROR_MAX_BYTES];

    fill(ctl->nodes[0]->nack_error, ML_CTL_JSON_ERROR_MAX_BYTES, 'x');
    rendered_error(ctl, got, sizeof(got));
    assert_int_equal(strlen(got), ML_CTL_JSON_ERROR_MAX_BYTES);
    assert_null(strstr(got, ML_CTL_JSON_CUT_MARKER));
    free_ctl(ctl);
}

static void test_error_one_byte_over_is_cut_with_the_marker(void **state)
{
    struct ml_ctl *ctl = new_ctl(1);
    char got[2 * ML_CTL_JSON_ERROR_MAX_BYTES];
    size_t marker = strlen(ML_CTL_JSON_CUT_MARKER);

    fill(ctl->nodes[0]->nack_error, ML_CTL_JSON_ERROR_MAX_BYTES + 1, 'x');
    rendered_error(ctl, got, sizeof(got));
    assert_int_equal(strlen(got), ML_CTL_JSON_ERROR_MAX_BYTES + marker);
    assert_string_equal(got + ML_CTL_JSON_ERROR_MAX_BYTES, ML_CTL_JSON_CUT_MARKER);
    free_ctl(ctl);
}

static void test_cut_never_splits_a_character(void **state)
{
    struct ml_ctl *ctl = new_ctl(1);
    char got[2 * ML_CTL_JSON_ERROR_MAX_BYTES];
    char *e = ctl->nodes[0]->nack_error;
    size_t body;

    /* "a" then 3-byte characters and 6-byte escapes: no multiple of either lands on the cap. */
    e[0] = 'a';
    for (size_t i = 1; i + 4 <= ML_CTL_ERROR_MAX; i += 4) {
        memcpy(e + i, "\xe2\x82\xac\x01", 4); /* U+20AC, then a control byte */
        e[i + 4] = '\0';
    }
    rendered_error(ctl, got, sizeof(got));
    body = strlen(got) - strlen(ML_CTL_JSON_CUT_MARKER);
    assert_true(body <= ML_CTL_JSON_ERROR_MAX_BYTES);
    assert_true(body > ML_CTL_JSON_ERROR_MAX_BYTES - 6);
    /* 'a', then whole units of "\xe2\x82\xac" "\\u0001" (9 bytes), maybe a last euro sign. */
    assert_true((body - 1) % 9 == 0 || (body - 1) % 9 == 3);
    assert_string_equal(got + body, ML_CTL_JSON_CUT_MARKER);
    free_ctl(ctl);
}

static void test_each_failing_allocation_is_enomem(void **state)
{
    struct ml_ctl *ctl = new_ctl(8);
    char *out = NULL;
    size_t n = 0;
    int rv = -ENOMEM;

    for (long k = 0; rv != 0; k++) {
        ml_alloc_fail_after(k);
        rv = ml_ctl_json_fleet(ctl, NULL, NULL, &out, &n);
        assert_true(rv == 0 || rv == -ENOMEM);
        assert_true(k < 64);
    }
    ml_alloc_fail_after(-1);
    ml_free(out);
    free_ctl(ctl);
}

static void test_stats_lists_the_counters(void **state)
{
    struct ml_ctl *ctl = new_ctl(2);
    char *out;
    size_t n;

    ctl->counters.answers_ignored = 3;
    ctl->counters.conns_refused_over_cap = 7;
    assert_int_equal(ml_ctl_json_stats(ctl, &out, &n), 0);
    assert_non_null(strstr(out, "controller.nodes 2\n"));
    assert_non_null(strstr(out, "controller.answers_ignored 3\n"));
    assert_non_null(strstr(out, "controller.conns_refused_over_cap 7\n"));
    ml_free(out);
    free_ctl(ctl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_teardown(f, teardown)
        T(test_worst_case_record_fits_its_cap), T(test_full_table_of_worst_records_renders),
        T(test_error_within_the_cap_is_whole),  T(test_error_one_byte_over_is_cut_with_the_marker),
        T(test_cut_never_splits_a_character),   T(test_each_failing_allocation_is_enomem),
        T(test_stats_lists_the_counters),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
