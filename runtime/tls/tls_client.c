/* TLS to upstreams (tls/tls_client.h): mbedTLS over an outgoing socket. Who frees what:
 *
 * - struct ml_tls_client is shared by its cluster (one per config snapshot), health checkers
 *   and every connection made with it (refcount): mbedTLS reads the config during the whole
 *   session, and pooled connections outlive the config that opened them.
 * - struct cli_conn is freed when its owner closes it, or after the lower transport went and
 *   the owner heard on_close; never inside one of its own callbacks (depth > 0): then at their
 *   end.
 *
 * This file starts and checks the handshake (SNI, ALPN h2, the server's identity, resumption,
 * the server's confirmation); the open connection is tls_session.c's, as on listeners. */
#include "tls/tls_client.h"

#include "core/alloc.h"
#include "core/glob.h"
#include "core/slice-t.h"
#include "core/transport.h"
#include "tls/identity.h"
#include "tls/tls_session.h"

#include <errno.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <psa/crypto.h>
#include <stdio.h>
#include <string.h>

/* mbedtls_ssl_read calls in a row that may move nothing before the session waits for input (a
 * post-handshake message takes two: one to see it, one to handle it). */
#define CLI_READ_RETRIES 4
/* Longest identity glob and SNI kept (config values are shorter: a line is 1022 bytes). */
#define CLI_NAME_MAX 1024

/* The last session of one endpoint, and who the server was then (a resumed TLS 1.3 session may
 * come without the server's certificate: its identity was checked when it was saved). */
struct cli_session {
    char key[ML_TLS_RESUME_KEY_MAX];
    char identity[ML_TLS_IDENTITY_MAX];
    bool valid;
    mbedtls_ssl_session s;
};

struct ml_tls_client {
    int refs; /* the cluster's, health checkers', one per connection */
    struct cli_session *sessions[ML_TLS_RESUME_MAX]; /* NULL: free */
    bool has_identity;
    bool has_sni;
    char identity[CLI_NAME_MAX];
    char sni[CLI_NAME_MAX];
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca;
    mbedtls_x509_crt cert;
    mbedtls_pk_context key;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
};

struct cli_conn {
    struct ml_tls_session s; /* first: the transport ops and the session's hooks cast back */
    struct ml_tls_client *cli;
    ml_tls_client_done_fn *done; /* until the server confirmed the handshake, or it failed */
    void *done_user;
    char resume_key[ML_TLS_RESUME_KEY_MAX]; /* "": no resumption */
    bool offered;                           /* a saved session was offered */
};

/* ---- the client (per cluster and config) --------------------------------------------------- */

static void client_unref(struct ml_tls_client *cli)
{
    if (cli == NULL || --cli->refs > 0) {
        return;
    }
    for (int i = 0; i < ML_TLS_RESUME_MAX && cli->sessions[i] != NULL; i++) {
        mbedtls_ssl_session_free(&cli->sessions[i]->s);
        ml_free(cli->sessions[i]);
    }
    mbedtls_ssl_config_free(&cli->conf);
    mbedtls_x509_crt_free(&cli->ca);
    mbedtls_x509_crt_free(&cli->cert);
    mbedtls_pk_free(&cli->key);
    mbedtls_ctr_drbg_free(&cli->drbg);
    mbedtls_entropy_free(&cli->entropy);
    ml_free(cli);
}

static const char *alpn_h2[] = {"h2", NULL};

static void say(char *why, size_t cap, int err, const char *what, const char *path)
{
    char e[96];

    mbedtls_strerror(err, e, sizeof(e));
    snprintf(why, cap, "%s %s: %s", what, path, e);
}

/* The chain to ca and the identity glob are what authenticate an upstream: endpoints are IP
 * literals and one certificate often serves a whole service, so the name sent as SNI is not
 * also required in the certificate (as with Envoy's upstream TLS without SAN matchers). */
static int verify_cb(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    (void)ctx;
    (void)crt;
    if (depth == 0) {
        *flags &= ~(uint32_t)MBEDTLS_X509_BADCERT_CN_MISMATCH;
    }
    return 0;
}

int ml_tls_client_new(const struct ml_tls_client_cfg *cfg, char *why, size_t cap,
                      struct ml_tls_client **out)
{
    static const char pers[] = "meshlet-tls-client";
    struct ml_tls_client *cli;
    int rv;

