/* The fleet client (client.h; the protocol: README.md): the protocol logic, whatever carries it.
 * The transport (fleet/transport.h: ws.c, a WebSocket to the controller; mqtt.c, an MQTT broker)
 * is picked by the url's scheme from the table below and owns its lws callback, which calls the
 * ml_fleet_conn_* functions here.
 *
 * One connection at a time. Each attempt gets a number (conn_id): the wsi carries the client as
 * its opaque user data only while it is the current connection; the moment it stops being so
 * (failed, closed, replaced, client freed) the pointer is cleared, so a late callback of an old
 * wsi finds NULL and does nothing. Everything a connection owns (queued messages, unanswered
 * pushes, the report timer) is dropped in one place, conn_end(), which also counts, logs and arms
 * the reconnect.
 *
 * TLS settings live on a vhost of our own (client_ssl_ca/cert/key), made on the shared context
 * before the first attempt and again at the first attempt after ml_fleet_client_update changed
 * [fleet] (or the transport). Writes go out one envelope per WRITEABLE from a small fixed queue,
 * through the transport's write; one it holds (MQTT: until the broker's PUBACK) stays at the head
 * until the transport releases it.
 *
 * lws traps met here (4.3.5):
 * - a vhost makes its client TLS context only if ITS OWN creation info has
 *   LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT (the context's flag is not enough);
 * - lws_client_connect_via_info may call CLIENT_CONNECTION_ERROR before it returns (and then
 *   return NULL or the dying wsi): failures seen inside it are only recorded, and handled once it
 *   has returned;
 * - with async DNS, a failed lookup is retried by lws every second with no end and no callback:
 *   our own deadline (CONNECT_TIMEOUT_MS) ends such an attempt;
 * - lws_vhost_destroy closes the vhost's wsis synchronously, so it must never run inside a
 *   callback of one of them (free from inside on_push is deferred);
 * - returning -1 from CLIENT_RECEIVE after lws_close_reason starts the close handshake, and lws
 *   then goes on parsing the rest of what it has read into its receive buffer without resetting
 *   it: a heap overflow at once for a message of a multiple of rx_buffer_size, "double free or
 *   corruption" for anything from about 80 KiB up. A bad message therefore never returns -1:
 *   drop_connection() detaches the wsi, stops reading and has lws kill it from its next service
 *   (no close frame). Over MQTT a bad message is only counted and skipped (transport.h,
 *   bad_message_fatal). */
#include "fleet/client.h"
#include "fleet/client_int.h"

#include "config/features.h"
#include "core/alloc.h"
#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/timer.h"
#include "fleet/backoff.h"
#include "fleet/envelope.h"
#include "fleet/token.h"
#include "fleet/transport.h"

#include <errno.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The transports, by url scheme (config/validate_node.c accepts the same schemes). */
static const struct ml_fleet_transport *const transports[] = {
    &ml_fleet_ws_transport,
#if ML_HAVE_FLEET_MQTT
    &ml_fleet_mqtt_transport,
#endif
};

/* Outgoing envelopes waiting for WRITEABLE: a Hello, a Status and the answers to pushes. More
 * than this means the controller does not read: further ones are dropped (counted in the log). */
#define OUT_QUEUE_MAX 8
/* Pushes handed to the node and not answered yet (ack/nack finds its connection here). */
#define PUSHES_MAX 8
/* The reassembly buffer starts this big and doubles up to ML_FLEET_MAX_MESSAGE_BYTES only when
 * a message needs it; over RX_KEEP_BYTES it is given back once that message is handled, so a
 * node does not hold a whole config's worth of memory for its next Status-sized message. */
#define RX_INITIAL_BYTES 4096
#define RX_KEEP_BYTES 16384
/* An attempt that is not a WebSocket after this long is abandoned (DNS, TCP, TLS, upgrade). */
#define CONNECT_TIMEOUT_MS 10000
/* The largest envelope the node sends: a Nack with a whole error text, or a full Hello. */
#define OUT_MAX_BYTES (ML_FLEET_ERROR_MAX + ML_FLEET_VERSION_MAX + 64)
_Static_assert(ML_FLEET_VERSION_CHARS_MAX <= ML_FLEET_VERSION_MAX &&
                   ML_FLEET_ID_CHARS_MAX <= ML_FLEET_NODE_ID_MAX,
               "a valid version or node id fits the wire bound");
_Static_assert(OUT_MAX_BYTES >= ML_FLEET_NODE_ID_MAX + ML_FLEET_BOARD_MAX +
                                    2 * ML_FLEET_VERSION_MAX +
                                    ML_FLEET_FEATURES_MAX * (ML_FLEET_FEATURE_MAX + 2) +
                                    ML_FLEET_LABELS_MAX * (ML_FLEET_LABEL_MAX + 2) + 32,
               "a whole Hello fits");

/* A private copy of [fleet], strings in one block. */
struct cfg_copy {
    struct ml_cfg_fleet f;
    char *mem;
};

struct out_msg {
    uint8_t *buf; /* LWS_PRE bytes of headroom, then n bytes of envelope; owned */
    size_t n;
    enum ml_fleet_msg_kind kind; /* at most one ML_FLEET_MSG_STATUS is queued */
};

struct pending_push {
    bool used;
    uint32_t conn_id; /* the connection that brought it */
    uint64_t nonce;
    char version[ML_FLEET_VERSION_MAX + 1];
};

enum state {
    ST_WAITING,    /* the retry timer will start the next attempt */
    ST_CONNECTING, /* c->wsi: DNS, TCP, TLS or upgrade under way */
    ST_CONNECTED,  /* c->wsi: the WebSocket is up */
};

struct ml_fleet_client {
    struct ml_loop *loop;
    struct lws_context *lws;
    const struct ml_fleet_transport *tp; /* for cfg's url */
    void *tstate;                        /* tp's, zeroed before each attempt */
    size_t tstate_size;                  /* the largest of the table's */
    struct lws_vhost *vh;                /* NULL until the next attempt makes it; made for tp */
    struct cfg_copy cfg;  /* what the current (or next) attempt uses */
    struct cfg_copy next; /* from ml_fleet_client_update, for the next attempt; mem NULL: none */
    bool has_next;

    char *id_mem; /* identity strings and the features array, one block */
    struct ml_fleet_identity id;
    char config_version[ML_FLEET_VERSION_MAX + 1];
    const struct ml_fleet_client_ops *ops;
    void *user;

    struct ml_fleet_backoff backoff;
    struct ml_timer *retry;    /* ST_WAITING: starts the next attempt */
    struct ml_timer *deadline; /* ST_CONNECTING: abandons a slow attempt */
    struct ml_timer *report;   /* ST_CONNECTED: the next Status */

    enum state state;
    struct lws *wsi;     /* the current connection; NULL in ST_WAITING */
    uint32_t conn_id;    /* number of the current (or last) attempt */
    uint64_t up_since_ms; /* ST_CONNECTED: when the upgrade completed */
    bool in_connect;     /* inside lws_client_connect_via_info */
    bool connect_failed; /* a CONNECTION_ERROR came while in_connect */
    char why[320];       /* why the current connection is ending, for the log */
    char peer_close[128]; /* the controller's close frame, if it sent one */
    bool said_unknown, said_direction; /* logged once per connection at info/warn */

