/* core/arena.c: the capped bump allocator config snapshots live in. */
#include "core/arena.h"

#include "core/alloc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static int teardown(void **state)
{
    ml_alloc_fail_after(-1);
    return 0;
}

static void test_init_allocates_nothing(void **state)
{
    struct ml_arena a;

    ml_alloc_fail_after(-1);
    ml_arena_init(&a, 1 << 20);
    assert_int_equal(ml_alloc_fail_after(-1), 0);
    assert_null(a.head);
    assert_int_equal(a.used_bytes, 0);
    ml_arena_deinit(&a);
    ml_arena_deinit(&a); /* twice is harmless */
}

static void test_alloc_returns_zeroed_aligned_memory(void **state)
{
    struct ml_arena a;

    ml_arena_init(&a, 1 << 20);
    for (size_t n = 1; n < 300; n += 7) {
        unsigned char *p = ml_arena_alloc(&a, n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(p[i], 0);
        }
        memset(p, 0xa5, n); /* ours to write, whole */
    }
    ml_arena_deinit(&a);
}

static void test_allocations_do_not_overlap(void **state)
{
    struct ml_arena a;
    unsigned char *v[200];

    ml_arena_init(&a, 1 << 20);
    for (int i = 0; i < 200; i++) {
        v[i] = ml_arena_alloc(&a, 40);
        assert_non_null(v[i]);
        memset(v[i], i, 40);
    }
    for (int i = 0; i < 200; i++) {
        for (int j = 0; j < 40; j++) {
            assert_int_equal(v[i][j], (unsigned char)i);
        }
    }
    ml_arena_deinit(&a);
}

static void test_small_allocations_share_chunks(void **state)
{
    struct ml_arena a;

    ml_arena_init(&a, 1 << 20);
    ml_alloc_fail_after(-1);
    for (int i = 0; i < 64; i++) {
        assert_non_null(ml_arena_alloc(&a, 16));
    }
    /* 64 x 16 bytes fit in one 4 KiB chunk: one malloc */
    assert_int_equal(ml_alloc_fail_after(-1), 1);
    assert_int_equal(a.used_bytes, 4096);
    ml_arena_deinit(&a);
}

static void test_large_allocation_gets_a_chunk_of_its_own(void **state)
{
    struct ml_arena a;
    char *big;

    ml_arena_init(&a, 1 << 20);
    assert_non_null(ml_arena_alloc(&a, 8));
    big = ml_arena_alloc(&a, 10000);
    assert_non_null(big);
    memset(big, 1, 10000);
    assert_true(a.used_bytes >= 4096 + 10000);
    ml_arena_deinit(&a);
}

static void test_zero_byte_allocation_is_a_distinct_pointer(void **state)
{
    struct ml_arena a;
    void *p, *q;

    ml_arena_init(&a, 1 << 20);
    p = ml_arena_alloc(&a, 0);
    q = ml_arena_alloc(&a, 0);
    assert_non_null(p);
    assert_non_null(q);
    assert_ptr_not_equal(p, q);
    ml_arena_deinit(&a);
}

static void test_cap_is_never_passed(void **state)
{
    struct ml_arena a;
    int n = 0;

    ml_arena_init(&a, 3 * 4096);
    while (ml_arena_alloc(&a, 1000) != NULL) {
        n++;
        assert_true(a.used_bytes <= 3 * 4096);
        assert_true(n < 100);
    }
    assert_true(n >= 9); /* three 4 KiB chunks of at least three pieces each */
    assert_int_equal(a.used_bytes, 3 * 4096);
    assert_null(ml_arena_alloc(&a, 5000));
    assert_int_equal(a.used_bytes, 3 * 4096);
    ml_arena_deinit(&a);
}

static void test_a_request_larger_than_the_cap_fails(void **state)
{
    struct ml_arena a;

    ml_arena_init(&a, 8192);
    assert_null(ml_arena_alloc(&a, 8193));
    assert_int_equal(a.used_bytes, 0);
    assert_non_null(ml_arena_alloc(&a, 8192));
    ml_arena_deinit(&a);
}

static void test_a_size_that_would_overflow_fails(void **state)
{
    struct ml_arena a;

    ml_arena_init(&a, SIZE_MAX);
    assert_null(ml_arena_alloc(&a, SIZE_MAX));
    assert_null(ml_arena_alloc(&a, SIZE_MAX - 3));
    assert_int_equal(a.used_bytes, 0);
    ml_arena_deinit(&a);
}

static void test_out_of_memory_returns_null_and_the_arena_stays_usable(void **state)
{
    struct ml_arena a;

    ml_arena_init(&a, 1 << 20);
    ml_alloc_fail_after(0);
    assert_null(ml_arena_alloc(&a, 10));
    assert_null(ml_arena_strdup(&a, "x"));
    assert_int_equal(a.used_bytes, 0);
    ml_alloc_fail_after(-1);
    assert_non_null(ml_arena_alloc(&a, 10));
    ml_arena_deinit(&a);
}

static void test_each_chunk_allocation_failing_in_turn(void **state)
{
    for (long fail = 0; fail < 6; fail++) {
        struct ml_arena a;
        int got = 0;

        ml_arena_init(&a, 1 << 20);
        ml_alloc_fail_after(fail);
        for (int i = 0; i < 5; i++) {
            got += ml_arena_alloc(&a, 3000) != NULL; /* a chunk each */
        }
        ml_alloc_fail_after(-1);
        assert_int_equal(got, fail < 5 ? fail : 5);
        ml_arena_deinit(&a); /* frees what was made: valgrind shows no leak */
    }
}

static void test_strndup_copies_and_terminates(void **state)
{
    struct ml_arena a;
    char *s;

    ml_arena_init(&a, 1 << 20);
    s = ml_arena_strndup(&a, "greeter-v2 and more", 10);
    assert_string_equal(s, "greeter-v2");
    s = ml_arena_strdup(&a, "");
    assert_string_equal(s, "");
    s = ml_arena_strndup(&a, "a\0b", 3); /* bytes, not a C string */
    assert_memory_equal(s, "a\0b\0", 4);
    ml_arena_deinit(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_teardown(f, teardown)
        T(test_init_allocates_nothing),
        T(test_alloc_returns_zeroed_aligned_memory),
        T(test_allocations_do_not_overlap),
        T(test_small_allocations_share_chunks),
        T(test_large_allocation_gets_a_chunk_of_its_own),
        T(test_zero_byte_allocation_is_a_distinct_pointer),
        T(test_cap_is_never_passed),
        T(test_a_request_larger_than_the_cap_fails),
        T(test_a_size_that_would_overflow_fails),
        T(test_out_of_memory_returns_null_and_the_arena_stays_usable),
        T(test_each_chunk_allocation_failing_in_turn),
        T(test_strndup_copies_and_terminates),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
