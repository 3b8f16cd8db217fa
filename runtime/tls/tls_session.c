/* The open half of a data-plane TLS connection (tls/tls_session.h), shared by listeners
 * (tls_server.c) and upstreams (tls_client.c). */
#include "tls/tls_session.h"

#include "core/alloc.h"
#include "core/log.h"
#include "core/transport.h"

#include <errno.h>
#include <mbedtls/error.h>
#include <mbedtls/x509_crt.h>
#include <stdio.h>
#include <string.h>

/* Plaintext read per mbedtls_ssl_read: one full record. */
#define TLS_READ_CHUNK 16384

static int send_cb(void *ctx, const unsigned char *p, size_t n)
{
    struct ml_tls_session *s = ctx;
    int rv;

    if (s->lower == NULL) {
        return MBEDTLS_ERR_SSL_CONN_EOF;
    }
    if (n > ML_SOCK_WRITE_MAX_BYTES) {
        n = ML_SOCK_WRITE_MAX_BYTES;
    }
    rv = ml_transport_write(s->lower, p, n);
    if (rv == -EAGAIN) {
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    }
    return rv < 0 ? MBEDTLS_ERR_SSL_INTERNAL_ERROR : (int)n;
}

static int recv_cb(void *ctx, unsigned char *p, size_t n)
{
    struct ml_tls_session *s = ctx;

    if (s->in_n == 0) {
        return MBEDTLS_ERR_SSL_WANT_READ;
    }
    if (n > s->in_n) {
        n = s->in_n;
    }
    memcpy(p, s->in, n);
    s->in += n;
    s->in_n -= n;
    return (int)n;
}

int ml_tls_session_init(struct ml_tls_session *s, const struct ml_tls_session_side *side,
                        const struct ml_transport_ops *tp_ops, const mbedtls_ssl_config *conf,
                        enum ml_tls_session_state state)
{
    s->tp.ops = tp_ops;
    s->side = side;
    s->state = state;
    mbedtls_ssl_init(&s->ssl);
    if (mbedtls_ssl_setup(&s->ssl, conf) != 0) {
        return -ENOMEM;
    }
    mbedtls_ssl_set_bio(&s->ssl, s, send_cb, recv_cb, NULL);
    return 0;
}

void ml_tls_session_deinit(struct ml_tls_session *s)
{
    mbedtls_ssl_free(&s->ssl);
    ml_free(s->pend);
    s->pend = NULL;
}

void ml_tls_session_enter(struct ml_tls_session *s)
{
    s->depth++;
}

void ml_tls_session_leave(struct ml_tls_session *s)
{
    if (--s->depth == 0 && s->owner_closed && s->lower == NULL) {
        s->side->free(s);
    }
}

void ml_tls_session_drop_lower(struct ml_tls_session *s)
{
    if (s->lower != NULL) {
        ml_transport_close(s->lower);
        s->lower = NULL;
    }
    s->state = ML_TLS_SESSION_DEAD;
}

void ml_tls_session_tell_close(struct ml_tls_session *s, int reason, const char *why)
{
    const struct ml_sock_ops *ops = s->ops;

    s->ops = NULL;
    ml_tls_session_drop_lower(s);
    s->owner_closed = true;
    if (ops != NULL && ops->on_close != NULL) {
        ops->on_close(s->user, reason, why);
    }
}

/* Sends what write kept. Returns true when nothing is kept any more. */
static bool pump(struct ml_tls_session *s)
{
    while (s->pend != NULL && s->state == ML_TLS_SESSION_OPEN) {
        int rv = mbedtls_ssl_write(&s->ssl, s->pend + s->pend_off, s->pend_n - s->pend_off);

        if (rv == MBEDTLS_ERR_SSL_WANT_WRITE) {
            return false;
        }
        if (rv < 0) {
            /* The session is broken: the owner hears on_close, as from a socket reset. */
            ML_LOG_DBG("%s: write: -0x%04x: closing", s->side->name, (unsigned)-rv);
            ml_tls_session_tell_close(s, -EIO, "TLS write failed");
            return false;
        }
        s->pend_off += (size_t)rv;
        if (s->pend_off == s->pend_n) {
            ml_free(s->pend);
            s->pend = NULL;
        }
    }
    return s->pend == NULL;
}

static void read_open(struct ml_tls_session *s)
{
    const struct ml_tls_session_side *side = s->side;
    uint8_t buf[TLS_READ_CHUNK];
    int idle = 0; /* calls in a row that moved nothing */

    while (s->state == ML_TLS_SESSION_OPEN && !s->owner_closed) {
        int rv = mbedtls_ssl_read(&s->ssl, buf, sizeof(buf));
        bool closed;
        char e[96];

        if (rv > 0) {
            idle = 0;
            if (side->on_plaintext != NULL) {
                side->on_plaintext(s);
            }
            if (s->ops != NULL && s->ops->on_read != NULL) {
                s->ops->on_read(s->user, buf, (size_t)rv);
            }
            continue;
        }
        if (rv == MBEDTLS_ERR_SSL_WANT_READ || rv == MBEDTLS_ERR_SSL_WANT_WRITE) {
            /* A record that carries no data (a post-handshake message mbedTLS handles itself, a
             * warning alert; a TLS 1.3 NewSessionTicket makes mbedtls_ssl_read say WANT_READ
             * once and take the ticket at the next call) ends in WANT_READ with input still in
             * s->in, which is the lower's buffer and gone when on_read returns: read on while
             * some is left, a bounded number of times. */
            if ((s->in_n > 0 || !mbedtls_ssl_is_handshake_over(&s->ssl)) &&
                ++idle < side->read_retries) {
                continue;
            }
            return;
        }
#ifdef MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET
        if (rv == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) {
            idle = 0;
            if (side->on_ticket != NULL) {
                side->on_ticket(s); /* TLS 1.3: the ticket comes after the handshake */
            }
            continue;
        }
#endif
        if (side->on_end != NULL && side->on_end(s, rv)) {
            return;
        }
        /* close_notify (0) or an error: the connection is over for the owner. */
        closed = rv == 0 || rv == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY;
        mbedtls_strerror(rv, e, sizeof(e));
        ml_tls_session_tell_close(s, closed ? 0 : -EIO, closed ? "closed" : e);
        return;
    }
}