    int depth;                /* our lws callbacks on the stack */
    bool freed;               /* ml_fleet_client_free ran inside one of them */
    struct ml_defer free_later; /* finishes that free once the callback is gone */

    uint8_t *rx;   /* the message being reassembled; NULL until one arrives */
    size_t rx_len; /* bytes of it so far */
    size_t rx_cap; /* bytes allocated: 0, or RX_INITIAL_BYTES doubled, at most the bound */
    meshlet_fleet_v1_Envelope env; /* the last decoded one (too big for the stack) */

    struct out_msg out[OUT_QUEUE_MAX]; /* ring */
    unsigned out_head, out_n;
    bool out_held; /* the head is out and waits for the transport's release (transport.h) */
    bool rx_skip;  /* the message being received was refused: its pieces are dropped */
    struct pending_push pushes[PUSHES_MAX];
    unsigned push_next; /* where the next push goes when all slots are taken */
    uint8_t scratch[OUT_MAX_BYTES];

    struct ml_fleet_client_counters counters;
};

static void start_attempt(struct ml_fleet_client *c);

/* ---- text from the controller ------------------------------------------------------------- */

/* s[0..n) as printable ASCII for a log line or a Nack: other bytes as \xHH (a backslash as \\),
 * cut at a whole escape to fit out[cap]. Returns out. */
const char *ml_fleet_printable(const void *s, size_t n, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = s;
    size_t j = 0;

    for (size_t i = 0; i < n; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') {
            if (j + 1 >= cap) {
                break;
            }
            out[j++] = (char)p[i];
        } else if (p[i] == '\\') {
            if (j + 2 >= cap) {
                break;
            }
            out[j++] = '\\';
            out[j++] = '\\';
        } else {
            if (j + 4 >= cap) {
                break;
            }
            out[j++] = '\\';
            out[j++] = 'x';
            out[j++] = hex[p[i] >> 4];
            out[j++] = hex[p[i] & 15];
        }
    }
    if (cap > 0) {
        out[j] = '\0';
    }
    return out;
}

#define printable ml_fleet_printable

/* How many bytes of a decoded string field[cap] came off the wire: up to its last non-zero byte,
 * so that a NUL inside it counts (decode zeroes the envelope first; only trailing NULs are lost,
 * and those hide nothing). */
static size_t field_len(const char *field, size_t cap)
{
    size_t n = cap;

    while (n > 0 && field[n - 1] == '\0') {
        n--;
    }
    return n;
}

/* ---- copies of [fleet] and of the identity ----------------------------------------------- */

static size_t str_size(const char *s)
{
    return s != NULL ? strlen(s) + 1 : 0;
}

static char *put_str(char **at, const char *s)
{
    char *r;

    if (s == NULL) {
        return NULL;
    }
    r = *at;
    memcpy(r, s, strlen(s) + 1);
    *at += strlen(s) + 1;
    return r;
}

static int cfg_copy(struct cfg_copy *dst, const struct ml_cfg_fleet *src)
{
    size_t n = str_size(src->url) + str_size(src->url_host) + str_size(src->url_path) +
               str_size(src->ca) + str_size(src->cert) + str_size(src->key) + 1;
    char *at;

    memset(dst, 0, sizeof(*dst));
    if ((dst->mem = ml_malloc(n)) == NULL) {
        return -ENOMEM;
    }
    at = dst->mem;
    dst->f = *src;
    dst->f.url = put_str(&at, src->url);
    dst->f.url_host = put_str(&at, src->url_host);
    dst->f.url_path = put_str(&at, src->url_path);
    dst->f.ca = put_str(&at, src->ca);
    dst->f.cert = put_str(&at, src->cert);
    dst->f.key = put_str(&at, src->key);
    return 0;
}

static void cfg_drop(struct cfg_copy *c)
{
    ml_free(c->mem);
    memset(c, 0, sizeof(*c));
}

static bool str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool cfg_same(const struct ml_cfg_fleet *a, const struct ml_cfg_fleet *b)
{
    return str_eq(a->url, b->url) && str_eq(a->ca, b->ca) && str_eq(a->cert, b->cert) &&
           str_eq(a->key, b->key) && a->backoff.from_ms == b->backoff.from_ms &&
           a->backoff.to_ms == b->backoff.to_ms && a->report_interval_ms == b->report_interval_ms &&
           a->insecure == b->insecure;
}

/* The transport for f's url (by its scheme), or NULL. */
static const struct ml_fleet_transport *transport_for(const struct ml_cfg_fleet *f)
{
    for (size_t i = 0; f->url != NULL && i < sizeof(transports) / sizeof(transports[0]); i++) {
        const struct ml_fleet_transport *t = transports[i];

        /* url_tls (config/validate_node.c) says which of the two it is */
        if (strncmp(f->url, t->scheme, strlen(t->scheme)) == 0 ||
            strncmp(f->url, t->scheme_tls, strlen(t->scheme_tls)) == 0) {
            return t;
        }
    }
    return NULL;
}

/* Why cfg cannot be used, or NULL. */
static const char *cfg_unusable(const struct ml_cfg_fleet *f)
{
    if (!f->present) {
        return "no [fleet] section";
    }
    if (f->url == NULL || f->url_host == NULL || f->url_host[0] == '\0' || f->url_path == NULL) {
        return "no usable url";
    }
    if (transport_for(f) == NULL) {
        return "no transport for the url's scheme in this build (mqtt:// needs "
               "CONFIG_ML_FLEET_MQTT)";
    }
    if (!f->url_tls && !f->insecure) {
        return "a plain url (ws://, mqtt://) needs insecure = on";
    }
    if (f->url_tls && f->ca == NULL) {
        return "a TLS url (wss://, mqtts://) needs ca (the peer's certificate is checked "
               "against it)";
    }
    if ((f->cert == NULL) != (f->key == NULL)) {
        return "cert and key come together";
    }
    if (f->report_interval_ms == 0) {
        return "report_interval must not be 0";
    }
    return NULL;
}

static int identity_copy(struct ml_fleet_client *c, const struct ml_fleet_identity *id)
{
    /* the features' and the labels' pointer arrays first, then every string */
    size_t n_ptrs = id->n_features + 1 + id->n_labels + 1;
    size_t n = str_size(id->node_id) + str_size(id->board) + str_size(id->version) +
               n_ptrs * sizeof(char *);
    const char **features, **labels;
    char *at;

    for (size_t i = 0; i < id->n_features; i++) {
        n += str_size(id->features[i]);
    }
    for (size_t i = 0; i < id->n_labels; i++) {
        n += str_size(id->labels[i]);
    }
    if ((c->id_mem = ml_malloc(n)) == NULL) {
        return -ENOMEM;
    }
    features = (const char **)(void *)c->id_mem;
    labels = features + id->n_features + 1;
    at = c->id_mem + n_ptrs * sizeof(char *);
    c->id.node_id = put_str(&at, id->node_id);
    c->id.board = put_str(&at, id->board);
    c->id.version = put_str(&at, id->version);
    for (size_t i = 0; i < id->n_features; i++) {
        features[i] = put_str(&at, id->features[i]);
    }
    for (size_t i = 0; i < id->n_labels; i++) {
        labels[i] = put_str(&at, id->labels[i]);
    }
    c->id.features = features;
    c->id.n_features = id->n_features;
    c->id.labels = labels;
    c->id.n_labels = id->n_labels;
    return 0;
}

