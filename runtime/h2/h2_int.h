/* h2/-private: the connection and stream objects, shared by conn.c and stream.c. */
#ifndef ML_H2_H2_INT_H
#define ML_H2_H2_INT_H

#include "core/list-t.h"
#include "core/loop-t.h"
#include "core/sock-t.h"
#include "core/transport-t.h"
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

/* nghttp2's allocations of one connection (mem.c): blocks of H2_MEM_MIN_BYTES << class for
 * H2_MEM_N_CLASSES classes (32 B .. 2 KiB: streams, queued frames, header copies, HPACK
 * entries) are kept when freed, up to H2_MEM_SPARE_BYTES per connection: about what 100 streams
 * in flight at once use, so a warm connection at its usual load allocates nothing, and an idle
 * one holds no more than that. Larger blocks (the session, the frame buffers: made once per
 * connection) are exact-size from the heap: a 4 KiB class would round the session up and cost
 * each idle connection ~1 KiB more (17.6 against 18.8 KiB measured). */
#define H2_MEM_MIN_BYTES 32
#define H2_MEM_N_CLASSES 7
#define H2_MEM_SPARE_BYTES (128 * 1024)

struct h2_block;

struct ml_h2_mem {
    struct h2_block *spare[H2_MEM_N_CLASSES];
    size_t spare_bytes; /* sum of the spare blocks' sizes */
};

/* Streams a connection keeps for reuse once closed: a stream object and its header list's
 * memory (up to H2_HDRS_KEEP_BYTES of names and values). At most the connection's stream
 * limit (settings.max_streams) when it has one. */
#define H2_SPARE_STREAMS 100
#define H2_HDRS_KEEP_BYTES 2048

struct ml_h2_stream {
    struct ml_h2_conn *conn;
    struct ml_list node; /* in conn->streams */
    int32_t id;
    const struct ml_h2_stream_ops *ops; /* NULL: no owner (not attached yet, or it reset) */
    void *owner;
    struct ml_h2_hdrs hdrs; /* the header block being received */
    /* The names and values of the last header block submitted on the stream (request or
     * response headers, then trailers): nghttp2 is handed them without a copy of its own
     * (NGHTTP2_NV_FLAG_NO_COPY_NAME | NO_COPY_VALUE) and reads them when it serializes the
     * frame, which may be events later. They stay valid until then because nghttp2 serializes
     * a stream's frames only while the stream is open, and this object is freed (or reused)
     * only after nghttp2 closed the stream (ml_h2_stream_gone) or the session is deleted; the
     * trailers replace the headers here only once nghttp2 asks for the body (data_read), which
     * it does after it serialized the headers. Kept with a spare stream up to
     * H2_HDRS_KEEP_BYTES. */
    uint8_t *sent;
    size_t cap_sent;
    size_t unconsumed;      /* DATA bytes given to the owner and not consumed yet */
    bool deferred;          /* ops->read said -EAGAIN: nghttp2 waits for a resume */
    bool responded;         /* server: response headers submitted */
    bool got_response;      /* client: the final response headers arrived */
    bool reset;             /* the owner reset the stream */
    bool failed;            /* the owner refused what it got: RST_STREAM sent, input dropped */
};

/* What a server connection remembers of the peer's streams, to answer frames on closed streams
 * as RFC 9113 5.1 says (gate.c). nghttp2 forgets a stream as soon as it closes: meshlet sets
 * no_closed_streams, and nghttp2 only ever keeps closed streams for the RFC 7540 priority tree
 * (not when the peer opts out of it), never tells a peer's RST_STREAM from ours, and has no
 * memory of ids that were skipped; so it silently drops DATA/HEADERS on any closed stream. */
#define H2_SEEN_PEER_ENDED 0x1 /* the peer ended its side (END_STREAM) */
#define H2_SEEN_PEER_RESET 0x2 /* the peer sent RST_STREAM */
#define H2_SEEN_WE_RESET 0x4   /* we answered STREAM_CLOSED once: later frames are ignored */

