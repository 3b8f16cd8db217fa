/* Frames on closed streams, answered as RFC 9113 5.1, 5.1.1 and 6.1 say (h2/gate.c), on a
 * memory server connection: the client's bytes are built by hand, what the server writes is
 * split into frames. Each case checks the exact answer and that the connection (or the other
 * streams) go on when the RFC says only the stream is in error. */
#include "h2/h2.h"

#include "core/alloc.h"
#include "core/log.h"
#include "h2/hdrs.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include <cmocka.h>

#include "h2/h2_frames.h"

enum { F_DATA = 0, F_HEADERS = 1, F_RST_STREAM = 3, F_SETTINGS = 4, F_GOAWAY = 7 };
#define FL_END_STREAM 0x1
#define FL_END_HEADERS 0x4

static void put_post(struct h2_bytes *b, uint32_t stream, bool end_stream)
{
    struct h2_bytes block = {.n = 0};

    h2_put_field(&block, ":method", "POST");
    h2_put_field(&block, ":scheme", "http");
    h2_put_field(&block, ":path", "/helloworld.Greeter/SayHello");
    h2_put_field(&block, ":authority", "localhost");
    h2_put_field(&block, "content-type", "application/grpc");
    h2_put_frame(b, F_HEADERS, FL_END_HEADERS | (end_stream ? FL_END_STREAM : 0), stream, block.p,
                 block.n);
}

static void put_trailers(struct h2_bytes *b, uint32_t stream)
{
    struct h2_bytes block = {.n = 0};

    h2_put_field(&block, "x-late", "1");
    h2_put_frame(b, F_HEADERS, FL_END_HEADERS | FL_END_STREAM, stream, block.p, block.n);
}

static void put_data(struct h2_bytes *b, uint32_t stream, bool end_stream)
{
    static const uint8_t msg[] = {0, 0, 0, 0, 2, 'h', 'i'};

    h2_put_frame(b, F_DATA, end_stream ? FL_END_STREAM : 0, stream, msg, sizeof(msg));
}

static void put_rst(struct h2_bytes *b, uint32_t stream, uint32_t code)
{
    uint8_t p[4] = {(uint8_t)(code >> 24), (uint8_t)(code >> 16), (uint8_t)(code >> 8),
                    (uint8_t)code};

    h2_put_frame(b, F_RST_STREAM, 0, stream, p, sizeof(p));
}

/* ---- the server side: every request is answered at once, trailers-only (ends our side) unless
 * `open_answer`, which answers nothing and keeps the stream open ------------------------------ */

struct harness {
    struct ml_h2_conn *c;
    bool conn_closed;
    bool open_answer;
    int n_requests;
    int n_closed;
    struct ml_h2_stream *held;
    uint8_t out[1 << 20];
    size_t out_n;
};

static int on_output(void *user, const uint8_t *p, size_t n)
{
    struct harness *h = user;

    assert_true(n <= sizeof(h->out) - h->out_n);
    memcpy(h->out + h->out_n, p, n);
    h->out_n += n;
    return 0;
}

static int ow_on_headers(void *owner, struct ml_h2_hdrs *hdrs, bool trailers, bool end_stream)
{
    return 0;
}

static int ow_on_data(void *owner, const uint8_t *p, size_t n)
{
    struct harness *h = owner;

    if (h->held != NULL) {
        ml_h2_stream_consume(h->held, n);
    }
    return 0;
}

static void ow_on_end(void *owner)
{
}

static ssize_t ow_read(void *owner, uint8_t *buf, size_t cap, bool *eof,
                       const struct ml_h2_hdrs **trailers)
{
    return -EAGAIN;
}

static void ow_on_close(void *owner, uint32_t error_code)
{
    struct harness *h = owner;

    h->n_closed++;
    h->held = NULL;
}

static const struct ml_h2_stream_ops owner_ops = {
    .on_headers = ow_on_headers,
    .on_data = ow_on_data,
    .on_end = ow_on_end,
    .read = ow_read,
    .on_close = ow_on_close,
};

