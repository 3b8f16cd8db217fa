/* h2/hdrs.c: bounded header lists and the fields HTTP/2 forbids on relay. */
#include "h2/hdrs.h"

#include "core/alloc.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
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

static struct ml_slice sl(const char *s)
{
    return (struct ml_slice){(const uint8_t *)s, strlen(s)};
}

static bool forbidden(const char *name, const char *value)
{
    return ml_h2_field_is_connection_specific(sl(name), sl(value));
}

static void assert_slice_equal(struct ml_slice s, const char *want)
{
    assert_int_equal(s.n, strlen(want));
    assert_memory_equal(s.p, want, s.n);
}

/* ---- connection-specific fields ------------------------------------------------------------ */

static void test_connection_specific_fields_are_forbidden(void **state)
{
    assert_true(forbidden("connection", "close"));
    assert_true(forbidden("keep-alive", "timeout=5"));
    assert_true(forbidden("proxy-connection", "keep-alive"));
    assert_true(forbidden("transfer-encoding", "chunked"));
    assert_true(forbidden("upgrade", "h2c"));
    assert_true(forbidden("http2-settings", "AAMAAABkAAQAAP__"));
    assert_true(forbidden("connection", "")); /* whatever the value */
}

static void test_connection_specific_names_match_case_insensitively(void **state)
{
    assert_true(forbidden("Connection", "close"));
    assert_true(forbidden("TRANSFER-ENCODING", "chunked"));
    assert_true(forbidden("Keep-Alive", "x"));
}

static void test_te_trailers_is_kept_and_any_other_te_is_forbidden(void **state)
{
    assert_false(forbidden("te", "trailers"));
    assert_false(forbidden("TE", "Trailers")); /* token, compared case-insensitively */
    assert_true(forbidden("te", "gzip"));
    assert_true(forbidden("te", "trailers, gzip"));
    assert_true(forbidden("te", "trailer"));
    assert_true(forbidden("te", ""));
}

static void test_ordinary_and_lookalike_fields_are_kept(void **state)
{
    assert_false(forbidden("content-type", "application/grpc"));
    assert_false(forbidden("grpc-timeout", "1S"));
    assert_false(forbidden(":path", "/a.B/C"));
    assert_false(forbidden("connections", "1"));  /* longer */
    assert_false(forbidden("connectio", "1"));    /* shorter */
    assert_false(forbidden("x-connection", "1")); /* suffix */
    assert_false(forbidden("tex", "trailers"));
    assert_false(forbidden("", ""));
}

static void test_names_with_embedded_nul_are_not_mistaken_for_forbidden_ones(void **state)
{
    static const uint8_t name[] = {'t', 'e', 0, 'x'};
    static const uint8_t conn[] = {'u', 'p', 'g', 'r', 'a', 'd', 'e', 0};

    assert_false(
        ml_h2_field_is_connection_specific((struct ml_slice){name, sizeof(name)}, sl("gzip")));
    assert_false(
        ml_h2_field_is_connection_specific((struct ml_slice){conn, sizeof(conn)}, sl("h2c")));
}

/* ---- the list ------------------------------------------------------------------------------- */

static void test_fields_keep_order_repeats_and_exact_bytes(void **state)
{
    static const uint8_t bin[] = {0, 1, 0xff, '\r', '\n'};
    struct ml_h2_hdrs h;

    ml_h2_hdrs_init(&h, 4096);
    assert_int_equal(ml_h2_hdrs_add_str(&h, ":method", "POST"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&h, "x-a", "1"), 0);
    assert_int_equal(ml_h2_hdrs_add(&h, (const uint8_t *)"x-bin", 5, bin, sizeof(bin), true), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&h, "X-A", "2"), 0);
    assert_int_equal(h.n_fields, 4);
    assert_slice_equal(ml_h2_hdrs_name(&h, 0), ":method");
    assert_slice_equal(ml_h2_hdrs_value(&h, 0), "POST");
    assert_int_equal(ml_h2_hdrs_value(&h, 2).n, sizeof(bin));
    assert_memory_equal(ml_h2_hdrs_value(&h, 2).p, bin, sizeof(bin));
    assert_true(h.fields[2].never_index);
    assert_false(h.fields[1].never_index);
    /* names kept as sent; add_str lowers its own (lists go out as they are: h2/stream.c) */
    assert_slice_equal(ml_h2_hdrs_name(&h, 3), "x-a");
    ml_h2_hdrs_deinit(&h);
}

