/* libFuzzer target: an upstream HTTP/2 client connection (runtime/h2) fed a backend's raw bytes
 * from memory (ml_h2_client_new_mem: no socket, no loop, no timers), its output thrown away.
 * The harness sends gRPC requests first, as proxy/call would, then the input plays the backend:
 * response headers (interim 1xx included), DATA, trailers, resets, GOAWAY, SETTINGS.
 *
 * Input: byte 0 = mode, byte 1 = allocation budget, the rest = bytes from the backend.
 *   mode & 0x03: requests sent before the input: 1 + that many
 *   mode & 0x04: requests have a body (sent through ops->read, with trailers)
 *   mode & 0x08: owners refuse the response headers (on_headers fails: the stream is reset)
 *   mode & 0x10: owners consume DATA only at the stream's end
 *   mode & 0x20: the backend bytes are fed one at a time (else all at once)
 *   mode & 0x40: on_slots opens another request while slots are free (at most 8 in all)
 *   mode & 0x80: allocations fail after `budget` of them
 * Deterministic: no clock, no randomness. */
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

struct fz {
    uint8_t mode;
    struct ml_h2_conn *c;
    bool conn_closed;
    bool want_more; /* on_slots ran: look for free slots after the feed (as the pool defers) */
    unsigned n_opened;
    unsigned n_owners; /* alive: must be 0 at the end */
};

struct owner {
    struct fz *fz;
    struct ml_h2_stream *s;
    size_t held;
    size_t body_left;
    struct ml_h2_hdrs trailers;
};

static int on_output(void *user, const uint8_t *p, size_t n)
{
    return 0;
}

static int ow_on_headers(void *owner, struct ml_h2_hdrs *hdrs, bool trailers, bool end_stream)
{
    struct owner *o = owner;
    struct ml_h2_hdrs kept;

    if (o->fz->mode & 0x08) {
        return -EPROTO;
    }
    /* Keep the response as proxy/call does, and look it over. */
    ml_h2_hdrs_init(&kept, hdrs->max_list_bytes);
    ml_h2_hdrs_move(&kept, hdrs);
    for (uint32_t i = 0; i < kept.n_fields; i++) {
        struct ml_slice name = ml_h2_hdrs_name(&kept, i), value = ml_h2_hdrs_value(&kept, i);

        (void)ml_h2_field_is_connection_specific(name, value);
    }
    (void)ml_h2_hdrs_find(&kept, "grpc-status", 0);
    ml_h2_hdrs_deinit(&kept);
    return 0;
}

static int ow_on_data(void *owner, const uint8_t *p, size_t n)
{
    struct owner *o = owner;

    if (o->fz->mode & 0x10) {
        o->held += n;
    } else {
        ml_h2_stream_consume(o->s, n);
    }
    return 0;
}

static void ow_on_end(void *owner)
{
    struct owner *o = owner;

    ml_h2_stream_consume(o->s, o->held);
    o->held = 0;
}

static ssize_t ow_read(void *owner, uint8_t *buf, size_t cap, bool *eof,
                       const struct ml_h2_hdrs **trailers)
{
    struct owner *o = owner;
    size_t n = o->body_left < cap ? o->body_left : cap;

    memset(buf, 'q', n);
    o->body_left -= n;
    if (o->body_left == 0) {
        *eof = true;
        *trailers = o->trailers.n_fields > 0 ? &o->trailers : NULL;
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

static void open_request(struct fz *fz)
{
    bool body = (fz->mode & 0x04) != 0;
    struct ml_h2_hdrs req;
    struct owner *o = calloc(1, sizeof(*o));
    int rv;

    if (o == NULL) {
        return;
    }
    o->fz = fz;
    o->body_left = body ? 5 + 2000 : 0;
    ml_h2_hdrs_init(&o->trailers, 4096);
    ml_h2_hdrs_init(&req, 4096);
    rv = ml_h2_hdrs_add_str(&req, ":method", "POST");
    rv = rv < 0 ? rv : ml_h2_hdrs_add_str(&req, ":scheme", "http");
    rv = rv < 0 ? rv : ml_h2_hdrs_add_str(&req, ":path", "/helloworld.Greeter/SayHello");
    rv = rv < 0 ? rv : ml_h2_hdrs_add_str(&req, ":authority", "backend:50051");
    rv = rv < 0 ? rv : ml_h2_hdrs_add_str(&req, "content-type", "application/grpc");
    rv = rv < 0 ? rv : ml_h2_hdrs_add_str(&req, "te", "trailers");
    rv = rv < 0 ? rv : ml_h2_hdrs_add_str(&req, "connection", "keep-alive"); /* left out */
    if (body) {
        rv = rv < 0 ? rv : ml_h2_hdrs_add_str(&o->trailers, "x-request-trailer", "1");
    }
    fz->n_opened++;
    if (rv == 0) {
        fz->n_owners++;
        rv = ml_h2_conn_request(fz->c, &req, !body, &owner_ops, o, &o->s);
        if (rv < 0) {
            fz->n_owners--; /* no callback runs */
        }
    }
    ml_h2_hdrs_deinit(&req);
    if (rv < 0) {
        ml_h2_hdrs_deinit(&o->trailers);
        free(o);
    }
}

static void on_slots(void *user, struct ml_h2_conn *c)
{
    struct fz *fz = user;

    fz->want_more = true;
}

/* What the pool does at the end of the event after on_slots: fill the free slots. */
static void more_requests(struct fz *fz)
{
    if (!(fz->mode & 0x40) || !fz->want_more || fz->conn_closed) {
        return;
    }
    fz->want_more = false;
    while (fz->n_opened < 8 && ml_h2_conn_free_slots(fz->c, 4) > 0) {
        open_request(fz);
    }
}

static void on_close(void *user, struct ml_h2_conn *c, int reason, const char *why)
{
    struct fz *fz = user;

    fz->conn_closed = true;
}

static const struct ml_h2_client_ops client_ops = {
    .on_slots = on_slots,
    .on_close = on_close,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ml_log_level = -1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct ml_h2_settings settings = {
        .max_streams = 0,
        .stream_window_bytes = 65535,
        .conn_window_bytes = ml_h2_conn_window(65535, 8),
        .max_header_list_bytes = 4096,
    };
    struct fz fz = {0};
    size_t piece;

    if (size < 2) {
        return 0;
    }
    fz.mode = data[0];
    piece = (fz.mode & 0x20) ? 1 : SIZE_MAX;
    if (fz.mode & 0x80) {
        ml_alloc_fail_after(data[1]);
    }
    data += 2;
    size -= 2;
    if (ml_h2_client_new_mem(1, &settings, &client_ops, &fz, on_output, NULL, &fz.c) < 0) {
        ml_alloc_fail_after(-1);
        return 0;
    }
    for (unsigned i = 0; i <= (fz.mode & 3u); i++) {
        open_request(&fz);
    }
    ml_h2_conn_feed(fz.c, NULL, 0); /* the preface and the requests go out */
    more_requests(&fz);
    while (!fz.conn_closed && size > 0) {
        size_t n = size < piece ? size : piece;

        ml_h2_conn_feed(fz.c, data, n);
        data += n;
        size -= n;
        more_requests(&fz);
    }
    if (!fz.conn_closed) {
        ml_h2_conn_close(fz.c);
    }
    ml_alloc_fail_after(-1);
    if (fz.n_owners != 0) {
        __builtin_trap(); /* an owner never heard on_close: invariant broken */
    }
    return 0;
}
