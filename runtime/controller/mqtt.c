/* `meshlet controller --mqtt URL`: the fleet through an MQTT broker instead of WebSockets
 * (runtime/fleet/README.md, "The fleet over MQTT"). One MQTT 3.1.1 client connection (the lws
 * MQTT client role) subscribes to every node's hello, answer and status topics; a node is
 * "connected" while its retained Hello exists (an empty retained Hello, the node's Will or its
 * clean stop, makes it OFFLINE), and a push is a retained QoS 1 PUBLISH on the node's push topic.
 * nodes.c and rollout.c see each node as a struct ml_ctl_conn, as over WebSockets.
 *
 * What lws 4.3.5's MQTT client allows, and what this file does about it:
 * - one QoS 1 PUBLISH in flight per client: a second one before the PUBACK of the first
 *   overwrites the packet id lws waits for, and the PUBACK of the first then closes the
 *   connection ("unsolicited PUBACK"). Pushes are queued and sent one at a time (push_next);
 * - a PUBLISH payload is written at most one chunk per call (the first must fit the service
 *   buffer): a push goes out in PUSH_CHUNK_BYTES pieces, one per WRITEABLE callback;
 * - it acknowledges only the last of several QoS 1 PUBLISHes it parsed from one read (one
 *   send_puback flag, one peer packet id): a broker then keeps the others in flight and stops
 *   delivering once its window (mosquitto: max_inflight_messages, 20) is full (tried: with QoS 1
 *   subscriptions and 1000 nodes, the controller received 13 Acks in 60 s). The controller
 *   therefore subscribes at QoS 0: nodes still publish at QoS 1 to the broker; the broker's one
 *   TCP stream to the controller needs no acknowledgement, and what a lost connection loses is
 *   read again from the retained Hellos after the reconnect (a node that acked while the
 *   controller was away gets its push again and acks it without applying it twice);
 * - the retained flag of a received PUBLISH is not reported: an empty Hello means gone, any
 *   other Hello means here, retained or live alike.
 *
 * Who owns what: struct ml_ctl_mqtt (ctl->mqtt) owns the vhost, the retry timers, the peers and
 * their queued pushes; lws owns the connection. A peer and its node point at each other while
 * the node's Hello stands; peer_drop() breaks the link. */
#include "controller/controller_int.h"

#include "core/alloc.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/timer.h"
#include "fleet/backoff.h"

#include <errno.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOPIC_PREFIX "meshlet/v1/node/"
/* The longest topic: the prefix, a node id, "/answer". */
#define TOPIC_MAX (sizeof(TOPIC_PREFIX) + ML_CTL_TEXT_MAX + sizeof("/answer"))
/* MQTT keepalive the broker enforces (it drops a client silent 1.5 times this long); lws sends
 * PINGREQ after PING_AFTER_S idle and gives up on a connection silent HANGUP_AFTER_S. */
#define KEEPALIVE_S 30
#define PING_AFTER_S 20
#define HANGUP_AFTER_S 40
/* Reconnect delays after the broker went away or refused us (fleet/backoff.h: full jitter). */
#define RETRY_MIN_MS 500u
#define RETRY_MAX_MS 30000u
/* A connection attempt that has not reached SUBACK in this long is abandoned and retried. Short:
 * lws 4.3.5 stalls an MQTT-over-TLS connection whose TLS handshake completes inside
 * lws_client_connect_via_info (connect4.c then sets the HTTP client state
 * LRS_H1C_ISSUE_HANDSHAKE2, which the MQTT role has no case for, so CONNECT is never sent); on
 * loopback that is about one attempt in three. The next attempt almost always goes through. */
#define CONNECT_TIMEOUT_MS 3000u
/* After (re)subscribing, the broker sends every retained Hello at once; a node the controller
 * thought connected whose Hello has not come again within this long has gone while the
 * controller was away (its retained Hello was deleted): it is marked disconnected. */
#define RETAINED_GRACE_MS 3000u
/* Bytes of a push written per WRITEABLE callback: well under the loop's service buffer
 * (core/loop.c pt_serv_buf_size, 32 KiB), which lws's first chunk, with the topic, must fit. */