static void on_request(void *user, struct ml_h2_stream *s, struct ml_h2_hdrs *hdrs, bool end_stream)
{
    struct harness *h = user;
    struct ml_h2_hdrs resp;

    h->n_requests++;
    ml_h2_stream_attach(s, &owner_ops, h);
    if (h->open_answer) {
        h->held = s;
        return;
    }
    ml_h2_hdrs_init(&resp, 4096);
    assert_int_equal(ml_h2_hdrs_add_str(&resp, ":status", "200"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&resp, "grpc-status", "0"), 0);
    assert_int_equal(ml_h2_stream_respond(s, &resp, true), 0);
    ml_h2_hdrs_deinit(&resp);
}

static void on_conn_close(void *user, struct ml_h2_conn *c)
{
    struct harness *h = user;

    h->conn_closed = true;
    h->c = NULL;
}

static const struct ml_h2_server_ops server_ops = {
    .on_request = on_request,
    .on_close = on_conn_close,
};

static const struct ml_h2_settings settings = {
    .max_streams = 8,
    .stream_window_bytes = 65535,
    .conn_window_bytes = 65535 * 8,
    .max_header_list_bytes = 4096,
};

static struct harness h;

static void harness_new(bool open_answer)
{
    memset(&h, 0, offsetof(struct harness, out));
    h.out_n = 0;
    h.open_answer = open_answer;
    assert_int_equal(ml_h2_server_new_mem(7, &settings, &server_ops, &h, on_output, &h, &h.c), 0);
}

static void harness_free(void)
{
    if (h.c != NULL) {
        ml_h2_conn_close(h.c);
        h.c = NULL;
    }
}

static void feed(const struct h2_bytes *b)
{
    if (h.c != NULL) {
        ml_h2_conn_feed(h.c, b->p, b->n);
    }
}

/* What the server wrote from `from` on: frames of type on stream, counted; the error code of
 * the last one (RST_STREAM: its payload; GOAWAY: after the last stream id) in *code. */
static int count_frames(size_t from, uint8_t type, uint32_t stream, uint32_t *code)
{
    int n = 0;

    for (size_t at = from; at + 9 <= h.out_n;) {
        const uint8_t *p = h.out + at;
        uint32_t len = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
        uint32_t id = ((uint32_t)p[5] << 24 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 8 | p[8]) &
                      0x7fffffffu;
        const uint8_t *e = type == F_GOAWAY ? p + 13 : p + 9;

        assert_true(at + 9 + len <= h.out_n);
        if (p[3] == type && id == stream) {
            n++;
            if (code != NULL && len >= (uint32_t)(e - p - 9 + 4)) {
                *code = (uint32_t)e[0] << 24 | (uint32_t)e[1] << 16 | (uint32_t)e[2] << 8 | e[3];
            }
        }
        at += 9 + len;
    }
    return n;
}

static int teardown(void **state)
{
    harness_free();
    ml_alloc_fail_after(-1);
    return 0;
}

