/* h2/mem.c: nghttp2's allocator for one connection. Freed blocks come back for the next
 * allocation of their size class without touching the heap (ml_alloc_count does not move); the
 * spare lists stay under H2_MEM_SPARE_BYTES; realloc keeps the bytes across classes and beyond
 * them; an allocation that fails returns NULL; deinit gives every spare back (the sanitizer build
 * checks for leaks). */
#include "h2/h2_int.h"

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

static void test_a_freed_block_serves_the_next_allocation_of_its_class(void **state)
{
    struct ml_h2_mem m;
    void *a, *b;
    unsigned long before;

    ml_h2_mem_init(&m);
    assert_non_null(a = ml_h2_mem_malloc(100, &m));
    memset(a, 0xab, 100);
    ml_h2_mem_free(a, &m);
    assert_int_equal(m.spare_bytes, 128);
    before = ml_alloc_count();
    assert_ptr_equal(b = ml_h2_mem_malloc(120, &m), a); /* the same 128-byte class */
    assert_int_equal(ml_alloc_count(), before);
    assert_int_equal(m.spare_bytes, 0);
    ml_h2_mem_free(b, &m);
    ml_h2_mem_deinit(&m);
    assert_int_equal(m.spare_bytes, 0);
}

static void test_blocks_are_aligned_and_calloc_zeroes(void **state)
{
    struct ml_h2_mem m;
    uint8_t *p;

    ml_h2_mem_init(&m);
    p = ml_h2_mem_malloc(64, &m);
    memset(p, 0xff, 64);
    ml_h2_mem_free(p, &m);
    assert_non_null(p = ml_h2_mem_calloc(8, 8, &m)); /* the dirty block again */
    assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
    for (int i = 0; i < 64; i++) {
        assert_int_equal(p[i], 0);
    }
    ml_h2_mem_free(p, &m);
    assert_null(ml_h2_mem_calloc(SIZE_MAX / 2, 4, &m)); /* the product wraps: refused */
    ml_h2_mem_free(NULL, &m);
    ml_h2_mem_deinit(&m);
}

static void test_spares_stay_under_their_bound(void **state)
{
    enum { N = H2_MEM_SPARE_BYTES / 2048 + 8 };
    struct ml_h2_mem m;
    void *p[N];

    ml_h2_mem_init(&m);
    for (int i = 0; i < N; i++) {
        assert_non_null(p[i] = ml_h2_mem_malloc(2048, &m));
    }
    for (int i = 0; i < N; i++) {
        ml_h2_mem_free(p[i], &m);
    }
    assert_int_equal(m.spare_bytes, H2_MEM_SPARE_BYTES);
    ml_h2_mem_deinit(&m);
}

static void test_realloc_keeps_the_bytes_within_across_and_beyond_classes(void **state)
{
    struct ml_h2_mem m;
    uint8_t *p;

    ml_h2_mem_init(&m);
    assert_non_null(p = ml_h2_mem_realloc(NULL, 40, &m));
    for (int i = 0; i < 40; i++) {
        p[i] = (uint8_t)i;
    }
    assert_ptr_equal(ml_h2_mem_realloc(p, 64, &m), p); /* still its class */
    assert_non_null(p = ml_h2_mem_realloc(p, 2000, &m));
    assert_non_null(p = ml_h2_mem_realloc(p, 20000, &m)); /* beyond the classes */
    assert_non_null(p = ml_h2_mem_realloc(p, 70000, &m)); /* the heap moves it */
    for (int i = 0; i < 40; i++) {
        assert_int_equal(p[i], i);
    }
    ml_h2_mem_free(p, &m); /* a large block goes back to the heap, not to a spare list */
    assert_int_equal(m.spare_bytes, 64 + 2048);
    ml_h2_mem_deinit(&m);
}

static void test_a_failing_allocation_returns_null_and_keeps_the_old_block(void **state)
{
    struct ml_h2_mem m;
    uint8_t *p;

    ml_h2_mem_init(&m);
    assert_non_null(p = ml_h2_mem_malloc(32, &m));
    p[0] = 7;
    ml_alloc_fail_after(0);
    assert_null(ml_h2_mem_malloc(32, &m));
    assert_null(ml_h2_mem_realloc(p, 100, &m));
    ml_alloc_fail_after(-1);
    assert_int_equal(p[0], 7);
    ml_h2_mem_free(p, &m);
    ml_h2_mem_deinit(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_a_freed_block_serves_the_next_allocation_of_its_class,
                                  teardown),
        cmocka_unit_test_teardown(test_blocks_are_aligned_and_calloc_zeroes, teardown),
        cmocka_unit_test_teardown(test_spares_stay_under_their_bound, teardown),
        cmocka_unit_test_teardown(test_realloc_keeps_the_bytes_within_across_and_beyond_classes,
                                  teardown),
        cmocka_unit_test_teardown(test_a_failing_allocation_returns_null_and_keeps_the_old_block,
                                  teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
