/* core/buf.c: the bounded byte queue call bodies wait in. */
#include "core/buf.h"

#include "core/alloc.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* buf.c's chunk size (private there): the tests cross its boundaries on purpose. They only
 * depend on it for how many allocations an append makes. */
#define CHUNK 8192

static int teardown(void **state)
{
    ml_alloc_fail_after(-1);
    return 0;
}

/* Byte i of the test stream: not periodic in a chunk size, so a misplaced copy shows. */
static uint8_t pattern(size_t i)
{
    return (uint8_t)((i * 31u + i / 251u) ^ 0x5a);
}

static void fill(uint8_t *p, size_t from, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = pattern(from + i);
    }
}

static void expect_pattern(const uint8_t *p, size_t from, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != pattern(from + i)) {
            fail_msg("byte %zu of the stream: got 0x%02x, want 0x%02x", from + i, p[i],
                     pattern(from + i));
        }
    }
}

static void test_init_allocates_nothing_and_is_empty(void **state)
{
    struct ml_buf b;
    uint8_t out[4];

    ml_alloc_fail_after(-1);
    ml_buf_init(&b, 100);
    assert_int_equal(ml_alloc_fail_after(-1), 0);
    assert_int_equal(ml_buf_len(&b), 0);
    assert_int_equal(ml_buf_read(&b, out, sizeof(out)), 0);
    ml_buf_deinit(&b);
    ml_buf_deinit(&b); /* twice is harmless */
}

static void test_empty_append_is_accepted_and_allocates_nothing(void **state)
{
    struct ml_buf b;

    ml_buf_init(&b, 0);
    ml_alloc_fail_after(0); /* any allocation would fail */
    assert_int_equal(ml_buf_append(&b, (const uint8_t *)"", 0), 0);
    assert_int_equal(ml_buf_len(&b), 0);
    ml_alloc_fail_after(-1);
    ml_buf_deinit(&b);
}

static void test_bytes_come_out_in_order(void **state)
{
    struct ml_buf b;
    uint8_t out[16];

    ml_buf_init(&b, 100);
    assert_int_equal(ml_buf_append(&b, (const uint8_t *)"hello ", 6), 0);
    assert_int_equal(ml_buf_append(&b, (const uint8_t *)"world", 5), 0);
    assert_int_equal(ml_buf_len(&b), 11);
    assert_int_equal(ml_buf_read(&b, out, 3), 3);
    assert_memory_equal(out, "hel", 3);
    assert_int_equal(ml_buf_len(&b), 8);
    assert_int_equal(ml_buf_read(&b, out, sizeof(out)), 8);
    assert_memory_equal(out, "lo world", 8);
    assert_int_equal(ml_buf_len(&b), 0);
    assert_int_equal(ml_buf_read(&b, out, sizeof(out)), 0);
    ml_buf_deinit(&b);
}

static void test_read_with_zero_cap_takes_nothing(void **state)
{
    struct ml_buf b;
    uint8_t out[1];

    ml_buf_init(&b, 10);
    assert_int_equal(ml_buf_append(&b, (const uint8_t *)"abc", 3), 0);
    assert_int_equal(ml_buf_read(&b, out, 0), 0);
    assert_int_equal(ml_buf_len(&b), 3);
    ml_buf_deinit(&b);
}

static void test_append_up_to_the_cap_exactly_is_accepted(void **state)
{
    struct ml_buf b;
    uint8_t in[10] = "0123456789", out[10];

    ml_buf_init(&b, 10);
    assert_int_equal(ml_buf_append(&b, in, 4), 0);
    assert_int_equal(ml_buf_append(&b, in + 4, 6), 0);
    assert_int_equal(ml_buf_len(&b), 10);
    assert_int_equal(ml_buf_read(&b, out, sizeof(out)), 10);
    assert_memory_equal(out, in, 10);
    ml_buf_deinit(&b);
}

static void test_append_past_the_cap_is_enobufs_and_appends_nothing(void **state)
{
    struct ml_buf b;
    uint8_t out[16];

    ml_buf_init(&b, 10);
    assert_int_equal(ml_buf_append(&b, (const uint8_t *)"abcdefgh", 8), 0);
    assert_int_equal(ml_buf_append(&b, (const uint8_t *)"xyz", 3), -ENOBUFS);
    assert_int_equal(ml_buf_len(&b), 8);
    /* Not even the part that would have fitted went in. */
    assert_int_equal(ml_buf_append(&b, (const uint8_t *)"12", 2), 0);
    assert_int_equal(ml_buf_append(&b, (const uint8_t *)"3", 1), -ENOBUFS);
    assert_int_equal(ml_buf_read(&b, out, sizeof(out)), 10);
    assert_memory_equal(out, "abcdefgh12", 10);
    ml_buf_deinit(&b);
}