    *out = NULL;
    if (psa_crypto_init() != PSA_SUCCESS) { /* TLS 1.3 does its crypto through PSA */
        snprintf(why, cap, "PSA crypto did not initialise");
        return -ENOMEM;
    }
    if ((cli = ml_calloc(1, sizeof(*cli))) == NULL) {
        snprintf(why, cap, "out of memory");
        return -ENOMEM;
    }
    cli->refs = 1;
    mbedtls_ssl_config_init(&cli->conf);
    mbedtls_x509_crt_init(&cli->ca);
    mbedtls_x509_crt_init(&cli->cert);
    mbedtls_pk_init(&cli->key);
    mbedtls_entropy_init(&cli->entropy);
    mbedtls_ctr_drbg_init(&cli->drbg);
    if (cfg->identity != NULL) {
        cli->has_identity = true;
        snprintf(cli->identity, sizeof(cli->identity), "%s", cfg->identity);
    }
    if (cfg->sni != NULL) {
        cli->has_sni = true;
        snprintf(cli->sni, sizeof(cli->sni), "%s", cfg->sni);
    }
    if ((rv = mbedtls_ctr_drbg_seed(&cli->drbg, mbedtls_entropy_func, &cli->entropy,
                                    (const unsigned char *)pers, sizeof(pers) - 1)) != 0) {
        say(why, cap, rv, "seeding the random generator", "");
        goto fail;
    }
    if (cfg->ca == NULL) {
        snprintf(why, cap, "no ca: an upstream's certificate must chain to one");
        rv = MBEDTLS_ERR_X509_BAD_INPUT_DATA;
        goto fail;
    }
    if ((rv = mbedtls_x509_crt_parse_file(&cli->ca, cfg->ca)) != 0) {
        say(why, cap, rv, "ca", cfg->ca);
        goto fail;
    }
    if (cfg->cert != NULL) {
        if ((rv = mbedtls_x509_crt_parse_file(&cli->cert, cfg->cert)) != 0) {
            say(why, cap, rv, "cert", cfg->cert);
            goto fail;
        }
        if ((rv = mbedtls_pk_parse_keyfile(&cli->key, cfg->key, NULL, mbedtls_ctr_drbg_random,
                                           &cli->drbg)) != 0) {
            say(why, cap, rv, "key", cfg->key);
            goto fail;
        }
        if ((rv = mbedtls_pk_check_pair(&cli->cert.pk, &cli->key, mbedtls_ctr_drbg_random,
                                        &cli->drbg)) != 0) {
            say(why, cap, rv, "key", cfg->key);
            snprintf(why + strlen(why), cap - strlen(why), " (not the key of %s)", cfg->cert);
            goto fail;
        }
    }
    if ((rv = mbedtls_ssl_config_defaults(&cli->conf, MBEDTLS_SSL_IS_CLIENT,
                                          MBEDTLS_SSL_TRANSPORT_STREAM,
                                          MBEDTLS_SSL_PRESET_DEFAULT)) != 0) {
        say(why, cap, rv, "TLS defaults", "");
        goto fail;
    }
    mbedtls_ssl_conf_rng(&cli->conf, mbedtls_ctr_drbg_random, &cli->drbg);
    mbedtls_ssl_conf_min_tls_version(&cli->conf, MBEDTLS_SSL_VERSION_TLS1_2);
    mbedtls_ssl_conf_max_tls_version(&cli->conf, MBEDTLS_SSL_VERSION_TLS1_3);
    if ((rv = mbedtls_ssl_conf_alpn_protocols(&cli->conf, alpn_h2)) != 0) {
        say(why, cap, rv, "ALPN", "");
        goto fail;
    }
    mbedtls_ssl_conf_authmode(&cli->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&cli->conf, &cli->ca, NULL);
    mbedtls_ssl_conf_verify(&cli->conf, verify_cb, NULL);
    mbedtls_ssl_conf_session_tickets(&cli->conf, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
#if defined(MBEDTLS_SSL_PROTO_TLS1_3) && defined(MBEDTLS_SSL_SESSION_TICKETS)
    /* TLS 1.3 tickets come after the handshake: read_open saves them when told */
    mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets(
        &cli->conf, MBEDTLS_SSL_TLS1_3_SIGNAL_NEW_SESSION_TICKETS_ENABLED);
#endif
    if (cfg->cert != NULL &&
        (rv = mbedtls_ssl_conf_own_cert(&cli->conf, &cli->cert, &cli->key)) != 0) {
        say(why, cap, rv, "cert", cfg->cert);
        goto fail;
    }
    *out = cli;
    return 0;
fail:
    client_unref(cli);
    return rv == MBEDTLS_ERR_SSL_ALLOC_FAILED || rv == MBEDTLS_ERR_X509_ALLOC_FAILED ? -ENOMEM
                                                                                     : -EINVAL;
}

struct ml_tls_client *ml_tls_client_ref(struct ml_tls_client *cli)
{
    if (cli != NULL) {
        cli->refs++;
    }
    return cli;
}

void ml_tls_client_free(struct ml_tls_client *cli)
{
    client_unref(cli);
}

/* ---- resumption ------------------------------------------------------------------------------ */

/* The entry of key, made when make and there is room; NULL otherwise. */
static struct cli_session *session_slot(struct ml_tls_client *cli, const char *key, bool make)
{
    int i;

