/* The controller's listener over libwebsockets: one vhost on the shared loop, protocol
 * "meshlet.fleet.v1" for nodes (one binary WebSocket message = one Envelope) and plain HTTP on
 * the same port for GET /fleet and GET /stats. TLS with --cert/--key; with --ca, client
 * certificates are required and must chain to it (mbedTLS verifies them during the handshake),
 * and a Hello's node id must be the one the certificate names (tls/peer_id.h). At most
 * ML_CTL_MAX_CONNS sockets are open at once.
 *
 * Who owns what: lws allocates and zeroes each connection's record (struct ws_conn, struct
 * http_session: per_session_data_size) and frees it after LWS_CALLBACK_CLOSED /
 * LWS_CALLBACK_CLOSED_HTTP; the record owns its buffers, freed there. */
#include "controller/controller_int.h"

#include "core/alloc.h"
#include "core/bearer.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/sock.h"
#include "tls/peer_id.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define FLEET_PROTOCOL "meshlet.fleet.v1"
/* Time a new connection has to say Hello. */
#define HELLO_TIMEOUT_S 30
/* The most of the GET /fleet body written per WRITEABLE callback. */
#define HTTP_CHUNK_BYTES 16384
/* A WebSocket close frame's reason (RFC 6455: 125 bytes of payload, 2 of them the code). */
#define CLOSE_REASON_MAX 123
/* A node's WebSocket is pinged PING_AFTER_S after it opened or last answered a ping, and closed
 * when HANGUP_AFTER_S pass without an answer: a node whose old connection died without a FIN
 * (NAT, power) gets its id back within HANGUP_AFTER_S, since a second connection with an id in
 * use is refused (nodes.c). */
#define PING_AFTER_S 30
#define HANGUP_AFTER_S 60

/* A node's WebSocket: the shared part (controller_int.h) first, so that nodes.c's
 * struct ml_ctl_conn * is this record. */
struct ws_conn {
    struct ml_ctl_conn c;
    struct lws *wsi;
    struct ml_ctl *ctl;
    uint8_t *rx; /* the message being reassembled (ml_malloc), rx_n of rx_cap bytes used */
    size_t rx_n, rx_cap;
    uint8_t *tx; /* the envelope to send at tx + LWS_PRE (ml_malloc), tx_n bytes; NULL: none */
    size_t tx_n;
};

struct http_session {
    char *body; /* ml_malloc'd response body being written; NULL when none */
    size_t len, sent;
    bool rollback; /* POST /rollback: answered when its body has been read */
};

static void ws_send_take(struct ml_ctl_conn *c, uint8_t *buf, size_t n)
{
    struct ws_conn *conn = (struct ws_conn *)c;

    ml_free(conn->tx);
    conn->tx = buf;
    conn->tx_n = n;
    lws_callback_on_writable(conn->wsi);
}

static const struct ml_ctl_conn_ops ws_ops = {
    .pre = LWS_PRE,
    .send_take = ws_send_take,
};

/* Closes conn from inside its own callback: log the reason, put it in the close frame; the
 * callback returns -1 next. */
static int close_now(struct ws_conn *conn, enum lws_close_status status, const char *reason)
{
    ML_LOG_WRN("c%u%s%s: closed: %s", conn->c.id, conn->c.node != NULL ? " node " : "",
               conn->c.node != NULL ? conn->c.node->id : "", reason);
    lws_close_reason(conn->wsi, status, (unsigned char *)(uintptr_t)reason,
                     strnlen(reason, CLOSE_REASON_MAX));
    return -1;
}

/* With --ca, whether the peer showed a certificate that chains to it. mbedTLS already refuses
 * the handshake otherwise (see ml_ctl_ws_listen); this is the second lock on the door, in case
 * a libwebsockets update changes how it maps the verify mode. */
static bool peer_allowed(struct ml_ctl *ctl, struct lws *wsi)
{
    union lws_tls_cert_info_results r;
    char peer[64];

    if (!ctl->client_certs) {
        return true;
    }
    if (lws_tls_peer_cert_info(wsi, LWS_TLS_CERT_INFO_VERIFIED, &r, 0) == 0 && r.verified) {
        return true;
    }
    lws_get_peer_simple(wsi, peer, sizeof(peer));
    ML_LOG_WRN("a connection from %s without a client certificate that chains to --ca: closed",
               peer);
    return false;
}

