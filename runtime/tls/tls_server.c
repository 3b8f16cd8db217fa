/* A listener's TLS (tls/tls.h): mbedTLS over a lower transport. Who frees what:
 *
 * - struct ml_tls_server is shared by the listener and every connection still in TLS
 *   (refcount): a hot apply may drop the listener while its connections finish.
 * - struct tls_conn is freed when its owner closes it, or when the lower transport goes away;
 *   never inside one of its own callbacks (depth > 0): then at their end.
 *
 * Bytes: the lower transport's on_read hands ciphertext in; mbedTLS takes it through recv_cb
 * (what it does not need yet it keeps in its own record buffer), plaintext goes up through
 * on_read. Plaintext written by the owner goes out record by record through send_cb; when the
 * lower transport refuses a record (-EAGAIN) the rest is kept (one write at most, like a
 * socket) and sent on the lower transport's on_writable. */
#include "tls/tls.h"

#include "core/alloc.h"
#include "core/log.h"
#include "core/timer.h"
#include "core/transport.h"
#include "tls/identity.h"

#include <errno.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>
#include <psa/crypto.h>
#include <stdio.h>
#include <string.h>

/* Plaintext read per mbedtls_ssl_read: one full record. */
#define TLS_READ_CHUNK 16384
/* mbedtls_ssl_read calls in a row that give no data while input is left, before the rest waits
 * for the next bytes from the peer (a loop guard: each call takes at least one record). */
#define TLS_READ_RETRIES 8
/* TLS record content type of a handshake record: how a TLS client's first byte looks. */
#define TLS_FIRST_BYTE 0x16

struct ml_tls_server {
    int refs; /* the listener's, plus one per connection */
    uint32_t handshaking;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt cert;
    mbedtls_x509_crt ca;
    mbedtls_pk_context key;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ssl_ticket_context tickets;
};

enum conn_state { HANDSHAKE = 0, OPEN, DEAD };

struct tls_conn {
    struct ml_transport tp; /* first: the transport ops cast back */
    struct ml_tls_server *srv;
    struct ml_transport *lower; /* NULL once gone */
    struct ml_timer *timer;     /* handshake timeout; NULL without a loop */
    enum conn_state state;
    int depth;          /* inside our own callbacks: free at the end */
    bool owner_closed;  /* the owner (or a failed handshake) is done: free when depth is 0 */
    bool want_writable; /* the owner asked for on_writable */
    bool got_first;     /* a byte arrived: the first tells TLS from plaintext */
    ml_tls_ready_fn *ready;
    void *ready_user;
    const struct ml_sock_ops *ops; /* the owner, once the handshake is done */
    void *user;
    const uint8_t *in; /* ciphertext of the current on_read, not taken by mbedTLS yet */
    size_t in_n;
    uint8_t *pend; /* plaintext taken by write, not sent yet */
    size_t pend_n, pend_off;
    char identity[ML_TLS_IDENTITY_MAX];
    mbedtls_ssl_context ssl;
};

static const char *const fail_names[ML_TLS_FAIL_COUNT] = {
    [ML_TLS_FAIL_BAD_CERT] = "bad_cert",  [ML_TLS_FAIL_UNKNOWN_CA] = "unknown_ca",
    [ML_TLS_FAIL_NO_ALPN] = "no_alpn_h2", [ML_TLS_FAIL_VERSION] = "version",
    [ML_TLS_FAIL_TIMEOUT] = "timeout",    [ML_TLS_FAIL_PLAINTEXT] = "plaintext",
    [ML_TLS_FAIL_OTHER] = "other",        [ML_TLS_FAIL_IDENTITY] = "identity",
};

const char *ml_tls_fail_name(enum ml_tls_fail f)
{
    return f < ML_TLS_FAIL_COUNT ? fail_names[f] : "other";
}

/* ---- the server (per listener) ------------------------------------------------------------ */

static void server_unref(struct ml_tls_server *srv)
{
    if (srv == NULL || --srv->refs > 0) {
        return;
    }
    mbedtls_ssl_ticket_free(&srv->tickets);
    mbedtls_ssl_config_free(&srv->conf);
    mbedtls_x509_crt_free(&srv->cert);
    mbedtls_x509_crt_free(&srv->ca);
    mbedtls_pk_free(&srv->key);
    mbedtls_ctr_drbg_free(&srv->drbg);
    mbedtls_entropy_free(&srv->entropy);
    ml_free(srv);
}