#define PUSH_CHUNK_BYTES 16384u
#define DEFAULT_PORT_TLS 8883
#define DEFAULT_PORT_PLAIN 1883
#define HOST_MAX 256

enum mqtt_state {
    ST_WAITING,    /* the retry timer starts the next attempt */
    ST_CONNECTING, /* lws is connecting; no CONNACK yet */
    ST_SUBSCRIBING,
    ST_READY, /* subscribed: pushes go out */
};

struct peer {
    struct ml_ctl_conn c; /* first: nodes.c's view of it */
    struct ml_ctl_mqtt *m;
    char id[ML_CTL_TEXT_MAX + 1];
    uint8_t *tx; /* the push waiting to be sent (ml_ctl_msg_push's, envelope at tx + pre) */
    size_t tx_n;
    bool queued;       /* in the send queue */
    bool seen;         /* its Hello came again since the last (re)subscribe */
    struct peer *next; /* send queue */
};

struct ml_ctl_mqtt {
    struct ml_ctl *ctl;
    struct lws_vhost *vh;
    struct lws *wsi; /* the MQTT client's wsi once established; NULL otherwise */
    struct lws *net; /* the network connection of the attempt under way; NULL: none */
    enum mqtt_state state;
    bool stopping;
    bool in_connect, connect_failed;
    struct ml_timer *retry, *grace, *watchdog;
    struct ml_fleet_backoff backoff;
    char host[HOST_MAX];
    uint16_t port;
    bool tls;
    char client_id[ML_CTL_TEXT_MAX + 1];
    lws_mqtt_client_connect_param_t cp;
    lws_mqtt_topic_elem_t topics[3];
    lws_mqtt_subscribe_param_t sub;
    struct peer *peers[ML_CTL_MAX_NODES];
    size_t n_peers;
    struct peer *q_head, *q_tail; /* pushes waiting */
    /* The push being sent: its bytes (taken from its peer), how far, and whether it waits for
     * its PUBACK. */
    uint8_t *cur;
    size_t cur_n, cur_pos;
    bool cur_unacked;
    char cur_topic[TOPIC_MAX];
    lws_mqtt_publish_param_t pub;
    char cur_id[ML_CTL_TEXT_MAX + 1];
    /* The PUBLISH being received (one at a time on one connection). */
    uint8_t rx[ML_CTL_MAX_NODE_MESSAGE_BYTES];
    size_t rx_n;
    bool rx_drop;
    unsigned conns; /* connections made, for log lines */
};

static struct peer *peer_find(struct ml_ctl_mqtt *m, const char *id)
{
    for (size_t i = 0; i < m->n_peers; i++) {
        if (strcmp(m->peers[i]->id, id) == 0) {
            return m->peers[i];
        }
    }
    return NULL;
}

static void queue_remove(struct ml_ctl_mqtt *m, struct peer *p)
{
    struct peer **pp = &m->q_head;

    m->q_tail = NULL;
    while (*pp != NULL) {
        if (*pp == p) {
            *pp = p->next;
            continue;
        }
        m->q_tail = *pp;
        pp = &(*pp)->next;
    }
    p->queued = false;
    p->next = NULL;
}

static void queue_add(struct ml_ctl_mqtt *m, struct peer *p)
{
    if (p->queued) {
        return;
    }
    p->queued = true;
    p->next = NULL;
    if (m->q_tail != NULL) {
        m->q_tail->next = p;
    } else {
        m->q_head = p;
    }
    m->q_tail = p;
}

/* The node behind p is gone (empty Hello, not seen again after a reconnect): unlinked, freed. */
static void peer_drop(struct ml_ctl_mqtt *m, size_t i)
{
    struct peer *p = m->peers[i];

    if (p->c.node != NULL && p->c.node->conn == &p->c) {
        ml_ctl_on_gone(m->ctl, p->c.node);
    }
    queue_remove(m, p);
    ml_free(p->tx);
    ml_free(p);
    m->peers[i] = m->peers[--m->n_peers];
}

static void kick(struct ml_ctl_mqtt *m)
{
    if (m->state == ST_READY && m->wsi != NULL) {
        lws_callback_on_writable(m->wsi);
    }
}

