/* grpc/framing.c: where whole gRPC messages end in a body that arrives in pieces. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "grpc/framing.h"

#include <stdint.h>
#include <string.h>

/* "flag, 4-byte length, payload" for a payload of n bytes of 'x', appended at out. */
static size_t message(uint8_t *out, uint32_t n)
{
    out[0] = 0;
    out[1] = (uint8_t)(n >> 24);
    out[2] = (uint8_t)(n >> 16);
    out[3] = (uint8_t)(n >> 8);
    out[4] = (uint8_t)n;
    memset(out + 5, 'x', n);
    return 5 + n;
}

static void test_nothing_fed_is_at_a_boundary(void **state)
{
    struct ml_grpc_framer f;

    ml_grpc_framer_init(&f);
    assert_true(ml_grpc_framer_at_boundary(&f));
    assert_int_equal(f.n_messages, 0);
}

static void test_whole_messages_in_one_piece_each_end_at_a_boundary(void **state)
{
    uint8_t body[64];
    size_t n = message(body, 10);
    struct ml_grpc_framer f;

    n += message(body + n, 3);
    ml_grpc_framer_init(&f);
    ml_grpc_framer_feed(&f, body, n);
    assert_int_equal(f.n_messages, 2);
    assert_int_equal(f.boundary, n);
    assert_true(ml_grpc_framer_at_boundary(&f));
}

static void test_a_message_split_anywhere_ends_where_it_ends(void **state)
{
    uint8_t body[64];
    size_t n = message(body, 20);

    /* Every split point, including inside the 5-byte prefix. */
    for (size_t cut = 0; cut <= n; cut++) {
        struct ml_grpc_framer f;
        ml_grpc_framer_init(&f);
        ml_grpc_framer_feed(&f, body, cut);
        assert_int_equal(f.boundary, cut == n ? n : 0);
        assert_int_equal(ml_grpc_framer_at_boundary(&f), cut == 0 || cut == n);
        ml_grpc_framer_feed(&f, body + cut, n - cut);
        assert_int_equal(f.boundary, n);
        assert_int_equal(f.n_messages, 1);
    }
}

static void test_byte_by_byte_gives_the_same_boundaries(void **state)
{
    uint8_t body[128];
    size_t n = message(body, 0);
    struct ml_grpc_framer f;

    n += message(body + n, 7);
    n += message(body + n, 1);
    ml_grpc_framer_init(&f);
    for (size_t i = 0; i < n; i++) {
        ml_grpc_framer_feed(&f, body + i, 1);
    }
    assert_int_equal(f.n_messages, 3);
    assert_int_equal(f.boundary, n);
}

static void test_an_empty_message_is_a_whole_message(void **state)
{
    uint8_t body[8];
    size_t n = message(body, 0);
    struct ml_grpc_framer f;

    ml_grpc_framer_init(&f);
    ml_grpc_framer_feed(&f, body, n);
    assert_int_equal(f.n_messages, 1);
    assert_int_equal(f.boundary, 5);
}

static void test_a_huge_declared_length_waits_without_overflow(void **state)
{
    uint8_t prefix[5] = {1, 0xff, 0xff, 0xff, 0xff}; /* compressed flag, 4 GiB - 1 */
    uint8_t chunk[4096];
    struct ml_grpc_framer f;

    memset(chunk, 'y', sizeof(chunk));
    ml_grpc_framer_init(&f);
    ml_grpc_framer_feed(&f, prefix, sizeof(prefix));
    for (int i = 0; i < 100; i++) {
        ml_grpc_framer_feed(&f, chunk, sizeof(chunk));
    }
    assert_int_equal(f.n_messages, 0);
    assert_int_equal(f.boundary, 0);
    assert_int_equal(f.msg_left, 0xffffffffu - 100u * sizeof(chunk));
    assert_int_equal(f.n_in, 5 + 100 * sizeof(chunk));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_fed_is_at_a_boundary),
        cmocka_unit_test(test_whole_messages_in_one_piece_each_end_at_a_boundary),
        cmocka_unit_test(test_a_message_split_anywhere_ends_where_it_ends),
        cmocka_unit_test(test_byte_by_byte_gives_the_same_boundaries),
        cmocka_unit_test(test_an_empty_message_is_a_whole_message),
        cmocka_unit_test(test_a_huge_declared_length_waits_without_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