static void test_find_is_case_insensitive_and_walks_repeats(void **state)
{
    struct ml_h2_hdrs h;

    ml_h2_hdrs_init(&h, 4096);
    assert_int_equal(ml_h2_hdrs_add_str(&h, "x-a", "1"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&h, "x-b", "2"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&h, "X-A", "3"), 0);
    assert_int_equal(ml_h2_hdrs_find(&h, "x-a", 0), 0);
    assert_int_equal(ml_h2_hdrs_find(&h, "X-a", 1), 2);
    assert_int_equal(ml_h2_hdrs_find(&h, "x-a", 3), -ENOENT);
    assert_int_equal(ml_h2_hdrs_find(&h, "x-a", 100), -ENOENT);
    assert_int_equal(ml_h2_hdrs_find(&h, "x", 0), -ENOENT);    /* a prefix is not the name */
    assert_int_equal(ml_h2_hdrs_find(&h, "x-ab", 0), -ENOENT); /* nor a longer one */
    ml_h2_hdrs_deinit(&h);
}

static void test_list_size_counts_name_value_and_32_per_field(void **state)
{
    struct ml_h2_hdrs h;

    ml_h2_hdrs_init(&h, 4096);
    assert_int_equal(ml_h2_hdrs_add_str(&h, "abc", "12345"), 0);
    assert_int_equal(h.list_bytes, 3 + 5 + 32);
    assert_int_equal(ml_h2_hdrs_add_str(&h, "", ""), 0);
    assert_int_equal(h.list_bytes, 3 + 5 + 32 + 32);
    ml_h2_hdrs_deinit(&h);
}

static void test_list_may_reach_the_bound_exactly_but_not_pass_it(void **state)
{
    struct ml_h2_hdrs h;

    ml_h2_hdrs_init(&h, 2 * 32 + 10);
    assert_int_equal(ml_h2_hdrs_add_str(&h, "a", "1234"), 0);          /* 37 */
    assert_int_equal(ml_h2_hdrs_add_str(&h, "b", "123456"), -ENOBUFS); /* 37 + 39 > 74 */
    assert_int_equal(h.n_fields, 1);
    assert_int_equal(h.list_bytes, 37);
    assert_int_equal(ml_h2_hdrs_add_str(&h, "b", "1234"), 0); /* 37 + 37 = 74 */
    assert_int_equal(h.list_bytes, 2 * 32 + 10);
    assert_int_equal(ml_h2_hdrs_add_str(&h, "", ""), -ENOBUFS); /* even an empty field costs 32 */
    assert_int_equal(h.n_fields, 2);
    ml_h2_hdrs_deinit(&h);
}

static void test_field_larger_than_the_bound_is_refused_on_an_empty_list(void **state)
{
    struct ml_h2_hdrs h;

    ml_h2_hdrs_init(&h, 31);
    assert_int_equal(ml_h2_hdrs_add_str(&h, "", ""), -ENOBUFS);
    ml_h2_hdrs_deinit(&h);
    ml_h2_hdrs_init(&h, 0);
    assert_int_equal(ml_h2_hdrs_add_str(&h, "a", "b"), -ENOBUFS);
    assert_int_equal(h.n_fields, 0);
    assert_null(h.fields);
    ml_h2_hdrs_deinit(&h);
}

static void test_lengths_that_would_wrap_are_refused(void **state)
{
    struct ml_h2_hdrs h;
    uint8_t b = 'x';

    /* name + value + 32 wrapping around to a small size must not pass the bound (and nothing is
     * read from the pointers). */
    ml_h2_hdrs_init(&h, 16384);
    assert_int_equal(ml_h2_hdrs_add(&h, &b, SIZE_MAX - 10, &b, 1, false), -ENOBUFS);
    assert_int_equal(ml_h2_hdrs_add(&h, &b, 1, &b, SIZE_MAX - 10, false), -ENOBUFS);
    assert_int_equal(ml_h2_hdrs_add(&h, &b, SIZE_MAX / 2, &b, SIZE_MAX / 2 + 1, false), -ENOBUFS);
    assert_int_equal(ml_h2_hdrs_add(&h, &b, SIZE_MAX, &b, SIZE_MAX, false), -ENOBUFS);
    assert_int_equal(h.n_fields, 0);
    assert_int_equal(h.list_bytes, 0);
    ml_h2_hdrs_deinit(&h);
}

static void test_many_fields_grow_within_the_bound(void **state)
{
    struct ml_h2_hdrs h;
    char name[16], value[16];
    uint32_t n = 0;

    ml_h2_hdrs_init(&h, 16384);
    for (;; n++) {
        int rv;

        snprintf(name, sizeof(name), "x-%u", n);
        snprintf(value, sizeof(value), "v%u", n);
        if ((rv = ml_h2_hdrs_add_str(&h, name, value)) < 0) {
            assert_int_equal(rv, -ENOBUFS);
            break;
        }
    }
    assert_true(n > 200);
    assert_true(h.list_bytes <= 16384);
    for (uint32_t i = 0; i < n; i += 37) {
        snprintf(value, sizeof(value), "v%u", i);
        snprintf(name, sizeof(name), "X-%u", i);
        assert_int_equal(ml_h2_hdrs_find(&h, name, 0), (int)i);
        assert_slice_equal(ml_h2_hdrs_value(&h, i), value);
    }
    ml_h2_hdrs_deinit(&h);
}