static void send_take(struct ml_ctl_conn *c, uint8_t *buf, size_t n)
{
    struct peer *p = (struct peer *)c;

    ml_free(p->tx);
    p->tx = buf;
    p->tx_n = n;
    queue_add(p->m, p);
    kick(p->m);
}

/* pre 0: lws copies a push's pieces into a buffer of its own (on_writeable). */
static const struct ml_ctl_conn_ops peer_ops = {
    .pre = 0,
    .send_take = send_take,
};

/* ---- receiving ---------------------------------------------------------------------------- */

enum topic_kind { T_NONE, T_HELLO, T_ANSWER, T_STATUS };

/* "meshlet/v1/node/<id>/<kind>" → id[cap], kind; T_NONE when it is not one of ours. */
static enum topic_kind topic_parse(const char *topic, size_t n, char *id, size_t cap)
{
    static const struct {
        const char *suffix;
        enum topic_kind kind;
    } kinds[] = {{"/hello", T_HELLO}, {"/answer", T_ANSWER}, {"/status", T_STATUS}};
    size_t pre = sizeof(TOPIC_PREFIX) - 1;

    if (n <= pre || memcmp(topic, TOPIC_PREFIX, pre) != 0) {
        return T_NONE;
    }
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        size_t s = strlen(kinds[k].suffix);

        if (n > pre + s && memcmp(topic + n - s, kinds[k].suffix, s) == 0 && n - pre - s < cap) {
            memcpy(id, topic + pre, n - pre - s);
            id[n - pre - s] = '\0';
            return memchr(id, '/', n - pre - s) == NULL ? kinds[k].kind : T_NONE;
        }
    }
    return T_NONE;
}

static void on_hello(struct ml_ctl_mqtt *m, const char *id, const struct ml_ctl_msg *msg)
{
    struct ml_ctl *ctl = m->ctl;
    struct peer *p = peer_find(m, id);
    char why[512];

    if (strcmp(msg->hello.node_id, id) != 0) {
        /* The broker's ACL lets a node write only its own topics: the topic is its identity. */
        ctl->counters.hello_refused_identity++;
        ML_LOG_WRN("mqtt: a Hello on node %s's topic names another node: ignored", id);
        return;
    }
    for (size_t i = 0; i < msg->hello.n_labels; i++) {
        if (!ml_ctl_label_safe(msg->hello.labels[i])) {
            char shown[ML_CTL_LABEL_MAX * 4 + 4];

            ml_ctl_text_printable(msg->hello.labels[i], ML_CTL_LABEL_MAX, shown, sizeof(shown));
            ML_LOG_WRN("mqtt: node %s: label \"%s\" refused: expected KEY=VALUE, each 1 to %d "
                       "of [A-Za-z0-9._-]: Hello ignored",
                       id, shown, ML_CTL_LABEL_PART_MAX);
            return;
        }
    }
    if (p == NULL) {
        if (m->n_peers == ML_CTL_MAX_NODES || (p = ml_calloc(1, sizeof(*p))) == NULL) {
            ctl->counters.hello_refused_table_full++;
            ML_LOG_WRN("mqtt: node %s: Hello ignored: %d nodes known (ML_CTL_MAX_NODES)", id,
                       ML_CTL_MAX_NODES);
            return;
        }
        p->c.ops = &peer_ops;
        p->m = m;
        p->c.id = ++ctl->next_conn_id;
        snprintf(p->id, sizeof(p->id), "%s", id);
        m->peers[m->n_peers++] = p;
    }
    p->seen = true;
    if (ml_ctl_on_hello(ctl, &p->c, msg, why, sizeof(why)) < 0) {
        ML_LOG_WRN("mqtt: node %s: Hello refused: %s", id, why);
        for (size_t i = 0; i < m->n_peers; i++) {
            if (m->peers[i] == p) {
                peer_drop(m, i);
                break;
            }
        }
        return;
    }
    kick(m);
}

static void on_gone(struct ml_ctl_mqtt *m, const char *id)
{
    for (size_t i = 0; i < m->n_peers; i++) {
        if (strcmp(m->peers[i]->id, id) == 0) {
            ML_LOG_INF("mqtt: node %s: its Hello was cleared (stopped, or its Will)", id);
            peer_drop(m, i);
            return;
        }
    }
}

