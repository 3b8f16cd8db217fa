/* HTTP/2 connections (nghttp2) over the socket seam: the downstream (server) side and the
 * upstream (client) side. The only folder that includes nghttp2. A connection never calls
 * another connection: the owner of a stream (proxy/call) is the only thing that knows both.
 *
 * Flow control is manual: received DATA stays counted against the peer's window until the owner
 * calls ml_h2_stream_consume(), so a peer never has more in flight than the owner has room for.
 * Output goes out when nghttp2 has some and the socket can take it; while the socket keeps
 * bytes back nothing more is produced (body reads stop, windows stay closed). */
#ifndef ML_H2_H2_H
#define ML_H2_H2_H

#include "core/loop-t.h"
#include "core/sock-t.h"
#include "core/transport-t.h"
#include "h2/h2-t.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The connection-level receive window for streams of stream_window_bytes each, n_streams at
 * once: as large as all of them together (capped by HTTP/2), so it adds no bound of its own and
 * one stalled stream cannot hold up the others. */
static inline uint32_t ml_h2_conn_window(uint32_t stream_window_bytes, uint32_t n_streams)
{
    uint64_t w = (uint64_t)stream_window_bytes * n_streams;

    return w > 0x7fffffff ? 0x7fffffff : (uint32_t)w;
}

/* A server connection on an accepted transport (a plain socket: ml_sock_transport; TLS:
 * tls/tls.h), which it takes over (on success only). id is for logs ("c%u"). 0 and *out;
 * -ENOMEM. */
int ml_h2_server_new(struct ml_loop *loop, struct ml_transport *tp, uint32_t id,
                     const struct ml_h2_settings *settings, const struct ml_h2_server_ops *ops,
                     void *user, struct ml_h2_conn **out);

/* A client connection to addr: connects (giving up after connect_timeout_ms, 0 = lws's limit),
 * then on_ready, or on_close if it never came up. wrap (NULL: plaintext) puts a transport such
 * as TLS over the socket: on_ready waits for it (wrap_user is its first argument). 0 and *out;
 * -ENOMEM, -EMFILE (the upstream fd budget is used up: core/fd_budget.h), or wrap's error; no
 * callback runs then. */
int ml_h2_client_new(struct ml_loop *loop, const struct ml_sock_addr *addr,
                     uint32_t connect_timeout_ms, uint32_t id,
                     const struct ml_h2_settings *settings, ml_transport_wrap_fn *wrap,
                     void *wrap_user, const struct ml_h2_client_ops *ops, void *user,
                     struct ml_h2_conn **out);

/* A server connection with no socket and no loop, for tests and fuzzing: input comes from
 * ml_h2_conn_feed(), output goes to output(), in the feed's event (our SETTINGS with the first
 * feed); a timer never runs. Everything else as ml_h2_server_new. 0 and *out; -ENOMEM. */
int ml_h2_server_new_mem(uint32_t id, const struct ml_h2_settings *settings,
                         const struct ml_h2_server_ops *ops, void *user, ml_h2_output_fn *output,
                         void *output_user, struct ml_h2_conn **out);
/* The same for a client connection: connected at once (on_ready does not run; requests may be
 * sent right away). */
int ml_h2_client_new_mem(uint32_t id, const struct ml_h2_settings *settings,
                         const struct ml_h2_client_ops *ops, void *user, ml_h2_output_fn *output,
                         void *output_user, struct ml_h2_conn **out);
/* Memory connection: p[0..n) (borrowed) as if read from the socket (n = 0 only writes what is
 * pending). c may be torn down inside (ops->on_close tells). */
void ml_h2_conn_feed(struct ml_h2_conn *c, const uint8_t *p, size_t n);

/* The owner is done with c: every stream still open is closed (its owner gets on_close(CANCEL)),
 * the socket is closed and c freed; the connection's own on_close does not run. Must not be
 * called from inside c's callbacks. */
void ml_h2_conn_close(struct ml_h2_conn *c);

/* Graceful GOAWAY (NO_ERROR, last stream = the last one the peer opened): no new streams, the
 * open ones finish; the connection closes (and its on_close runs) once none is left. A no-op the
 * second time. */
