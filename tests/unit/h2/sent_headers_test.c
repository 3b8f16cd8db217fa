/* h2/stream.c: header blocks are handed to nghttp2 without a copy of its own
 * (NGHTTP2_NV_FLAG_NO_COPY_NAME | NO_COPY_VALUE), pointing at the stream's own copy, which must
 * outlive the caller's list: nghttp2 serializes the frame later, at the flush. Here every
 * caller's list (or referenced bytes) is scribbled over and freed before the flush, and what
 * goes out, decoded with nghttp2's HPACK inflater, is still what was submitted: request headers
 * (from a list and by reference), response headers and the trailers that follow them on the
 * same stream (the trailers take the stream's copy over once the headers are out). Sensitive
 * fields keep HPACK's "never indexed"; names meshlet makes go out lower case (nghttp2 no longer
 * lower-cases them: ml_h2_hdrs_add_str does). Fields HTTP/2 forbids are left out: checked in
 * full in a list meshlet made, only for HTTP2-Settings in one nghttp2 received (it refuses the
 * others). */
#include "h2/h2.h"

#include "core/log.h"
#include "h2/hdrs.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include <cmocka.h>

#include "h2/h2_frames.h"

#define F_HEADERS 1
#define FL_END_STREAM 0x1
#define FL_END_HEADERS 0x4
#define FL_PADDED 0x8
#define FL_PRIORITY 0x20

/* the most fields a decoded block holds here */
#define MAX_FIELDS 16

struct decoded {
    int n;
    char text[MAX_FIELDS][96]; /* "name: value" */
    bool never_index[MAX_FIELDS];
};

struct peer {
    struct ml_h2_conn *c;
    uint8_t out[65536];
    size_t out_n;
    struct ml_h2_stream *s;
    struct ml_h2_hdrs trailers;
    bool ended;
    size_t body_left;
};

static int on_output(void *user, const uint8_t *p, size_t n)
{
    struct peer *k = user;

    assert_true(n <= sizeof(k->out) - k->out_n);
    memcpy(k->out + k->out_n, p, n);
    k->out_n += n;
    return 0;
}

/* Every HEADERS frame's block (END_HEADERS set: no CONTINUATION for blocks this small) in
 * out[], decoded in order with one inflater (the connection's HPACK context). */
static int decode_all(const uint8_t *out, size_t out_n, struct decoded *d, int max)
{
    nghttp2_hd_inflater *inf;
    int n = 0;

    assert_int_equal(nghttp2_hd_inflate_new(&inf), 0);
    for (size_t at = 0; at + 9 <= out_n;) {
        const uint8_t *p = out + at;
        size_t len = (size_t)p[0] << 16 | (size_t)p[1] << 8 | p[2], pad = 0;
        const uint8_t *block = p + 9;

        assert_true(at + 9 + len <= out_n);
        at += 9 + len;
        if (p[3] != F_HEADERS) {
            continue;
        }
        assert_true(n < max);
        assert_true(p[4] & FL_END_HEADERS);
        if (p[4] & FL_PADDED) {
            pad = block[0];
            block++;
            len -= 1;
        }
        if (p[4] & FL_PRIORITY) {
            block += 5;
            len -= 5;
        }
        len -= pad;
        d[n].n = 0;
        for (;;) {
            nghttp2_nv nv;
            int flags = 0;
            nghttp2_ssize r = nghttp2_hd_inflate_hd3(inf, &nv, &flags, block, len, 1);

            assert_true(r >= 0);
            block += r;
            len -= (size_t)r;
            if (flags & NGHTTP2_HD_INFLATE_EMIT) {
                assert_true(d[n].n < MAX_FIELDS);
                snprintf(d[n].text[d[n].n], sizeof(d[n].text[0]), "%.*s: %.*s", (int)nv.namelen,
                         nv.name, (int)nv.valuelen, nv.value);
                d[n].never_index[d[n].n] = (nv.flags & NGHTTP2_NV_FLAG_NO_INDEX) != 0;
                d[n].n++;
            }
            if (flags & NGHTTP2_HD_INFLATE_FINAL) {
                nghttp2_hd_inflate_end_headers(inf);
                break;
            }
            if (r == 0 && len == 0) {
                break;
            }
        }
        n++;
    }
    nghttp2_hd_inflate_del(inf);
    return n;
}

/* Index of "name: value" in d, or -1. */
static int field_at(const struct decoded *d, const char *text)
{
    for (int i = 0; i < d->n; i++) {
        if (strcmp(d->text[i], text) == 0) {
            return i;
        }
    }
    return -1;
}

