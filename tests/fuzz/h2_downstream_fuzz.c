/* libFuzzer target: a downstream HTTP/2 server connection (runtime/h2) fed raw bytes from memory
 * (ml_h2_server_new_mem: no socket, no loop, no timers), its output thrown away. The owner of
 * each request stream is a small stand-in for proxy/call whose behaviour the input picks, so
 * that the stream APIs (attach, respond, body reads with trailers, consume, reset) run against
 * whatever the peer sends.
 *
 * Input: byte 0 = mode, byte 1 = allocation budget, the rest = bytes from the client.
 *   mode & 0x03: what an owner does with a request: 0 answer with a body and trailers,
 *                1 trailers-only answer, 2 refuse it (attach nothing), 3 reset it at once
 *   mode & 0x04: consume received DATA only when the stream ends (else at once)
 *   mode & 0x08: owners answer -ENOBUFS from on_data (the stream is reset)
 *   mode & 0x30: the client bytes are fed in pieces of 1, 7, 100 bytes or all at once
 *   mode & 0x40: the harness sends the client connection preface first
 *   mode & 0x80: allocations fail after `budget` of them (every allocation meshlet and nghttp2
 *                make goes through ml_malloc)
 * Deterministic: no clock, no randomness (the idle timestamps h2 keeps are never looked at). */
#include "core/alloc.h"
#include "core/log.h"
#include "h2/h2.h"
#include "h2/hdrs.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

struct fz {
    uint8_t mode;
    bool conn_closed;  /* the connection's on_close ran: it is freed */
    unsigned n_owners; /* owners alive: must be 0 at the end */
    size_t out_bytes;
};

struct owner {
    struct fz *fz;
    struct ml_h2_stream *s;
    size_t held;      /* DATA bytes not consumed yet */
    size_t body_left; /* response body bytes still to send */
    bool got_end;     /* the client's side ended */
    struct ml_h2_hdrs trailers;
};

static int on_output(void *user, const uint8_t *p, size_t n)
{
    struct fz *fz = user;

    fz->out_bytes += n;
    (void)p;
    return 0;
}

static int ow_on_headers(void *owner, struct ml_h2_hdrs *hdrs, bool trailers, bool end_stream)
{
    return 0; /* request trailers: nothing to do */
}

static int ow_on_data(void *owner, const uint8_t *p, size_t n)
{
    struct owner *o = owner;

    if (o->fz->mode & 0x08) {
        return -ENOBUFS;
    }
    if (o->fz->mode & 0x04) {
        o->held += n;
    } else {
        ml_h2_stream_consume(o->s, n);
    }
    return 0;
}

static void ow_on_end(void *owner)
{
    struct owner *o = owner;

    o->got_end = true;
    if (o->held > 0) {
        ml_h2_stream_consume(o->s, o->held);
        o->held = 0;
    }
    ml_h2_stream_resume(o->s);
}

static ssize_t ow_read(void *owner, uint8_t *buf, size_t cap, bool *eof,
                       const struct ml_h2_hdrs **trailers)
{
    struct owner *o = owner;
    size_t n = o->body_left < cap ? o->body_left : cap;

    if (!o->got_end && o->body_left < 40) {
        return -EAGAIN; /* the last bytes wait for the request's end: exercises resume */
    }
    memset(buf, 'b', n);
    o->body_left -= n;
    if (o->body_left == 0) {
        *eof = true;
        if (o->trailers.n_fields > 0) {
            *trailers = &o->trailers;
        }
    }
    return (ssize_t)n;
}