/* Whether a Hello's node id may be this connection's, before it touches the node table: the id
 * follows the rule and, with --ca, is the one the certificate names. 0, or close_now's -1. */
static int hello_allowed(struct ws_conn *conn, const char *id)
{
    struct ml_ctl *ctl = conn->ctl;
    char shown[ML_CTL_NODE_ID_MAX * 4 + 8];
    char seen[160];
    char why[512];

    if (!ml_ctl_node_id_safe(id)) {
        ctl->counters.hello_refused_bad_id++;
        ml_ctl_text_printable(id, ML_CTL_TEXT_MAX, shown, sizeof(shown));
        snprintf(why, sizeof(why),
                 "node id \"%s\" refused: not a safe file name (1 to %d of [A-Za-z0-9._:-], "
                 "no leading '.')",
                 shown, ML_CTL_NODE_ID_MAX);
        return close_now(conn, LWS_CLOSE_STATUS_POLICY_VIOLATION, why);
    }
    if (ctl->client_certs && ml_tls_peer_id_check(conn->wsi, id, seen, sizeof(seen)) != 0) {
        ctl->counters.hello_refused_identity++;
        snprintf(why, sizeof(why),
                 "node id %s refused: the client certificate names another node (%s)", id, seen);
        return close_now(conn, LWS_CLOSE_STATUS_POLICY_VIOLATION, why);
    }
    return 0;
}

/* One whole message. 0, or -1 to close the connection. */
static int on_message(struct ws_conn *conn)
{
    struct ml_ctl *ctl = conn->ctl;
    /* Large (a Nack's error is 4 KiB): one per controller would do, but the stack of a loop
     * callback has room for it. */
    struct ml_ctl_msg m;
    char why[512];
    int rv;

    if ((rv = ml_ctl_msg_decode(conn->rx, conn->rx_n, &m)) < 0) {
        snprintf(why, sizeof(why), "undecodable envelope (%zu bytes): %s", conn->rx_n,
                 rv == -EMSGSIZE ? "too large" : "not a fleet Envelope");
        return close_now(conn, LWS_CLOSE_STATUS_PROTOCOL_ERR, why);
    }
    if (m.kind == ML_CTL_MSG_HELLO) {
        if (conn->c.node != NULL && strcmp(conn->c.node->id, m.hello.node_id) != 0) {
            return close_now(conn, LWS_CLOSE_STATUS_PROTOCOL_ERR,
                             "a second Hello with another node id");
        }
        if (hello_allowed(conn, m.hello.node_id) < 0) {
            return -1;
        }
        for (size_t i = 0; i < m.hello.n_labels; i++) {
            if (!ml_ctl_label_safe(m.hello.labels[i])) {
                char shown[ML_CTL_LABEL_MAX * 4 + 4];

                ml_ctl_text_printable(m.hello.labels[i], ML_CTL_LABEL_MAX, shown, sizeof(shown));
                snprintf(why, sizeof(why),
                         "label \"%s\" refused: expected KEY=VALUE, each 1 to %d of "
                         "[A-Za-z0-9._-]",
                         shown, ML_CTL_LABEL_PART_MAX);
                return close_now(conn, LWS_CLOSE_STATUS_POLICY_VIOLATION, why);
            }
        }
        if (ml_ctl_on_hello(ctl, &conn->c, &m, why, sizeof(why)) < 0) {
            return close_now(conn, LWS_CLOSE_STATUS_POLICY_VIOLATION, why);
        }
        lws_set_timeout(conn->wsi, NO_PENDING_TIMEOUT, 0);
        return 0;
    }
    if (m.kind == ML_CTL_MSG_UNKNOWN) {
        ML_LOG_DBG("c%u: an envelope of a kind this controller does not know: ignored", conn->c.id);
        return 0;
    }
    if (conn->c.node == NULL) {
        return close_now(conn, LWS_CLOSE_STATUS_PROTOCOL_ERR, "expected Hello first");
    }
    switch (m.kind) {
    case ML_CTL_MSG_ACK:
    case ML_CTL_MSG_NACK:
        ml_ctl_on_answer(ctl, &conn->c, conn->c.node, &m);
        return 0;
    case ML_CTL_MSG_STATUS:
        ml_ctl_on_status(ctl, &conn->c, conn->c.node, &m);
        return 0;
    default:
        return close_now(conn, LWS_CLOSE_STATUS_PROTOCOL_ERR, "a node does not send Push");
    }
}