static void test_zero_cap_refuses_every_byte(void **state)
{
    struct ml_buf b;

    ml_buf_init(&b, 0);
    assert_int_equal(ml_buf_append(&b, (const uint8_t *)"a", 1), -ENOBUFS);
    assert_int_equal(ml_buf_len(&b), 0);
    ml_buf_deinit(&b);
}

static void test_reading_makes_room_under_the_cap_again(void **state)
{
    struct ml_buf b;
    uint8_t out[8];

    ml_buf_init(&b, 8);
    assert_int_equal(ml_buf_append(&b, (const uint8_t *)"abcdefgh", 8), 0);
    assert_int_equal(ml_buf_append(&b, (const uint8_t *)"i", 1), -ENOBUFS);
    assert_int_equal(ml_buf_read(&b, out, 3), 3);
    assert_int_equal(ml_buf_append(&b, (const uint8_t *)"ijk", 3), 0);
    assert_int_equal(ml_buf_append(&b, (const uint8_t *)"l", 1), -ENOBUFS);
    assert_int_equal(ml_buf_read(&b, out, sizeof(out)), 8);
    assert_memory_equal(out, "defghijk", 8);
    ml_buf_deinit(&b);
}

static void test_huge_append_does_not_overflow_the_cap_check(void **state)
{
    struct ml_buf b;
    uint8_t one = 1;

    ml_buf_init(&b, 16);
    assert_int_equal(ml_buf_append(&b, &one, 1), 0);
    /* len + n would wrap around SIZE_MAX: still refused, and nothing is read from p. */
    assert_int_equal(ml_buf_append(&b, &one, SIZE_MAX), -ENOBUFS);
    assert_int_equal(ml_buf_len(&b), 1);
    ml_buf_deinit(&b);
}

static void test_one_append_larger_than_a_chunk_spans_chunks(void **state)
{
    const size_t n = 3 * CHUNK + 17;
    struct ml_buf b;
    uint8_t *in = malloc(n), *out = malloc(n);

    assert_non_null(in);
    assert_non_null(out);
    fill(in, 0, n);
    ml_buf_init(&b, n);
    ml_alloc_fail_after(-1);
    assert_int_equal(ml_buf_append(&b, in, n), 0);
    assert_int_equal(ml_alloc_fail_after(-1), 4); /* whole chunks only: 4 for 3 and a bit */
    assert_int_equal(ml_buf_len(&b), n);
    memset(out, 0, n);
    assert_int_equal(ml_buf_read(&b, out, n), n);
    expect_pattern(out, 0, n);
    assert_int_equal(ml_buf_len(&b), 0);
    ml_buf_deinit(&b);
    free(in);
    free(out);
}

static void test_small_appends_fill_a_chunk_before_allocating_another(void **state)
{
    struct ml_buf b;
    uint8_t in[100];

    ml_buf_init(&b, 4 * CHUNK);
    fill(in, 0, sizeof(in));
    ml_alloc_fail_after(-1);
    for (size_t done = 0; done + sizeof(in) <= CHUNK; done += sizeof(in)) {
        assert_int_equal(ml_buf_append(&b, in, sizeof(in)), 0);
    }
    assert_int_equal(ml_alloc_fail_after(-1), 1);
    ml_buf_deinit(&b);
}

/* The queue used as a ring: appends and reads of sizes that do not divide the chunk size, so
 * both ends keep crossing chunk boundaries, with the cap reached again and again. */