static void ow_on_close(void *owner, uint32_t error_code)
{
    struct owner *o = owner;

    o->fz->n_owners--;
    ml_h2_hdrs_deinit(&o->trailers);
    free(o);
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
    struct fz *fz = user;
    struct ml_h2_hdrs resp;
    struct owner *o;
    bool trailers_only = (fz->mode & 3) == 1;
    int rv;

    if ((fz->mode & 3) == 2 || (o = calloc(1, sizeof(*o))) == NULL) {
        return; /* refused */
    }
    o->fz = fz;
    o->s = s;
    o->body_left = 100 + hdrs->n_fields * 1000; /* some answers span DATA frames */
    ml_h2_hdrs_init(&o->trailers, 4096);
    fz->n_owners++;
    ml_h2_stream_attach(s, &owner_ops, o);
    if ((fz->mode & 3) == 3) {
        ml_h2_stream_reset(s, ML_H2_CANCEL); /* no callback after this: free the owner here */
        ow_on_close(o, ML_H2_CANCEL);
        return;
    }
    ml_h2_hdrs_init(&resp, 4096);
    rv = ml_h2_hdrs_add_str(&resp, ":status", "200");
    rv = rv < 0 ? rv : ml_h2_hdrs_add_str(&resp, "content-type", "application/grpc");
    rv = rv < 0 ? rv : ml_h2_hdrs_add_str(&resp, "connection", "close"); /* must be dropped */
    if (trailers_only) {
        rv = rv < 0 ? rv : ml_h2_hdrs_add_str(&resp, "grpc-status", "0");
    } else {
        rv = rv < 0 ? rv : ml_h2_hdrs_add_str(&o->trailers, "grpc-status", "0");
        rv = rv < 0 ? rv : ml_h2_hdrs_add_str(&o->trailers, "grpc-message", "ok");
    }
    /* Echo the request's fields back in the trailers: the peer's bytes go out again. */
    for (uint32_t i = 0; rv == 0 && i < hdrs->n_fields && i < 8; i++) {
        struct ml_slice name = ml_h2_hdrs_name(hdrs, i), value = ml_h2_hdrs_value(hdrs, i);

        if (name.n > 0 && name.p[0] != ':') {
            rv = ml_h2_hdrs_add(&o->trailers, name.p, name.n, value.p, value.n,
                                hdrs->fields[i].never_index);
            if (rv == -ENOBUFS) {
                rv = 0;
            }
        }
    }
    if (rv == 0) {
        rv = ml_h2_stream_respond(s, &resp, trailers_only);
    }
    ml_h2_hdrs_deinit(&resp);
    if (rv < 0) {
        ml_h2_stream_reset(s, ML_H2_INTERNAL_ERROR);
        ow_on_close(o, ML_H2_INTERNAL_ERROR);
    }
}

static void on_conn_close(void *user, struct ml_h2_conn *c)
{
    struct fz *fz = user;

    fz->conn_closed = true;
}

static const struct ml_h2_server_ops server_ops = {
    .on_request = on_request,
    .on_close = on_conn_close,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ml_log_level = -1; /* quiet: every line would be noise at this rate */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t pieces[] = {1, 7, 100, SIZE_MAX};
    const struct ml_h2_settings settings = {
        .max_streams = 16,
        .stream_window_bytes = 65535,
        .conn_window_bytes = ml_h2_conn_window(65535, 16),
        .max_header_list_bytes = 4096,
    };
    struct fz fz = {0};
    struct ml_h2_conn *c;
    size_t piece;

    if (size < 2) {
        return 0;
    }
    fz.mode = data[0];
    piece = pieces[(data[0] >> 4) & 3];
    if (fz.mode & 0x80) {
        ml_alloc_fail_after(data[1]);
    }
    data += 2;
    size -= 2;
    if (ml_h2_server_new_mem(1, &settings, &server_ops, &fz, on_output, &fz, &c) < 0) {
        ml_alloc_fail_after(-1);
        return 0;
    }
    if (fz.mode & 0x40) {
        ml_h2_conn_feed(c, preface, sizeof(preface) - 1);
    }
    while (!fz.conn_closed && size > 0) {
        size_t n = size < piece ? size : piece;

        ml_h2_conn_feed(c, data, n);
        data += n;
        size -= n;
    }
    if (!fz.conn_closed) {
        ml_h2_conn_feed(c, NULL, 0); /* what is still pending goes out */
    }
    if (!fz.conn_closed) {
        ml_h2_conn_close(c);
    }
    ml_alloc_fail_after(-1);
    if (fz.n_owners != 0) {
        __builtin_trap(); /* an owner never heard on_close: invariant broken */
    }
    return 0;
}
