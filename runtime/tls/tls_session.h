/* The open half of a data-plane TLS connection, the same on a listener (tls_server.c) and to an
 * upstream (tls_client.c): mbedTLS over a lower transport, itself a transport for h2. Private
 * to tls/: each side embeds struct ml_tls_session first in its own connection and keeps what
 * differs (how the handshake starts and ends, SNI, ALPN and identity checks, resumption) in its
 * file, told through struct ml_tls_session_side.
 *
 * Who frees what: a session is freed (side->free) when its owner closes it, or when the lower
 * transport went away and the owner is done; never inside one of its own callbacks (depth > 0):
 * then at their end (ml_tls_session_leave).
 *
 * Bytes: the lower transport's on_read hands ciphertext in (ml_tls_session_feed); mbedTLS takes
 * it through the recv callback (what it does not need yet it keeps in its own record buffer),
 * plaintext goes up through the owner's on_read. Plaintext written by the owner goes out record
 * by record through the send callback; when the lower transport refuses a record (-EAGAIN) the
 * rest is kept (one write at most, like a socket) and sent on the lower's on_writable. */
#ifndef ML_TLS_TLS_SESSION_H
#define ML_TLS_TLS_SESSION_H

#include "core/transport-t.h"
#include "tls/tls.h"

#include <mbedtls/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ml_tls_session_state {
    ML_TLS_SESSION_CONNECTING = 0, /* upstreams: the lower transport is not connected yet */
    ML_TLS_SESSION_HANDSHAKE,
    ML_TLS_SESSION_OPEN,
    ML_TLS_SESSION_DEAD, /* the lower transport is gone or closing */
};

struct ml_tls_session;

/* What differs between a listener's and an upstream's connection. Optional hooks may be NULL. */
struct ml_tls_session_side {
    const char *name; /* in log lines: "tls", "tls client" */
    /* mbedtls_ssl_read calls in a row that move nothing while input is left (or the handshake
     * is not over) before the rest waits for the next bytes from the peer: a loop guard, each
     * call takes at least one record. */
    int read_retries;
    /* One step of the handshake (state HANDSHAKE): the side checks and hands over when done. */
    void (*handshake_step)(struct ml_tls_session *s);
    /* Frees the side's connection; it calls ml_tls_session_deinit. */
    void (*free)(struct ml_tls_session *s);
    /* Optional: plaintext came, before the owner hears it (upstreams: the server confirmed). */
    void (*on_plaintext)(struct ml_tls_session *s);
    /* Optional: mbedTLS took a TLS 1.3 NewSessionTicket (upstreams: keep it). */
    void (*on_ticket)(struct ml_tls_session *s);
    /* Optional: the session ended with rv (from mbedtls_ssl_read, 0: closed); true when the
     * side told the owner itself (upstreams: refused before the server's first bytes). */
    bool (*on_end)(struct ml_tls_session *s, int rv);
    /* Optional: true while a failed write is to be swallowed, the close that follows saying
     * why (upstreams: before the server's first bytes). */
    bool (*write_fails_quietly)(const struct ml_tls_session *s);
    /* Optional: the owner closes the connection (upstreams: forget the done hook). */
    void (*on_owner_close)(struct ml_tls_session *s);
};

struct ml_tls_session {
    struct ml_transport tp; /* first: the transport ops cast back */
    const struct ml_tls_session_side *side;
    struct ml_transport *lower; /* NULL once gone */
    enum ml_tls_session_state state;
    int depth;                     /* inside our own callbacks: free at the end */
    bool owner_closed;             /* the owner is done (or heard on_close): free when depth is 0 */
    bool want_writable;            /* the owner asked for on_writable */
    const struct ml_sock_ops *ops; /* the owner */
    void *user;
    const uint8_t *in; /* ciphertext of the current on_read, not taken by mbedTLS yet */
    size_t in_n;
    uint8_t *pend; /* plaintext taken by write, not sent yet */
    size_t pend_n, pend_off;
    char identity[ML_TLS_IDENTITY_MAX]; /* the peer's, "" when none */
    mbedtls_ssl_context ssl;
};

/* s zeroed (calloc) by the side: sets it up with the side's transport ops and conf, state as
 * given, not on a lower transport yet. 0; -ENOMEM (mbedtls_ssl_setup): ml_tls_session_deinit
 * still applies. */
int ml_tls_session_init(struct ml_tls_session *s, const struct ml_tls_session_side *side,
                        const struct ml_transport_ops *tp_ops, const mbedtls_ssl_config *conf,
                        enum ml_tls_session_state state);
/* Frees what init and the session took (mbedTLS's context, kept plaintext); not s itself. */
void ml_tls_session_deinit(struct ml_tls_session *s);

/* Entering and leaving one of the session's callbacks; leave frees s (side->free) when it was
 * closed inside and the lower transport is gone: s must not be used after. */
void ml_tls_session_enter(struct ml_tls_session *s);
void ml_tls_session_leave(struct ml_tls_session *s);

/* Closes the lower transport (what it keeps back, such as an alert, still goes out); DEAD. */
void ml_tls_session_drop_lower(struct ml_tls_session *s);
/* The connection is over for the owner: it hears on_close(reason, why) once; s is freed at the
 * end of the event. */
void ml_tls_session_tell_close(struct ml_tls_session *s, int reason, const char *why);

/* Ciphertext p[0..n) from the lower transport (borrowed until return): a handshake step or
 * plaintext to the owner. Between enter and leave. */
void ml_tls_session_feed(struct ml_tls_session *s, const uint8_t *p, size_t n);
/* The lower transport's on_writable (user: the session). */
void ml_tls_session_on_writable(void *user);

/* The reason a handshake step failed with mbedTLS error err, into buf[0..cap): mbedTLS's text,
 * or for a certificate that did not verify "<peer> certificate: <why>" (peer: "server" or
 * "client"), one line either way. */
void ml_tls_session_error_text(const struct ml_tls_session *s, int err, const char *peer, char *buf,
                               size_t cap);

/* The transport ops both sides share (core/transport-t.h). */
void ml_tls_session_set_ops(struct ml_transport *tp, const struct ml_sock_ops *ops, void *user);
int ml_tls_session_write(struct ml_transport *tp, const uint8_t *p, size_t n);
bool ml_tls_session_can_write(const struct ml_transport *tp);
void ml_tls_session_want_writable(struct ml_transport *tp);
void ml_tls_session_close(struct ml_transport *tp);
const char *ml_tls_session_alpn(const struct ml_transport *tp);
char *ml_tls_session_peer_text(const struct ml_transport *tp, char *buf, size_t cap);

#endif