static void set_config_version(struct ml_fleet_client *c, const char *v)
{
    size_t n = v != NULL ? strlen(v) : 0;

    if (n > ML_FLEET_VERSION_MAX) {
        ML_LOG_WRN("fleet: config version \"%.32s...\" is over %d bytes: the Hello says it cut",
                   v, ML_FLEET_VERSION_MAX);
        n = ML_FLEET_VERSION_MAX;
    }
    memcpy(c->config_version, v != NULL ? v : "", n);
    c->config_version[n] = '\0';
}

static int encode_hello(struct ml_fleet_client *c, size_t *n)
{
    struct ml_fleet_hello h = {
        .node_id = c->id.node_id,
        .board = c->id.board,
        .version = c->id.version,
        .config_version = c->config_version,
        .features = c->id.features,
        .n_features = c->id.n_features,
        .labels = c->id.labels,
        .n_labels = c->id.n_labels,
    };

    return ml_fleet_hello_encode(&h, c->scratch, sizeof(c->scratch), n);
}

/* ---- the outgoing queue ------------------------------------------------------------------- */

static void out_clear(struct ml_fleet_client *c)
{
    while (c->out_n > 0) {
        ml_free(c->out[c->out_head].buf);
        c->out[c->out_head].buf = NULL;
        c->out_head = (c->out_head + 1) % OUT_QUEUE_MAX;
        c->out_n--;
    }
    c->out_head = 0;
    c->out_held = false;
}

/* Queues c->scratch[0..n) and asks for WRITEABLE. 0; -ENOBUFS (queue full); -ENOMEM. */
static int out_push(struct ml_fleet_client *c, size_t n, enum ml_fleet_msg_kind kind)
{
    struct out_msg *m;

    if (c->out_n == OUT_QUEUE_MAX) {
        return -ENOBUFS;
    }
    m = &c->out[(c->out_head + c->out_n) % OUT_QUEUE_MAX];
    if ((m->buf = ml_malloc(LWS_PRE + n)) == NULL) {
        return -ENOMEM;
    }
    memcpy(m->buf + LWS_PRE, c->scratch, n);
    m->n = n;
    m->kind = kind;
    c->out_n++;
    if (c->wsi != NULL && !c->out_held) { /* NULL only under ml_fleet_client_feed */
        lws_callback_on_writable(c->wsi);
    }
    return 0;
}

static bool status_queued(const struct ml_fleet_client *c)
{
    for (unsigned i = 0; i < c->out_n; i++) {
        if (c->out[(c->out_head + i) % OUT_QUEUE_MAX].kind == ML_FLEET_MSG_STATUS) {
            return true;
        }
    }
    return false;
}

static void out_pop(struct ml_fleet_client *c)
{
    struct out_msg *m = &c->out[c->out_head];

    ml_free(m->buf);
    m->buf = NULL;
    c->out_head = (c->out_head + 1) % OUT_QUEUE_MAX;
    c->out_n--;
}

/* WRITEABLE: one envelope out, through the transport. 0, or -1 to close (lws could not
 * write). */
static int out_send_one(struct ml_fleet_client *c, struct lws *wsi)
{
    struct out_msg *m;
    int rv;

    if (c->out_n == 0 || c->out_held) {
        return 0;
    }
    m = &c->out[c->out_head];
    rv = c->tp->write(c->tstate, wsi, m->buf, m->n, m->kind);
    if (rv < 0) {
        out_pop(c);
        snprintf(c->why, sizeof(c->why), "write failed");
        return -1;
    }
    if (rv == ML_FLEET_WRITE_SENT) {
        out_pop(c);
    } else {
        c->out_held = true; /* until ml_fleet_conn_release */
        return 0;
    }
    if (c->out_n > 0) {
        lws_callback_on_writable(wsi);
    }
    return 0;
}

/* ---- connection lifecycle ----------------------------------------------------------------- */

static void on_free_later(struct ml_defer *d);
static void rx_release(struct ml_fleet_client *c);

static void on_retry(void *user)
{
    start_attempt(user);
}

/* The current connection (or attempt) is over: forget it, count, log why and when the next
 * attempt comes. wsi (if still alive) no longer reaches c. */
static void conn_end(struct ml_fleet_client *c, const char *why)
{
    bool was_up = c->state == ST_CONNECTED;
    uint64_t now = ml_time_now_ms(), lived = was_up ? now - c->up_since_ms : 0;
    uint32_t delay;

    if (c->wsi != NULL) {
        lws_set_opaque_user_data(c->wsi, NULL);
        c->wsi = NULL;
    }
    ml_timer_disarm(c->deadline);
    ml_timer_disarm(c->report);
    out_clear(c);
    memset(c->pushes, 0, sizeof(c->pushes));
    rx_release(c);
    c->counters.connected = false;
    if (was_up) {
        c->counters.disconnects++;
        /* README.md: the backoff resets only once a connection stayed up for its upper
         * bound, so a controller that accepts and drops us at once never speeds us up. */
        if (lived >= c->backoff.max_ms) {
            ml_fleet_backoff_reset(&c->backoff);
        }
    } else {
        c->counters.connect_failures++;
    }
    delay = ml_fleet_backoff_next(&c->backoff);
    c->state = ST_WAITING;
    if (was_up) {
        ML_LOG_WRN("fleet: c%u: connection to %s ended after %llu ms: %s; next attempt in %u ms",
                   c->conn_id, c->cfg.f.url, (unsigned long long)lived, why, delay);
    } else {
        ML_LOG_WRN("fleet: c%u: cannot connect to %s: %s; next attempt in %u ms", c->conn_id,
                   c->cfg.f.url, why, delay);
    }
    ml_timer_arm(c->retry, delay);
}