/* A piece of a message. 0, or -1 to close. */
static int on_receive(struct ws_conn *conn, const uint8_t *in, size_t len)
{
    size_t max = ML_CTL_MAX_NODE_MESSAGE_BYTES;
    size_t want = conn->rx_n + len + lws_remaining_packet_payload(conn->wsi);
    char why[96];

    if (!lws_frame_is_binary(conn->wsi)) {
        return close_now(conn, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
                         "a text frame: envelopes are binary");
    }
    if (want > max) {
        snprintf(why, sizeof(why), "a message over %zu bytes", max);
        return close_now(conn, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, why);
    }
    if (want > conn->rx_cap) {
        uint8_t *p = ml_realloc(conn->rx, want);

        if (p == NULL) {
            return close_now(conn, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
        }
        conn->rx = p;
        conn->rx_cap = want;
    }
    if (len > 0) {
        memcpy(conn->rx + conn->rx_n, in, len);
    }
    conn->rx_n += len;
    if (!lws_is_final_fragment(conn->wsi) || lws_remaining_packet_payload(conn->wsi) > 0) {
        return 0;
    }
    {
        int rv = on_message(conn);

        conn->rx_n = 0;
        return rv;
    }
}

static int fleet_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                          size_t len)
{
    struct ml_ctl *ctl = lws_get_vhost_user(lws_get_vhost(wsi));
    struct ws_conn *conn = user;
    char peer[64];

    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return ctl != NULL && peer_allowed(ctl, wsi) ? 0 : -1;
    case LWS_CALLBACK_ESTABLISHED:
        if (ctl == NULL || conn == NULL || !peer_allowed(ctl, wsi)) {
            return -1;
        }
        conn->c.ops = &ws_ops;
        conn->wsi = wsi;
        conn->ctl = ctl;
        conn->c.id = ++ctl->next_conn_id;
        lws_get_peer_simple(wsi, peer, sizeof(peer));
        ML_LOG_INF("c%u: WebSocket from %s", conn->c.id, peer);
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, HELLO_TIMEOUT_S);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return conn != NULL && conn->ctl != NULL ? on_receive(conn, in, len) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (conn == NULL || conn->ctl == NULL) {
            return -1;
        }
        if (conn->tx != NULL) {
            int n = lws_write(wsi, conn->tx + LWS_PRE, conn->tx_n, LWS_WRITE_BINARY);

            ml_free(conn->tx);
            conn->tx = NULL;
            if (n < (int)conn->tx_n) {
                ML_LOG_WRN("c%u: write failed: closed", conn->c.id);
                return -1;
            }
        }
        return 0;
    case LWS_CALLBACK_CLOSED:
        if (conn == NULL || conn->ctl == NULL) {
            return 0;
        }
        if (conn->c.node != NULL && conn->c.node->conn == &conn->c) {
            ml_ctl_on_gone(ctl, conn->c.node);
        }
        conn->c.node = NULL;
        ml_free(conn->rx);
        ml_free(conn->tx);
        conn->rx = conn->tx = NULL;
        ML_LOG_DBG("c%u: connection closed", conn->c.id);
        return 0;
    default:
        return 0;
    }
}

/* ---- plain HTTP: GET /fleet ------------------------------------------------------------- */

static void http_drop(struct http_session *s)
{
    ml_free(s->body);
    s->body = NULL;
    s->len = s->sent = 0;
}

/* Headers now, the body from WRITEABLE. 0, or -1 to close. */
static int http_respond(struct lws *wsi, struct http_session *s, unsigned status, const char *type,
                        char *body_take, size_t n)
{
    uint8_t buf[LWS_PRE + 512];
    uint8_t *start = &buf[LWS_PRE], *p = start, *end = &buf[sizeof(buf) - 1];

    http_drop(s);
    s->body = body_take;
    s->len = n;
    if (lws_add_http_common_headers(wsi, status, type, (lws_filepos_t)n, &p, end) != 0 ||
        lws_finalize_write_http_header(wsi, start, &p, end) != 0) {
        return -1;
    }
    lws_callback_on_writable(wsi);
    return 0;
}