static void test_wrap_around_keeps_fifo_order_across_chunk_boundaries(void **state)
{
    const size_t cap = 2 * CHUNK + 100;
    static const size_t in_sizes[] = {1, 4095, 8191, 8192, 8193, 37, 16384, 3};
    static const size_t out_sizes[] = {8192, 1, 5000, 12289, 7, 8193, 999};
    struct ml_buf b;
    uint8_t *in = malloc(cap), *out = malloc(cap);
    size_t written = 0, readn = 0;
    unsigned refused = 0;

    assert_non_null(in);
    assert_non_null(out);
    ml_buf_init(&b, cap);
    for (unsigned round = 0; round < 400; round++) {
        size_t n = in_sizes[round % (sizeof(in_sizes) / sizeof(in_sizes[0]))];
        size_t m = out_sizes[(round * 3) % (sizeof(out_sizes) / sizeof(out_sizes[0]))];
        size_t got;
        int rv;

        fill(in, written, n);
        rv = ml_buf_append(&b, in, n);
        if (n > cap - (written - readn)) {
            assert_int_equal(rv, -ENOBUFS);
            refused++;
        } else {
            assert_int_equal(rv, 0);
            written += n;
        }
        assert_int_equal(ml_buf_len(&b), written - readn);
        if (round % 2 == 1) {
            got = ml_buf_read(&b, out, m);
            assert_int_equal(got, m < written - readn ? m : written - readn);
            expect_pattern(out, readn, got);
            readn += got;
            assert_int_equal(ml_buf_len(&b), written - readn);
        }
    }
    assert_true(refused > 0); /* the cap was hit, and the queue went on working after */
    assert_true(written > 10 * cap);
    while (ml_buf_len(&b) > 0) {
        size_t got = ml_buf_read(&b, out, 3000);
        expect_pattern(out, readn, got);
        readn += got;
    }
    assert_int_equal(readn, written);
    ml_buf_deinit(&b);
    free(in);
    free(out);
}

static void test_deinit_drops_what_is_held_and_the_buffer_is_reusable(void **state)
{
    struct ml_buf b;
    uint8_t in[3 * CHUNK], out[4];

    fill(in, 0, sizeof(in));
    ml_buf_init(&b, sizeof(in));
    assert_int_equal(ml_buf_append(&b, in, sizeof(in)), 0);
    ml_buf_deinit(&b);
    assert_int_equal(ml_buf_len(&b), 0);
    assert_int_equal(ml_buf_read(&b, out, sizeof(out)), 0);
    /* The cap survives deinit. */
    assert_int_equal(ml_buf_append(&b, in, sizeof(in)), 0);
    assert_int_equal(ml_buf_append(&b, in, 1), -ENOBUFS);
    ml_buf_deinit(&b);
}

/* Every allocation of an append failing in turn: -ENOMEM, nothing appended (neither the length
 * nor the bytes already held change), and the same append succeeds once memory is back. */
static void test_each_failing_allocation_leaves_the_buffer_unchanged(void **state)
{
    const size_t held = CHUNK - 10;  /* the tail chunk has room for 10 more */
    const size_t n = 3 * CHUNK + 20; /* 10 in the tail chunk, 4 new chunks for the rest */
    struct ml_buf b;
    uint8_t *in = malloc(held + n), *out = malloc(held + n);
    long fail_at, allocs = -1;

    assert_non_null(in);
    assert_non_null(out);
    fill(in, 0, held + n);
    for (fail_at = 0;; fail_at++) {
        int rv;

        ml_buf_init(&b, held + n);
        assert_int_equal(ml_buf_append(&b, in, held), 0);
        ml_alloc_fail_after(fail_at);
        rv = ml_buf_append(&b, in + held, n);
        allocs = ml_alloc_fail_after(-1);
        if (rv == 0) {
            break;
        }
        assert_int_equal(rv, -ENOMEM);
        assert_int_equal(ml_buf_len(&b), held);
        /* Still usable: the rest goes in now, and the stream is whole. */
        assert_int_equal(ml_buf_append(&b, in + held, n), 0);
        assert_int_equal(ml_buf_read(&b, out, held + n), held + n);
        expect_pattern(out, 0, held + n);
        ml_buf_deinit(&b);
    }
    assert_int_equal(fail_at, 4);
    assert_int_equal(allocs, 4);
    assert_int_equal(ml_buf_read(&b, out, held + n), held + n);
    expect_pattern(out, 0, held + n);
    ml_buf_deinit(&b);
    free(in);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_teardown(f, teardown)
        T(test_init_allocates_nothing_and_is_empty),
        T(test_empty_append_is_accepted_and_allocates_nothing),
        T(test_bytes_come_out_in_order),
        T(test_read_with_zero_cap_takes_nothing),
        T(test_append_up_to_the_cap_exactly_is_accepted),
        T(test_append_past_the_cap_is_enobufs_and_appends_nothing),
        T(test_zero_cap_refuses_every_byte),
        T(test_reading_makes_room_under_the_cap_again),
        T(test_huge_append_does_not_overflow_the_cap_check),
        T(test_one_append_larger_than_a_chunk_spans_chunks),
        T(test_small_appends_fill_a_chunk_before_allocating_another),
        T(test_wrap_around_keeps_fifo_order_across_chunk_boundaries),
        T(test_deinit_drops_what_is_held_and_the_buffer_is_reusable),
        T(test_each_failing_allocation_leaves_the_buffer_unchanged),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