/* One whole PUBLISH on one of our topics. */
static void on_publish(struct ml_ctl_mqtt *m, const char *topic, size_t topic_n)
{
    struct ml_ctl *ctl = m->ctl;
    /* Large (a Nack's error is 4 KiB): one per controller would do, but the stack of a loop
     * callback has room for it. */
    struct ml_ctl_msg msg;
    char id[ML_CTL_TEXT_MAX + 1];
    enum topic_kind kind = topic_parse(topic, topic_n, id, sizeof(id));
    struct peer *p;
    int rv;

    if (kind == T_NONE || !ml_ctl_node_id_safe(id)) {
        ctl->counters.mqtt_dropped++;
        ML_LOG_DBG("mqtt: a PUBLISH on a topic that is no node's: ignored");
        return;
    }
    if (kind == T_HELLO && m->rx_n == 0) {
        on_gone(m, id);
        return;
    }
    if ((rv = ml_ctl_msg_decode(m->rx, m->rx_n, &msg)) < 0) {
        /* The broker sent it, not the node's connection: counted and ignored, not fatal. */
        ctl->counters.mqtt_dropped++;
        ML_LOG_WRN("mqtt: node %s: undecodable envelope (%zu bytes) ignored: %s", id, m->rx_n,
                   rv == -EMSGSIZE ? "too large" : "not a fleet Envelope");
        return;
    }
    if (msg.kind == ML_CTL_MSG_UNKNOWN) {
        return;
    }
    if (kind == T_HELLO) {
        if (msg.kind == ML_CTL_MSG_HELLO) {
            on_hello(m, id, &msg);
        }
        return;
    }
    if ((p = peer_find(m, id)) == NULL || p->c.node == NULL) {
        ctl->counters.answers_ignored += kind == T_ANSWER;
        ML_LOG_DBG("mqtt: node %s: a message before its Hello: ignored", id);
        return;
    }
    if (kind == T_ANSWER && (msg.kind == ML_CTL_MSG_ACK || msg.kind == ML_CTL_MSG_NACK)) {
        ml_ctl_on_answer(ctl, &p->c, p->c.node, &msg);
    } else if (kind == T_STATUS && msg.kind == ML_CTL_MSG_STATUS) {
        ml_ctl_on_status(ctl, &p->c, p->c.node, &msg);
    } else {
        ctl->counters.mqtt_dropped++;
    }
    kick(m);
}

/* A piece of a received PUBLISH (lws hands the payload over in pieces). */
static void on_rx(struct ml_ctl_mqtt *m, const lws_mqtt_publish_param_t *pub, size_t len)
{
    if (pub->payload_pos == 0) {
        m->rx_n = 0;
        m->rx_drop = pub->payload_len > sizeof(m->rx);
        if (m->rx_drop) {
            m->ctl->counters.mqtt_dropped++;
            ML_LOG_WRN("mqtt: a %u-byte message over %zu bytes on %.*s: dropped unread",
                       pub->payload_len, sizeof(m->rx), (int)pub->topic_len, pub->topic);
        }
    }
    if (!m->rx_drop && len > 0) {
        if (len > sizeof(m->rx) - m->rx_n) {
            m->rx_drop = true;
            return;
        }
        memcpy(m->rx + m->rx_n, pub->payload, len);
        m->rx_n += len;
    }
    if (!m->rx_drop && pub->payload_pos + len >= pub->payload_len) {
        on_publish(m, pub->topic, pub->topic_len);
    }
}

/* ---- sending ------------------------------------------------------------------------------ */

/* Starts the next queued push: its bytes become m->cur. false when none waits. */
static bool push_next(struct ml_ctl_mqtt *m)
{
    struct peer *p = m->q_head;

    while (p != NULL && p->tx == NULL) {
        queue_remove(m, p);
        p = m->q_head;
    }
    if (p == NULL) {
        return false;
    }
    queue_remove(m, p);
    m->cur = p->tx;
    m->cur_n = p->tx_n;
    m->cur_pos = 0;
    p->tx = NULL;
    snprintf(m->cur_id, sizeof(m->cur_id), "%s", p->id);
    snprintf(m->cur_topic, sizeof(m->cur_topic), TOPIC_PREFIX "%s/push", p->id);
    memset(&m->pub, 0, sizeof(m->pub));
    m->pub.topic = m->cur_topic;
    m->pub.topic_len = (uint16_t)strlen(m->cur_topic);
    m->pub.payload_len = (uint32_t)m->cur_n;
    m->pub.qos = QOS1;
    m->pub.retain = 1;
    return true;
}

