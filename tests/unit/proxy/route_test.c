/* proxy/route.c: route matching and the weighted split, pure functions over snapshots loaded
 * from INI text. */
#include "proxy/route.h"

#include "config/errors.h"
#include "config/snapshot-t.h"
#include "config/snapshot.h"
#include "core/alloc.h"
#include "h2/hdrs.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

/* ---- helpers -------------------------------------------------------------------------------- */

static int teardown(void **state)
{
    ml_alloc_fail_after(-1);
    return 0;
}

/* Loads a config that must be usable; the caller unrefs. */
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
    assert_non_null(s);
    return s;
}

static struct ml_slice sl(const char *s)
{
    return (struct ml_slice){(const uint8_t *)s, strlen(s)};
}

static int listener_index(const struct ml_snapshot *s, const char *name)
{
    for (uint32_t i = 0; i < s->n_listeners; i++) {
        if (strcmp(s->listeners[i].name, name) == 0) {
            return (int)i;
        }
    }
    fail_msg("no listener %s", name);
    return -1;
}

static int cluster_index(const struct ml_snapshot *s, const char *name)
{
    for (uint32_t i = 0; i < s->n_clusters; i++) {
        if (strcmp(s->clusters[i].name, name) == 0) {
            return (int)i;
        }
    }
    fail_msg("no cluster %s", name);
    return -1;
}

static const struct ml_cfg_route *route_named(const struct ml_snapshot *s, const char *name)
{
    for (uint32_t i = 0; i < s->n_routes; i++) {
        if (strcmp(s->routes[i].name, name) == 0) {
            return &s->routes[i];
        }
    }
    fail_msg("no route %s", name);
    return NULL;
}

/* The name of the route that req matches on listener, or "(none)". hdrs: "name: value" lines
 * (NULL-terminated list). */
static const char *match(const struct ml_snapshot *s, const char *listener, const char *authority,
                         const char *path, const char *const *hdrs)
{
    struct ml_h2_hdrs h;
    struct ml_route_request req = {sl(authority), sl(path), &h};
    int rv;

    ml_h2_hdrs_init(&h, 4096);
    for (; hdrs != NULL && *hdrs != NULL; hdrs++) {
        const char *colon = strchr(*hdrs, ':');
        const char *v = colon + 1;

        assert_non_null(colon);
        while (*v == ' ') {
            v++;
        }
        assert_int_equal(ml_h2_hdrs_add(&h, (const uint8_t *)*hdrs, (size_t)(colon - *hdrs),
                                        (const uint8_t *)v, strlen(v), false),
                         0);
    }
    rv = ml_route_match(s, listener_index(s, listener), &req);
    ml_h2_hdrs_deinit(&h);
    if (rv == -ENOENT) {
        return "(none)";
    }
    assert_true(rv >= 0 && (uint32_t)rv < s->n_routes);
    return s->routes[rv].name;
}

#define H(...) ((const char *const[]){__VA_ARGS__, NULL})

#define CLUSTERS                                                                                   \
    "[cluster a]\nendpoint = 127.0.0.1:1\n"                                                        \
    "[cluster b]\nendpoint = 127.0.0.1:2\n"                                                        \
    "[cluster c]\nendpoint = 127.0.0.1:3\n"

/* ---- file order, first match ---------------------------------------------------------------- */

static void test_first_matching_route_in_file_order_wins(void **state)
{
    struct ml_snapshot *s = load("[listener l]\nbind = 127.0.0.1:15001\n"
                                 "[route specific]\nlistener = l\npath = /a.S/M\nto = a\n"
                                 "[route svc]\nlistener = l\nprefix = /a.S/\nto = b\n"
                                 "[route all]\nlistener = l\nto = c\n"
                                 "[route never]\nlistener = l\npath = /a.S/M\nto = a\n" CLUSTERS);

    assert_string_equal(match(s, "l", "x", "/a.S/M", NULL), "specific");
    assert_string_equal(match(s, "l", "x", "/a.S/N", NULL), "svc");
    assert_string_equal(match(s, "l", "x", "/b.S/M", NULL), "all");
    ml_snapshot_unref(s);
}

static void test_a_catch_all_first_shadows_every_later_route(void **state)
{
    struct ml_snapshot *s =
        load("[listener l]\nbind = 127.0.0.1:15001\n"
             "[route all]\nlistener = l\nto = c\n"
             "[route specific]\nlistener = l\npath = /a.S/M\nto = a\n" CLUSTERS);

    assert_string_equal(match(s, "l", "x", "/a.S/M", NULL), "all");
    ml_snapshot_unref(s);
}

