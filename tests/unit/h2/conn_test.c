/* h2/conn.c + stream.c driven from memory (ml_h2_server_new_mem, ml_h2_client_new_mem): the
 * peer's bytes are built here by hand (HPACK literals, no Huffman), what the connection writes
 * is split into frames and checked by type, flags and stream. No socket, no loop, no clock. */
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

enum {
    F_DATA = 0,
    F_HEADERS = 1,
    F_RST_STREAM = 3,
    F_SETTINGS = 4,
    F_PING = 6,
    F_GOAWAY = 7,
    F_WINDOW_UPDATE = 8
};
#define FL_END_STREAM 0x1
#define FL_ACK 0x1
#define FL_END_HEADERS 0x4

/* ---- the client's bytes ------------------------------------------------------------------- */

static void put_grpc_post(struct h2_bytes *b, uint32_t stream, bool end_stream)
{
    struct h2_bytes block = {.n = 0};

    h2_put_field(&block, ":method", "POST");
    h2_put_field(&block, ":scheme", "http");
    h2_put_field(&block, ":path", "/helloworld.Greeter/SayHello");
    h2_put_field(&block, ":authority", "localhost:15001");
    h2_put_field(&block, "content-type", "application/grpc");
    h2_put_field(&block, "te", "trailers");
    h2_put_frame(b, F_HEADERS, FL_END_HEADERS | (end_stream ? FL_END_STREAM : 0), stream, block.p,
                 block.n);
}

/* ---- the server's side -------------------------------------------------------------------- */

enum answer { ANSWER_BODY, ANSWER_REFUSE };

struct frame {
    uint8_t type, flags;
    uint32_t stream;
    uint32_t len;
    uint32_t first_u32; /* RST_STREAM / GOAWAY: the error code's position differs; see below */
};

struct harness {
    struct ml_h2_conn *c;
    enum answer answer;
    bool conn_closed;
    /* what the owner saw */
    int n_requests;
    char path[64];
    char content_type[64];
    uint8_t body[64];
    size_t body_n;
    bool ended;
    int n_closed;
    uint32_t close_code;
    bool responded;
    size_t body_left;
    struct ml_h2_hdrs trailers;
    struct ml_h2_stream *s;
    /* what the server wrote */
    uint8_t out[65536];
    size_t out_n;
};

static int on_output(void *user, const uint8_t *p, size_t n)
{
    struct harness *h = user;

    if (n > sizeof(h->out) - h->out_n) {
        n = sizeof(h->out) - h->out_n;
    }
    memcpy(h->out + h->out_n, p, n);
    h->out_n += n;
    return 0;
}

static void copy_field(const struct ml_h2_hdrs *hdrs, const char *name, char *dst, size_t cap)
{
    int i = ml_h2_hdrs_find(hdrs, name, 0);

    dst[0] = '\0';
    if (i >= 0) {
        struct ml_slice v = ml_h2_hdrs_value(hdrs, (uint32_t)i);
        size_t n = v.n < cap - 1 ? v.n : cap - 1;

        memcpy(dst, v.p, n);
        dst[n] = '\0';
    }
}

static int ow_on_headers(void *owner, struct ml_h2_hdrs *hdrs, bool trailers, bool end_stream)
{
    return 0;
}

static int ow_on_data(void *owner, const uint8_t *p, size_t n)
{
    struct harness *h = owner;

    if (n <= sizeof(h->body) - h->body_n) {
        memcpy(h->body + h->body_n, p, n);
        h->body_n += n;
    }
    ml_h2_stream_consume(h->s, n);
    return 0;
}

static void ow_on_end(void *owner)
{
    struct harness *h = owner;

    h->ended = true;
    ml_h2_stream_resume(h->s);
}