void ml_tls_session_feed(struct ml_tls_session *s, const uint8_t *p, size_t n)
{
    s->in = p;
    s->in_n = n;
    if (s->state == ML_TLS_SESSION_HANDSHAKE) {
        s->side->handshake_step(s);
    }
    if (s->state == ML_TLS_SESSION_OPEN) {
        read_open(s);
    }
    s->in = NULL;
    s->in_n = 0;
}

void ml_tls_session_on_writable(void *user)
{
    struct ml_tls_session *s = user;

    ml_tls_session_enter(s);
    if (s->state == ML_TLS_SESSION_HANDSHAKE) {
        s->side->handshake_step(s);
    } else if (s->state == ML_TLS_SESSION_OPEN && pump(s) && s->want_writable) {
        s->want_writable = false;
        if (s->ops != NULL && s->ops->on_writable != NULL) {
            s->ops->on_writable(s->user);
        }
    }
    ml_tls_session_leave(s);
}

/* ---- the connection as a transport -------------------------------------------------------- */

void ml_tls_session_set_ops(struct ml_transport *tp, const struct ml_sock_ops *ops, void *user)
{
    struct ml_tls_session *s = (struct ml_tls_session *)tp;

    s->ops = ops;
    s->user = user;
}

int ml_tls_session_write(struct ml_transport *tp, const uint8_t *p, size_t n)
{
    struct ml_tls_session *s = (struct ml_tls_session *)tp;
    size_t off = 0;

    if (s->state != ML_TLS_SESSION_OPEN || s->lower == NULL) {
        return -EPIPE;
    }
    if (n > ML_SOCK_WRITE_MAX_BYTES) {
        return -EMSGSIZE;
    }
    if (s->pend != NULL) {
        s->want_writable = true;
        return -EAGAIN;
    }
    while (off < n) {
        int rv = mbedtls_ssl_write(&s->ssl, p + off, n - off);

        if (rv == MBEDTLS_ERR_SSL_WANT_WRITE) {
            /* mbedTLS holds the record it could not send and expects the same bytes again:
             * keep them (a copy: p is the caller's) for the lower transport's on_writable. */
            if ((s->pend = ml_malloc(n - off)) == NULL) {
                return -EPIPE;
            }
            memcpy(s->pend, p + off, n - off);
            s->pend_n = n - off;
            s->pend_off = 0;
            ml_transport_want_writable(s->lower);
            return 0;
        }
        if (rv < 0 && s->side->write_fails_quietly != NULL && s->side->write_fails_quietly(s)) {
            return 0; /* these bytes go with the connection, whose close says why */
        }
        if (rv < 0) {
            return -EPIPE;
        }
        off += (size_t)rv;
    }
    return 0;
}

bool ml_tls_session_can_write(const struct ml_transport *tp)
{
    const struct ml_tls_session *s = (const struct ml_tls_session *)tp;

    return s->state == ML_TLS_SESSION_OPEN && s->pend == NULL && s->lower != NULL &&
           ml_transport_can_write(s->lower);
}

void ml_tls_session_want_writable(struct ml_transport *tp)
{
    struct ml_tls_session *s = (struct ml_tls_session *)tp;

    s->want_writable = true;
    if (s->lower != NULL) {
        ml_transport_want_writable(s->lower);
    }
}

void ml_tls_session_close(struct ml_transport *tp)
{
    struct ml_tls_session *s = (struct ml_tls_session *)tp;

    s->ops = NULL;
    if (s->side->on_owner_close != NULL) {
        s->side->on_owner_close(s);
    }
    s->owner_closed = true;
    if (s->state == ML_TLS_SESSION_OPEN && s->lower != NULL) {
        mbedtls_ssl_close_notify(&s->ssl); /* best effort */
    }
    ml_tls_session_drop_lower(s);
    if (s->depth == 0) {
        s->side->free(s);
    }
}

const char *ml_tls_session_alpn(const struct ml_transport *tp)
{
    const struct ml_tls_session *s = (const struct ml_tls_session *)tp;

    return mbedtls_ssl_get_alpn_protocol(&s->ssl);
}

char *ml_tls_session_peer_text(const struct ml_transport *tp, char *buf, size_t cap)
{
    const struct ml_tls_session *s = (const struct ml_tls_session *)tp;

    return ml_transport_peer_text(s->lower, buf, cap);
}

void ml_tls_session_error_text(const struct ml_tls_session *s, int err, const char *peer, char *buf,
                               size_t cap)
{
    uint32_t flags;

    mbedtls_strerror(err, buf, cap);
    if (err == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED &&
        (flags = mbedtls_ssl_get_verify_result(&s->ssl)) != 0) {
        char v[160];

        mbedtls_x509_crt_verify_info(v, sizeof(v), "", flags);
        v[strcspn(v, "\n")] = '\0';
        snprintf(buf, cap, "%s certificate: %s", peer, v);
    }
}
