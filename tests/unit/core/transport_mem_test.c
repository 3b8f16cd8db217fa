/* core/transport_mem.c: the memory transport behind the transport seam (what h2 unit tests and
 * fuzzers run on): writes reach the output, feeds reach the owner, a hangup is the last event,
 * and plaintext has neither identity nor ALPN. */
#include "core/transport.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

struct seen {
    uint8_t out[64];
    size_t out_n;
    uint8_t in[64];
    size_t in_n;
    int closes;
    int close_reason;
    int refuse; /* what the output returns */
};

static int on_output(void *user, const uint8_t *p, size_t n)
{
    struct seen *s = user;

    if (s->refuse != 0) {
        return s->refuse;
    }
    memcpy(s->out + s->out_n, p, n);
    s->out_n += n;
    return 0;
}

static void on_read(void *user, const uint8_t *p, size_t n)
{
    struct seen *s = user;

    memcpy(s->in + s->in_n, p, n);
    s->in_n += n;
}

static void on_close(void *user, int reason, const char *why)
{
    struct seen *s = user;

    (void)why;
    s->closes++;
    s->close_reason = reason;
}

static const struct ml_sock_ops owner_ops = {.on_read = on_read, .on_close = on_close};

static void test_bytes_both_ways_through_the_ops(void **state)
{
    struct ml_transport *t;
    struct seen s = {0};
    char buf[16];

    (void)state;
    assert_int_equal(ml_transport_mem_new(on_output, &s, &t), 0);
    ml_transport_set_ops(t, &owner_ops, &s);
    assert_true(ml_transport_can_write(t));
    assert_int_equal(ml_transport_write(t, (const uint8_t *)"abc", 3), 0);
    assert_memory_equal(s.out, "abc", 3);
    ml_transport_mem_feed(t, (const uint8_t *)"xyz", 3);
    assert_int_equal(s.in_n, 3);
    assert_memory_equal(s.in, "xyz", 3);
    assert_null(ml_transport_peer_identity(t));
    assert_null(ml_transport_alpn(t));
    assert_string_equal(ml_transport_peer_text(t, buf, sizeof(buf)), "");
    ml_transport_close(t);
    assert_int_equal(s.closes, 0); /* the owner closed it: it hears nothing */
}

static void test_output_refusal_is_the_writers(void **state)
{
    struct ml_transport *t;
    struct seen s = {.refuse = -EAGAIN};

    (void)state;
    assert_int_equal(ml_transport_mem_new(on_output, &s, &t), 0);
    ml_transport_set_ops(t, &owner_ops, &s);
    assert_int_equal(ml_transport_write(t, (const uint8_t *)"abc", 3), -EAGAIN);
    assert_int_equal(s.out_n, 0);
    ml_transport_close(t);
}

static void test_hangup_is_the_last_event(void **state)
{
    struct ml_transport *t;
    struct seen s = {0};

    (void)state;
    assert_int_equal(ml_transport_mem_new(on_output, &s, &t), 0);
    ml_transport_set_ops(t, &owner_ops, &s);
    ml_transport_mem_hangup(t, -ECONNRESET, "reset"); /* frees t */
    assert_int_equal(s.closes, 1);
    assert_int_equal(s.close_reason, -ECONNRESET);
}

static void test_null_transport_has_no_peer(void **state)
{
    char buf[8] = "x";

    (void)state;
    assert_null(ml_transport_peer_identity(NULL));
    assert_string_equal(ml_transport_peer_text(NULL, buf, sizeof(buf)), "");
    ml_transport_close(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_both_ways_through_the_ops),
        cmocka_unit_test(test_output_refusal_is_the_writers),
        cmocka_unit_test(test_hangup_is_the_last_event),
        cmocka_unit_test(test_null_transport_has_no_peer),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