struct ml_h2_gate {
    uint32_t preface_left; /* bytes of the client connection preface still to pass through */
    uint32_t payload_left; /* bytes of the current frame's payload still to pass through */
    uint8_t hd[9];         /* the next frame header, as far as it came */
    uint8_t hd_n;
    bool closed;    /* the gate ended the connection (GOAWAY queued): input is dropped */
    int32_t max_id; /* the highest stream id the peer opened; 0 = none yet */
    /* The last ML_H2_STREAMS_REMEMBERED streams the peer opened, oldest first from `next`
     * (ids ascend): one older than these counts as never opened. */
    uint32_t n_seen, next;
    int32_t seen_id[ML_H2_STREAMS_REMEMBERED];
    uint8_t seen_how[ML_H2_STREAMS_REMEMBERED]; /* H2_SEEN_* */
};

struct ml_h2_conn {
    struct ml_loop *loop;
    nghttp2_session *ng;
    struct ml_transport *tp; /* what carries the bytes (plain, TLS, memory); NULL once gone */
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
    uint64_t last_read_ms;       /* ml_time_now_ms() of the last bytes read (or of the start) */
    uint64_t idle_since_ms;      /* ml_time_now_ms() when the last stream closed (or the start) */
    bool owner_gone;             /* ml_h2_conn_close ran: tell the owner nothing */
    bool dead;                   /* being torn down: the stream APIs do nothing */
    struct ml_defer flush_defer; /* output to write at the end of the event */
    bool greeted;                /* the peer's preface and first SETTINGS arrived: it speaks HTTP/2 */
    struct ml_h2_gate gate;      /* server: frames on closed streams (gate.c) */
    struct ml_h2_mem mem;        /* nghttp2's allocations (mem.c) */
    /* The stream conn.c's callbacks found last (or the one a header block opened), or NULL:
     * tried first for the next callback's stream id; cleared when it goes (stream.c). */
    struct ml_h2_stream *last_stream;
    struct ml_list spare_streams; /* closed streams kept for reuse (stream.c) */
    uint32_t n_spare_streams;
    size_t out_len;              /* bytes in out[] not written yet */
    uint8_t out[H2_OUT_BYTES];
};

/* Output is waiting: write it at the end of the event (or right after the nghttp2 call this
 * connection is inside). */
void ml_h2_conn_kick(struct ml_h2_conn *c);

/* gate.c: a server connection's input, frame by frame, to nghttp2 (what nghttp2_session_mem_recv2
 * returns: n, or a negative nghttp2 error). A DATA or HEADERS frame on a stream that is closed
 * is answered before nghttp2 sees it: RST_STREAM STREAM_CLOSED after the peer's RST_STREAM,
 * GOAWAY STREAM_CLOSED after the peer ended it, GOAWAY PROTOCOL_ERROR for an id lower than one
 * already used that was never opened (or is forgotten); ignored when we reset it. */
void ml_h2_gate_init(struct ml_h2_gate *g, bool server);
long ml_h2_gate_recv(struct ml_h2_conn *c, const uint8_t *p, size_t n);

/* mem.c: the nghttp2_mem functions, user = &conn->mem. */
void ml_h2_mem_init(struct ml_h2_mem *m);
/* Frees the spare blocks; after nghttp2_session_del. */
void ml_h2_mem_deinit(struct ml_h2_mem *m);
void *ml_h2_mem_malloc(size_t size, void *user);
void ml_h2_mem_free(void *ptr, void *user);
void *ml_h2_mem_calloc(size_t nmemb, size_t size, void *user);
void *ml_h2_mem_realloc(void *ptr, size_t size, void *user);

/* stream.c */
struct ml_h2_stream *ml_h2_stream_new(struct ml_h2_conn *c, int32_t id);
/* The stream is closed (nghttp2 said so, or the connection is being torn down): tells its owner,
 * gives back its unconsumed window, frees it. */
void ml_h2_stream_gone(struct ml_h2_conn *c, struct ml_h2_stream *s, uint32_t error_code);
/* Frees the spare streams; when the connection goes. */
void ml_h2_stream_spares_free(struct ml_h2_conn *c);

#endif