static void test_routes_of_other_listeners_are_not_considered(void **state)
{
    struct ml_snapshot *s = load("[listener one]\nbind = 127.0.0.1:15001\n"
                                 "[listener two]\nbind = 127.0.0.1:15002\n"
                                 "[route on-one]\nlistener = one\nprefix = /\nto = a\n"
                                 "[route on-two]\nlistener = two\nprefix = /x\nto = b\n" CLUSTERS);

    assert_string_equal(match(s, "one", "h", "/x", NULL), "on-one");
    assert_string_equal(match(s, "two", "h", "/x", NULL), "on-two");
    assert_string_equal(match(s, "two", "h", "/y", NULL), "(none)");
    ml_snapshot_unref(s);
}

static void test_no_route_is_enoent(void **state)
{
    struct ml_snapshot *s = load("[listener l]\nbind = 127.0.0.1:15001\n"
                                 "[listener empty]\nbind = 127.0.0.1:15002\n"
                                 "[route r]\nlistener = l\npath = /a.S/M\nto = a\n" CLUSTERS);

    assert_string_equal(match(s, "l", "h", "/a.S/Mx", NULL), "(none)");
    assert_string_equal(match(s, "empty", "h", "/a.S/M", NULL), "(none)");
    ml_snapshot_unref(s);
}

/* ---- authority ------------------------------------------------------------------------------ */

static void test_authority_glob_matches_with_and_without_port(void **state)
{
    struct ml_snapshot *s =
        load("[listener l]\nbind = 127.0.0.1:15001\n"
             "[route wild]\nlistener = l\nauthority = *.example.com\nto = a\n"
             "[route exact]\nlistener = l\nauthority = api.local\nto = b\n"
             "[route one]\nlistener = l\nauthority = node-*\nto = c\n" CLUSTERS);

    assert_string_equal(match(s, "l", "api.example.com", "/", NULL), "wild");
    assert_string_equal(match(s, "l", "api.example.com:8443", "/", NULL), "wild");
    assert_string_equal(match(s, "l", "a.b.EXAMPLE.com", "/", NULL), "wild");
    assert_string_equal(match(s, "l", "example.com", "/", NULL), "(none)"); /* no dot before */
    assert_string_equal(match(s, "l", "api.local", "/", NULL), "exact");
    assert_string_equal(match(s, "l", "API.Local:80", "/", NULL), "exact");
    assert_string_equal(match(s, "l", "api.local.evil", "/", NULL), "(none)");
    assert_string_equal(match(s, "l", "node-7:15001", "/", NULL), "one");
    assert_string_equal(match(s, "l", "node-77", "/", NULL), "one");
    assert_string_equal(match(s, "l", "xnode-7", "/", NULL), "(none)");
    ml_snapshot_unref(s);
}

static void test_authority_port_is_stripped_only_when_it_is_digits(void **state)
{
    assert_int_equal(ml_route_authority_host(sl("host:8080")).n, 4);
    assert_int_equal(ml_route_authority_host(sl("host")).n, 4);
    assert_int_equal(ml_route_authority_host(sl("host:")).n, 4);
    assert_int_equal(ml_route_authority_host(sl("host:80a")).n, 8); /* not a port */
    assert_int_equal(ml_route_authority_host(sl("[::1]:8080")).n, 5);
    assert_int_equal(ml_route_authority_host(sl("[::1]")).n, 5);
    assert_int_equal(ml_route_authority_host(sl("[::1")).n, 4); /* unclosed: left alone */
    assert_int_equal(ml_route_authority_host(sl("")).n, 0);
    assert_int_equal(ml_route_authority_host(sl("8080")).n, 4);
    assert_int_equal(ml_route_authority_host(sl(":8080")).n, 0);
}

static void test_ipv6_authority_matches_a_bracketed_glob(void **state)
{
    struct ml_snapshot *s = load("[listener l]\nbind = 127.0.0.1:15001\n"
                                 "[route v6]\nlistener = l\nauthority = [*]\nto = a\n" CLUSTERS);

    assert_string_equal(match(s, "l", "[2001:db8::1]:443", "/", NULL), "v6");
    assert_string_equal(match(s, "l", "[::1]", "/", NULL), "v6");
    assert_string_equal(match(s, "l", "v4.example", "/", NULL), "(none)");
    ml_snapshot_unref(s);
}