static void cur_done(struct ml_ctl_mqtt *m)
{
    ml_free(m->cur);
    m->cur = NULL;
    m->cur_n = m->cur_pos = 0;
    m->cur_unacked = false;
}

/* WRITEABLE: the next piece of the push under way, or the next push. 0, or -1 to close. */
static int on_writeable(struct ml_ctl_mqtt *m, struct lws *wsi)
{
    uint8_t piece[LWS_PRE + PUSH_CHUNK_BYTES];
    size_t n;
    bool last;

    if (m->state == ST_SUBSCRIBING) {
        if (lws_mqtt_client_send_subcribe(wsi, &m->sub) != 0) {
            ML_LOG_WRN("mqtt: SUBSCRIBE not sent: reconnecting");
            return -1;
        }
        return 0;
    }
    if (m->state != ST_READY || m->cur_unacked) {
        return 0;
    }
    if (m->cur == NULL && !push_next(m)) {
        return 0;
    }
    n = m->cur_n - m->cur_pos;
    if (n > PUSH_CHUNK_BYTES) {
        n = PUSH_CHUNK_BYTES;
    }
    last = m->cur_pos + n == m->cur_n;
    /* lws writes later pieces from the buffer it is given, with LWS_PRE bytes in front. */
    memcpy(piece + LWS_PRE, m->cur + m->cur_pos, n);
    if (lws_mqtt_client_send_publish(wsi, &m->pub, piece + LWS_PRE, (uint32_t)n, last) != 0) {
        ML_LOG_WRN("mqtt: PUBLISH to node %s failed: reconnecting", m->cur_id);
        return -1;
    }
    m->cur_pos += n;
    if (last) {
        m->cur_unacked = true; /* QoS 1: the next push waits for MQTT_ACK */
    } else {
        lws_callback_on_writable(wsi);
    }
    return 0;
}

/* ---- the connection ----------------------------------------------------------------------- */

static void retry_later(struct ml_ctl_mqtt *m, const char *why)
{
    uint32_t delay;

    m->wsi = NULL;
    m->net = NULL;
    if (m->stopping || m->state == ST_WAITING) {
        return;
    }
    m->state = ST_WAITING;
    ml_timer_disarm(m->watchdog);
    m->ctl->counters.mqtt_connected = 0;
    ml_timer_disarm(m->grace);
    /* A push cut off with its connection goes out again first after the reconnect (unless its
     * node got a newer one meanwhile). */
    if (m->cur != NULL) {
        struct peer *p = peer_find(m, m->cur_id);

        if (p != NULL && p->tx == NULL) {
            p->tx = m->cur;
            p->tx_n = m->cur_n;
            m->cur = NULL;
            if (!p->queued) {
                p->queued = true;
                p->next = m->q_head;
                m->q_head = p;
                if (m->q_tail == NULL) {
                    m->q_tail = p;
                }
            }
        }
        cur_done(m);
    }
    delay = ml_fleet_backoff_next(&m->backoff);
    ML_LOG_WRN("mqtt: broker %s:%u: %s; reconnecting in %u ms", m->host, m->port, why, delay);
    ml_timer_arm(m->retry, delay);
}

/* After a (re)subscribe: nodes whose retained Hello did not come again are gone. */
static void on_grace(void *user)
{
    struct ml_ctl_mqtt *m = user;

    for (size_t i = 0; i < m->n_peers; i++) {
        if (!m->peers[i]->seen) {
            ML_LOG_INF("mqtt: node %s: no retained Hello on the broker any more: disconnected",
                       m->peers[i]->id);
            peer_drop(m, i);
            i--; /* slot i now holds the peer that was last */
        }
    }
}

