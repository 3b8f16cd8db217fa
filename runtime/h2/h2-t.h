#ifndef ML_H2_H2_T_H
#define ML_H2_H2_T_H

#include "h2/hdrs-t.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ml_h2_conn;   /* one HTTP/2 connection over one socket: server (downstream) or client */
struct ml_h2_stream; /* one stream of a connection */

/* HTTP/2 error codes (RFC 9113 7) that meshlet sends or looks at. */
enum ml_h2_error {
    ML_H2_NO_ERROR = 0x0,
    ML_H2_PROTOCOL_ERROR = 0x1,
    ML_H2_INTERNAL_ERROR = 0x2,
    ML_H2_FLOW_CONTROL_ERROR = 0x3,
    ML_H2_STREAM_CLOSED = 0x5,
    ML_H2_REFUSED_STREAM = 0x7,
    ML_H2_CANCEL = 0x8,
};

/* How many of a client's most recent streams a downstream connection remembers (id, and whether
 * the client ended or reset it: 5 bytes each), to answer frames on closed streams exactly. A
 * frame on a stream older than these is taken as a stream id lower than one already used
 * (GOAWAY PROTOCOL_ERROR, RFC 9113 5.1.1): by then the client has opened this many newer
 * streams, which RFC 9113 5.1 accepts as proof that it saw the stream close. */
#define ML_H2_STREAMS_REMEMBERED 128

/* What a connection advertises and opens up. */
struct ml_h2_settings {
    uint32_t max_streams;           /* SETTINGS_MAX_CONCURRENT_STREAMS; 0 = do not send */
    uint32_t stream_window_bytes;   /* SETTINGS_INITIAL_WINDOW_SIZE: the most a peer may send on a
                                       stream before the owner consumes; <= the owner's buffer */
    uint32_t conn_window_bytes;     /* connection-level receive window */
    uint32_t max_header_list_bytes; /* SETTINGS_MAX_HEADER_LIST_SIZE; also what is accepted */
};

/* What a stream tells its owner (proxy/call). Each runs from the connection's I/O; on_close is
 * the last, and the stream must not be used after it. None runs after the owner reset the
 * stream (ml_h2_stream_reset). */
struct ml_h2_stream_ops {
    /* A header block arrived: the response headers (client streams; interim 1xx responses are
     * not passed on) or trailers (trailers = true, either side). end_stream: the peer's side
     * ends with it (on_end follows). hdrs is lent for the call: the owner may keep its contents
     * with ml_h2_hdrs_move(). Return 0, or a negative errno to reset the stream
     * (INTERNAL_ERROR; on_close follows). */
    int (*on_headers)(void *owner, struct ml_h2_hdrs *hdrs, bool trailers, bool end_stream);
    /* n bytes of DATA payload, borrowed: the owner copies them and calls ml_h2_stream_consume()
     * once they have left it (that reopens the peer's window). Return 0, or a negative errno to
     * reset the stream (on_close follows). */
    int (*on_data)(void *owner, const uint8_t *p, size_t n);
    /* The peer ended its side of the stream (END_STREAM). */
    void (*on_end)(void *owner);
    /* The body to send: copy up to cap bytes into buf and return how many, or -EAGAIN when none
     * are there yet (ask again with ml_h2_stream_resume()), or another negative errno to reset
     * the stream. Set *eof when the body ends with these bytes; *trailers may then point to
     * trailers to send after it (borrowed for the call). */
    ssize_t (*read)(void *owner, uint8_t *buf, size_t cap, bool *eof,
                    const struct ml_h2_hdrs **trailers);
    /* The stream is gone: error_code is ML_H2_NO_ERROR when it completed both ways, else the
     * peer's RST_STREAM code, REFUSED_STREAM (GOAWAY, not processed) or CANCEL (the connection
     * was lost or closed). */
    void (*on_close)(void *owner, uint32_t error_code);
};

/* Where a memory connection's output goes (ml_h2_server_new_mem): n bytes (borrowed). Return 0,
 * or a negative errno to tear the connection down. */
typedef int ml_h2_output_fn(void *output_user, const uint8_t *p, size_t n);

/* A server (downstream) connection's events. */
struct ml_h2_server_ops {
    /* A request's headers arrived on stream s (end_stream: it has no body; on_end follows
     * once an owner is attached). The callee attaches an owner with ml_h2_stream_attach() before
     * returning, or the stream is refused (RST_STREAM REFUSED_STREAM). hdrs is lent for the
     * call: the callee may keep its contents with ml_h2_hdrs_move(). */
    void (*on_request)(void *user, struct ml_h2_stream *s, struct ml_h2_hdrs *hdrs,
                       bool end_stream);
    /* The connection is gone (after every stream's on_close). Not called after
     * ml_h2_conn_close(). */
    void (*on_close)(void *user, struct ml_h2_conn *c);
};

/* A client (upstream) connection's events. */
struct ml_h2_client_ops {
    /* Connected: requests may be sent (ml_h2_conn_request). */
    void (*on_ready)(void *user, struct ml_h2_conn *c);
    /* Room for more streams may have opened (a stream closed, the peer's SETTINGS arrived) or
     * closed (GOAWAY received): look again at ml_h2_conn_free_slots(). */
    void (*on_slots)(void *user, struct ml_h2_conn *c);
    /* The connection is gone, or never came up (reason: negative errno of the connect, 0 for a
     * close), after every stream's on_close. why is borrowed. Not called after
     * ml_h2_conn_close(). */
    void (*on_close)(void *user, struct ml_h2_conn *c, int reason, const char *why);
};

#endif