static void test_glob_stars_and_question_marks(void **state)
{
    assert_true(ml_route_glob("*", sl("")));
    assert_true(ml_route_glob("*", sl("anything")));
    assert_true(ml_route_glob("", sl("")));
    assert_false(ml_route_glob("", sl("a")));
    assert_false(ml_route_glob("?", sl("")));
    assert_true(ml_route_glob("a*b*c", sl("aXXbYYc")));
    assert_true(ml_route_glob("a*b*c", sl("abbbc")));
    assert_false(ml_route_glob("a*b*c", sl("aXXbYY")));
    assert_true(ml_route_glob("*.*", sl("a.b")));
    assert_true(ml_route_glob("**x", sl("abcx")));
    assert_true(ml_route_glob("A?C", sl("abc")));
    assert_false(ml_route_glob("abc", sl("ab")));
    assert_false(ml_route_glob("ab", sl("abc")));
}

/* ---- path ----------------------------------------------------------------------------------- */

static void test_exact_path_needs_the_whole_path_and_ignores_the_query(void **state)
{
    struct ml_snapshot *s = load("[listener l]\nbind = 127.0.0.1:15001\n"
                                 "[route exact]\nlistener = l\npath = /a.S/M\nto = a\n" CLUSTERS);

    assert_string_equal(match(s, "l", "h", "/a.S/M", NULL), "exact");
    assert_string_equal(match(s, "l", "h", "/a.S/M?x=1", NULL), "exact");
    assert_string_equal(match(s, "l", "h", "/a.S/M/", NULL), "(none)");
    assert_string_equal(match(s, "l", "h", "/a.S/", NULL), "(none)");
    assert_string_equal(match(s, "l", "h", "/a.s/m", NULL), "(none)"); /* case matters */
    assert_string_equal(match(s, "l", "h", "", NULL), "(none)");
    ml_snapshot_unref(s);
}

static void test_prefix_matches_paths_starting_with_it(void **state)
{
    struct ml_snapshot *s = load("[listener l]\nbind = 127.0.0.1:15001\n"
                                 "[route svc]\nlistener = l\nprefix = /a.S/\nto = a\n" CLUSTERS);

    assert_string_equal(match(s, "l", "h", "/a.S/", NULL), "svc"); /* the prefix itself */
    assert_string_equal(match(s, "l", "h", "/a.S/M", NULL), "svc");
    assert_string_equal(match(s, "l", "h", "/a.S/M?q", NULL), "svc");
    assert_string_equal(match(s, "l", "h", "/a.S", NULL), "(none)");
    assert_string_equal(match(s, "l", "h", "/a.SX/M", NULL), "(none)");
    assert_string_equal(match(s, "l", "h", "/b/a.S/M", NULL), "(none)");
    /* The query string is not part of the path a prefix looks at. */
    assert_string_equal(match(s, "l", "h", "/a.S?/", NULL), "(none)");
    ml_snapshot_unref(s);
}

/* ---- headers -------------------------------------------------------------------------------- */

static void test_header_without_value_matches_when_present(void **state)
{
    struct ml_snapshot *s = load("[listener l]\nbind = 127.0.0.1:15001\n"
                                 "[route dbg]\nlistener = l\nheader = x-debug\nto = a\n" CLUSTERS);

    assert_string_equal(match(s, "l", "h", "/", H("x-debug: ")), "dbg"); /* even empty */
    assert_string_equal(match(s, "l", "h", "/", H("x-debug: 1")), "dbg");
    assert_string_equal(match(s, "l", "h", "/", H("x-debugger: 1")), "(none)");
    assert_string_equal(match(s, "l", "h", "/", NULL), "(none)");
    ml_snapshot_unref(s);
}

static void test_header_name_matches_case_insensitively_value_exactly(void **state)
{
    struct ml_snapshot *s =
        load("[listener l]\nbind = 127.0.0.1:15001\n"
             "[route canary]\nlistener = l\nheader = X-Canary: Yes\nto = a\n" CLUSTERS);

    assert_string_equal(match(s, "l", "h", "/", H("x-canary: Yes")), "canary");
    assert_string_equal(match(s, "l", "h", "/", H("X-CANARY: Yes")), "canary");
    assert_string_equal(match(s, "l", "h", "/", H("x-canary: yes")), "(none)");
    assert_string_equal(match(s, "l", "h", "/", H("x-canary: Yes ")), "(none)");
    assert_string_equal(match(s, "l", "h", "/", H("x-canary: Ye")), "(none)");
    assert_string_equal(match(s, "l", "h", "/", H("x-canary: Yess")), "(none)");
    ml_snapshot_unref(s);
}