static void on_retry(void *user)
{
    struct ml_ctl_mqtt *m = user;
    struct lws_client_connect_info ci;
    struct lws *wsi;

    if (m->stopping || m->state != ST_WAITING) {
        return;
    }
    memset(&ci, 0, sizeof(ci));
    ci.context = ml_loop_lws_context(m->ctl->loop);
    ci.vhost = m->vh;
    ci.address = m->host;
    ci.host = m->host;
    ci.port = m->port;
    ci.protocol = "ml-ctl-mqtt";
    ci.method = "MQTT";
    ci.alpn = "mqtt";
    ci.mqtt_cp = &m->cp;
    ci.ssl_connection = m->tls ? LCCSCF_USE_SSL : 0;
    m->state = ST_CONNECTING;
    m->in_connect = true;
    m->connect_failed = false;
    m->conns++;
    wsi = lws_client_connect_via_info(&ci);
    m->in_connect = false;
    if (wsi == NULL || m->connect_failed) {
        m->state = ST_CONNECTING; /* retry_later acts on a state other than WAITING */
        retry_later(m, "cannot connect");
        return;
    }
    m->net = wsi;
    ml_timer_arm(m->watchdog, CONNECT_TIMEOUT_MS);
}

/* An attempt that has not reached SUBACK in CONNECT_TIMEOUT_MS: killed, retried. */
static void on_watchdog(void *user)
{
    struct ml_ctl_mqtt *m = user;
    struct lws *net = m->net;

    if (m->stopping || m->state == ST_READY || m->state == ST_WAITING) {
        return;
    }
    m->net = NULL; /* callbacks of the dying connection are ignored from now on */
    if (net != NULL) {
        lws_set_timeout(net, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
    retry_later(m, "no SUBACK within CONNECT_TIMEOUT_MS");
}

/* Whether wsi belongs to the attempt under way (not one the watchdog gave up on). */
static bool current(struct ml_ctl_mqtt *m, struct lws *wsi)
{
    return m->in_connect || (m->net != NULL && (wsi == m->net || wsi == m->wsi ||
                                                lws_get_network_wsi(wsi) == m->net));
}

static int mqtt_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    struct ml_ctl_mqtt *m = lws_get_vhost_user(lws_get_vhost(wsi));

    (void)user;
    if (m == NULL) {
        return 0;
    }
    if (!current(m, wsi)) {
        /* a connection the watchdog killed: closes on its own */
        ML_LOG_DBG("mqtt: callback %d of an abandoned connection", (int)reason);
        return 0;
    }
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (m->in_connect) {
            m->connect_failed = true; /* handled once lws_client_connect_via_info returned */
            return 0;
        }
        {
            char why[160];

            snprintf(why, sizeof(why), "connection failed: %s",
                     in != NULL ? (const char *)in : "no reason given");
            retry_later(m, why);
        }
        return 0;
    case LWS_CALLBACK_MQTT_CLIENT_ESTABLISHED:
        if (m->stopping) {
            return -1;
        }
        m->wsi = wsi;
        m->state = ST_SUBSCRIBING;
        ML_LOG_INF("mqtt: connected to %s:%u (%s) as %s; subscribing", m->host, m->port,
                   m->tls ? "mqtts" : "mqtt, no TLS", m->client_id);
        lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_MQTT_SUBSCRIBED:
        ml_timer_disarm(m->watchdog);
        m->state = ST_READY;
        m->ctl->counters.mqtt_connects++;
        m->ctl->counters.mqtt_connected = 1;
        ml_fleet_backoff_reset(&m->backoff);
        for (size_t i = 0; i < m->n_peers; i++) {
            m->peers[i]->seen = false;
        }
        ml_timer_arm(m->grace, RETAINED_GRACE_MS);
        ML_LOG_INF("mqtt: subscribed to " TOPIC_PREFIX "+/hello, +/answer, +/status");
        lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_MQTT_CLIENT_WRITEABLE:
        return on_writeable(m, wsi);
    case LWS_CALLBACK_MQTT_ACK:
        if (m->cur_unacked) {
            cur_done(m);
            m->ctl->counters.mqtt_pubacks++;
        }
        lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_MQTT_RESEND:
        /* No PUBACK within lws's 3 s: the same PUBLISH again, marked as a duplicate. */
        if (m->cur != NULL) {
            m->cur_pos = 0;
            m->cur_unacked = false;
            m->pub.dup = 1;
            lws_callback_on_writable(wsi);
        }
        return 0;
    case LWS_CALLBACK_MQTT_CLIENT_RX:
        if (in != NULL && !m->stopping) {
            on_rx(m, in, len);
        }
        return 0;
    case LWS_CALLBACK_MQTT_CLIENT_CLOSED:
        retry_later(m, "connection closed");
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols mqtt_protocols[] = {
    {.name = "ml-ctl-mqtt", .callback = mqtt_callback},
    LWS_PROTOCOL_LIST_TERM,
};

/* mqtts://HOST[:PORT] or mqtt://HOST[:PORT] (HOST may be [IPv6]), nothing after. 0 or -EINVAL
 * with why. */
static int url_parse(struct ml_ctl_mqtt *m, const char *url, char *why, size_t cap)
{
    const char *h, *end, *colon;
    size_t n;

    if (strncmp(url, "mqtts://", 8) == 0) {
        m->tls = true;
        h = url + 8;
    } else if (strncmp(url, "mqtt://", 7) == 0) {
        m->tls = false;
        h = url + 7;
    } else {
        snprintf(why, cap,
                 "--mqtt %s: expected mqtts://HOST:PORT (or mqtt:// with "
                 "--mqtt-insecure)",
                 url);
        return -EINVAL;
    }
    end = h + strcspn(h, "/?#");
    if (*end != '\0') {
        snprintf(why, cap, "--mqtt %s: expected no path, query or fragment after HOST:PORT", url);
        return -EINVAL;
    }
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));

        if (rb == NULL) {
            snprintf(why, cap, "--mqtt %s: an IPv6 address needs its closing ']'", url);
            return -EINVAL;
        }
        colon = rb[1] == ':' ? rb + 1 : NULL;
        if (rb[1] != ':' && rb + 1 != end) {
            snprintf(why, cap, "--mqtt %s: expected :PORT after ']'", url);
            return -EINVAL;
        }
        n = (size_t)(rb - h - 1);
        h++;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        n = (size_t)((colon != NULL ? colon : end) - h);
    }
    if (n == 0 || n >= sizeof(m->host)) {
        snprintf(why, cap, "--mqtt %s: expected a host of 1 to %d bytes", url, HOST_MAX - 1);
        return -EINVAL;
    }
    memcpy(m->host, h, n);
    m->host[n] = '\0';
    m->port = m->tls ? DEFAULT_PORT_TLS : DEFAULT_PORT_PLAIN;
    if (colon != NULL) {
        char *e;
        long port = strtol(colon + 1, &e, 10);

        if (e != end || e == colon + 1 || port < 1 || port > 65535) {
            snprintf(why, cap, "--mqtt %s: expected a port 1..65535", url);
            return -EINVAL;
        }
        m->port = (uint16_t)port;
    }
    return 0;
}