static const char *alpn_h2[] = {"h2", NULL};

static void say(char *why, size_t cap, int err, const char *what, const char *path)
{
    char e[96];

    mbedtls_strerror(err, e, sizeof(e));
    snprintf(why, cap, "%s %s: %s", what, path, e);
}

int ml_tls_server_new(const struct ml_tls_server_cfg *cfg, char *why, size_t cap,
                      struct ml_tls_server **out)
{
    static const char pers[] = "meshlet-tls";
    struct ml_tls_server *srv;
    int rv;

    *out = NULL;
    /* TLS 1.3 in mbedTLS 3.6 does its crypto through PSA; initialising twice is harmless. */
    if (psa_crypto_init() != PSA_SUCCESS) {
        snprintf(why, cap, "PSA crypto did not initialise");
        return -ENOMEM;
    }
    if ((srv = ml_calloc(1, sizeof(*srv))) == NULL) {
        snprintf(why, cap, "out of memory");
        return -ENOMEM;
    }
    srv->refs = 1;
    mbedtls_ssl_config_init(&srv->conf);
    mbedtls_x509_crt_init(&srv->cert);
    mbedtls_x509_crt_init(&srv->ca);
    mbedtls_pk_init(&srv->key);
    mbedtls_entropy_init(&srv->entropy);
    mbedtls_ctr_drbg_init(&srv->drbg);
    mbedtls_ssl_ticket_init(&srv->tickets);
    if ((rv = mbedtls_ctr_drbg_seed(&srv->drbg, mbedtls_entropy_func, &srv->entropy,
                                    (const unsigned char *)pers, sizeof(pers) - 1)) != 0) {
        say(why, cap, rv, "seeding the random generator", "");
        goto fail;
    }
    if ((rv = mbedtls_x509_crt_parse_file(&srv->cert, cfg->cert)) != 0) {
        say(why, cap, rv, "cert", cfg->cert);
        goto fail;
    }
    if ((rv = mbedtls_pk_parse_keyfile(&srv->key, cfg->key, NULL, mbedtls_ctr_drbg_random,
                                       &srv->drbg)) != 0) {
        say(why, cap, rv, "key", cfg->key);
        goto fail;
    }
    if ((rv = mbedtls_pk_check_pair(&srv->cert.pk, &srv->key, mbedtls_ctr_drbg_random,
                                    &srv->drbg)) != 0) {
        say(why, cap, rv, "key", cfg->key);
        snprintf(why + strlen(why), cap - strlen(why), " (not the key of %s)", cfg->cert);
        goto fail;
    }
    if (cfg->mtls && (rv = mbedtls_x509_crt_parse_file(&srv->ca, cfg->ca)) != 0) {
        say(why, cap, rv, "ca", cfg->ca);
        goto fail;
    }
    if ((rv = mbedtls_ssl_config_defaults(&srv->conf, MBEDTLS_SSL_IS_SERVER,
                                          MBEDTLS_SSL_TRANSPORT_STREAM,
                                          MBEDTLS_SSL_PRESET_DEFAULT)) != 0) {
        say(why, cap, rv, "TLS defaults", "");
        goto fail;
    }
    mbedtls_ssl_conf_rng(&srv->conf, mbedtls_ctr_drbg_random, &srv->drbg);
    mbedtls_ssl_conf_min_tls_version(&srv->conf, MBEDTLS_SSL_VERSION_TLS1_2);
    mbedtls_ssl_conf_max_tls_version(&srv->conf, MBEDTLS_SSL_VERSION_TLS1_3);
    mbedtls_ssl_conf_alpn_protocols(&srv->conf, alpn_h2);
    if ((rv = mbedtls_ssl_conf_own_cert(&srv->conf, &srv->cert, &srv->key)) != 0) {
        say(why, cap, rv, "cert", cfg->cert);
        goto fail;
    }
    if (cfg->mtls) {
        mbedtls_ssl_conf_authmode(&srv->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
        mbedtls_ssl_conf_ca_chain(&srv->conf, &srv->ca, NULL);
    } else {
        mbedtls_ssl_conf_authmode(&srv->conf, MBEDTLS_SSL_VERIFY_NONE);
    }
    if ((rv = mbedtls_ssl_ticket_setup(&srv->tickets, mbedtls_ctr_drbg_random, &srv->drbg,
                                       MBEDTLS_CIPHER_AES_256_GCM, ML_TLS_TICKET_LIFETIME_S)) !=
        0) {
        say(why, cap, rv, "session tickets", "");
        goto fail;
    }
    mbedtls_ssl_conf_session_tickets_cb(&srv->conf, mbedtls_ssl_ticket_write,
                                        mbedtls_ssl_ticket_parse, &srv->tickets);
    *out = srv;
    return 0;
fail:
    server_unref(srv);
    return rv == MBEDTLS_ERR_SSL_ALLOC_FAILED || rv == MBEDTLS_ERR_X509_ALLOC_FAILED ? -ENOMEM
                                                                                     : -EINVAL;
}

void ml_tls_server_free(struct ml_tls_server *srv)
{
    server_unref(srv);
}

uint32_t ml_tls_server_handshaking(const struct ml_tls_server *srv)
{
    return srv->handshaking;
}

/* ---- one connection ------------------------------------------------------------------------ */

static const struct ml_sock_ops lower_ops;
static const struct ml_transport_ops tls_ops;

static void conn_free(struct tls_conn *t)
{
    if (t->state == HANDSHAKE) {
        t->srv->handshaking--;
    }
    ml_timer_free(t->timer);
    mbedtls_ssl_free(&t->ssl);
    ml_free(t->pend);
    server_unref(t->srv);
    ml_free(t);
}

/* Leaves one of our callbacks: frees t when it was closed inside (t must not be used after). */
static void leave(struct tls_conn *t)
{
    if (--t->depth == 0 && t->owner_closed && t->lower == NULL) {
        conn_free(t);
    }
}

/* Closes the lower transport (what it keeps back, such as an alert, still goes out). */
static void drop_lower(struct tls_conn *t)
{
    if (t->lower != NULL) {
        ml_transport_close(t->lower);
        t->lower = NULL;
    }
    if (t->state == HANDSHAKE) {
        t->srv->handshaking--;
    }
    t->state = DEAD;
}

static int send_cb(void *ctx, const unsigned char *p, size_t n)
{
    struct tls_conn *t = ctx;
    int rv;

    if (t->lower == NULL) {
        return MBEDTLS_ERR_SSL_CONN_EOF;
    }
    if (n > ML_SOCK_WRITE_MAX_BYTES) {
        n = ML_SOCK_WRITE_MAX_BYTES;
    }
    rv = ml_transport_write(t->lower, p, n);
    if (rv == -EAGAIN) {
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    }
    return rv < 0 ? MBEDTLS_ERR_SSL_INTERNAL_ERROR : (int)n;
}

static int recv_cb(void *ctx, unsigned char *p, size_t n)
{
    struct tls_conn *t = ctx;

    if (t->in_n == 0) {
        return MBEDTLS_ERR_SSL_WANT_READ;
    }
    if (n > t->in_n) {
        n = t->in_n;
    }
    memcpy(p, t->in, n);
    t->in += n;
    t->in_n -= n;
    return (int)n;
}

static enum ml_tls_fail classify(struct tls_conn *t, int err)
{
    uint32_t flags;