static void test_header_matches_any_of_repeated_fields(void **state)
{
    struct ml_snapshot *s =
        load("[listener l]\nbind = 127.0.0.1:15001\n"
             "[route canary]\nlistener = l\nheader = x-canary: 1\nto = a\n" CLUSTERS);

    assert_string_equal(match(s, "l", "h", "/", H("x-canary: 0", "x-other: 1", "X-Canary: 1")),
                        "canary");
    assert_string_equal(match(s, "l", "h", "/", H("x-canary: 0", "x-canary: 2")), "(none)");
    ml_snapshot_unref(s);
}

static void test_every_matcher_of_a_route_must_match(void **state)
{
    struct ml_snapshot *s = load("[listener l]\nbind = 127.0.0.1:15001\n"
                                 "[route all-of]\nlistener = l\nauthority = *.ex\nprefix = /p/\n"
                                 "header = x-a: 1\nheader = x-b\nto = a\n"
                                 "[route rest]\nlistener = l\nto = b\n" CLUSTERS);

    assert_string_equal(match(s, "l", "a.ex", "/p/m", H("x-a: 1", "x-b: z")), "all-of");
    assert_string_equal(match(s, "l", "a.ex", "/p/m", H("x-b: z", "x-a: 1")), "all-of");
    assert_string_equal(match(s, "l", "a.ex", "/p/m", H("x-a: 1")), "rest");
    assert_string_equal(match(s, "l", "a.ex", "/p/m", H("x-b: z")), "rest");
    assert_string_equal(match(s, "l", "a.ez", "/p/m", H("x-a: 1", "x-b: z")), "rest");
    assert_string_equal(match(s, "l", "a.ex", "/q/m", H("x-a: 1", "x-b: z")), "rest");
    ml_snapshot_unref(s);
}

static void test_matching_allocates_nothing(void **state)
{
    struct ml_snapshot *s = load("[listener l]\nbind = 127.0.0.1:15001\n"
                                 "[route r]\nlistener = l\nauthority = *.ex\nprefix = /p/\n"
                                 "header = x-a: 1\nto = a\n" CLUSTERS);
    struct ml_h2_hdrs h;
    struct ml_route_request req = {sl("a.ex:1"), sl("/p/m?q"), &h};

    ml_h2_hdrs_init(&h, 4096);
    assert_int_equal(ml_h2_hdrs_add_str(&h, "x-a", "1"), 0);
    ml_alloc_fail_after(0);
    assert_int_equal(ml_route_match(s, 0, &req), 0);
    assert_int_equal(ml_alloc_fail_after(-1), 0);
    ml_h2_hdrs_deinit(&h);
    ml_snapshot_unref(s);
}

/* ---- weighted split ------------------------------------------------------------------------- */

/* The smallest 32-bit r whose draw (r * total) >> 32 is at least k. */
static uint32_t first_r_for(uint64_t k, uint64_t total)
{
    return (uint32_t)(((k << 32) + total - 1) / total);
}

static void test_single_cluster_route_always_picks_it(void **state)
{
    struct ml_snapshot *s = load("[listener l]\nbind = 127.0.0.1:15001\n"
                                 "[route r]\nlistener = l\nto = b\n" CLUSTERS);
    const struct ml_cfg_route *r = route_named(s, "r");

    assert_int_equal(ml_route_pick_cluster(r, 0), cluster_index(s, "b"));
    assert_int_equal(ml_route_pick_cluster(r, 0x80000000u), cluster_index(s, "b"));
    assert_int_equal(ml_route_pick_cluster(r, UINT32_MAX), cluster_index(s, "b"));
    ml_snapshot_unref(s);
}

static void test_split_picks_by_the_random_number_with_exact_boundaries(void **state)
{
    struct ml_snapshot *s = load("[listener l]\nbind = 127.0.0.1:15001\n"
                                 "[route r]\nlistener = l\nto = a 90, b 10\n" CLUSTERS);
    const struct ml_cfg_route *r = route_named(s, "r");
    int a = cluster_index(s, "a"), b = cluster_index(s, "b");
    uint64_t total;
    uint32_t edge;

    assert_int_equal(r->n_split, 2);
    total = (uint64_t)r->split[0].weight + r->split[1].weight;
    /* The weights keep their ratio whatever unit the loader stores them in. */
    assert_int_equal(r->split[0].weight * 10, r->split[1].weight * 90);
    edge = first_r_for(r->split[0].weight, total);
    assert_int_equal(ml_route_pick_cluster(r, 0), a);
    assert_int_equal(ml_route_pick_cluster(r, edge - 1), a);
    assert_int_equal(ml_route_pick_cluster(r, edge), b);
    assert_int_equal(ml_route_pick_cluster(r, UINT32_MAX), b);
    /* 90% of the range goes to a, to within one r. */
    assert_true(edge >= (uint32_t)(0.9 * 4294967296.0) - 1 &&
                edge <= (uint32_t)(0.9 * 4294967296.0) + 1);
    ml_snapshot_unref(s);
}