static ssize_t ow_read(void *owner, uint8_t *buf, size_t cap, bool *eof,
                       const struct ml_h2_hdrs **trailers)
{
    struct harness *h = owner;
    size_t n = h->body_left < cap ? h->body_left : cap;

    if (!h->ended) {
        return -EAGAIN;
    }
    memset(buf, 'r', n);
    h->body_left -= n;
    if (h->body_left == 0) {
        *eof = true;
        *trailers = &h->trailers;
    }
    return (ssize_t)n;
}

static void ow_on_close(void *owner, uint32_t error_code)
{
    struct harness *h = owner;

    h->n_closed++;
    h->close_code = error_code;
    h->s = NULL;
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
    copy_field(hdrs, ":path", h->path, sizeof(h->path));
    copy_field(hdrs, "content-type", h->content_type, sizeof(h->content_type));
    if (h->answer == ANSWER_REFUSE || h->s != NULL) {
        return;
    }
    h->s = s;
    ml_h2_stream_attach(s, &owner_ops, h);
    ml_h2_hdrs_init(&resp, 4096);
    if (ml_h2_hdrs_add_str(&resp, ":status", "200") < 0 ||
        ml_h2_hdrs_add_str(&resp, "content-type", "application/grpc") < 0 ||
        ml_h2_hdrs_add_str(&h->trailers, "grpc-status", "0") < 0 ||
        ml_h2_stream_respond(s, &resp, false) < 0) {
        ml_h2_stream_reset(s, ML_H2_INTERNAL_ERROR);
        h->s = NULL;
    } else {
        h->responded = true;
    }
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

static int harness_new(struct harness *h, enum answer answer, const struct ml_h2_settings *st)
{
    memset(h, 0, offsetof(struct harness, out));
    h->out_n = 0;
    h->answer = answer;
    h->body_left = 300;
    ml_h2_hdrs_init(&h->trailers, 4096);
    return ml_h2_server_new_mem(7, st, &server_ops, h, on_output, h, &h->c);
}

static void harness_free(struct harness *h)
{
    if (h->c != NULL) {
        ml_h2_conn_close(h->c);
        h->c = NULL;
    }
    ml_h2_hdrs_deinit(&h->trailers);
}

static void feed(struct harness *h, const struct h2_bytes *b)
{
    if (h->c != NULL) {
        ml_h2_conn_feed(h->c, b->p, b->n);
    }
}

/* The frames the server wrote, in order. Returns how many (at most max). */
static size_t frames_out(const uint8_t *out, size_t out_n, struct frame *f, size_t max)
{
    size_t n = 0;

    for (size_t at = 0; at + 9 <= out_n && n < max; n++) {
        const uint8_t *p = out + at;

        f[n].len = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
        f[n].type = p[3];
        f[n].flags = p[4];
        f[n].stream = ((uint32_t)p[5] << 24 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 8 | p[8]) &
                      0x7fffffffu;
        f[n].first_u32 = 0;
        assert_true(at + 9 + f[n].len <= out_n); /* whole frames only */
        if (f[n].len >= 4) {
            f[n].first_u32 =
                (uint32_t)p[9] << 24 | (uint32_t)p[10] << 16 | (uint32_t)p[11] << 8 | p[12];
        }
        at += 9 + f[n].len;
    }
    return n;
}

/* Index of the first frame of type on stream at or after from, or -1. */
static int find_frame(const struct frame *f, size_t n, uint8_t type, uint32_t stream, size_t from)
{
    for (size_t i = from; i < n; i++) {
        if (f[i].type == type && f[i].stream == stream) {
            return (int)i;
        }
    }
    return -1;
}

static int teardown(void **state)
{
    ml_alloc_fail_after(-1);
    return 0;
}

static int group_setup(void **state)
{
    ml_log_level = -1; /* the paths under test log; keep the output to cmocka's */
    return 0;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_grpc_post_reaches_the_owner_with_headers_body_and_end(void **state)
{
    static struct harness h;
    struct h2_bytes in = {.n = 0};
    static const uint8_t msg[] = {0, 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'};

    assert_int_equal(harness_new(&h, ANSWER_BODY, &settings), 0);
    h2_put_preface(&in);
    put_grpc_post(&in, 1, false);
    h2_put_frame(&in, F_DATA, FL_END_STREAM, 1, msg, sizeof(msg));
    feed(&h, &in);
    assert_int_equal(h.n_requests, 1);
    assert_string_equal(h.path, "/helloworld.Greeter/SayHello");
    assert_string_equal(h.content_type, "application/grpc");
    assert_int_equal(h.body_n, sizeof(msg));
    assert_memory_equal(h.body, msg, sizeof(msg));
    assert_true(h.ended);
    assert_false(h.conn_closed);
    harness_free(&h);
}

static void test_answer_goes_out_as_headers_data_then_trailers_ending_the_stream(void **state)
{
    static struct harness h;
    struct h2_bytes in = {.n = 0};
    struct frame f[64];
    size_t n;
    int i_settings, i_ack, i_hd, i_data, i_tr;

    assert_int_equal(harness_new(&h, ANSWER_BODY, &settings), 0);
    h2_put_preface(&in);
    put_grpc_post(&in, 1, true);
    feed(&h, &in);
    assert_true(h.responded);
    assert_int_equal(h.n_closed, 1); /* both sides ended: the stream completed */
    assert_int_equal(h.close_code, ML_H2_NO_ERROR);
    n = frames_out(h.out, h.out_n, f, 64);
    i_settings = find_frame(f, n, F_SETTINGS, 0, 0);
    assert_true(i_settings >= 0);
    assert_int_equal(f[i_settings].flags & FL_ACK, 0); /* ours first */
    i_ack = find_frame(f, n, F_SETTINGS, 0, (size_t)i_settings + 1);
    assert_true(i_ack >= 0);
    assert_int_equal(f[i_ack].flags, FL_ACK); /* and the client's acknowledged */
    i_hd = find_frame(f, n, F_HEADERS, 1, 0);
    assert_true(i_hd >= 0);
    assert_int_equal(f[i_hd].flags & FL_END_STREAM, 0);
    i_data = find_frame(f, n, F_DATA, 1, (size_t)i_hd);
    assert_true(i_data > i_hd);
    assert_int_equal(f[i_data].len, 300);
    i_tr = find_frame(f, n, F_HEADERS, 1, (size_t)i_data);
    assert_true(i_tr > i_data);
    assert_int_equal(f[i_tr].flags & FL_END_STREAM, FL_END_STREAM);
    harness_free(&h);
}

static void test_request_without_owner_is_refused_with_rst_stream(void **state)
{
    static struct harness h;
    struct h2_bytes in = {.n = 0};
    struct frame f[64];
    size_t n;
    int i;

    assert_int_equal(harness_new(&h, ANSWER_REFUSE, &settings), 0);
    h2_put_preface(&in);
    put_grpc_post(&in, 1, false);
    feed(&h, &in);
    assert_int_equal(h.n_requests, 1);
    n = frames_out(h.out, h.out_n, f, 64);
    i = find_frame(f, n, F_RST_STREAM, 1, 0);
    assert_true(i >= 0);
    assert_int_equal(f[i].first_u32, ML_H2_REFUSED_STREAM);
    assert_false(h.conn_closed); /* only the stream */
    harness_free(&h);
}

static void test_header_list_over_the_limit_resets_the_stream_not_the_connection(void **state)
{
    static struct harness h;
    struct ml_h2_settings small = settings;
    struct h2_bytes in = {.n = 0}, block = {.n = 0};
    char value[100];
    struct frame f[64];
    size_t n;

    small.max_header_list_bytes = 400; /* a gRPC POST is about 310 */
    assert_int_equal(harness_new(&h, ANSWER_BODY, &small), 0);
    memset(value, 'v', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    h2_put_field(&block, ":method", "POST");
    h2_put_field(&block, ":scheme", "http");
    h2_put_field(&block, ":path", "/a.B/C");
    for (int i = 0; i < 4; i++) {
        h2_put_field(&block, "x-big", value);
    }
    h2_put_preface(&in);
    h2_put_frame(&in, F_HEADERS, FL_END_HEADERS | FL_END_STREAM, 1, block.p, block.n);
    feed(&h, &in);
    assert_int_equal(h.n_requests, 0);
    n = frames_out(h.out, h.out_n, f, 64);
    assert_true(find_frame(f, n, F_RST_STREAM, 1, 0) >= 0);
    assert_false(h.conn_closed);
    /* The connection still serves the next stream. */
    in.n = 0;
    put_grpc_post(&in, 3, true);
    feed(&h, &in);
    assert_int_equal(h.n_requests, 1);
    harness_free(&h);
}

static void test_bad_preface_closes_the_connection(void **state)
{
    static struct harness h;
    struct h2_bytes in = {.n = 0};

    assert_int_equal(harness_new(&h, ANSWER_BODY, &settings), 0);
    h2_put(&in, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
    feed(&h, &in);
    assert_true(h.conn_closed);
    assert_null(h.c);
    assert_int_equal(h.n_requests, 0);
    harness_free(&h);
}

static void test_close_by_the_owner_cancels_open_streams_and_says_goaway(void **state)
{
    static struct harness h;
    struct h2_bytes in = {.n = 0};
    struct frame f[64];
    size_t n, before;

    assert_int_equal(harness_new(&h, ANSWER_BODY, &settings), 0);
    h2_put_preface(&in);
    put_grpc_post(&in, 1, false); /* the request never ends */
    feed(&h, &in);
    assert_true(h.responded);
    assert_int_equal(h.n_closed, 0);
    before = h.out_n;
    ml_h2_conn_close(h.c);
    h.c = NULL;
    assert_int_equal(h.n_closed, 1);
    assert_int_equal(h.close_code, ML_H2_CANCEL);
    assert_false(h.conn_closed); /* the owner closed it: no on_close of its own */
    assert_true(h.out_n > before);
    n = frames_out(h.out, h.out_n, f, 64);
    assert_true(find_frame(f, n, F_GOAWAY, 0, 0) >= 0);
    harness_free(&h);
}

static void test_input_in_single_bytes_gives_the_same_result(void **state)
{
    static struct harness h;
    struct h2_bytes in = {.n = 0};
    static const uint8_t msg[] = {0, 0, 0, 0, 2, 'h', 'i'};

    assert_int_equal(harness_new(&h, ANSWER_BODY, &settings), 0);
    h2_put_preface(&in);
    put_grpc_post(&in, 1, false);
    h2_put_frame(&in, F_DATA, FL_END_STREAM, 1, msg, sizeof(msg));
    for (size_t i = 0; i < in.n && h.c != NULL; i++) {
        ml_h2_conn_feed(h.c, in.p + i, 1);
    }
    assert_int_equal(h.n_requests, 1);
    assert_int_equal(h.body_n, sizeof(msg));
    assert_memory_equal(h.body, msg, sizeof(msg));
    assert_int_equal(h.n_closed, 1);
    assert_int_equal(h.close_code, ML_H2_NO_ERROR);
    harness_free(&h);
}

/* Each allocation (meshlet's and nghttp2's) failing in turn through a whole exchange: a clean
 * error each time (the connection, or the stream, goes away), never a crash; every owner that
 * attached hears on_close exactly once. */
static void test_each_failing_allocation_in_an_exchange_is_survived(void **state)
{
    static struct harness h;
    struct h2_bytes in = {.n = 0};
    static const uint8_t msg[] = {0, 0, 0, 0, 1, 'x'};
    long fail_at;

    h2_put_preface(&in);
    put_grpc_post(&in, 1, false);
    h2_put_frame(&in, F_DATA, FL_END_STREAM, 1, msg, sizeof(msg));
    for (fail_at = 0; fail_at < 1000; fail_at++) {
        int rv;

        ml_alloc_fail_after(fail_at);
        rv = harness_new(&h, ANSWER_BODY, &settings);
        if (rv < 0) {
            ml_alloc_fail_after(-1);
            assert_int_equal(rv, -ENOMEM);
            assert_null(h.c);
            ml_h2_hdrs_deinit(&h.trailers);
            continue;
        }
        feed(&h, &in);
        ml_alloc_fail_after(-1);
        harness_free(&h);
        assert_true(h.n_closed <= 1);
        assert_int_equal(h.n_closed, h.responded ? 1 : 0);
        if (h.n_closed == 1 && h.close_code == ML_H2_NO_ERROR && h.body_n == sizeof(msg)) {
            break; /* the exchange went through: every allocation it makes was failed once */
        }
    }
    assert_true(fail_at > 3);
    assert_true(fail_at < 1000);
}

/* ---- the client side -------------------------------------------------------------------- */

struct client {
    struct ml_h2_conn *c;
    bool conn_closed;
    int n_headers; /* response header blocks passed on (interim ones are not) */
    char status[8];
    bool got_trailers;
    char grpc_status[8];
    size_t data_n;
    bool ended;
    int n_closed;
    uint32_t close_code;
    struct ml_h2_stream *s;
    uint8_t out[8192];
    size_t out_n;
};

static int cl_output(void *user, const uint8_t *p, size_t n)
{
    struct client *k = user;

    if (n > sizeof(k->out) - k->out_n) {
        n = sizeof(k->out) - k->out_n;
    }
    memcpy(k->out + k->out_n, p, n);
    k->out_n += n;
    return 0;
}

static int cl_on_headers(void *owner, struct ml_h2_hdrs *hdrs, bool trailers, bool end_stream)
{
    struct client *k = owner;

    if (trailers) {
        k->got_trailers = true;
        copy_field(hdrs, "grpc-status", k->grpc_status, sizeof(k->grpc_status));
    } else {
        k->n_headers++;
        copy_field(hdrs, ":status", k->status, sizeof(k->status));
    }
    return 0;
}

static int cl_on_data(void *owner, const uint8_t *p, size_t n)
{
    struct client *k = owner;

    k->data_n += n;
    ml_h2_stream_consume(k->s, n);
    return 0;
}

static void cl_on_end(void *owner)
{
    ((struct client *)owner)->ended = true;
}

static ssize_t cl_read(void *owner, uint8_t *buf, size_t cap, bool *eof,
                       const struct ml_h2_hdrs **trailers)
{
    *eof = true;
    return 0;
}

static void cl_on_stream_close(void *owner, uint32_t error_code)
{
    struct client *k = owner;

    k->n_closed++;
    k->close_code = error_code;
}

static const struct ml_h2_stream_ops client_stream_ops = {
    .on_headers = cl_on_headers,
    .on_data = cl_on_data,
    .on_end = cl_on_end,
    .read = cl_read,
    .on_close = cl_on_stream_close,
};

static void cl_on_close(void *user, struct ml_h2_conn *c, int reason, const char *why)
{
    struct client *k = user;

    k->conn_closed = true;
    k->c = NULL;
}

static const struct ml_h2_client_ops client_ops = {.on_close = cl_on_close};

static void test_client_passes_on_the_final_response_not_the_interim_one(void **state)
{
    static struct client k;
    struct ml_h2_hdrs req;
    struct h2_bytes in = {.n = 0}, block = {.n = 0};
    static const uint8_t msg[] = {0, 0, 0, 0, 1, 'z'};
    struct frame f[16];
    size_t n;
    int i;

    memset(&k, 0, sizeof(k));
    assert_int_equal(ml_h2_client_new_mem(9, &settings, &client_ops, &k, cl_output, &k, &k.c), 0);
    assert_true(ml_h2_conn_free_slots(k.c, 4) > 0);
    ml_h2_hdrs_init(&req, 4096);
    assert_int_equal(ml_h2_hdrs_add_str(&req, ":method", "POST"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&req, ":scheme", "http"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&req, ":path", "/a.B/C"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&req, ":authority", "backend"), 0);
    assert_int_equal(ml_h2_conn_request(k.c, &req, true, &client_stream_ops, &k, &k.s), 0);
    ml_h2_hdrs_deinit(&req);
    assert_int_equal(ml_h2_conn_n_streams(k.c), 1);
    ml_h2_conn_feed(k.c, NULL, 0); /* the preface and the request go out */
    assert_true(k.out_n > 24);
    assert_memory_equal(k.out, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    memmove(k.out, k.out + 24, k.out_n - 24);
    k.out_n -= 24;

    h2_put_frame(&in, F_SETTINGS, 0, 0, NULL, 0);
    h2_put_field(&block, ":status", "100");
    h2_put_frame(&in, F_HEADERS, FL_END_HEADERS, 1, block.p, block.n);
    block.n = 0;
    h2_put_field(&block, ":status", "200");
    h2_put_field(&block, "content-type", "application/grpc");
    h2_put_frame(&in, F_HEADERS, FL_END_HEADERS, 1, block.p, block.n);
    h2_put_frame(&in, F_DATA, 0, 1, msg, sizeof(msg));
    block.n = 0;
    h2_put_field(&block, "grpc-status", "0");
    h2_put_frame(&in, F_HEADERS, FL_END_HEADERS | FL_END_STREAM, 1, block.p, block.n);
    ml_h2_conn_feed(k.c, in.p, in.n);
    assert_int_equal(k.n_headers, 1);
    assert_string_equal(k.status, "200");
    assert_int_equal(k.data_n, sizeof(msg));
    assert_true(k.got_trailers);
    assert_string_equal(k.grpc_status, "0");
    assert_true(k.ended);
    assert_int_equal(k.n_closed, 1);
    assert_int_equal(k.close_code, ML_H2_NO_ERROR);
    assert_false(k.conn_closed);
    assert_int_equal(ml_h2_conn_n_streams(k.c), 0);
    /* The request went out as a HEADERS frame ending stream 1. */
    n = frames_out(k.out, k.out_n, f, 16);
    i = find_frame(f, n, F_HEADERS, 1, 0);
    assert_true(i >= 0);
    assert_int_equal(f[i].flags & FL_END_STREAM, FL_END_STREAM);
    ml_h2_conn_close(k.c);
}

static int open_request(struct client *k)
{
    struct ml_h2_hdrs req;
    struct ml_h2_stream *s;
    int rv;

    ml_h2_hdrs_init(&req, 4096);
    assert_int_equal(ml_h2_hdrs_add_str(&req, ":method", "POST"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&req, ":scheme", "http"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&req, ":path", "/a.B/C"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&req, ":authority", "backend"), 0);
    rv = ml_h2_conn_request(k->c, &req, true, &client_stream_ops, k, &s);
    ml_h2_hdrs_deinit(&req);
    return rv;
}

/* A request without a single field (not even its pseudo-headers) is refused before anything is
 * queued, by reference or not; the connection stays usable. */
static void test_client_request_without_fields_is_refused(void **state)
{
    static struct client k;
    struct ml_h2_hdrs empty;
    struct ml_h2_stream *s = (struct ml_h2_stream *)&k;

    memset(&k, 0, sizeof(k));
    assert_int_equal(ml_h2_client_new_mem(9, &settings, &client_ops, &k, cl_output, &k, &k.c), 0);
    ml_h2_hdrs_init(&empty, 4096);
    assert_int_equal(ml_h2_conn_request(k.c, &empty, true, &client_stream_ops, &k, &s), -EINVAL);
    assert_null(s);
    s = (struct ml_h2_stream *)&k;
    assert_int_equal(ml_h2_conn_request_refs(k.c, NULL, 0, true, &client_stream_ops, &k, &s),
                     -EINVAL);
    assert_null(s);
    assert_int_equal(ml_h2_conn_n_streams(k.c), 0);
    assert_int_equal(open_request(&k), 0);
    assert_int_equal(ml_h2_conn_n_streams(k.c), 1);
    ml_h2_conn_close(k.c);
}

/* What the pool counts on: free slots = min(peer's SETTINGS_MAX_CONCURRENT_STREAMS, limit)
 * minus the streams open, and none after GOAWAY. */
static void test_client_free_slots_follow_the_peer_settings_open_streams_and_goaway(void **state)
{
    static struct client k;
    struct h2_bytes in = {.n = 0};
    uint8_t iv[6] = {0, 3, 0, 0, 0, 2}; /* SETTINGS_MAX_CONCURRENT_STREAMS = 2 */
    uint8_t goaway[8] = {0};

    memset(&k, 0, sizeof(k));
    assert_int_equal(ml_h2_client_new_mem(9, &settings, &client_ops, &k, cl_output, &k, &k.c), 0);
    assert_int_equal(ml_h2_conn_free_slots(k.c, 4), 4); /* 100 assumed before the peer speaks */
    assert_int_equal(open_request(&k), 0);
    assert_int_equal(ml_h2_conn_free_slots(k.c, 4), 3);
    assert_int_equal(ml_h2_conn_n_streams(k.c), 1);
    h2_put_frame(&in, F_SETTINGS, 0, 0, iv, sizeof(iv));
    ml_h2_conn_feed(k.c, in.p, in.n);
    assert_int_equal(ml_h2_conn_free_slots(k.c, 4), 1);
    assert_int_equal(ml_h2_conn_free_slots(k.c, 1), 0);
    assert_int_equal(open_request(&k), 0);
    assert_int_equal(ml_h2_conn_free_slots(k.c, 4), 0);
    in.n = 0;
    h2_put_frame(&in, F_RST_STREAM, 0, 1, "\0\0\0\x07", 4); /* REFUSED_STREAM */
    ml_h2_conn_feed(k.c, in.p, in.n);
    assert_int_equal(k.n_closed, 1);
    assert_int_equal(k.close_code, ML_H2_REFUSED_STREAM);
    assert_int_equal(ml_h2_conn_free_slots(k.c, 4), 1);
    in.n = 0;
    goaway[3] = 3; /* last stream 3 */
    h2_put_frame(&in, F_GOAWAY, 0, 0, goaway, sizeof(goaway));
    ml_h2_conn_feed(k.c, in.p, in.n);
    assert_int_equal(ml_h2_conn_free_slots(k.c, 4), 0);
    assert_int_equal(open_request(&k), -EAGAIN);
    assert_false(k.conn_closed); /* stream 3 may still finish */
    ml_h2_conn_close(k.c);
    assert_int_equal(k.n_closed, 2);
    assert_int_equal(k.close_code, ML_H2_CANCEL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_teardown(f, teardown)
        T(test_grpc_post_reaches_the_owner_with_headers_body_and_end),
        T(test_answer_goes_out_as_headers_data_then_trailers_ending_the_stream),
        T(test_request_without_owner_is_refused_with_rst_stream),
        T(test_header_list_over_the_limit_resets_the_stream_not_the_connection),
        T(test_bad_preface_closes_the_connection),
        T(test_close_by_the_owner_cancels_open_streams_and_says_goaway),
        T(test_input_in_single_bytes_gives_the_same_result),
        T(test_each_failing_allocation_in_an_exchange_is_survived),
        T(test_client_passes_on_the_final_response_not_the_interim_one),
        T(test_client_free_slots_follow_the_peer_settings_open_streams_and_goaway),
        T(test_client_request_without_fields_is_refused),
    };

    return cmocka_run_group_tests(tests, group_setup, NULL);
}