    for (i = 0; i < ML_TLS_RESUME_MAX && cli->sessions[i] != NULL; i++) {
        if (strcmp(cli->sessions[i]->key, key) == 0) {
            return cli->sessions[i];
        }
    }
    if (!make || i == ML_TLS_RESUME_MAX ||
        (cli->sessions[i] = ml_calloc(1, sizeof(**cli->sessions))) == NULL) {
        return NULL; /* full, or no memory: this endpoint's reconnects do full handshakes */
    }
    snprintf(cli->sessions[i]->key, sizeof(cli->sessions[i]->key), "%s", key);
    mbedtls_ssl_session_init(&cli->sessions[i]->s);
    return cli->sessions[i];
}

/* Keeps t's session (its ticket) for the next connection to the same endpoint. */
static void session_save(struct cli_conn *t)
{
    struct cli_session *e;

    if (t->resume_key[0] == '\0' || (e = session_slot(t->cli, t->resume_key, true)) == NULL) {
        return;
    }
    mbedtls_ssl_session_free(&e->s);
    mbedtls_ssl_session_init(&e->s);
    e->valid = mbedtls_ssl_get_session(&t->s.ssl, &e->s) == 0;
    snprintf(e->identity, sizeof(e->identity), "%s", t->s.identity);
}

/* Offers the saved session of t's endpoint, if any (a stale one costs a full handshake). */
static void session_offer(struct cli_conn *t)
{
    struct cli_session *e;

    if (t->resume_key[0] != '\0' && (e = session_slot(t->cli, t->resume_key, false)) != NULL &&
        e->valid && mbedtls_ssl_set_session(&t->s.ssl, &e->s) == 0) {
        t->offered = true;
    }
}

/* ---- one connection ------------------------------------------------------------------------ */

static const struct ml_sock_ops lower_ops;
static const struct ml_transport_ops cli_ops;

static void conn_free(struct ml_tls_session *s)
{
    struct cli_conn *t = (struct cli_conn *)s;

    ml_tls_session_deinit(s);
    client_unref(t->cli);
    ml_free(t);
}

/* The fatal alert the server sent (MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE): mbedTLS leaves it in
 * its input record and has no accessor for it, hence the private field. */
static enum ml_tls_fail alert_reason(const struct cli_conn *t)
{
    const unsigned char *msg = t->s.ssl.MBEDTLS_PRIVATE(in_msg);

    switch (msg != NULL ? msg[1] : 0) {
    case MBEDTLS_SSL_ALERT_MSG_NO_APPLICATION_PROTOCOL:
        return ML_TLS_FAIL_NO_ALPN;
    case MBEDTLS_SSL_ALERT_MSG_PROTOCOL_VERSION:
        return ML_TLS_FAIL_VERSION;
    case MBEDTLS_SSL_ALERT_MSG_UNKNOWN_CA:
        return ML_TLS_FAIL_UNKNOWN_CA;
    case MBEDTLS_SSL_ALERT_MSG_BAD_CERT:
    case MBEDTLS_SSL_ALERT_MSG_UNSUPPORTED_CERT:
    case MBEDTLS_SSL_ALERT_MSG_CERT_REVOKED:
    case MBEDTLS_SSL_ALERT_MSG_CERT_EXPIRED:
    case MBEDTLS_SSL_ALERT_MSG_CERT_UNKNOWN:
    case MBEDTLS_SSL_ALERT_MSG_CERT_REQUIRED:
        return ML_TLS_FAIL_BAD_CERT;
    default:
        return ML_TLS_FAIL_OTHER;
    }
}

static enum ml_tls_fail classify(struct cli_conn *t, int err)
{
    uint32_t flags;

