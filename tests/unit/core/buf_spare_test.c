/* core/buf.c with a spare list: chunks a buffer gives back serve the next appends of any buffer
 * sharing the spare, without the heap; at most max_chunks are kept; a failing append still
 * appends nothing. */
#include "core/buf.h"

#include "core/alloc.h"

#include <errno.h>
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

static void test_chunks_go_round_through_the_spare(void **state)
{
    struct ml_buf_spare spare;
    struct ml_buf a, b;
    uint8_t in[100], out[100];
    unsigned long before;

    memset(in, 'x', sizeof(in));
    ml_buf_spare_init(&spare, 4, 0);
    ml_buf_init_spare(&a, 1000, &spare);
    assert_int_equal(ml_buf_append(&a, in, sizeof(in)), 0);
    assert_int_equal(ml_buf_read(&a, out, sizeof(out)), sizeof(out)); /* empty: chunk back */
    assert_int_equal(spare.n_chunks, 1);
    before = ml_alloc_count();
    ml_buf_init_spare(&b, 1000, &spare);
    assert_int_equal(ml_buf_append(&b, in, sizeof(in)), 0);
    assert_int_equal(ml_alloc_count(), before);
    assert_int_equal(spare.n_chunks, 0);
    ml_buf_deinit(&b); /* held bytes: their chunk goes back too */
    assert_int_equal(spare.n_chunks, 1);
    ml_buf_deinit(&a);
    ml_buf_spare_deinit(&spare);
    assert_int_equal(spare.n_chunks, 0);
}

static void test_the_spare_keeps_at_most_max_chunks(void **state)
{
    static uint8_t in[5 * 8192];
    struct ml_buf_spare spare;
    struct ml_buf a;

    ml_buf_spare_init(&spare, 2, 0);
    ml_buf_init_spare(&a, sizeof(in), &spare);
    assert_int_equal(ml_buf_append(&a, in, sizeof(in)), 0);
    ml_buf_deinit(&a);
    assert_int_equal(spare.n_chunks, 2);
    ml_buf_spare_deinit(&spare);
}

static void test_a_failing_append_appends_nothing_and_keeps_the_spares(void **state)
{
    static uint8_t in[3 * 8192];
    struct ml_buf_spare spare;
    struct ml_buf a;

    ml_buf_spare_init(&spare, 8, 0);
    ml_buf_init_spare(&a, sizeof(in), &spare);
    assert_int_equal(ml_buf_append(&a, in, 8192), 0);
    ml_buf_deinit(&a); /* one spare chunk */
    ml_alloc_fail_after(0);
    assert_int_equal(ml_buf_append(&a, in, sizeof(in)), -ENOMEM); /* needs 3, has 1 */
    ml_alloc_fail_after(-1);
    assert_int_equal(ml_buf_len(&a), 0);
    assert_int_equal(spare.n_chunks, 1);
    ml_buf_spare_deinit(&spare);
}

/* With small chunks: a buffer starts with one (a small body holds 512 bytes, not 8 KiB), the
 * rest are whole; both kinds come back to their own list and serve the next buffer. */
static void test_small_first_chunks_then_whole_ones(void **state)
{
    static uint8_t in[3 * 8192], out[3 * 8192];
    struct ml_buf_spare spare;
    struct ml_buf a;
    unsigned long before;

    for (size_t i = 0; i < sizeof(in); i++) {
        in[i] = (uint8_t)(i * 7);
    }
    ml_buf_spare_init(&spare, 4, 4);
    ml_buf_init_spare(&a, sizeof(in), &spare);
    before = ml_alloc_count();
    assert_int_equal(ml_buf_append(&a, in, 100), 0);
    assert_int_equal(ml_alloc_count() - before, 1);
    assert_int_equal(ml_buf_append(&a, in + 100, 412), 0); /* fills the small chunk */
    assert_int_equal(ml_alloc_count() - before, 1);
    assert_int_equal(ml_buf_append(&a, in + 512, sizeof(in) - 512), 0); /* 3 whole ones */
    assert_int_equal(ml_alloc_count() - before, 4);
    assert_int_equal(ml_buf_read(&a, out, sizeof(out)), sizeof(out));
    assert_memory_equal(out, in, sizeof(in));
    assert_int_equal(spare.n_small, 1);
    assert_int_equal(spare.n_chunks, 3);
    before = ml_alloc_count();
    assert_int_equal(ml_buf_append(&a, in, sizeof(in)), 0); /* all from the spare */
    assert_int_equal(ml_alloc_count(), before);
    ml_buf_deinit(&a);
    ml_buf_spare_deinit(&spare);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_chunks_go_round_through_the_spare, teardown),
        cmocka_unit_test_teardown(test_the_spare_keeps_at_most_max_chunks, teardown),
        cmocka_unit_test_teardown(test_a_failing_append_appends_nothing_and_keeps_the_spares,
                                  teardown),
        cmocka_unit_test_teardown(test_small_first_chunks_then_whole_ones, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