static int http_respond_text(struct lws *wsi, struct http_session *s, unsigned status,
                             const char *text)
{
    size_t n = strlen(text);
    char *body = ml_malloc(n + 1);

    if (body == NULL) {
        return -1;
    }
    memcpy(body, text, n + 1);
    if (http_respond(wsi, s, status, "text/plain; charset=utf-8", body, n) < 0) {
        http_drop(s);
        return -1;
    }
    return 0;
}

/* A filter of the query (?label=KEY=VALUE, ?state=...) into buf; "" when absent. */
static void query_arg(struct lws *wsi, const char *name, char *buf, int cap)
{
    if (lws_get_urlarg_by_name_safe(wsi, name, buf, cap) < 0) {
        buf[0] = '\0';
    }
}

static bool state_known(const char *s)
{
    static const char *const known[] = {"", "synced", "stale", "nacked", "offline"};

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcasecmp(s, known[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* Whether a state-changing request may go on: always without --admin-token; with it, only with
 * "Authorization: Bearer TOKEN" (compared in constant time: core/bearer.c). */
static bool authorized(struct lws *wsi, const struct ml_ctl *ctl)
{
    char value[sizeof("Bearer ") + ML_BEARER_TOKEN_MAX_BYTES + 8];
    int n;
    bool ok;

    if (ctl->admin_token == NULL) {
        return true;
    }
    n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n <= 0 || (size_t)n >= sizeof(value) ||
        lws_hdr_copy(wsi, value, sizeof(value), WSI_TOKEN_HTTP_AUTHORIZATION) != n) {
        return false;
    }
    ok = ml_bearer_matches(value, ctl->admin_token, ctl->admin_token_n);
    explicit_bzero(value, sizeof(value));
    return ok;
}

/* POST /rollback: every file back to its previous version (rollout.c). */
static int http_rollback(struct lws *wsi, struct ml_ctl *ctl, struct http_session *s)
{
    char msg[4096];
    int n = ml_ctl_rollout_rollback(ctl, msg, sizeof(msg));

    return http_respond_text(wsi, s, n > 0 ? 200 : 409, msg);
}

static int http_request(struct lws *wsi, struct ml_ctl *ctl, struct http_session *s,
                        const char *path)
{
    char label[ML_CTL_LABEL_MAX + 2], state[16];
    char *body;
    size_t n;
    int rv;

    if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0) {
        if (strcmp(path, "/rollback") != 0) {
            return http_respond_text(wsi, s, 405, "only POST /rollback takes a POST\n");
        }
        if (!authorized(wsi, ctl)) {
            ctl->counters.http_unauthorized++;
            ML_LOG_WRN("POST %s refused: no valid \"Authorization: Bearer\" (--admin-token)", path);
            return http_respond_text(wsi, s, 401,
                                     "POST /rollback needs \"Authorization: Bearer TOKEN\" "
                                     "(--admin-token)\n");
        }
        s->rollback = true;
        /* no body: answer now; else once it is read (LWS_CALLBACK_HTTP_BODY_COMPLETION) */
        if (lws_hdr_copy(wsi, label, sizeof(label), WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0 ||
            strtoul(label, NULL, 10) == 0) {
            return http_rollback(wsi, ctl, s);
        }
        return 0;
    }
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) {
        return http_respond_text(wsi, s, 405, "only GET is served here (and POST /rollback)\n");
    }
    if (strcmp(path, "/stats") == 0 || strcmp(path, "/metrics") == 0) {
        rv = path[1] == 's' ? ml_ctl_json_stats(ctl, &body, &n) : ml_ctl_metrics(ctl, &body, &n);
        if (rv < 0) {
            return http_respond_text(wsi, s, 500, "out of memory\n");
        }
        if (http_respond(wsi, s, 200,
                         path[1] == 's' ? "text/plain; charset=utf-8"
                                        : "text/plain; version=0.0.4; charset=utf-8",
                         body, n) < 0) {
            http_drop(s);
            return -1;
        }
        return 0;
    }
    if (strcmp(path, "/fleet") != 0 && strcmp(path, "/fleet/status") != 0) {
        return http_respond_text(wsi, s, 404,
                                 "not found; GET /fleet lists the nodes (JSON), GET /fleet/status "
                                 "one line each, GET /metrics, GET /stats, POST /rollback\n");
    }
    query_arg(wsi, "label=", label, sizeof(label));
    query_arg(wsi, "state=", state, sizeof(state));
    if (label[0] != '\0' && !ml_ctl_label_safe(label)) {
        return http_respond_text(wsi, s, 400,
                                 "?label= expects KEY=VALUE, each 1 to 31 of [A-Za-z0-9._-]\n");
    }
    if (!state_known(state)) {
        return http_respond_text(wsi, s, 400, "?state= expects synced, stale, nacked or offline\n");
    }
    if (strcmp(path, "/fleet/status") == 0) {
        rv = ml_ctl_status_text(ctl, label, state, &body, &n);
    } else {
        rv = ml_ctl_json_fleet(ctl, label, state, &body, &n);
    }
    if (rv < 0) {
        ML_LOG_ERR("GET %s: %s", path, rv == -ENOBUFS ? "over ML_CTL_MAX_JSON_BYTES" : "no memory");
        return http_respond_text(wsi, s, 500, "cannot render the fleet\n");
    }
    if (http_respond(wsi, s, 200,
                     path[6] == '\0' ? "application/json" : "text/plain; charset=utf-8", body,
                     n) < 0) {
        http_drop(s);
        return -1;
    }
    return 0;
}

static int http_write(struct lws *wsi, struct http_session *s)
{
    uint8_t buf[LWS_PRE + HTTP_CHUNK_BYTES];
    size_t n = s->len - s->sent;
    bool last;

    if (s->body == NULL) {
        return 0;
    }
    if (n > HTTP_CHUNK_BYTES) {
        n = HTTP_CHUNK_BYTES;
    }
    last = s->sent + n == s->len;
    memcpy(&buf[LWS_PRE], s->body + s->sent, n);
    if (lws_write(wsi, &buf[LWS_PRE], n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)n) {
        return -1;
    }
    s->sent += n;
    if (!last) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    http_drop(s);
    return lws_http_transaction_completed(wsi) != 0 ? -1 : 0;
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    struct ml_ctl *ctl = lws_get_vhost_user(lws_get_vhost(wsi));
    struct http_session *s = user;

    switch (reason) {
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        /* wsi is the listener; lws closes the new socket when this is not 0. */
        if (ctl != NULL && ctl->counters.conns_active >= ML_CTL_MAX_CONNS) {
            uint64_t k = ++ctl->counters.conns_refused_over_cap;

            /* A flood of connections must not flood the log too: the 1st, 2nd, 4th, 8th... */
            if ((k & (k - 1)) == 0) {
                ML_LOG_WRN("a new connection closed: %d are open (ML_CTL_MAX_CONNS); %llu closed "
                           "so far",
                           ML_CTL_MAX_CONNS, (unsigned long long)k);
            }
            return -1;
        }
        return 0;
    case LWS_CALLBACK_WSI_CREATE:
        /* Every accepted socket, before any protocol (lws sends it to the first one). */
        if (ctl != NULL) {
            ctl->counters.conns_active++;
        }
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        /* Also the listener's own, at the end: never below 0. */
        if (ctl != NULL && ctl->counters.conns_active > 0) {
            ctl->counters.conns_active--;
        }
        return 0;
    case LWS_CALLBACK_HTTP:
        if (ctl == NULL || s == NULL || !peer_allowed(ctl, wsi)) {
            return -1;
        }
        return http_request(wsi, ctl, s, in != NULL ? (const char *)in : "");
    case LWS_CALLBACK_HTTP_BODY:
        return 0; /* not read: a non-GET was answered 405; POST /rollback needs none */
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (ctl != NULL && s != NULL && s->rollback && s->body == NULL) {
            s->rollback = false;
            return http_rollback(wsi, ctl, s);
        }
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return s != NULL ? http_write(wsi, s) : -1;
    case LWS_CALLBACK_ESTABLISHED:
        /* A WebSocket upgrade that named no subprotocol lands on the first protocol. */
        ML_LOG_WRN("a WebSocket without subprotocol " FLEET_PROTOCOL ": closed");
        return -1;
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (s != NULL) {
            http_drop(s);
        }
        break;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

#define HTTP_PROTOCOL                                                                              \
    {                                                                                              \
        .name = "ml-ctl-http", .callback = http_callback,                                          \
        .per_session_data_size = sizeof(struct http_session),                                      \
    }

static const struct lws_protocols protocols[] = {
    HTTP_PROTOCOL,
    {
        .name = FLEET_PROTOCOL,
        .callback = fleet_callback,
        .per_session_data_size = sizeof(struct ws_conn),
        .rx_buffer_size = 16384,
    },
    LWS_PROTOCOL_LIST_TERM,
};

static const struct lws_protocols http_only[] = {
    HTTP_PROTOCOL,
    LWS_PROTOCOL_LIST_TERM,
};

/* Why a file cannot be used, into why; -errno, or 0 when it can be read. */
static int check_readable(const char *what, const char *path, char *why, size_t cap)
{
    if (access(path, R_OK) != 0) {
        int e = errno;

        snprintf(why, cap, "%s %s: %s", what, path, strerror(e));
        return -e;
    }
    return 0;
}

int ml_ctl_ws_listen(struct ml_ctl *ctl, const struct ml_ctl_listen *l, bool fleet_ws, char *why,
                     size_t cap)
{
    static const lws_retry_bo_t keepalive = {
        .secs_since_valid_ping = PING_AFTER_S,
        .secs_since_valid_hangup = HANGUP_AFTER_S,
    };
    struct lws_context_creation_info info;
    struct ml_sock_addr sa;
    int rv;

    if (l->cert != NULL && (rv = check_readable("--cert", l->cert, why, cap)) < 0) {
        return rv;
    }
    if (l->key != NULL && (rv = check_readable("--key", l->key, why, cap)) < 0) {
        return rv;
    }
    if (l->ca != NULL && (rv = check_readable("--ca", l->ca, why, cap)) < 0) {
        return rv;
    }
    memset(&info, 0, sizeof(info));
    info.vhost_name = "ml-controller";
    info.iface = l->iface;
    info.port = l->port;
    /* With --mqtt the nodes are on the broker: only the HTTP endpoints are served here. */
    info.protocols = fleet_ws ? protocols : http_only;
    info.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
    if (l->cert != NULL) {
        /* Without this option on the vhost too, lws 4.3 quietly serves plaintext. */
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = l->cert;
        info.ssl_private_key_filepath = l->key;
        if (l->ca != NULL) {
            /* lws 4.3.5 on mbedTLS turns REQUIRE_VALID_OPENSSL_CLIENT_CERT alone into
             * SSL_VERIFY_FAIL_IF_NO_PEER_CERT, which its wrapper maps to
             * MBEDTLS_SSL_VERIFY_OPTIONAL: a handshake without a certificate, or with one from
             * any CA, succeeds and nothing checks the result. With PEER_CERT_NOT_REQUIRED as
             * well, lws asks for SSL_VERIFY_PEER, which the wrapper maps to
             * MBEDTLS_SSL_VERIFY_REQUIRED: the handshake fails as it should. peer_allowed()
             * checks again. */
            info.ssl_ca_filepath = l->ca;
            info.options |= LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT |
                            LWS_SERVER_OPTION_PEER_CERT_NOT_REQUIRED;
            ctl->client_certs = true;
        }
    }
    info.retry_and_idle_policy = &keepalive;
    info.keepalive_timeout = 5;
    info.timeout_secs = 10;
    info.user = ctl;
    ctl->vh = lws_create_vhost(ml_loop_lws_context(ctl->loop), &info);
    if (ctl->vh != NULL) {
        return 0;
    }
    memset(&sa, 0, sizeof(sa));
    sa.port = l->port;
    if (inet_pton(AF_INET, l->iface, sa.ip) == 1) {
        sa.family = AF_INET;
    } else {
        sa.family = AF_INET6;
        inet_pton(AF_INET6, l->iface, sa.ip);
    }
    rv = ml_sock_bind_errno(&sa);
    if (rv < 0) {
        snprintf(why, cap, "cannot listen on %s port %u: %s", l->iface, l->port, strerror(-rv));
        return rv;
    }
    snprintf(why, cap, "cannot listen on %s port %u: %s", l->iface, l->port,
             l->cert != NULL ? "TLS setup failed (is --cert/--key/--ca PEM, and the key the "
                               "cert's?)"
                             : "libwebsockets refused the listener");
    return -EIO;
}
