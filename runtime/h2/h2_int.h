/* h2/-private: the connection and stream objects, shared by conn.c and stream.c. */
#ifndef ML_H2_H2_INT_H
#define ML_H2_H2_INT_H

#include "core/list-t.h"
#include "core/loop-t.h"
#include "core/sock-t.h"
#include "h2/h2-t.h"
#include "h2/hdrs-t.h"

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* nghttp2 output gathered per socket write: the unit of one send(). */
#define H2_OUT_BYTES (32 * 1024)
/* The most one nghttp2_session_mem_send2() call returns: one frame buffer chunk (frame header,
 * pad length byte, 16 KiB payload: nghttp2's NGHTTP2_FRAMEBUF_CHUNKLEN; meshlet never raises
 * the frame size). */
#define H2_PIECE_MAX (9 + 1 + 16384)

struct ml_h2_stream {
    struct ml_h2_conn *conn;
    struct ml_list node; /* in conn->streams */
    int32_t id;
    const struct ml_h2_stream_ops *ops; /* NULL: no owner (not attached yet, or it reset) */
    void *owner;
    struct ml_h2_hdrs hdrs; /* the header block being received */
    size_t unconsumed;      /* DATA bytes given to the owner and not consumed yet */
    bool deferred;          /* ops->read said -EAGAIN: nghttp2 waits for a resume */
    bool responded;         /* server: response headers submitted */
    bool got_response;      /* client: the final response headers arrived */
    bool reset;             /* the owner reset the stream */
    bool failed;            /* the owner refused what it got: RST_STREAM sent, input dropped */
};

struct ml_h2_conn {
    struct ml_loop *loop;
    nghttp2_session *ng;
    struct ml_sock *sock;    /* NULL once gone */
    ml_h2_output_fn *output; /* a memory connection's output (then no sock, no loop); else NULL */
    void *output_user;
    uint32_t id;
    bool server;
    const struct ml_h2_server_ops *sops; /* server */
    const struct ml_h2_client_ops *cops; /* client */
    void *user;
    struct ml_h2_settings settings;
    struct ml_list streams;      /* every stream object alive (struct ml_h2_stream) */
    uint32_t n_streams;          /* = length of streams */
    int in_ng;                   /* inside nghttp2_session_mem_recv2/mem_send2 (nesting) */
    bool connected;              /* client: the socket is up (a server's always is) */
    bool goaway;                 /* the peer sent GOAWAY: no new streams */
    bool goaway_sent;            /* ml_h2_conn_shutdown ran: the peer opens no new streams */
    bool ping_pending;           /* a PING we sent has not been acknowledged yet */
    bool peer_settings;          /* the peer's first SETTINGS arrived (its connection preface) */
    uint64_t last_read_ms;       /* ml_time_now_ms() of the last bytes read (or of the start) */
    uint64_t idle_since_ms;      /* ml_time_now_ms() when the last stream closed (or the start) */
    bool owner_gone;             /* ml_h2_conn_close ran: tell the owner nothing */
    bool dead;                   /* being torn down: the stream APIs do nothing */
    struct ml_defer flush_defer; /* output to write at the end of the event */
    size_t out_len;              /* bytes in out[] not written yet */
    uint8_t out[H2_OUT_BYTES];
};

/* Output is waiting: write it at the end of the event (or right after the nghttp2 call this
 * connection is inside). */
void ml_h2_conn_kick(struct ml_h2_conn *c);

/* stream.c */
struct ml_h2_stream *ml_h2_stream_new(struct ml_h2_conn *c, int32_t id);
/* The stream is closed (nghttp2 said so, or the connection is being torn down): tells its owner,
 * gives back its unconsumed window, frees it. */
void ml_h2_stream_gone(struct ml_h2_conn *c, struct ml_h2_stream *s, uint32_t error_code);

#endif
