/* h2/conn.c: the frames of two streams, interleaved field block by field block and DATA frame
 * by DATA frame, reach each stream's own owner. conn.c tries the stream its last callback found
 * before asking nghttp2's stream map (callbacks come in runs for one stream): a wrong hit would
 * hand one call's headers, body or end to another. Also when a stream closes in between and a
 * new one takes its place. */
#include "h2/h2.h"

#include "core/log.h"
#include "h2/hdrs.h"

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

#define F_DATA 0
#define F_HEADERS 1
#define F_RST_STREAM 3
#define F_SETTINGS 4
#define FL_END_STREAM 0x1
#define FL_END_HEADERS 0x4

struct owner {
    struct ml_h2_stream *s;
    char status[8];
    char grpc_status[8];
    uint8_t body[64];
    size_t body_n;
    bool ended;
    int n_closed;
    uint32_t close_code;
};

static void value_of(const struct ml_h2_hdrs *h, const char *name, char *dst, size_t cap)
{
    int i = ml_h2_hdrs_find(h, name, 0);
    struct ml_slice v;

    if (i >= 0) {
        v = ml_h2_hdrs_value(h, (uint32_t)i);
        snprintf(dst, cap, "%.*s", (int)v.n, (const char *)v.p);
    }
}

static int ow_on_headers(void *user, struct ml_h2_hdrs *hdrs, bool trailers, bool end_stream)
{
    struct owner *o = user;

    value_of(hdrs, trailers ? "grpc-status" : ":status", trailers ? o->grpc_status : o->status,
             sizeof(o->status));
    return 0;
}

static int ow_on_data(void *user, const uint8_t *p, size_t n)
{
    struct owner *o = user;

    assert_true(n <= sizeof(o->body) - o->body_n);
    memcpy(o->body + o->body_n, p, n);
    o->body_n += n;
    ml_h2_stream_consume(o->s, n);
    return 0;
}

static void ow_on_end(void *user)
{
    ((struct owner *)user)->ended = true;
}

static ssize_t ow_read(void *user, uint8_t *buf, size_t cap, bool *eof,
                       const struct ml_h2_hdrs **trailers)
{
    *eof = true;
    return 0;
}

static void ow_on_close(void *user, uint32_t error_code)
{
    struct owner *o = user;

    o->n_closed++;
    o->close_code = error_code;
}

static const struct ml_h2_stream_ops ops = {
    .on_headers = ow_on_headers,
    .on_data = ow_on_data,
    .on_end = ow_on_end,
    .read = ow_read,
    .on_close = ow_on_close,
};

static int on_output(void *user, const uint8_t *p, size_t n)
{
    return 0;
}

static void on_conn_close(void *user, struct ml_h2_conn *c, int reason, const char *why)
{
}

static const struct ml_h2_client_ops client_ops = {.on_close = on_conn_close};

static const struct ml_h2_settings settings = {
    .max_streams = 8,
    .stream_window_bytes = 65535,
    .conn_window_bytes = 65535 * 8,
    .max_header_list_bytes = 4096,
};

static void request(struct ml_h2_conn *c, struct owner *o)
{
    struct ml_h2_hdrs h;

    memset(o, 0, sizeof(*o));
    ml_h2_hdrs_init(&h, 4096);
    assert_int_equal(ml_h2_hdrs_add_str(&h, ":method", "POST"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&h, ":scheme", "http"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&h, ":path", "/a.B/C"), 0);
    assert_int_equal(ml_h2_hdrs_add_str(&h, ":authority", "backend"), 0);
    assert_int_equal(ml_h2_conn_request(c, &h, true, &ops, o, &o->s), 0);
    ml_h2_hdrs_deinit(&h);
}

static void put_headers(struct h2_bytes *in, uint32_t stream, const char *name, const char *value,
                        bool end_stream)
{
    struct h2_bytes block = {.n = 0};

    h2_put_field(&block, name, value);
    h2_put_frame(in, F_HEADERS, FL_END_HEADERS | (end_stream ? FL_END_STREAM : 0), stream, block.p,
                 block.n);
}

static void test_interleaved_streams_reach_their_own_owners(void **state)
{
    static struct owner a, b, c3;
    static struct h2_bytes in;
    struct ml_h2_conn *c;

    assert_int_equal(ml_h2_client_new_mem(9, &settings, &client_ops, NULL, on_output, NULL, &c), 0);
    request(c, &a); /* stream 1 */
    request(c, &b); /* stream 3 */
    ml_h2_conn_feed(c, NULL, 0);
    in.n = 0;
    h2_put_frame(&in, F_SETTINGS, 0, 0, NULL, 0);
    put_headers(&in, 1, ":status", "200", false);
    put_headers(&in, 3, ":status", "503", false);
    h2_put_frame(&in, F_DATA, 0, 3, "bbb", 3);
    h2_put_frame(&in, F_DATA, 0, 1, "a", 1);
    h2_put_frame(&in, F_DATA, 0, 3, "B", 1);
    put_headers(&in, 1, "grpc-status", "0", true);
    h2_put_frame(&in, F_DATA, 0, 1, "AA", 2); /* after its end: nobody's */
    put_headers(&in, 3, "grpc-status", "14", true);
    ml_h2_conn_feed(c, in.p, in.n);
    assert_string_equal(a.status, "200");
    assert_string_equal(b.status, "503");
    assert_int_equal(a.body_n, 1);
    assert_memory_equal(a.body, "a", 1);
    assert_int_equal(b.body_n, 4);
    assert_memory_equal(b.body, "bbbB", 4);
    assert_string_equal(a.grpc_status, "0");
    assert_string_equal(b.grpc_status, "14");
    assert_true(a.ended);
    assert_true(b.ended);
    assert_int_equal(a.n_closed, 1);
    assert_int_equal(b.n_closed, 1);
    assert_int_equal(b.close_code, ML_H2_NO_ERROR);

    /* Stream 5 opens after 1 and 3 are gone (their objects reused): its frames are its own. */
    request(c, &c3);
    ml_h2_conn_feed(c, NULL, 0);
    in.n = 0;
    put_headers(&in, 5, ":status", "200", false);
    h2_put_frame(&in, F_DATA, 0, 5, "cc", 2);
    h2_put_frame(&in, F_DATA, 0, 1, "x", 1); /* a closed stream's: nobody's */
    put_headers(&in, 5, "grpc-status", "0", true);
    ml_h2_conn_feed(c, in.p, in.n);
    assert_string_equal(c3.status, "200");
    assert_int_equal(c3.body_n, 2);
    assert_memory_equal(c3.body, "cc", 2);
    assert_true(c3.ended);
    assert_int_equal(a.body_n, 1); /* nothing more reached the old owners */
    assert_int_equal(b.body_n, 4);
    ml_h2_conn_close(c);
}

static int group_setup(void **state)
{
    ml_log_level = -1;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interleaved_streams_reach_their_own_owners),
    };

    return cmocka_run_group_tests(tests, group_setup, NULL);
}