/* The caller's list goes: its bytes overwritten, then freed. */
static void scribble_and_free(struct ml_h2_hdrs *h)
{
    if (h->bytes != NULL) {
        memset(h->bytes, 'Z', h->cap_bytes);
    }
    ml_h2_hdrs_deinit(h);
}

/* ---- client side ----------------------------------------------------------------------- */

static int cl_on_headers(void *owner, struct ml_h2_hdrs *hdrs, bool trailers, bool end_stream)
{
    return 0;
}

static int cl_on_data(void *owner, const uint8_t *p, size_t n)
{
    return 0;
}

static void cl_on_end(void *owner)
{
}

static ssize_t cl_read(void *owner, uint8_t *buf, size_t cap, bool *eof,
                       const struct ml_h2_hdrs **trailers)
{
    *eof = true;
    return 0;
}

static void cl_on_stream_close(void *owner, uint32_t error_code)
{
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
    ((struct peer *)user)->c = NULL;
}

static const struct ml_h2_client_ops client_ops = {.on_close = cl_on_close};

static const struct ml_h2_settings settings = {
    .max_streams = 8,
    .stream_window_bytes = 65535,
    .conn_window_bytes = 65535 * 8,
    .max_header_list_bytes = 4096,
};

static void test_request_from_a_list_outlives_the_list(void **state)
{
    static struct peer k;
    struct ml_h2_hdrs req;
    struct decoded d[2];
    struct ml_h2_stream *s;

    memset(&k, 0, sizeof(k));
    assert_int_equal(ml_h2_client_new_mem(9, &settings, &client_ops, &k, on_output, &k, &k.c), 0);
    ml_h2_hdrs_init(&req, 4096);
    assert_int_equal(ml_h2_hdrs_add_str(&req, ":method", "POST"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&req, ":scheme", "http"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&req, ":path", "/a.B/C"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&req, ":authority", "backend"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&req, "X-Made-Here", "Value Kept"), 0);
    assert_int_equal(ml_h2_hdrs_add(&req, (const uint8_t *)"authorization", 13,
                                    (const uint8_t *)"secret", 6, true),
                     0);
    assert_int_equal(ml_h2_hdrs_add_str(&req, "connection", "close"), 0); /* left out */
    assert_int_equal(ml_h2_conn_request(k.c, &req, true, &client_stream_ops, &k, &s), 0);
    scribble_and_free(&req);
    ml_h2_conn_feed(k.c, NULL, 0); /* the preface and the request go out now */
    assert_true(k.out_n > 24);
    assert_memory_equal(k.out, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    assert_int_equal(decode_all(k.out + 24, k.out_n - 24, d, 2), 1);
    assert_int_equal(d[0].n, 6);
    assert_int_equal(field_at(&d[0], ":method: POST"), 0);
    assert_int_equal(field_at(&d[0], ":path: /a.B/C"), 2);
    assert_int_equal(field_at(&d[0], ":authority: backend"), 3);
    assert_int_equal(field_at(&d[0], "x-made-here: Value Kept"), 4); /* the name lowered */
    assert_int_equal(field_at(&d[0], "authorization: secret"), 5);
    assert_true(d[0].never_index[5]);
    assert_false(d[0].never_index[4]);
    ml_h2_conn_close(k.c);
}

static void test_request_by_reference_outlives_the_referenced_bytes(void **state)
{
    static struct peer k;
    char path[32], timeout[16];
    struct ml_h2_field_ref refs[8];
    struct decoded d[2];
    struct ml_h2_stream *s;

    memset(&k, 0, sizeof(k));
    assert_int_equal(ml_h2_client_new_mem(9, &settings, &client_ops, &k, on_output, &k, &k.c), 0);
    snprintf(path, sizeof(path), "/svc.S/M");
    snprintf(timeout, sizeof(timeout), "1999m");
#define REF(n, v, ni, fp)                                                                          \
    (struct ml_h2_field_ref){                                                                      \
        {(const uint8_t *)(n), strlen(n)}, {(const uint8_t *)(v), strlen(v)}, ni, fp}
    refs[0] = REF(":method", "POST", false, false);
    refs[1] = REF(":scheme", "http", false, false);
    refs[2] = REF(":path", path, false, false);
    refs[3] = REF(":authority", "backend", false, false);
    refs[4] = REF("grpc-timeout", timeout, false, false);
    refs[5] = REF("cookie", "c=1", true, true);
    refs[6] = REF("http2-settings", "AAMA", false, true); /* from the peer: still left out */
    refs[7] = REF("connection", "close", false, false);   /* made here: left out */
#undef REF
    assert_int_equal(ml_h2_conn_request_refs(k.c, refs, 8, true, &client_stream_ops, &k, &s), 0);
    memset(path, 'Z', sizeof(path)); /* what the references pointed at is gone */
    memset(timeout, 'Z', sizeof(timeout));
    memset(refs, 0, sizeof(refs));
    ml_h2_conn_feed(k.c, NULL, 0);
    assert_true(k.out_n > 24);
    assert_int_equal(decode_all(k.out + 24, k.out_n - 24, d, 2), 1);
    assert_int_equal(d[0].n, 6);
    assert_int_equal(field_at(&d[0], ":path: /svc.S/M"), 2);
    assert_int_equal(field_at(&d[0], "grpc-timeout: 1999m"), 4);
    assert_int_equal(field_at(&d[0], "cookie: c=1"), 5);
    assert_true(d[0].never_index[5]);
    ml_h2_conn_close(k.c);
}

/* ---- server side ----------------------------------------------------------------------- */

static int sv_on_headers(void *owner, struct ml_h2_hdrs *hdrs, bool trailers, bool end_stream)
{
    return 0;
}

static int sv_on_data(void *owner, const uint8_t *p, size_t n)
{
    return 0;
}

static void sv_on_end(void *owner)
{
    struct peer *k = owner;

    k->ended = true;
    ml_h2_stream_resume(k->s);
}

/* A body of body_left bytes, then the trailers (k->trailers), which go into the stream's copy
 * in place of the response headers: those must be out by then. */
static ssize_t sv_read(void *owner, uint8_t *buf, size_t cap, bool *eof,
                       const struct ml_h2_hdrs **trailers)
{
    struct peer *k = owner;
    size_t n = k->body_left < cap ? k->body_left : cap;

    if (!k->ended) {
        return -EAGAIN;
    }
    memset(buf, 'r', n);
    k->body_left -= n;
    if (k->body_left == 0) {
        *eof = true;
        *trailers = &k->trailers;
    }
    return (ssize_t)n;
}

static void sv_on_stream_close(void *owner, uint32_t error_code)
{
    ((struct peer *)owner)->s = NULL;
}

static const struct ml_h2_stream_ops server_stream_ops = {
    .on_headers = sv_on_headers,
    .on_data = sv_on_data,
    .on_end = sv_on_end,
    .read = sv_read,
    .on_close = sv_on_stream_close,
};

static void sv_on_request(void *user, struct ml_h2_stream *s, struct ml_h2_hdrs *hdrs,
                          bool end_stream)
{
    struct peer *k = user;
    struct ml_h2_hdrs resp;

    k->s = s;
    ml_h2_stream_attach(s, &server_stream_ops, k);
    ml_h2_hdrs_init(&resp, 4096);
    assert_int_equal(ml_h2_hdrs_add_str(&resp, ":status", "200"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&resp, "content-type", "application/grpc"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&resp, "x-response", "first block"), 0);
    assert_int_equal(ml_h2_stream_respond(s, &resp, false), 0);
    scribble_and_free(&resp); /* before the response headers are serialized */
}

static void sv_on_conn_close(void *user, struct ml_h2_conn *c)
{
    ((struct peer *)user)->c = NULL;
}

static const struct ml_h2_server_ops server_ops = {
    .on_request = sv_on_request,
    .on_close = sv_on_conn_close,
};

static void test_response_and_trailers_outlive_their_lists(void **state)
{
    static struct peer k;
    struct h2_bytes in = {.n = 0}, block = {.n = 0};
    struct decoded d[3];

    memset(&k, 0, sizeof(k));
    k.body_left = 40;
    ml_h2_hdrs_init(&k.trailers, 4096);
    assert_int_equal(ml_h2_hdrs_add_str(&k.trailers, "grpc-status", "0"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&k.trailers, "grpc-message", "all good here"), 0);
    assert_int_equal(ml_h2_server_new_mem(7, &settings, &server_ops, &k, on_output, &k, &k.c), 0);
    h2_put_preface(&in);
    h2_put_field(&block, ":method", "POST");
    h2_put_field(&block, ":scheme", "http");
    h2_put_field(&block, ":path", "/a.B/C");
    h2_put_field(&block, ":authority", "localhost");
    h2_put_frame(&in, F_HEADERS, FL_END_HEADERS | FL_END_STREAM, 1, block.p, block.n);
    ml_h2_conn_feed(k.c, in.p, in.n);
    scribble_and_free(&k.trailers);
    ml_h2_conn_feed(k.c, NULL, 0); /* whatever was still queued */
    assert_null(k.s);              /* the stream completed */
    assert_int_equal(decode_all(k.out, k.out_n, d, 3), 2);
    assert_int_equal(d[0].n, 3);
    assert_int_equal(field_at(&d[0], ":status: 200"), 0);
    assert_int_equal(field_at(&d[0], "content-type: application/grpc"), 1);
    assert_int_equal(field_at(&d[0], "x-response: first block"), 2);
    assert_int_equal(d[1].n, 2);
    assert_int_equal(field_at(&d[1], "grpc-status: 0"), 0);
    assert_int_equal(field_at(&d[1], "grpc-message: all good here"), 1);
    ml_h2_conn_close(k.c);
}

/* ---- a received list sent on ------------------------------------------------------------ */

static struct peer relay_to; /* the client connection the received request goes out on */

static void relay_on_request(void *user, struct ml_h2_stream *s, struct ml_h2_hdrs *hdrs,
                             bool end_stream)
{
    struct ml_h2_stream *up;

    for (uint32_t i = 0; i < hdrs->n_fields; i++) {
        assert_true(hdrs->fields[i].from_peer); /* nghttp2 checked every one of them */
    }
    assert_int_equal(ml_h2_conn_request(relay_to.c, hdrs, true, &client_stream_ops, &relay_to, &up),
                     0);
}

static const struct ml_h2_server_ops relay_ops = {
    .on_request = relay_on_request,
    .on_close = sv_on_conn_close,
};

/* A field nghttp2 received is checked again only for HTTP2-Settings (it refuses a block with any
 * other forbidden field, te other than "trailers" included): relayed, HTTP2-Settings is left
 * out, te: trailers and the rest go. A list meshlet made is checked in full (the first test's
 * connection: close). */
static void test_a_received_list_goes_on_without_http2_settings(void **state)
{
    static struct peer down;
    struct h2_bytes in = {.n = 0}, block = {.n = 0};
    struct decoded d[2];

    memset(&down, 0, sizeof(down));
    memset(&relay_to, 0, sizeof(relay_to));
    assert_int_equal(ml_h2_client_new_mem(9, &settings, &client_ops, &relay_to, on_output,
                                          &relay_to, &relay_to.c),
                     0);
    assert_int_equal(
        ml_h2_server_new_mem(7, &settings, &relay_ops, &down, on_output, &down, &down.c), 0);
    h2_put_preface(&in);
    h2_put_field(&block, ":method", "POST");
    h2_put_field(&block, ":scheme", "http");
    h2_put_field(&block, ":path", "/a.B/C");
    h2_put_field(&block, ":authority", "localhost");
    h2_put_field(&block, "te", "trailers");
    h2_put_field(&block, "http2-settings", "AAMAAABkAAQAAP__");
    h2_put_field(&block, "x-kept", "yes");
    h2_put_frame(&in, F_HEADERS, FL_END_HEADERS | FL_END_STREAM, 1, block.p, block.n);
    ml_h2_conn_feed(down.c, in.p, in.n);
    ml_h2_conn_feed(relay_to.c, NULL, 0);
    assert_true(relay_to.out_n > 24);
    assert_int_equal(decode_all(relay_to.out + 24, relay_to.out_n - 24, d, 2), 1);
    assert_int_equal(d[0].n, 6);
    assert_int_equal(field_at(&d[0], ":path: /a.B/C"), 2);
    assert_int_equal(field_at(&d[0], "te: trailers"), 4);
    assert_int_equal(field_at(&d[0], "x-kept: yes"), 5);
    ml_h2_conn_close(relay_to.c);
    ml_h2_conn_close(down.c);
}

static int group_setup(void **state)
{
    ml_log_level = -1;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_from_a_list_outlives_the_list),
        cmocka_unit_test(test_request_by_reference_outlives_the_referenced_bytes),
        cmocka_unit_test(test_response_and_trailers_outlive_their_lists),
        cmocka_unit_test(test_a_received_list_goes_on_without_http2_settings),
    };

    return cmocka_run_group_tests(tests, group_setup, NULL);
}