/* A person-readable reason for lws' CLIENT_CONNECTION_ERROR text; tls: the attempt is wss://. */
static void describe_failure(struct lws *wsi, bool tls, const char *in, size_t len, char *out,
                             size_t cap)
{
    char text[128];
    int fd = wsi != NULL ? lws_get_socket_fd(wsi) : -1, err = 0;
    socklen_t elen = sizeof(err);
    size_t n = in != NULL ? strnlen(in, len) : 0;

    while (n > 0 && (in[n - 1] == '\n' || in[n - 1] == ' ')) {
        n--;
    }
    /* lws' words, but they may quote the controller's answer: escaped for the log line */
    printable(in != NULL ? in : "", n, text, sizeof(text));
    if (fd >= 0) {
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
    }
    if (strstr(text, "didn't look good") != NULL) {
        /* lws' verdict on the chain or the name: "..., invalidca ...", "..., hostname ..." */
        snprintf(out, cap, "TLS: the controller's certificate was refused (%s)", text);
    } else if (strncmp(text, "mbedtls", 7) == 0 || strstr(text, "SSL") != NULL ||
               strstr(text, "tls") != NULL) {
        snprintf(out, cap,
                 "TLS handshake failed (%s): the controller refused our TLS (client certificate "
                 "missing or not trusted?) or its certificate is unusable",
                 text);
    } else if (tls && strcmp(text, "read failed") == 0) {
        /* With TLS 1.3 the client's side of the handshake ends before the server has checked
         * our certificate: its refusal (an alert) arrives as the first read of the upgrade's
         * answer fails. */
        snprintf(out, cap,
                 "the controller ended TLS before the WebSocket upgrade (%s): it refused our "
                 "client certificate (cert/key missing or not from its CA?) or closed",
                 text);
    } else if (strncmp(text, "HS:", 3) == 0 || strstr(text, "protocol") != NULL) {
        snprintf(out, cap, "WebSocket upgrade refused (%s)", text);
    } else if (strstr(text, "DNS") != NULL || strstr(text, "dns") != NULL) {
        snprintf(out, cap, "DNS lookup failed (%s)", text);
    } else if (strcmp(text, "Closed before conn") == 0 || strcmp(text, "Peer hung up") == 0) {
        snprintf(out, cap, "closed by the controller before the upgrade (%s)", text);
    } else if (strncmp(text, "conn fail:", 10) == 0) {
        const char *num = strstr(text, "errno ");
        int e = atoi(num != NULL ? num + 6 : text + 10);

        snprintf(out, cap, "TCP connect failed: %s (%s)", e > 0 ? strerror(e) : "?", text);
    } else if (err != 0) {
        snprintf(out, cap, "%s (%s)", strerror(err), text);
    } else {
        snprintf(out, cap, "%s", text[0] != '\0' ? text : "connection failed");
    }
}