static void test_clear_empties_and_keeps_the_bound(void **state)
{
    struct ml_h2_hdrs h;

    ml_h2_hdrs_init(&h, 100);
    assert_int_equal(ml_h2_hdrs_add_str(&h, "a", "b"), 0);
    ml_h2_hdrs_clear(&h);
    assert_int_equal(h.n_fields, 0);
    assert_int_equal(h.list_bytes, 0);
    assert_int_equal(ml_h2_hdrs_find(&h, "a", 0), -ENOENT);
    ml_alloc_fail_after(0); /* the memory is reused: no allocation */
    assert_int_equal(ml_h2_hdrs_add_str(&h, "c", "d"), 0);
    ml_alloc_fail_after(-1);
    assert_int_equal(h.max_list_bytes, 100);
    ml_h2_hdrs_deinit(&h);
}

static void test_move_hands_over_fields_and_leaves_the_source_empty(void **state)
{
    struct ml_h2_hdrs src, dst;

    ml_h2_hdrs_init(&src, 1000);
    ml_h2_hdrs_init(&dst, 500);
    assert_int_equal(ml_h2_hdrs_add_str(&src, "a", "1"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&src, "b", "2"), 0);
    ml_h2_hdrs_move(&dst, &src);
    assert_int_equal(dst.n_fields, 2);
    assert_slice_equal(ml_h2_hdrs_value(&dst, 1), "2");
    assert_int_equal(src.n_fields, 0);
    assert_null(src.fields);
    assert_int_equal(src.max_list_bytes, 1000);
    assert_int_equal(ml_h2_hdrs_add_str(&src, "c", "3"), 0); /* still usable */
    ml_h2_hdrs_deinit(&src);
    ml_h2_hdrs_deinit(&dst);
}

/* Each allocation failing in turn while a list grows: -ENOMEM, the fields already there stay
 * whole, and the same add succeeds afterwards. */
static void test_each_failing_allocation_leaves_the_list_whole(void **state)
{
    char name[16];
    long fail_at;

    for (fail_at = 0; fail_at < 64; fail_at++) {
        struct ml_h2_hdrs h;
        uint32_t n = 0;
        int rv = 0;

        ml_h2_hdrs_init(&h, 16384);
        ml_alloc_fail_after(fail_at);
        for (n = 0; n < 40; n++) {
            snprintf(name, sizeof(name), "name-%u", n);
            if ((rv = ml_h2_hdrs_add_str(&h, name, "a value of some length....")) < 0) {
                break;
            }
        }
        ml_alloc_fail_after(-1);
        if (rv == 0) {
            ml_h2_hdrs_deinit(&h);
            break;
        }
        assert_int_equal(rv, -ENOMEM);
        assert_int_equal(h.n_fields, n);
        for (uint32_t i = 0; i < n; i++) {
            snprintf(name, sizeof(name), "name-%u", i);
            assert_slice_equal(ml_h2_hdrs_name(&h, i), name);
            assert_slice_equal(ml_h2_hdrs_value(&h, i), "a value of some length....");
        }
        snprintf(name, sizeof(name), "name-%u", n);
        assert_int_equal(ml_h2_hdrs_add_str(&h, name, "x"), 0);
        assert_int_equal(h.n_fields, n + 1);
        ml_h2_hdrs_deinit(&h);
    }
    assert_true(fail_at > 1);  /* failures were hit on the way */
    assert_true(fail_at < 64); /* and it finished */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_teardown(f, teardown)
        T(test_connection_specific_fields_are_forbidden),
        T(test_connection_specific_names_match_case_insensitively),
        T(test_te_trailers_is_kept_and_any_other_te_is_forbidden),
        T(test_ordinary_and_lookalike_fields_are_kept),
        T(test_names_with_embedded_nul_are_not_mistaken_for_forbidden_ones),
        T(test_fields_keep_order_repeats_and_exact_bytes),
        T(test_find_is_case_insensitive_and_walks_repeats),
        T(test_list_size_counts_name_value_and_32_per_field),
        T(test_list_may_reach_the_bound_exactly_but_not_pass_it),
        T(test_field_larger_than_the_bound_is_refused_on_an_empty_list),
        T(test_lengths_that_would_wrap_are_refused),
        T(test_many_fields_grow_within_the_bound),
        T(test_clear_empties_and_keeps_the_bound),
        T(test_move_hands_over_fields_and_leaves_the_source_empty),
        T(test_each_failing_allocation_leaves_the_list_whole),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