static int group_setup(void **state)
{
    ml_log_level = -1;
    return 0;
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_data_after_the_clients_rst_stream_gets_rst_stream_stream_closed(void **state)
{
    struct h2_bytes in = {.n = 0};
    uint32_t code = 0;
    size_t mark;

    harness_new(true);
    h2_put_preface(&in);
    put_post(&in, 1, false);
    put_rst(&in, 1, ML_H2_CANCEL);
    feed(&in);
    assert_int_equal(h.n_closed, 1);
    mark = h.out_n;
    in.n = 0;
    put_data(&in, 1, false);
    put_data(&in, 1, false); /* answered once: then ignored, as after any RST_STREAM we sent */
    feed(&in);
    assert_int_equal(count_frames(mark, F_RST_STREAM, 1, &code), 1);
    assert_int_equal(code, ML_H2_STREAM_CLOSED);
    assert_int_equal(count_frames(mark, F_GOAWAY, 0, NULL), 0);
    /* Only that stream was in error: the connection serves the next one. */
    in.n = 0;
    put_post(&in, 3, true);
    feed(&in);
    assert_false(h.conn_closed);
    assert_int_equal(h.n_requests, 2);
}

static void test_headers_after_the_clients_rst_stream_get_rst_stream_stream_closed(void **state)
{
    struct h2_bytes in = {.n = 0};
    uint32_t code = 0;
    size_t mark;

    harness_new(true);
    h2_put_preface(&in);
    put_post(&in, 1, false);
    put_rst(&in, 1, ML_H2_CANCEL);
    feed(&in);
    mark = h.out_n;
    in.n = 0;
    put_trailers(&in, 1);
    feed(&in);
    assert_int_equal(count_frames(mark, F_RST_STREAM, 1, &code), 1);
    assert_int_equal(code, ML_H2_STREAM_CLOSED);
    assert_false(h.conn_closed);
}

static void test_data_on_a_stream_closed_both_ways_is_goaway_stream_closed(void **state)
{
    struct h2_bytes in = {.n = 0};
    uint32_t code = 0;

    harness_new(false);
    h2_put_preface(&in);
    put_post(&in, 1, true); /* the client ends, the answer ends: closed */
    feed(&in);
    assert_int_equal(h.n_closed, 1);
    in.n = 0;
    put_data(&in, 1, false);
    feed(&in);
    assert_int_equal(count_frames(0, F_GOAWAY, 0, &code), 1);
    assert_int_equal(code, ML_H2_STREAM_CLOSED);
    assert_true(h.conn_closed);
}

static void test_headers_on_a_stream_closed_both_ways_is_goaway_stream_closed(void **state)
{
    struct h2_bytes in = {.n = 0};
    uint32_t code = 0;

    harness_new(false);
    h2_put_preface(&in);
    put_post(&in, 1, true);
    feed(&in);
    in.n = 0;
    put_post(&in, 1, true);
    feed(&in);
    assert_int_equal(h.n_requests, 1);
    assert_int_equal(count_frames(0, F_GOAWAY, 0, &code), 1);
    assert_int_equal(code, ML_H2_STREAM_CLOSED);
    assert_true(h.conn_closed);
}

static void test_new_stream_with_a_lower_id_is_goaway_protocol_error(void **state)
{
    struct h2_bytes in = {.n = 0};
    uint32_t code = 0;

    harness_new(false);
    h2_put_preface(&in);
    put_post(&in, 5, true);
    put_post(&in, 3, true); /* never opened, lower than 5 */
    feed(&in);
    assert_int_equal(h.n_requests, 1);
    assert_int_equal(count_frames(0, F_GOAWAY, 0, &code), 1);
    assert_int_equal(code, ML_H2_PROTOCOL_ERROR);
    assert_true(h.conn_closed);
}

static void test_data_on_a_stream_we_reset_is_ignored(void **state)
{
    struct h2_bytes in = {.n = 0};
    size_t mark;

    harness_new(true);
    h2_put_preface(&in);
    put_post(&in, 1, false);
    feed(&in);
    assert_non_null(h.held);
    ml_h2_stream_reset(h.held, ML_H2_CANCEL); /* ours: the client may have sent more already */
    h.held = NULL;
    feed(&(struct h2_bytes){.n = 0});
    mark = h.out_n;
    in.n = 0;
    put_data(&in, 1, true);
    put_post(&in, 3, false);
    feed(&in);
    assert_int_equal(count_frames(mark, F_RST_STREAM, 1, NULL), 0);
    assert_int_equal(count_frames(mark, F_GOAWAY, 0, NULL), 0);
    assert_false(h.conn_closed);
    assert_int_equal(h.n_requests, 2);
}

static void test_many_more_streams_than_remembered_are_served(void **state)
{
    struct h2_bytes in = {.n = 0};

    harness_new(false);
    h2_put_preface(&in);
    feed(&in);
    for (uint32_t i = 0; i < 3 * ML_H2_STREAMS_REMEMBERED; i++) {
        in.n = 0;
        put_post(&in, 1 + 2 * i, false);
        put_data(&in, 1 + 2 * i, true);
        feed(&in);
    }
    assert_false(h.conn_closed);
    assert_int_equal(h.n_requests, 3 * ML_H2_STREAMS_REMEMBERED);
    assert_int_equal(count_frames(0, F_GOAWAY, 0, NULL), 0);
}

/* After the ring of remembered streams wrapped: a stream in the middle of it is still known
 * (closed: GOAWAY STREAM_CLOSED), one that fell out is not (PROTOCOL_ERROR). Each in a fresh
 * connection. */
static void open_and_close(uint32_t n)
{
    struct h2_bytes in = {.n = 0};

    harness_new(false);
    h2_put_preface(&in);
    feed(&in);
    for (uint32_t i = 0; i < n; i++) {
        in.n = 0;
        put_post(&in, 1 + 2 * i, true);
        feed(&in);
    }
}

static void test_a_remembered_stream_after_the_ring_wrapped_is_found(void **state)
{
    const uint32_t n = ML_H2_STREAMS_REMEMBERED + ML_H2_STREAMS_REMEMBERED / 2;
    struct h2_bytes in = {.n = 0};
    uint32_t code = 0;

    for (uint32_t back = 1; back <= ML_H2_STREAMS_REMEMBERED; back += 37) {
        open_and_close(n);
        in.n = 0;
        put_data(&in, 1 + 2 * (n - back), false);
        feed(&in);
        assert_int_equal(count_frames(0, F_GOAWAY, 0, &code), 1);
        assert_int_equal(code, ML_H2_STREAM_CLOSED);
        teardown(state);
    }
    open_and_close(n);
    in.n = 0;
    put_data(&in, 1 + 2 * (n - ML_H2_STREAMS_REMEMBERED - 1), false); /* forgotten */
    feed(&in);
    assert_int_equal(count_frames(0, F_GOAWAY, 0, &code), 1);
    assert_int_equal(code, ML_H2_PROTOCOL_ERROR);
}

static void test_input_split_into_single_bytes_gets_the_same_answer(void **state)
{
    struct h2_bytes in = {.n = 0};
    uint32_t code = 0;

    harness_new(true);
    h2_put_preface(&in);
    put_post(&in, 1, false);
    put_rst(&in, 1, ML_H2_CANCEL);
    put_data(&in, 1, false);
    put_post(&in, 3, false);
    for (size_t i = 0; i < in.n && h.c != NULL; i++) {
        ml_h2_conn_feed(h.c, in.p + i, 1);
    }
    assert_int_equal(count_frames(0, F_RST_STREAM, 1, &code), 1);
    assert_int_equal(code, ML_H2_STREAM_CLOSED);
    assert_false(h.conn_closed);
    assert_int_equal(h.n_requests, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_teardown(f, teardown)
        T(test_data_after_the_clients_rst_stream_gets_rst_stream_stream_closed),
        T(test_headers_after_the_clients_rst_stream_get_rst_stream_stream_closed),
        T(test_data_on_a_stream_closed_both_ways_is_goaway_stream_closed),
        T(test_headers_on_a_stream_closed_both_ways_is_goaway_stream_closed),
        T(test_new_stream_with_a_lower_id_is_goaway_protocol_error),
        T(test_data_on_a_stream_we_reset_is_ignored),
        T(test_many_more_streams_than_remembered_are_served),
        T(test_a_remembered_stream_after_the_ring_wrapped_is_found),
        T(test_input_split_into_single_bytes_gets_the_same_answer),
    };

    return cmocka_run_group_tests(tests, group_setup, NULL);
}