static void on_deadline(void *user)
{
    struct ml_fleet_client *c = user;
    struct lws *wsi = c->wsi;

    if (c->state != ST_CONNECTING) {
        return;
    }
    if (wsi != NULL) {
        lws_set_opaque_user_data(wsi, NULL);
        c->wsi = NULL;
        lws_set_timeout(lws_get_network_wsi(wsi), PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
    snprintf(c->why, sizeof(c->why),
             "no %s connection after 10 s (DNS lookup, TCP connect, TLS or %s hung)", c->tp->name,
             c->tp == &ml_fleet_ws_transport ? "upgrade" : "CONNECT");
    conn_end(c, c->why);
}

static void on_report(void *user)
{
    struct ml_fleet_client *c = user;
    struct ml_fleet_report r = {.config_version = c->config_version};
    struct ml_fleet_status s;
    size_t n;
    int rv;

    if (c->state != ST_CONNECTED) {
        return;
    }
    ml_timer_arm(c->report, c->cfg.f.report_interval_ms);
    if (status_queued(c)) {
        ML_LOG_DBG("fleet: c%u: the last Status is not out yet: this one skipped", c->conn_id);
        return;
    }
    if (c->ops != NULL && c->ops->fill_report != NULL) {
        c->depth++;
        c->ops->fill_report(c->user, &r);
        if (--c->depth == 0 && c->freed) {
            ml_loop_defer(c->loop, &c->free_later, on_free_later); /* freed from fill_report */
            return;
        }
    }
    s.config_version = r.config_version != NULL ? r.config_version : c->config_version;
    s.uptime_s = r.uptime_s;
    s.calls_total = r.calls_total;
    s.calls_failed = r.calls_failed;
    s.endpoints_healthy = r.endpoints_healthy;
    s.endpoints_total = r.endpoints_total;
    if ((rv = ml_fleet_status_encode(&s, c->scratch, sizeof(c->scratch), &n)) < 0 ||
        (rv = out_push(c, n, ML_FLEET_MSG_STATUS)) < 0) {
        ML_LOG_WRN("fleet: c%u: Status not sent: %s", c->conn_id, strerror(-rv));
    }
}

/* Makes the vhost for c->cfg if there is none. 0, or -EINVAL with why. */
static int vhost_make(struct ml_fleet_client *c, char *why, size_t cap)
{
    struct lws_context_creation_info info;

    if (c->vh != NULL) {
        return 0;
    }
    memset(&info, 0, sizeof(info));
    info.vhost_name = "ml-fleet";
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = c->tp->protocols;
    /* Without this flag on the vhost itself, lws makes no client TLS context for it. */
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.timeout_secs = CONNECT_TIMEOUT_MS / 1000;
    if (c->cfg.f.url_tls) {
        info.client_ssl_ca_filepath = c->cfg.f.ca;
        info.client_ssl_cert_filepath = c->cfg.f.cert;
        info.client_ssl_private_key_filepath = c->cfg.f.key;
    }
    c->vh = lws_create_vhost(c->lws, &info);
    if (c->vh == NULL) {
        snprintf(why, cap, "cannot set up the client (TLS files ca=%s cert=%s key=%s unreadable "
                           "or not PEM?)",
                 c->cfg.f.ca ? c->cfg.f.ca : "-", c->cfg.f.cert ? c->cfg.f.cert : "-",
                 c->cfg.f.key ? c->cfg.f.key : "-");
        return -EINVAL;
    }
    return 0;
}

static void start_attempt(struct ml_fleet_client *c)
{
    struct lws_client_connect_info ci;
    char why[sizeof(c->why)];
    struct lws *wsi;

    if (c->state != ST_WAITING) {
        return;
    }
    if (c->has_next) {
        /* A changed [fleet] takes effect now, at the reconnect (README.md). */
        bool tls_same = str_eq(c->next.f.ca, c->cfg.f.ca) &&
                        str_eq(c->next.f.cert, c->cfg.f.cert) &&
                        str_eq(c->next.f.key, c->cfg.f.key) &&
                        c->next.f.url_tls == c->cfg.f.url_tls && transport_for(&c->next.f) == c->tp;

        cfg_drop(&c->cfg);
        c->cfg = c->next;
        c->tp = transport_for(&c->cfg.f); /* cfg_unusable made sure there is one */
        memset(&c->next, 0, sizeof(c->next));
        c->has_next = false;
        ml_fleet_backoff_set_bounds(&c->backoff, c->cfg.f.backoff.from_ms,
                                    c->cfg.f.backoff.to_ms);
        if (!tls_same && c->vh != NULL) {
            lws_vhost_destroy(c->vh); /* no wsi of ours on it: we are between connections */
            c->vh = NULL;
        }
        ML_LOG_INF("fleet: using the new [fleet] settings: %s", c->cfg.f.url);
    }
    c->conn_id++;
    c->counters.connect_attempts++;
    c->state = ST_CONNECTING;
    c->why[0] = '\0';
    c->peer_close[0] = '\0';
    c->said_unknown = c->said_direction = false;
    memset(c->tstate, 0, c->tstate_size);
    if (vhost_make(c, why, sizeof(why)) < 0) {
        conn_end(c, why);
        return;
    }
    memset(&ci, 0, sizeof(ci));
    ci.context = c->lws;
    ci.vhost = c->vh;
    ci.address = c->cfg.f.url_host;
    ci.port = c->cfg.f.url_port;
    ci.host = c->cfg.f.url_host; /* SNI and the name the certificate must carry */
    /* TLS: the chain must end at ca and the name must match; no ALLOW_* escape hatch. */
    ci.ssl_connection = c->cfg.f.url_tls ? LCCSCF_USE_SSL : 0;
    ci.opaque_user_data = c;
    c->tp->connect_info(c->tstate, c->id.node_id, &c->cfg.f, &ci);
    ML_LOG_DBG("fleet: c%u: connecting to %s", c->conn_id, c->cfg.f.url);
    c->connect_failed = false;
    c->in_connect = true;
    wsi = lws_client_connect_via_info(&ci);
    c->in_connect = false;
    if (wsi == NULL || c->connect_failed) {
        /* Failed inside the call (lws may have called back already; that wsi is detached). */
        c->wsi = NULL;
        if (c->why[0] == '\0') {
            /* lws says nothing when its async resolver fails at once (no nameserver reachable,
             * bad name) or it is out of memory. */
            snprintf(c->why, sizeof(c->why),
                     "could not start the connection (DNS lookup of %s failed at once?)",
                     c->cfg.f.url_host);
        }
        conn_end(c, c->why);
        return;
    }
    if (c->state == ST_CONNECTING) {
        c->wsi = wsi;
        ml_timer_arm(c->deadline, CONNECT_TIMEOUT_MS);
    }
}

static void established(struct ml_fleet_client *c, struct lws *wsi)
{
    size_t n;
    int rv;

    c->wsi = wsi;
    c->state = ST_CONNECTED;
    c->up_since_ms = ml_time_now_ms();
    ml_timer_disarm(c->deadline);
    c->counters.connects++;
    c->counters.connected = true;
    ML_LOG_INF("fleet: c%u: connected to %s", c->conn_id, c->cfg.f.url);
    if ((rv = encode_hello(c, &n)) < 0 || (rv = out_push(c, n, ML_FLEET_MSG_HELLO)) < 0) {
        ML_LOG_ERR("fleet: c%u: cannot send the Hello: %s", c->conn_id, strerror(-rv));
    }
    ml_timer_arm(c->report, c->cfg.f.report_interval_ms);
}

/* ---- receiving ---------------------------------------------------------------------------- */

static void rx_release(struct ml_fleet_client *c)
{
    ml_free(c->rx);
    c->rx = NULL;
    c->rx_len = c->rx_cap = 0;
}

/* Room for n more bytes in c->rx (rx_len + n <= ML_FLEET_MAX_MESSAGE_BYTES, checked by the
 * caller). 0 or -ENOMEM (c->rx unchanged). */
static int rx_reserve(struct ml_fleet_client *c, size_t n)
{
    size_t need = c->rx_len + n, cap = c->rx_cap > 0 ? c->rx_cap : RX_INITIAL_BYTES;
    uint8_t *p;

    if (need <= c->rx_cap) {
        return 0;
    }
    while (cap < need) {
        cap *= 2;
    }
    if (cap > ML_FLEET_MAX_MESSAGE_BYTES) {
        cap = ML_FLEET_MAX_MESSAGE_BYTES;
    }
    if ((p = ml_realloc(c->rx, cap)) == NULL) {
        return -ENOMEM;
    }
    c->rx = p;
    c->rx_cap = cap;
    return 0;
}

/* Ends the current connection from inside its CLIENT_RECEIVE (see the top of this file for why
 * not by returning -1): wsi no longer reaches c, lws reads no more of it and kills it from its
 * next service, without a close frame. The callback returns 0 afterwards. */
static int drop_connection(struct ml_fleet_client *c, struct lws *wsi, const char *why)
{
    if (wsi != NULL) { /* NULL only under ml_fleet_client_feed */
        lws_rx_flow_control(wsi, 0);
        lws_set_timeout(lws_get_network_wsi(wsi), PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
    conn_end(c, why);
    return 0;
}

/* A protocol error (the caller has logged it): counted; the connection dropped when the peer
 * itself sent it (transport.h, bad_message_fatal), else only the message is (the rest of its
 * pieces skipped). */
static int protocol_error(struct ml_fleet_client *c, struct lws *wsi, const char *why)
{
    c->counters.protocol_errors++;
    if (!c->tp->bad_message_fatal) {
        c->rx_skip = true;
        c->rx_len = 0;
        return 0;
    }
    return drop_connection(c, wsi, why);
}

/* What the log says happens after a protocol error. */
static const char *after_error(const struct ml_fleet_client *c)
{
    return c->tp->bad_message_fatal ? "closing" : "ignored (the config stays)";
}

static void remember_push(struct ml_fleet_client *c, const meshlet_fleet_v1_Push *p)
{
    struct pending_push *slot = NULL;

    for (unsigned i = 0; i < PUSHES_MAX && slot == NULL; i++) {
        if (!c->pushes[i].used) {
            slot = &c->pushes[i];
        }
    }
    if (slot == NULL) {
        /* The node sits on PUSHES_MAX answers: the oldest slot's answer will be dropped. */
        slot = &c->pushes[c->push_next];
        c->push_next = (c->push_next + 1) % PUSHES_MAX;
    }
    slot->used = true;
    slot->conn_id = c->conn_id;
    slot->nonce = p->nonce;
    snprintf(slot->version, sizeof(slot->version), "%s", p->version);
}

/* A Push whose version is not one (fleet/token.h): nacked here, before the node sees it, so
 * nothing is applied, and its bytes reach no log line, file or header unescaped. The Nack
 * echoes the printable form (the controller matches answers by nonce). */
static void refuse_push(struct ml_fleet_client *c, const meshlet_fleet_v1_Push *p, size_t vlen)
{
    char shown[ML_FLEET_VERSION_MAX + 1], error[sizeof(shown) + 128];
    size_t n;
    int rv;

    printable(p->version, vlen, shown, sizeof(shown));
    snprintf(error, sizeof(error), "push: version: expected 1..%d characters from %s, got \"%s\"",
             ML_FLEET_VERSION_CHARS_MAX, ML_FLEET_TOKEN_CHARSET, shown);
    ML_LOG_WRN("fleet: c%u: push (nonce %llu) nacked, nothing applied: %s", c->conn_id,
               (unsigned long long)p->nonce, error);
    if ((rv = ml_fleet_nack_encode(shown, p->nonce, error, strlen(error), c->scratch,
                                   sizeof(c->scratch), &n)) < 0 ||
        (rv = out_push(c, n, ML_FLEET_MSG_ANSWER)) < 0) {
        ML_LOG_WRN("fleet: c%u: nack (nonce %llu) not sent: %s", c->conn_id,
                   (unsigned long long)p->nonce, strerror(-rv));
        return;
    }
    c->counters.nacks++;
    if (c->ops != NULL && c->ops->on_push_refused != NULL) {
        c->ops->on_push_refused(c->user, shown, p->nonce, error);
    }
}

/* A whole message in c->rx. 0 (a bad one has dropped the connection: never -1, see the top). */
static int on_message(struct ml_fleet_client *c, struct lws *wsi)
{
    const meshlet_fleet_v1_Push *p;
    char why[96];
    size_t vlen;
    int rv = ml_fleet_envelope_decode(c->rx, c->rx_len, &c->env);

    if (rv == ML_FLEET_UNKNOWN_KIND) {
        c->counters.unknown_kinds++;
        if (!c->said_unknown) {
            ML_LOG_INF("fleet: c%u: envelope of a kind this node does not know (%zu bytes): "
                       "ignored (newer controller?)",
                       c->conn_id, c->rx_len);
            c->said_unknown = true;
        } else {
            ML_LOG_DBG("fleet: c%u: unknown envelope kind ignored", c->conn_id);
        }
        return 0;
    }
    if (rv < 0) {
        snprintf(why, sizeof(why), "undecodable envelope of %zu bytes from the controller",
                 c->rx_len);
        ML_LOG_WRN("fleet: c%u: %s: %s", c->conn_id, why, after_error(c));
        return protocol_error(c, wsi, why);
    }
    if (c->env.which_msg != meshlet_fleet_v1_Envelope_push_tag) {
        /* Hello, Status, Ack and Nack go node → controller. One coming back is the controller's
         * bug, not something a newer protocol does: counted as a protocol error so that it is
         * seen, but the connection stays (closing would only bring the same controller back). */
        c->counters.protocol_errors++;
        if (!c->said_direction) {
            ML_LOG_WRN("fleet: c%u: the controller sent a node's message (kind %u): ignored",
                       c->conn_id, (unsigned)c->env.which_msg);
            c->said_direction = true;
        }
        return 0;
    }
    p = &c->env.msg.push;
    c->counters.pushes++;
    vlen = field_len(p->version, sizeof(p->version));
    if (!ml_fleet_token_valid(p->version, vlen, ML_FLEET_VERSION_CHARS_MAX)) {
        refuse_push(c, p, vlen);
        return 0;
    }
    ML_LOG_INF("fleet: c%u: push of version %s (nonce %llu, %zu bytes of INI)", c->conn_id,
               p->version, (unsigned long long)p->nonce, p->ini.n);
    remember_push(c, p);
    if (c->ops != NULL && c->ops->on_push != NULL) {
        c->ops->on_push(c->user, p->version, p->nonce, (const char *)p->ini.p, p->ini.n);
    }
    return 0;
}

/* What lws says about a received piece (lws_is_first_fragment and friends). */
struct rx_flags {
    bool first, final, binary;
};

/* One piece of a message (lws hands them over in chunks of at most rx_buffer_size). 0: lws
 * goes on; a bad message drops the connection, never -1 (see the top of this file). */
static int on_receive(struct ml_fleet_client *c, struct lws *wsi, const void *in, size_t len,
                      struct rx_flags f)
{
    char why[96];
    int rv;

    if (f.first) {
        c->rx_len = 0;
        c->rx_skip = false;
    }
    if (c->rx_skip) {
        return 0; /* a piece of a message already refused (not fatal on this transport) */
    }
    if (!f.binary) {
        ML_LOG_WRN("fleet: c%u: text frame from the controller (fleet messages are binary): "
                   "closing",
                   c->conn_id);
        return protocol_error(c, wsi, "text frame");
    }
    if (len > ML_FLEET_MAX_MESSAGE_BYTES - c->rx_len) {
        snprintf(why, sizeof(why), "message over %d bytes (CONFIG_ML_FLEET_MAX_MESSAGE_BYTES)",
                 ML_FLEET_MAX_MESSAGE_BYTES);
        ML_LOG_WRN("fleet: c%u: %s: %s", c->conn_id, why, after_error(c));
        return protocol_error(c, wsi, why);
    }
    if ((rv = rx_reserve(c, len)) < 0) {
        snprintf(why, sizeof(why), "no memory for a message of over %zu bytes", c->rx_len + len);
        ML_LOG_WRN("fleet: c%u: %s: closing", c->conn_id, why);
        return drop_connection(c, wsi, why);
    }
    if (len > 0) {
        memcpy(c->rx + c->rx_len, in, len);
        c->rx_len += len;
    }
    if (!f.final) {
        return 0;
    }
    rv = on_message(c, wsi);
    /* on_push has returned: nothing borrows c->rx any more. A client freed from on_push is
     * still whole here (its free waits for the end of this callback). */
    if (c->rx_cap > RX_KEEP_BYTES) {
        rx_release(c);
    }
    return rv;
}

/* ---- the lws callback --------------------------------------------------------------------- */

static void finish_free(struct ml_fleet_client *c);

static void on_free_later(struct ml_defer *d)
{
    finish_free(ML_CONTAINER_OF(d, struct ml_fleet_client, free_later));
}

/* ---- what the transports' callbacks call (transport.h) ------------------------------------ */

struct ml_fleet_client *ml_fleet_conn_enter(struct lws *wsi)
{
    struct ml_fleet_client *c = wsi != NULL ? lws_get_opaque_user_data(wsi) : NULL;

    if (c == NULL) {
        return NULL; /* not ours any more (see the top of this file), or a vhost-level event */
    }
    if (!c->in_connect && wsi != c->wsi) {
        if (c->wsi != NULL && lws_get_network_wsi(wsi) == c->wsi) {
            c->wsi = wsi; /* lws' MQTT client moved our connection onto its first stream */
        } else {
            lws_set_opaque_user_data(wsi, NULL); /* a stale connection: cut it loose */
            return NULL;
        }
    }
    c->depth++;
    return c;
}

int ml_fleet_conn_leave(struct ml_fleet_client *c, int rv)
{
    if (--c->depth == 0 && c->freed) {
        /* ml_fleet_client_free ran from on_push: finish once this callback is off the stack. */
        ml_loop_defer(c->loop, &c->free_later, on_free_later);
        return -1;
    }
    return rv;
}

void *ml_fleet_conn_state(struct ml_fleet_client *c)
{
    return c->tstate;
}

bool ml_fleet_conn_tls(const struct ml_fleet_client *c)
{
    return c->cfg.f.url_tls;
}

const char *ml_fleet_conn_node_id(const struct ml_fleet_client *c)
{
    return c->id.node_id;
}

void ml_fleet_conn_failed(struct ml_fleet_client *c, struct lws *wsi, const char *in, size_t len)
{
    describe_failure(wsi, c->cfg.f.url_tls, in, len, c->why, sizeof(c->why));
    lws_set_opaque_user_data(wsi, NULL);
    if (c->in_connect) {
        c->connect_failed = true; /* start_attempt handles it once lws returns */
    } else {
        c->wsi = NULL;
        conn_end(c, c->why);
    }
}

void ml_fleet_conn_established(struct ml_fleet_client *c, struct lws *wsi)
{
    established(c, wsi);
}

int ml_fleet_conn_receive(struct ml_fleet_client *c, struct lws *wsi, const void *in, size_t len,
                          bool first, bool final, bool binary)
{
    if (c->state != ST_CONNECTED) {
        return 0;
    }
    return on_receive(c, wsi, in, len,
                      (struct rx_flags){.first = first, .final = final, .binary = binary});
}

void ml_fleet_conn_refused(struct ml_fleet_client *c, struct lws *wsi, const char *why)
{
    ML_LOG_WRN("fleet: c%u: %s: %s", c->conn_id, why, after_error(c));
    protocol_error(c, wsi, why);
}

int ml_fleet_conn_writeable(struct ml_fleet_client *c, struct lws *wsi)
{
    if (c->state == ST_CONNECTED && out_send_one(c, wsi) < 0) {
        conn_end(c, c->why);
        return -1;
    }
    return 0;
}

void ml_fleet_conn_release(struct ml_fleet_client *c, struct lws *wsi, bool delivered)
{
    if (c->state != ST_CONNECTED || !c->out_held) {
        return;
    }
    c->out_held = false;
    if (delivered && c->out_n > 0) {
        out_pop(c);
    }
    if (c->out_n > 0) {
        lws_callback_on_writable(wsi);
    }
}

void ml_fleet_conn_peer_said(struct ml_fleet_client *c, const char *words)
{
    snprintf(c->peer_close, sizeof(c->peer_close), "%s", words);
}

void ml_fleet_conn_closed(struct ml_fleet_client *c, const char *why)
{
    conn_end(c, c->peer_close[0] != '\0' ? c->peer_close : why);
}

void ml_fleet_conn_destroyed(struct ml_fleet_client *c, struct lws *wsi)
{
    /* lws ended it without telling us how: still an end. */
    if (c->in_connect) {
        lws_set_opaque_user_data(wsi, NULL);
        c->connect_failed = true;
    } else {
        conn_end(c, c->state == ST_CONNECTED ? "connection lost" : "connection failed");
    }
}

/* ---- the API ------------------------------------------------------------------------------ */

int ml_fleet_client_new(struct ml_loop *loop, const struct ml_cfg_fleet *cfg,
                        const struct ml_fleet_identity *id, const char *config_version,
                        const struct ml_fleet_client_ops *ops, void *user, char *why, size_t cap,
                        struct ml_fleet_client **out)
{
    struct ml_fleet_client *c;
    const char *bad;
    uint64_t seed = 0;
    size_t n;
    int rv;

    *out = NULL;
    if ((bad = cfg_unusable(cfg)) != NULL) {
        snprintf(why, cap, "fleet: %s", bad);
        return -EINVAL;
    }
    if (id->node_id == NULL || !ml_fleet_node_id_valid(id->node_id, strlen(id->node_id))) {
        /* config/validate_node.c refuses such an id first; this keeps the Hello clean regardless. */
        snprintf(why, cap, "fleet: the node id is not %s", ML_FLEET_NODE_ID_RULE);
        return -EINVAL;
    }
    if ((c = ml_calloc(1, sizeof(*c))) == NULL) {
        rv = -ENOMEM;
        goto fail;
    }
    c->loop = loop;
    c->lws = ml_loop_lws_context(loop);
    c->tp = transport_for(cfg);
    for (size_t i = 0; i < sizeof(transports) / sizeof(transports[0]); i++) {
        /* the largest: a changed [fleet] may switch transports at a reconnect */
        if (transports[i]->state_size > c->tstate_size) {
            c->tstate_size = transports[i]->state_size;
        }
    }
    if ((c->tstate = ml_calloc(1, c->tstate_size > 0 ? c->tstate_size : 1)) == NULL) {
        rv = -ENOMEM;
        goto fail_c;
    }
    c->ops = ops;
    c->user = user;
    set_config_version(c, config_version);
    if ((rv = cfg_copy(&c->cfg, cfg)) < 0) {
        goto fail_c;
    }
    if ((rv = identity_copy(c, id)) < 0) {
        goto fail_cfg;
    }
    if ((rv = encode_hello(c, &n)) < 0) {
        snprintf(why, cap, "fleet: the Hello does not fit its bounds (node id, board or version "
                           "over 128 bytes, or over 16 features of 31 bytes)");
        rv = -EINVAL;
        goto fail_id;
    }
    if ((c->retry = ml_timer_new(loop, on_retry, c)) == NULL ||
        (c->deadline = ml_timer_new(loop, on_deadline, c)) == NULL ||
        (c->report = ml_timer_new(loop, on_report, c)) == NULL) {
        rv = -ENOMEM;
        goto fail_timers;
    }
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
        seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32); /* only spreads a fleet */
    }
    ml_fleet_backoff_init(&c->backoff, cfg->backoff.from_ms, cfg->backoff.to_ms, seed);
    if (!cfg->url_tls) {
        ML_LOG_WRN("fleet: INSECURE: %s is plain %s (insecure = on): the controller is not "
                   "authenticated and configurations travel unencrypted; for tests only",
                   cfg->url, c->tp->scheme);
    }
    c->state = ST_WAITING;
    ml_timer_arm(c->retry, 0); /* the first attempt at once, from the loop */
    ML_LOG_INF("fleet: controller %s, node %s, backoff %u..%u ms, report every %u ms", cfg->url,
               c->id.node_id ? c->id.node_id : "", cfg->backoff.from_ms, cfg->backoff.to_ms,
               cfg->report_interval_ms);
    if (c->tp->started != NULL) {
        c->tp->started(c->id.node_id ? c->id.node_id : "", &c->cfg.f);
    }
    *out = c;
    return 0;

fail_timers:
    ml_timer_free(c->report);
    ml_timer_free(c->deadline);
    ml_timer_free(c->retry);
fail_id:
    ml_free(c->id_mem);
fail_cfg:
    cfg_drop(&c->cfg);
fail_c:
    ml_free(c->tstate);
    ml_free(c);
fail:
    if (rv == -ENOMEM) {
        snprintf(why, cap, "fleet: out of memory");
    }
    return rv;
}

static void finish_free(struct ml_fleet_client *c)
{
    if (c->vh != NULL) {
        /* Closes what is still bound to it; those wsis no longer point at c. */
        lws_vhost_destroy(c->vh);
    }
    out_clear(c);
    rx_release(c);
    ml_free(c->id_mem);
    cfg_drop(&c->next);
    cfg_drop(&c->cfg);
    ml_free(c->tstate);
    ml_free(c);
}

void ml_fleet_client_free(struct ml_fleet_client *c)
{
    if (c == NULL || c->freed) {
        return;
    }
    ml_timer_free(c->retry);
    ml_timer_free(c->deadline);
    ml_timer_free(c->report);
    c->retry = c->deadline = c->report = NULL;
    if (c->wsi != NULL) {
        struct lws *wsi = c->wsi;

        /* Closed by lws_vhost_destroy (finish_free), or by lws once our callback returns -1. */
        lws_set_opaque_user_data(wsi, NULL);
        c->wsi = NULL;
        if (c->state == ST_CONNECTED && c->depth == 0 && c->tp->goodbye != NULL) {
            /* A clean stop says so (MQTT: this node goes offline at once, not when the broker
             * notices); what lws calls back meanwhile no longer reaches c. Not from inside one
             * of our callbacks: lws is in the middle of that wsi. */
            c->tp->goodbye(c->tstate, wsi);
        }
    }
    c->counters.connected = false;
    if (c->depth > 0) {
        /* Inside our own callback (on_push): lws must not see the vhost destroyed under the
         * wsi it is serving; ml_fleet_conn_leave returns -1 and defers the rest. */
        c->freed = true;
        return;
    }
    finish_free(c);
}

void ml_fleet_client_update(struct ml_fleet_client *c, const struct ml_cfg_fleet *cfg,
                            const char *config_version)
{
    const char *bad;
    struct cfg_copy copy;

    if (c == NULL) {
        return;
    }
    set_config_version(c, config_version);
    if (cfg == NULL) {
        return;
    }
    if ((bad = cfg_unusable(cfg)) != NULL) {
        ML_LOG_WRN("fleet: new [fleet] not used (%s): keeping %s", bad, c->cfg.f.url);
        return;
    }
    if (cfg_same(cfg, c->has_next ? &c->next.f : &c->cfg.f)) {
        return;
    }
    if (cfg_copy(&copy, cfg) < 0) {
        ML_LOG_WRN("fleet: out of memory: new [fleet] not used, keeping %s", c->cfg.f.url);
        return;
    }
    cfg_drop(&c->next);
    c->next = copy;
    c->has_next = true;
    if (!cfg->url_tls) {
        ML_LOG_WRN("fleet: INSECURE: %s is plain %s (insecure = on); for tests only", cfg->url,
                   transport_for(cfg)->scheme);
    }
    ML_LOG_INF("fleet: [fleet] changed: %s is used from the next reconnect on", cfg->url);
}

/* Finds and takes the unanswered push (version, nonce) of the current connection. */
static bool take_push(struct ml_fleet_client *c, const char *version, uint64_t nonce)
{
    for (unsigned i = 0; i < PUSHES_MAX; i++) {
        struct pending_push *p = &c->pushes[i];

        if (p->used && p->nonce == nonce && p->conn_id == c->conn_id &&
            strcmp(p->version, version != NULL ? version : "") == 0) {
            p->used = false;
            return true;
        }
    }
    return false;
}

static int answer(struct ml_fleet_client *c, bool ack, const char *version, uint64_t nonce,
                  const char *error, size_t n, bool transient)
{
    size_t len;
    int rv;

    if (c->state != ST_CONNECTED || c->freed || !take_push(c, version, nonce)) {
        ML_LOG_INF("fleet: %s of version %s (nonce %llu) dropped: the connection that brought "
                   "the push is gone (the next Hello says what runs)",
                   ack ? "ack" : "nack", version != NULL ? version : "",
                   (unsigned long long)nonce);
        return -ENOTCONN;
    }
    rv = ack ? ml_fleet_ack_encode(version, nonce, c->scratch, sizeof(c->scratch), &len)
             : ml_fleet_nack_encode_transient(version, nonce, error != NULL ? error : "",
                                              error ? n : 0, transient, c->scratch,
                                              sizeof(c->scratch), &len);
    if (rv == 0) {
        rv = out_push(c, len, ML_FLEET_MSG_ANSWER);
    }
    if (rv < 0) {
        ML_LOG_WRN("fleet: c%u: %s of version %s (nonce %llu) not sent: %s", c->conn_id,
                   ack ? "ack" : "nack", version, (unsigned long long)nonce, strerror(-rv));
        return rv;
    }
    if (ack) {
        c->counters.acks++;
    } else {
        c->counters.nacks++;
    }
    return 0;
}

int ml_fleet_client_ack(struct ml_fleet_client *c, const char *version, uint64_t nonce)
{
    return answer(c, true, version, nonce, NULL, 0, false);
}

int ml_fleet_client_nack(struct ml_fleet_client *c, const char *version, uint64_t nonce,
                         const char *error, size_t n)
{
    return answer(c, false, version, nonce, error, n, false);
}

int ml_fleet_client_nack_transient(struct ml_fleet_client *c, const char *version, uint64_t nonce,
                                   const char *error, size_t n)
{
    return answer(c, false, version, nonce, error, n, true);
}

const struct ml_fleet_client_counters *ml_fleet_client_counters(const struct ml_fleet_client *c)
{
    return &c->counters;
}

/* ---- test hook (client_int.h) ------------------------------------------------------------- */

/* What an attempt and a completed connection do (transport state made, Hello queued, report
 * timer armed), with no socket. */
static void fake_connect(struct ml_fleet_client *c)
{
    struct lws_client_connect_info ci;

    if (c->state == ST_CONNECTED) {
        return;
    }
    ml_timer_disarm(c->retry);
    c->conn_id++;
    c->said_unknown = c->said_direction = false;
    memset(c->tstate, 0, c->tstate_size);
    memset(&ci, 0, sizeof(ci));
    c->tp->connect_info(c->tstate, c->id.node_id, &c->cfg.f, &ci);
    established(c, NULL);
}

int ml_fleet_client_feed_mqtt(struct ml_fleet_client *c, const char *topic, uint32_t total,
                              uint32_t pos, const void *in, size_t len)
{
#if ML_HAVE_FLEET_MQTT
    if (c->tp != &ml_fleet_mqtt_transport) {
        return -EINVAL;
    }
    if (c->freed) {
        return -ECONNRESET;
    }
    fake_connect(c);
    c->depth++;
    ml_fleet_mqtt_rx(c, NULL, topic, topic != NULL ? strlen(topic) : 0, total, pos, in, len);
    if (--c->depth == 0 && c->freed) {
        finish_free(c); /* freed from on_push: no lws callback to wait for here */
        return -ECONNRESET;
    }
    return c->state == ST_CONNECTED ? 0 : -ECONNRESET;
#else
    (void)c, (void)topic, (void)total, (void)pos, (void)in, (void)len;
    return -ENOTSUP;
#endif
}

int ml_fleet_client_feed(struct ml_fleet_client *c, const void *in, size_t len, bool first,
                         bool final, bool binary)
{
    if (c->freed) {
        return -ECONNRESET;
    }
    fake_connect(c);
    c->depth++;
    on_receive(c, NULL, in, len,
               (struct rx_flags){.first = first, .final = final, .binary = binary});
    if (--c->depth == 0 && c->freed) {
        finish_free(c); /* freed from on_push: no lws callback to wait for here */
        return -ECONNRESET;
    }
    return c->state == ST_CONNECTED ? 0 : -ECONNRESET;
}