    switch (err) {
    case MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE:
        return alert_reason(t);
    case MBEDTLS_ERR_SSL_NO_APPLICATION_PROTOCOL:
        return ML_TLS_FAIL_NO_ALPN;
    case MBEDTLS_ERR_SSL_BAD_PROTOCOL_VERSION:
        return ML_TLS_FAIL_VERSION;
    case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED:
        flags = mbedtls_ssl_get_verify_result(&t->s.ssl);
        return (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED) ? ML_TLS_FAIL_UNKNOWN_CA
                                                          : ML_TLS_FAIL_BAD_CERT;
    case MBEDTLS_ERR_SSL_BAD_CERTIFICATE:
        return ML_TLS_FAIL_BAD_CERT;
    default:
        return ML_TLS_FAIL_OTHER;
    }
}

/* The handshake failed: the done hook, then the owner's on_close, as a refused connect. */
static void fail(struct cli_conn *t, enum ml_tls_fail f, const char *why)
{
    ml_tls_client_done_fn *done = t->done;
    char msg[256];

    t->done = NULL;
    if (done != NULL) {
        done(t->done_user, -EPROTO, f, why);
    }
    snprintf(msg, sizeof(msg), "TLS handshake failed (%s): %s", ml_tls_fail_name(f), why);
    ml_tls_session_tell_close(&t->s, -ECONNREFUSED, msg);
}

static void fail_err(struct cli_conn *t, int err)
{
    char e[200];

    ml_tls_session_error_text(&t->s, err, "server", e, sizeof(e));
    fail(t, classify(t, err), e);
}

/* The handshake is done: ALPN h2 and the identity, then the owner may speak HTTP/2. */
static void handshake_done(struct cli_conn *t)
{
    const char *alpn = mbedtls_ssl_get_alpn_protocol(&t->s.ssl);
    const mbedtls_x509_crt *peer = mbedtls_ssl_get_peer_cert(&t->s.ssl);

    if (alpn == NULL || strcmp(alpn, "h2") != 0) {
        /* A server that ignores ALPN passes mbedTLS; gRPC needs HTTP/2. */
        mbedtls_ssl_send_alert_message(&t->s.ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
                                       MBEDTLS_SSL_ALERT_MSG_NO_APPLICATION_PROTOCOL);
        fail(t, ML_TLS_FAIL_NO_ALPN, "the server did not select ALPN h2");
        return;
    }
    if (peer != NULL) {
        ml_tls_cert_identity(peer, t->s.identity, sizeof(t->s.identity));
    } else if (t->offered) {
        /* resumed without the certificate: who the server was when the session was saved,
         * by this client (same ca and identity) */
        struct cli_session *e = session_slot(t->cli, t->resume_key, false);

        if (e != NULL) {
            snprintf(t->s.identity, sizeof(t->s.identity), "%s", e->identity);
        }
    }
    if (t->cli->has_identity &&
        !ml_glob_match(t->cli->identity,
                       (struct ml_slice){(const uint8_t *)t->s.identity, strlen(t->s.identity)},
                       ML_GLOB_EXACT)) {
        char e[ML_TLS_IDENTITY_MAX + 64];

        snprintf(e, sizeof(e), "the server is \"%s\", not identity %.200s",
                 t->s.identity[0] != '\0' ? t->s.identity : "(no name)", t->cli->identity);
        mbedtls_ssl_send_alert_message(&t->s.ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
                                       MBEDTLS_SSL_ALERT_MSG_BAD_CERT);
        fail(t, ML_TLS_FAIL_IDENTITY, e);
        return;
    }
    t->s.state = ML_TLS_SESSION_OPEN; /* the done hook is told with the first plaintext (confirm) */
    if (t->s.ops != NULL && t->s.ops->on_connected != NULL) {
        t->s.ops->on_connected(t->s.user);
    }
}

static void handshake_step(struct ml_tls_session *s)
{
    int rv = mbedtls_ssl_handshake(&s->ssl);

    if (rv == 0) {
        handshake_done((struct cli_conn *)s);
    } else if (rv != MBEDTLS_ERR_SSL_WANT_READ && rv != MBEDTLS_ERR_SSL_WANT_WRITE) {
        fail_err((struct cli_conn *)s, rv);
    }
}

/* The first plaintext came: the server took the handshake whole. In TLS 1.3 the client's
 * Finished (and its certificate) reach the server after the client considers the handshake
 * done, so only the server's first bytes (its SETTINGS) say it was accepted. */
static void confirm(struct cli_conn *t)
{
    ml_tls_client_done_fn *done = t->done;

    if (done != NULL && mbedtls_ssl_get_version_number(&t->s.ssl) == MBEDTLS_SSL_VERSION_TLS1_2) {
        session_save(t); /* TLS 1.2: the session (ticket) is the handshake's */
    }
    t->done = NULL;
    if (done != NULL) {
        done(t->done_user, 0, ML_TLS_FAIL_OTHER, NULL);
    }
}

/* The session ended (rv from mbedtls_ssl_read, 0: the socket closed) before the server sent
 * anything: it refused the handshake after our side of it. In TLS 1.3 the server checks our
 * certificate last (after our Finished), so that is what it refused (missing, or not of a CA
 * it trusts): bad_cert, unless its alert says otherwise. */
static void refused_after_handshake(struct cli_conn *t, int rv)
{
    ml_tls_client_done_fn *done = t->done;
    enum ml_tls_fail f =
        rv == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE ? alert_reason(t) : ML_TLS_FAIL_OTHER;
    bool tls13 = mbedtls_ssl_get_version_number(&t->s.ssl) == MBEDTLS_SSL_VERSION_TLS1_3;
    char e[240], m[96];

    if (f == ML_TLS_FAIL_OTHER && tls13) {
        f = ML_TLS_FAIL_BAD_CERT;
    }
    if (rv != 0) {
        mbedtls_strerror(rv, m, sizeof(m));
    } else {
        snprintf(m, sizeof(m), "the connection closed");
    }
    snprintf(
        e, sizeof(e), "TLS handshake failed (%s): the server refused it after our Finished%s: %s",
        ml_tls_fail_name(f),
        f == ML_TLS_FAIL_BAD_CERT ? " (our client certificate: missing or not trusted)" : "", m);
    t->done = NULL;
    if (done != NULL) {
        done(t->done_user, -EPROTO, f, e);
    }
    ml_tls_session_tell_close(&t->s, -ECONNREFUSED, e);
}

/* The session's hooks (tls/tls_session.h). */

static void on_plaintext(struct ml_tls_session *s)
{
    confirm((struct cli_conn *)s);
}

static void on_ticket(struct ml_tls_session *s)
{
    session_save((struct cli_conn *)s); /* TLS 1.3: the ticket comes after the handshake */
}

static bool on_end(struct ml_tls_session *s, int rv)
{
    struct cli_conn *t = (struct cli_conn *)s;

    if (t->done == NULL) {
        return false;
    }
    refused_after_handshake(t, rv);
    return true;
}

/* The server dropped the connection before its first bytes (our certificate, in TLS 1.3): the
 * socket's close follows and says so with the reason (refused_after_handshake); bytes written
 * meanwhile go with the connection. */
static bool write_fails_quietly(const struct ml_tls_session *s)
{
    return ((const struct cli_conn *)s)->done != NULL;
}

static void on_owner_close(struct ml_tls_session *s)
{
    ((struct cli_conn *)s)->done = NULL;
}

static const struct ml_tls_session_side client_side = {
    .name = "tls client",
    .read_retries = CLI_READ_RETRIES,
    .handshake_step = handshake_step,
    .free = conn_free,
    .on_plaintext = on_plaintext,
    .on_ticket = on_ticket,
    .on_end = on_end,
    .write_fails_quietly = write_fails_quietly,
    .on_owner_close = on_owner_close,
};

static void lower_on_connected(void *user)
{
    struct cli_conn *t = user;

    ml_tls_session_enter(&t->s);
    if (t->s.state == ML_TLS_SESSION_CONNECTING) {
        t->s.state = ML_TLS_SESSION_HANDSHAKE;
        session_offer(t);
        handshake_step(&t->s); /* the ClientHello */
    }
    ml_tls_session_leave(&t->s);
}

static void lower_on_read(void *user, const uint8_t *p, size_t n)
{
    struct cli_conn *t = user;

    ml_tls_session_enter(&t->s);
    ml_tls_session_feed(&t->s, p, n);
    ml_tls_session_leave(&t->s);
}

static void lower_on_close(void *user, int reason, const char *why)
{
    struct cli_conn *t = user;
    enum ml_tls_session_state was = t->s.state;

    ml_tls_session_enter(&t->s);
    t->s.lower = NULL; /* its seam frees it */
    if (was == ML_TLS_SESSION_HANDSHAKE) {
        char e[160];

        snprintf(e, sizeof(e), "the server closed during the handshake (%s)",
                 why != NULL ? why : "closed");
        fail(t, ML_TLS_FAIL_OTHER, e); /* told as any failed handshake */
    } else if (was == ML_TLS_SESSION_OPEN && t->done != NULL && !t->s.owner_closed) {
        refused_after_handshake(t, 0);
    } else if (!t->s.owner_closed) {
        /* TCP never connected, or the session ended */
        ml_tls_session_tell_close(&t->s, reason, why);
    }
    ml_tls_session_leave(&t->s);
}

static const struct ml_sock_ops lower_ops = {
    .on_connected = lower_on_connected,
    .on_read = lower_on_read,
    .on_writable = ml_tls_session_on_writable,
    .on_close = lower_on_close,
};

int ml_tls_connect(struct ml_tls_client *cli, struct ml_transport *lower, const char *host,
                   ml_tls_client_done_fn *done, void *done_user, struct ml_transport **out)
{
    const char *name = cli->has_sni ? cli->sni : host;
    struct cli_conn *t;
    int rv;

    *out = NULL;
    if ((t = ml_calloc(1, sizeof(*t))) == NULL) {
        return -ENOMEM;
    }
    t->cli = ml_tls_client_ref(cli);
    t->done = done;
    t->done_user = done_user;
    /* The name is SNI only (verify_cb): NULL says so to mbedTLS, which otherwise refuses to
     * verify a chain without a name to check. */
    rv = ml_tls_session_init(&t->s, &client_side, &cli_ops, &cli->conf, ML_TLS_SESSION_CONNECTING);
    if (rv < 0 || mbedtls_ssl_set_hostname(&t->s.ssl, name) != 0) {
        conn_free(&t->s);
        return -ENOMEM;
    }
    t->s.lower = lower;
    ml_transport_set_ops(lower, &lower_ops, t);
    *out = &t->s.tp;
    return 0;
}

void ml_tls_client_resume(struct ml_transport *tp, const char *key)
{
    struct cli_conn *t = (struct cli_conn *)tp;

    if (tp->ops == &cli_ops && strlen(key) < sizeof(t->resume_key)) {
        snprintf(t->resume_key, sizeof(t->resume_key), "%s", key);
    }
}

bool ml_tls_client_handshaking(const struct ml_transport *tp)
{
    return tp != NULL && tp->ops == &cli_ops &&
           ((const struct cli_conn *)tp)->s.state == ML_TLS_SESSION_HANDSHAKE;
}

/* ---- the connection as a transport -------------------------------------------------------- */

static const char *cli_peer_identity(const struct ml_transport *tp)
{
    const struct cli_conn *t = (const struct cli_conn *)tp;

    return t->s.state == ML_TLS_SESSION_OPEN && t->s.identity[0] != '\0' ? t->s.identity : NULL;
}

static const struct ml_transport_ops cli_ops = {
    .set_ops = ml_tls_session_set_ops,
    .write = ml_tls_session_write,
    .can_write = ml_tls_session_can_write,
    .want_writable = ml_tls_session_want_writable,
    .close = ml_tls_session_close,
    .peer_identity = cli_peer_identity,
    .alpn = ml_tls_session_alpn,
    .peer_text = ml_tls_session_peer_text,
};
