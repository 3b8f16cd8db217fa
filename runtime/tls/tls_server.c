/* A listener's TLS (tls/tls.h): mbedTLS over a lower transport. Who frees what:
 *
 * - struct ml_tls_server is shared by the listener and every connection still in TLS
 *   (refcount): a hot apply may drop the listener while its connections finish.
 * - struct tls_conn is freed when its owner closes it, or when the lower transport goes away;
 *   never inside one of its own callbacks (depth > 0): then at their end.
 *
 * This file starts and checks the handshake (first byte, ALPN h2, the client's certificate,
 * the handshake timeout and count); the open connection is tls_session.c's, as on upstreams. */
#include "tls/tls.h"

#include "core/alloc.h"
#include "core/timer.h"
#include "core/transport.h"
#include "tls/identity.h"
#include "tls/tls_session.h"

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

struct tls_conn {
    struct ml_tls_session s; /* first: the transport ops and the session's hooks cast back */
    struct ml_tls_server *srv;
    struct ml_timer *timer; /* handshake timeout; NULL without a loop */
    bool got_first;         /* a byte arrived: the first tells TLS from plaintext */
    ml_tls_ready_fn *ready; /* the listener, until the handshake ends */
    void *ready_user;
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

static void conn_free(struct ml_tls_session *s)
{
    struct tls_conn *t = (struct tls_conn *)s;

    if (s->state == ML_TLS_SESSION_HANDSHAKE) {
        t->srv->handshaking--;
    }
    ml_timer_free(t->timer);
    ml_tls_session_deinit(s);
    server_unref(t->srv);
    ml_free(t);
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
        flags = mbedtls_ssl_get_verify_result(&t->s.ssl);
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
    if (t->s.state == ML_TLS_SESSION_HANDSHAKE) {
        t->srv->handshaking--;
    }
    ml_tls_session_drop_lower(&t->s);
    t->s.owner_closed = true; /* nobody owns t: free at the end of this event */
    if (ready != NULL) {
        ready(t->ready_user, NULL, -EPROTO, f, why);
    }
}

static void fail_err(struct tls_conn *t, int err)
{
    char e[200];

    ml_tls_session_error_text(&t->s, err, "client", e, sizeof(e));
    fail(t, classify(t, err), e);
}

/* The handshake is done: check ALPN, learn the peer, hand the connection over. */
static void handshake_done(struct tls_conn *t)
{
    const char *alpn = mbedtls_ssl_get_alpn_protocol(&t->s.ssl);
    const mbedtls_x509_crt *peer = mbedtls_ssl_get_peer_cert(&t->s.ssl);
    ml_tls_ready_fn *ready = t->ready;

    if (alpn == NULL || strcmp(alpn, "h2") != 0) {
        /* A client without ALPN at all passes mbedTLS; h2 is all this port speaks. */
        mbedtls_ssl_send_alert_message(&t->s.ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
                                       MBEDTLS_SSL_ALERT_MSG_NO_APPLICATION_PROTOCOL);
        fail(t, ML_TLS_FAIL_NO_ALPN, "the client did not offer ALPN h2");
        return;
    }
    if (peer != NULL && mbedtls_ssl_get_verify_result(&t->s.ssl) == 0) {
        ml_tls_cert_identity(peer, t->s.identity, sizeof(t->s.identity));
    }
    t->srv->handshaking--;
    t->s.state = ML_TLS_SESSION_OPEN;
    if (t->timer != NULL) {
        ml_timer_disarm(t->timer);
    }
    t->ready = NULL;
    ready(t->ready_user, &t->s.tp, 0, ML_TLS_FAIL_OTHER, NULL);
}

static void handshake_step(struct ml_tls_session *s)
{
    int rv = mbedtls_ssl_handshake(&s->ssl);

    if (rv == 0) {
        handshake_done((struct tls_conn *)s);
    } else if (rv != MBEDTLS_ERR_SSL_WANT_READ && rv != MBEDTLS_ERR_SSL_WANT_WRITE) {
        fail_err((struct tls_conn *)s, rv);
    }
}

static const struct ml_tls_session_side server_side = {
    .name = "tls",
    .read_retries = TLS_READ_RETRIES,
    .handshake_step = handshake_step,
    .free = conn_free,
};

static void lower_on_read(void *user, const uint8_t *p, size_t n)
{
    struct tls_conn *t = user;

    ml_tls_session_enter(&t->s);
    if (t->s.state == ML_TLS_SESSION_HANDSHAKE && !t->got_first && n > 0 &&
        p[0] != TLS_FIRST_BYTE) {
        fail(t, ML_TLS_FAIL_PLAINTEXT, "plaintext to a TLS listener");
        ml_tls_session_leave(&t->s);
        return;
    }
    t->got_first = t->got_first || n > 0;
    ml_tls_session_feed(&t->s, p, n);
    ml_tls_session_leave(&t->s);
}

static void lower_on_close(void *user, int reason, const char *why)
{
    struct tls_conn *t = user;
    const struct ml_sock_ops *ops = t->s.ops;
    bool handshaking = t->s.state == ML_TLS_SESSION_HANDSHAKE;

    ml_tls_session_enter(&t->s);
    t->s.lower = NULL; /* its seam frees it */
    if (handshaking) {
        t->srv->handshaking--;
    }
    t->s.state = ML_TLS_SESSION_DEAD;
    if (handshaking) {
        ml_tls_ready_fn *ready = t->ready;

        t->ready = NULL;
        t->s.owner_closed = true;
        if (ready != NULL) {
            ready(t->ready_user, NULL, -EPROTO, ML_TLS_FAIL_OTHER,
                  "the client closed during the handshake");
        }
    } else if (!t->s.owner_closed) {
        t->s.ops = NULL;
        if (ops != NULL && ops->on_close != NULL) {
            ops->on_close(t->s.user, reason, why);
        }
        t->s.owner_closed = true;
    }
    ml_tls_session_leave(&t->s);
}

static const struct ml_sock_ops lower_ops = {
    .on_read = lower_on_read,
    .on_writable = ml_tls_session_on_writable,
    .on_close = lower_on_close,
};

static void on_timeout(void *user)
{
    struct tls_conn *t = user;

    if (t->s.state != ML_TLS_SESSION_HANDSHAKE) {
        return;
    }
    ml_tls_session_enter(&t->s);
    fail(t, ML_TLS_FAIL_TIMEOUT, "handshake not done in time (ML_TLS_HANDSHAKE_TIMEOUT_MS)");
    ml_tls_session_leave(&t->s);
}

int ml_tls_accept(struct ml_tls_server *srv, struct ml_loop *loop, struct ml_transport *lower,
                  const uint8_t *first, size_t n, ml_tls_ready_fn *ready, void *user)
{
    struct tls_conn *t;
    int rv;

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
    t->srv = srv;
    srv->refs++;
    srv->handshaking++;
    t->ready = ready;
    t->ready_user = user;
    rv = ml_tls_session_init(&t->s, &server_side, &tls_ops, &srv->conf, ML_TLS_SESSION_HANDSHAKE);
    if (rv < 0) {
        conn_free(&t->s); /* lower not taken */
        return -ENOMEM;
    }
    t->s.lower = lower;
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

static const char *tls_peer_identity(const struct ml_transport *tp)
{
    const struct tls_conn *t = (const struct tls_conn *)tp;

    return t->s.identity[0] != '\0' ? t->s.identity : NULL;
}

static const struct ml_transport_ops tls_ops = {
    .set_ops = ml_tls_session_set_ops,
    .write = ml_tls_session_write,
    .can_write = ml_tls_session_can_write,
    .want_writable = ml_tls_session_want_writable,
    .close = ml_tls_session_close,
    .peer_identity = tls_peer_identity,
    .alpn = ml_tls_session_alpn,
    .peer_text = ml_tls_session_peer_text,
};