static void test_three_way_split_boundaries_and_order(void **state)
{
    struct ml_snapshot *s = load("[listener l]\nbind = 127.0.0.1:15001\n"
                                 "[route r]\nlistener = l\nto = c 1, a 2, b 1\n" CLUSTERS);
    const struct ml_cfg_route *r = route_named(s, "r");
    int a = cluster_index(s, "a"), b = cluster_index(s, "b"), c = cluster_index(s, "c");
    uint64_t w0, w1, total;

    assert_int_equal(r->n_split, 3);
    w0 = r->split[0].weight;
    w1 = r->split[1].weight;
    total = w0 + w1 + r->split[2].weight;
    /* c gets [0, 1/4), a [1/4, 3/4), b [3/4, 1): with these weights the edges are exact. */
    assert_int_equal(first_r_for(w0, total), 0x40000000u);
    assert_int_equal(first_r_for(w0 + w1, total), 0xC0000000u);
    assert_int_equal(ml_route_pick_cluster(r, 0), c);
    assert_int_equal(ml_route_pick_cluster(r, 0x3FFFFFFFu), c);
    assert_int_equal(ml_route_pick_cluster(r, 0x40000000u), a);
    assert_int_equal(ml_route_pick_cluster(r, 0xBFFFFFFFu), a);
    assert_int_equal(ml_route_pick_cluster(r, 0xC0000000u), b);
    assert_int_equal(ml_route_pick_cluster(r, UINT32_MAX), b);
    ml_snapshot_unref(s);
}

static void test_split_distribution_over_evenly_spread_numbers_follows_the_weights(void **state)
{
    struct ml_snapshot *s = load("[listener l]\nbind = 127.0.0.1:15001\n"
                                 "[route r]\nlistener = l\nto = a 70, b 20, c 10\n" CLUSTERS);
    const struct ml_cfg_route *r = route_named(s, "r");
    unsigned hits[3] = {0};
    const unsigned n = 100000;

    for (unsigned i = 0; i < n; i++) {
        /* The i-th of n evenly spread numbers (rounded up onto the n-th of the range). */
        uint32_t rnd = (uint32_t)((((uint64_t)i << 32) + n - 1) / n);
        int cl = ml_route_pick_cluster(r, rnd);

        assert_true(cl >= 0 && cl < 3);
        hits[cl]++;
    }
    assert_int_equal(hits[cluster_index(s, "a")], 70000);
    assert_int_equal(hits[cluster_index(s, "b")], 20000);
    assert_int_equal(hits[cluster_index(s, "c")], 10000);
    ml_snapshot_unref(s);
}

static void test_zero_weight_cluster_is_never_picked(void **state)
{
    struct ml_snapshot *s = load("[listener l]\nbind = 127.0.0.1:15001\n"
                                 "[route r]\nlistener = l\nto = a 0, b 1, c 0\n" CLUSTERS);
    const struct ml_cfg_route *r = route_named(s, "r");

    for (uint64_t x = 0; x <= UINT32_MAX; x += 0x01000001u) {
        assert_int_equal(ml_route_pick_cluster(r, (uint32_t)x), cluster_index(s, "b"));
    }
    assert_int_equal(ml_route_pick_cluster(r, UINT32_MAX), cluster_index(s, "b"));
    ml_snapshot_unref(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_teardown(f, teardown)
        T(test_first_matching_route_in_file_order_wins),
        T(test_a_catch_all_first_shadows_every_later_route),
        T(test_routes_of_other_listeners_are_not_considered),
        T(test_no_route_is_enoent),
        T(test_authority_glob_matches_with_and_without_port),
        T(test_authority_port_is_stripped_only_when_it_is_digits),
        T(test_ipv6_authority_matches_a_bracketed_glob),
        T(test_glob_stars_and_question_marks),
        T(test_exact_path_needs_the_whole_path_and_ignores_the_query),
        T(test_prefix_matches_paths_starting_with_it),
        T(test_header_without_value_matches_when_present),
        T(test_header_name_matches_case_insensitively_value_exactly),
        T(test_header_matches_any_of_repeated_fields),
        T(test_every_matcher_of_a_route_must_match),
        T(test_matching_allocates_nothing),
        T(test_single_cluster_route_always_picks_it),
        T(test_split_picks_by_the_random_number_with_exact_boundaries),
        T(test_three_way_split_boundaries_and_order),
        T(test_split_distribution_over_evenly_spread_numbers_follows_the_weights),
        T(test_zero_weight_cluster_is_never_picked),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