void ml_h2_conn_shutdown(struct ml_h2_conn *c);
/* true once a GOAWAY went either way (or stream ids ran out): no new streams on c, ever. */
bool ml_h2_conn_going_away(const struct ml_h2_conn *c);
/* Sends a PING; ml_h2_conn_ping_pending() is true until its ACK arrives. 0; -EPIPE (not
 * connected, or going away); -ENOMEM. */
int ml_h2_conn_ping(struct ml_h2_conn *c);
bool ml_h2_conn_ping_pending(const struct ml_h2_conn *c);
/* ml_time_now_ms() when bytes last arrived from the peer (or when c was made). */
uint64_t ml_h2_conn_last_read_ms(const struct ml_h2_conn *c);
/* 0 while streams are open; else ml_time_now_ms() since when none is and nothing arrived. */
uint64_t ml_h2_conn_idle_since_ms(const struct ml_h2_conn *c);

/* The peer's connection preface and its first SETTINGS frame have arrived: the HTTP/2 handshake is
 * complete on its side (a server's client, or a client's upstream: its on_slots runs then). */
bool ml_h2_conn_greeted(const struct ml_h2_conn *c);

uint32_t ml_h2_conn_id(const struct ml_h2_conn *c);
/* The peer's "IP:PORT" (ml_sock_peer_text), "" when unknown (a connection without a socket).
 * Returns buf. */
char *ml_h2_conn_peer_text(const struct ml_h2_conn *c, char *buf, size_t cap);
/* Who the peer is by its verified TLS certificate (URI SAN, else subject CN), for authz and the
 * access log; NULL for plaintext or a TLS peer without a certificate. Lives as long as c. */
const char *ml_h2_conn_peer_identity(const struct ml_h2_conn *c);
/* The ALPN protocol TLS agreed ("h2"), NULL for plaintext. */
const char *ml_h2_conn_alpn(const struct ml_h2_conn *c);
/* Client: streams that can be opened now: min(peer's SETTINGS_MAX_CONCURRENT_STREAMS, limit)
 * minus those open; 0 while connecting, after GOAWAY or when closing. */
uint32_t ml_h2_conn_free_slots(const struct ml_h2_conn *c, uint32_t limit);
/* Client: streams open (requested, not closed yet). */
uint32_t ml_h2_conn_n_streams(const struct ml_h2_conn *c);

/* Client: sends a request. hdrs: pseudo-headers first (borrowed, copied); connection-specific
 * fields are left out. end_stream: no body (ops->read is never called). On 0, *out is the
 * stream, reporting to ops/owner until on_close; -ENOMEM, -EAGAIN (no stream slot or id left,
 * or the connection is going away), -EINVAL (no fields at all): no callback runs. */
int ml_h2_conn_request(struct ml_h2_conn *c, const struct ml_h2_hdrs *hdrs, bool end_stream,
                       const struct ml_h2_stream_ops *ops, void *owner, struct ml_h2_stream **out);

/* Client: the same with the fields given by reference (borrowed, copied). */
int ml_h2_conn_request_refs(struct ml_h2_conn *c, const struct ml_h2_field_ref *fields,
                            size_t n_fields, bool end_stream, const struct ml_h2_stream_ops *ops,
                            void *owner, struct ml_h2_stream **out);

/* Server, from on_request: the owner of the new stream. */
void ml_h2_stream_attach(struct ml_h2_stream *s, const struct ml_h2_stream_ops *ops, void *owner);
/* Server: sends the response headers (":status" first; connection-specific fields left out).
 * end_stream: nothing follows (a trailers-only gRPC answer); else the body comes from
 * ops->read. 0; -ENOMEM; -EPROTO (already responded, or the stream is going away). */
int ml_h2_stream_respond(struct ml_h2_stream *s, const struct ml_h2_hdrs *hdrs, bool end_stream);
/* Body bytes (or its end) are there for ops->read again after it returned -EAGAIN. */
void ml_h2_stream_resume(struct ml_h2_stream *s);
/* The owner is done with n bytes of received DATA: the peer may send that much more. */
void ml_h2_stream_consume(struct ml_h2_stream *s, size_t n);
/* The owner gives up the stream: RST_STREAM with error_code is sent, no callback runs any more,
 * and s must not be used. */
void ml_h2_stream_reset(struct ml_h2_stream *s, uint32_t error_code);

int32_t ml_h2_stream_id(const struct ml_h2_stream *s);
struct ml_h2_conn *ml_h2_stream_conn(const struct ml_h2_stream *s);

#endif