static int check_file(const char *what, const char *path, char *why, size_t cap)
{
    if (path != NULL && access(path, R_OK) != 0) {
        int e = errno;

        snprintf(why, cap, "%s %s: %s", what, path, strerror(e));
        return -e;
    }
    return 0;
}

int ml_ctl_mqtt_start(struct ml_ctl *ctl, const struct ml_ctl_mqtt_opts *o, char *why, size_t cap)
{
    static const lws_retry_bo_t keepalive = {
        .secs_since_valid_ping = PING_AFTER_S,
        .secs_since_valid_hangup = HANGUP_AFTER_S,
    };
    struct lws_context_creation_info info;
    struct ml_ctl_mqtt *m;
    int rv;

    if ((m = ml_calloc(1, sizeof(*m))) == NULL) {
        snprintf(why, cap, "out of memory");
        return -ENOMEM;
    }
    m->ctl = ctl;
    ctl->mqtt = m;
    if ((rv = url_parse(m, o->url, why, cap)) < 0) {
        return rv;
    }
    if (m->tls && (o->ca == NULL || o->cert == NULL || o->key == NULL)) {
        snprintf(why, cap,
                 "--mqtt %s needs --mqtt-ca, --mqtt-cert and --mqtt-key (the broker "
                 "knows the controller by its client certificate)",
                 o->url);
        return -EINVAL;
    }
    if (!m->tls && !o->insecure) {
        snprintf(why, cap,
                 "--mqtt %s: plain MQTT needs --mqtt-insecure (nodes' configs and the "
                 "controller's identity would cross the network in clear)",
                 o->url);
        return -EINVAL;
    }
    if (!m->tls && (o->ca != NULL || o->cert != NULL || o->key != NULL)) {
        snprintf(why, cap, "--mqtt %s: --mqtt-ca/--mqtt-cert/--mqtt-key need mqtts://", o->url);
        return -EINVAL;
    }
    if ((rv = check_file("--mqtt-ca", o->ca, why, cap)) < 0 ||
        (rv = check_file("--mqtt-cert", o->cert, why, cap)) < 0 ||
        (rv = check_file("--mqtt-key", o->key, why, cap)) < 0) {
        return rv;
    }
    snprintf(m->client_id, sizeof(m->client_id), "%s",
             o->client_id != NULL ? o->client_id : ML_CTL_MQTT_CLIENT_ID);
    m->cp.client_id = m->client_id;
    m->cp.keep_alive = KEEPALIVE_S;
    m->cp.clean_start = 1;
    m->cp.client_id_nofree = 1;
    m->cp.username_nofree = 1;
    m->cp.password_nofree = 1;
    for (size_t i = 0; i < 3; i++) {
        static const char *const names[] = {TOPIC_PREFIX "+/hello", TOPIC_PREFIX "+/answer",
                                            TOPIC_PREFIX "+/status"};

        m->topics[i].name = names[i];
        m->topics[i].qos = QOS0; /* see the top of this file */
    }
    m->sub.topic = m->topics;
    m->sub.num_topics = 3;
    memset(&info, 0, sizeof(info));
    info.vhost_name = "ml-ctl-mqtt";
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = mqtt_protocols;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.retry_and_idle_policy = &keepalive;
    info.timeout_secs = CONNECT_TIMEOUT_MS / 1000;
    info.user = m;
    if (m->tls) {
        info.client_ssl_ca_filepath = o->ca;
        info.client_ssl_cert_filepath = o->cert;
        info.client_ssl_private_key_filepath = o->key;
    }
    if ((m->vh = lws_create_vhost(ml_loop_lws_context(ctl->loop), &info)) == NULL) {
        snprintf(why, cap,
                 "--mqtt: cannot set up the client (are --mqtt-ca/-cert/-key PEM, and "
                 "the key the cert's?)");
        return -EINVAL;
    }
    if ((m->retry = ml_timer_new(ctl->loop, on_retry, m)) == NULL ||
        (m->grace = ml_timer_new(ctl->loop, on_grace, m)) == NULL ||
        (m->watchdog = ml_timer_new(ctl->loop, on_watchdog, m)) == NULL) {
        snprintf(why, cap, "out of memory");
        return -ENOMEM;
    }
    ml_fleet_backoff_init(&m->backoff, RETRY_MIN_MS, RETRY_MAX_MS, (uint64_t)getpid());
    if (!m->tls) {
        ML_LOG_WRN("mqtt: %s: PLAIN MQTT (--mqtt-insecure): configs cross the network in clear "
                   "and the broker cannot know the controller by a certificate",
                   o->url);
    }
    m->state = ST_WAITING;
    ml_timer_arm(m->retry, 0);
    return 0;
}

void ml_ctl_mqtt_stop(struct ml_ctl *ctl)
{
    struct ml_ctl_mqtt *m = ctl->mqtt;

    if (m == NULL) {
        return;
    }
    m->stopping = true;
    ml_timer_free(m->retry);
    ml_timer_free(m->grace);
    ml_timer_free(m->watchdog);
    m->retry = m->grace = m->watchdog = NULL;
}

void ml_ctl_mqtt_free(struct ml_ctl *ctl)
{
    struct ml_ctl_mqtt *m = ctl->mqtt;

    if (m == NULL) {
        return;
    }
    while (m->n_peers > 0) {
        struct peer *p = m->peers[--m->n_peers];

        if (p->c.node != NULL && p->c.node->conn == &p->c) {
            p->c.node->conn = NULL;
        }
        ml_free(p->tx);
        ml_free(p);
    }
    ml_free(m->cur);
    ml_free(m);
    ctl->mqtt = NULL;
}