    switch (err) {
    case MBEDTLS_ERR_SSL_NO_APPLICATION_PROTOCOL:
        return ML_TLS_FAIL_NO_ALPN;
    case MBEDTLS_ERR_SSL_BAD_PROTOCOL_VERSION:
        return ML_TLS_FAIL_VERSION;
    case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED:
        flags = mbedtls_ssl_get_verify_result(&t->ssl);
        return (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED) ? ML_TLS_FAIL_UNKNOWN_CA
                                                          : ML_TLS_FAIL_BAD_CERT;
    case MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE:
    case MBEDTLS_ERR_SSL_BAD_CERTIFICATE:
        return ML_TLS_FAIL_BAD_CERT;
    default:
        return ML_TLS_FAIL_OTHER;
    }
}

/* The handshake failed: tell the listener once, close. */
static void fail(struct tls_conn *t, enum ml_tls_fail f, const char *why)
{
    ml_tls_ready_fn *ready = t->ready;

    t->ready = NULL;
    drop_lower(t);
    t->owner_closed = true; /* nobody owns t: free at the end of this event */
    if (ready != NULL) {
        ready(t->ready_user, NULL, -EPROTO, f, why);
    }
}

static void fail_err(struct tls_conn *t, int err)
{
    char e[200];
    uint32_t flags;

    mbedtls_strerror(err, e, sizeof(e));
    if (err == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED &&
        (flags = mbedtls_ssl_get_verify_result(&t->ssl)) != 0) {
        char v[160];

        mbedtls_x509_crt_verify_info(v, sizeof(v), "", flags);
        v[strcspn(v, "\n")] = '\0';
        snprintf(e, sizeof(e), "client certificate: %s", v);
    }
    fail(t, classify(t, err), e);
}

/* The handshake is done: check ALPN, learn the peer, hand the connection over. */
static void handshake_done(struct tls_conn *t)
{
    const char *alpn = mbedtls_ssl_get_alpn_protocol(&t->ssl);
    const mbedtls_x509_crt *peer = mbedtls_ssl_get_peer_cert(&t->ssl);
    ml_tls_ready_fn *ready = t->ready;

    if (alpn == NULL || strcmp(alpn, "h2") != 0) {
        /* A client without ALPN at all passes mbedTLS; h2 is all this port speaks. */
        mbedtls_ssl_send_alert_message(&t->ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
                                       MBEDTLS_SSL_ALERT_MSG_NO_APPLICATION_PROTOCOL);
        fail(t, ML_TLS_FAIL_NO_ALPN, "the client did not offer ALPN h2");
        return;
    }
    if (peer != NULL && mbedtls_ssl_get_verify_result(&t->ssl) == 0) {
        ml_tls_cert_identity(peer, t->identity, sizeof(t->identity));
    }
    t->srv->handshaking--;
    t->state = OPEN;
    if (t->timer != NULL) {
        ml_timer_disarm(t->timer);
    }
    t->ready = NULL;
    ready(t->ready_user, &t->tp, 0, ML_TLS_FAIL_OTHER, NULL);
}

static void handshake_step(struct tls_conn *t)
{
    int rv = mbedtls_ssl_handshake(&t->ssl);

    if (rv == 0) {
        handshake_done(t);
    } else if (rv != MBEDTLS_ERR_SSL_WANT_READ && rv != MBEDTLS_ERR_SSL_WANT_WRITE) {
        fail_err(t, rv);
    }
}

/* Sends what write kept. Returns true when nothing is kept any more. */
static bool pump(struct tls_conn *t)
{
    while (t->pend != NULL && t->state == OPEN) {
        int rv = mbedtls_ssl_write(&t->ssl, t->pend + t->pend_off, t->pend_n - t->pend_off);

        if (rv == MBEDTLS_ERR_SSL_WANT_WRITE) {
            return false;
        }
        if (rv < 0) {
            /* The session is broken: the owner hears on_close, as from a socket reset. */
            const struct ml_sock_ops *ops = t->ops;

            ML_LOG_DBG("tls: write: -0x%04x: closing", (unsigned)-rv);
            t->ops = NULL;
            drop_lower(t);
            t->owner_closed = true;
            if (ops != NULL && ops->on_close != NULL) {
                ops->on_close(t->user, -EIO, "TLS write failed");
            }
            return false;
        }
        t->pend_off += (size_t)rv;
        if (t->pend_off == t->pend_n) {
            ml_free(t->pend);
            t->pend = NULL;
        }
    }
    return t->pend == NULL;
}

static void read_open(struct tls_conn *t)
{
    uint8_t buf[TLS_READ_CHUNK];
    int idle = 0;

    while (t->state == OPEN && !t->owner_closed) {
        int rv = mbedtls_ssl_read(&t->ssl, buf, sizeof(buf));

        if (rv > 0) {
            idle = 0;
            if (t->ops != NULL && t->ops->on_read != NULL) {
                t->ops->on_read(t->user, buf, (size_t)rv);
            }
            continue;
        }
        if (rv == MBEDTLS_ERR_SSL_WANT_READ || rv == MBEDTLS_ERR_SSL_WANT_WRITE) {
            /* A record that carries no data (a post-handshake message mbedTLS handles itself, a
             * warning alert) ends in WANT_READ with input still in t->in, which is the lower's
             * buffer and gone when on_read returns: read on while some is left (as
             * tls_client.c does after a ticket), a bounded number of times. */
            if (t->in_n > 0 && ++idle < TLS_READ_RETRIES) {
                continue;
            }
            return;
        }
#ifdef MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET
        if (rv == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) {
            continue;
        }
#endif
        /* close_notify (0) or an error: the connection is over for the owner. */
        {
            const struct ml_sock_ops *ops = t->ops;
            char e[96];

            mbedtls_strerror(rv, e, sizeof(e));
            t->ops = NULL;
            drop_lower(t);
            if (ops != NULL && ops->on_close != NULL) {
                ops->on_close(t->user,
                              rv == 0 || rv == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY ? 0 : -EIO,
                              rv == 0 ? "closed" : e);
            }
            t->owner_closed = true;
            return;
        }
    }
}

static void lower_on_read(void *user, const uint8_t *p, size_t n)
{
    struct tls_conn *t = user;

    t->depth++;
    if (t->state == HANDSHAKE && !t->got_first && n > 0 && p[0] != TLS_FIRST_BYTE) {
        fail(t, ML_TLS_FAIL_PLAINTEXT, "plaintext to a TLS listener");
        leave(t);
        return;
    }
    t->got_first = t->got_first || n > 0;
    t->in = p;
    t->in_n = n;
    if (t->state == HANDSHAKE) {
        handshake_step(t);
    }
    if (t->state == OPEN) {
        read_open(t);
    }
    t->in = NULL;
    t->in_n = 0;
    leave(t);
}

static void lower_on_writable(void *user)
{
    struct tls_conn *t = user;

    t->depth++;
    if (t->state == HANDSHAKE) {
        handshake_step(t);
    } else if (t->state == OPEN && pump(t) && t->want_writable) {
        t->want_writable = false;
        if (t->ops != NULL && t->ops->on_writable != NULL) {
            t->ops->on_writable(t->user);
        }
    }
    leave(t);
}

static void lower_on_close(void *user, int reason, const char *why)
{
    struct tls_conn *t = user;
    const struct ml_sock_ops *ops = t->ops;
    bool handshaking = t->state == HANDSHAKE;

    t->depth++;
    t->lower = NULL; /* its seam frees it */
    if (handshaking) {
        t->srv->handshaking--;
    }
    t->state = DEAD;
    if (handshaking) {
        ml_tls_ready_fn *ready = t->ready;

        t->ready = NULL;
        t->owner_closed = true;
        if (ready != NULL) {
            ready(t->ready_user, NULL, -EPROTO, ML_TLS_FAIL_OTHER,
                  "the client closed during the handshake");
        }
    } else if (!t->owner_closed) {
        t->ops = NULL;
        if (ops != NULL && ops->on_close != NULL) {
            ops->on_close(t->user, reason, why);
        }
        t->owner_closed = true;
    }
    leave(t);
}

static const struct ml_sock_ops lower_ops = {
    .on_read = lower_on_read,
    .on_writable = lower_on_writable,
    .on_close = lower_on_close,
};

static void on_timeout(void *user)
{
    struct tls_conn *t = user;

    if (t->state != HANDSHAKE) {
        return;
    }
    t->depth++;
    fail(t, ML_TLS_FAIL_TIMEOUT, "handshake not done in time (ML_TLS_HANDSHAKE_TIMEOUT_MS)");
    leave(t);
}

int ml_tls_accept(struct ml_tls_server *srv, struct ml_loop *loop, struct ml_transport *lower,
                  const uint8_t *first, size_t n, ml_tls_ready_fn *ready, void *user)
{
    struct tls_conn *t;

    if (srv->handshaking >= ML_TLS_HANDSHAKES_MAX) {
        return -EBUSY;
    }
    if ((t = ml_calloc(1, sizeof(*t))) == NULL) {
        return -ENOMEM;
    }
    if (loop != NULL && (t->timer = ml_timer_new(loop, on_timeout, t)) == NULL) {
        ml_free(t);
        return -ENOMEM;
    }
    t->tp.ops = &tls_ops;
    t->srv = srv;
    srv->refs++;
    srv->handshaking++;
    t->lower = lower;
    t->ready = ready;
    t->ready_user = user;
    mbedtls_ssl_init(&t->ssl);
    if (mbedtls_ssl_setup(&t->ssl, &srv->conf) != 0) {
        t->lower = NULL; /* not taken */
        conn_free(t);
        return -ENOMEM;
    }
    mbedtls_ssl_set_bio(&t->ssl, t, send_cb, recv_cb, NULL);
    ml_transport_set_ops(lower, &lower_ops, t);
    if (t->timer != NULL) {
        ml_timer_arm(t->timer, ML_TLS_HANDSHAKE_TIMEOUT_MS);
    }
    if (n > 0) {
        lower_on_read(t, first, n); /* may decide the handshake (ready runs) */
    }
    return 0;
}

/* ---- the connection as a transport -------------------------------------------------------- */

static void tls_set_ops(struct ml_transport *tp, const struct ml_sock_ops *ops, void *user)
{
    struct tls_conn *t = (struct tls_conn *)tp;

    t->ops = ops;
    t->user = user;
}

static int tls_write(struct ml_transport *tp, const uint8_t *p, size_t n)
{
    struct tls_conn *t = (struct tls_conn *)tp;
    size_t off = 0;

    if (t->state != OPEN || t->lower == NULL) {
        return -EPIPE;
    }
    if (n > ML_SOCK_WRITE_MAX_BYTES) {
        return -EMSGSIZE;
    }
    if (t->pend != NULL) {
        t->want_writable = true;
        return -EAGAIN;
    }
    while (off < n) {
        int rv = mbedtls_ssl_write(&t->ssl, p + off, n - off);

        if (rv == MBEDTLS_ERR_SSL_WANT_WRITE) {
            /* mbedTLS holds the record it could not send and expects the same bytes again:
             * keep them (a copy: p is the caller's) for the lower transport's on_writable. */
            if ((t->pend = ml_malloc(n - off)) == NULL) {
                return -EPIPE;
            }
            memcpy(t->pend, p + off, n - off);
            t->pend_n = n - off;
            t->pend_off = 0;
            ml_transport_want_writable(t->lower);
            return 0;
        }
        if (rv < 0) {
            return -EPIPE;
        }
        off += (size_t)rv;
    }
    return 0;
}

static bool tls_can_write(const struct ml_transport *tp)
{
    const struct tls_conn *t = (const struct tls_conn *)tp;

    return t->state == OPEN && t->pend == NULL && t->lower != NULL &&
           ml_transport_can_write(t->lower);
}

static void tls_want_writable(struct ml_transport *tp)
{
    struct tls_conn *t = (struct tls_conn *)tp;

    t->want_writable = true;
    if (t->lower != NULL) {
        ml_transport_want_writable(t->lower);
    }
}

static void tls_close(struct ml_transport *tp)
{
    struct tls_conn *t = (struct tls_conn *)tp;

    t->ops = NULL;
    t->owner_closed = true;
    if (t->state == OPEN && t->lower != NULL) {
        mbedtls_ssl_close_notify(&t->ssl); /* best effort */
    }
    drop_lower(t);
    if (t->depth == 0) {
        conn_free(t);
    }
}

static const char *tls_peer_identity(const struct ml_transport *tp)
{
    const struct tls_conn *t = (const struct tls_conn *)tp;

    return t->identity[0] != '\0' ? t->identity : NULL;
}

static const char *tls_alpn(const struct ml_transport *tp)
{
    const struct tls_conn *t = (const struct tls_conn *)tp;

    return mbedtls_ssl_get_alpn_protocol(&t->ssl);
}

static char *tls_peer_text(const struct ml_transport *tp, char *buf, size_t cap)
{
    const struct tls_conn *t = (const struct tls_conn *)tp;

    return ml_transport_peer_text(t->lower, buf, cap);
}

static const struct ml_transport_ops tls_ops = {
    .set_ops = tls_set_ops,
    .write = tls_write,
    .can_write = tls_can_write,
    .want_writable = tls_want_writable,
    .close = tls_close,
    .peer_identity = tls_peer_identity,
    .alpn = tls_alpn,
    .peer_text = tls_peer_text,
};
