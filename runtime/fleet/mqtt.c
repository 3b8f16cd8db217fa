/* The fleet over an MQTT broker (transport.h; topics, QoS and retain: README.md "The fleet over
 * MQTT"): libwebsockets' MQTT client role (MQTT 3.1.1), one envelope per PUBLISH payload.
 *
 *   meshlet/v1/node/<id>/hello   node → controller, QoS 1, retained; the Will: empty, retained
 *   meshlet/v1/node/<id>/push    controller → node, QoS 1, retained (the one subscription,
 *                                at QoS 0: see mqtt_write)
 *   meshlet/v1/node/<id>/answer  node → controller, QoS 1 (Ack, Nack)
 *   meshlet/v1/node/<id>/status  node → controller, QoS 0
 *
 * lws traps met here (4.3.5):
 * - at CONNACK lws moves the connection onto a new child stream wsi (the network wsi stays
 *   below it): ml_fleet_conn_enter adopts that stream, and kills go to lws_get_network_wsi;
 * - a stream tracks ONE unacknowledged packet id: a second QoS 1 PUBLISH (or the SUBSCRIBE)
 *   before the PUBACK overwrites it, and the late PUBACK is then "unsolicited" and closes the
 *   connection. Every write therefore waits for the previous one's PUBACK/SUBACK
 *   (ML_FLEET_WRITE_HELD, ml_fleet_conn_release);
 * - with no PUBACK after 3 s lws calls MQTT_RESEND: the held message goes out again with DUP
 *   set (the packet id is still the last one, as nothing else was sent meanwhile);
 * - for a QoS 0 PUBLISH lws calls MQTT_ACK from inside lws_mqtt_client_send_publish: an ACK
 *   while nothing is held is ignored;
 * - lws has no call that sends DISCONNECT: a clean stop writes its two bytes itself. */
#include "fleet/transport.h"

#include "core/log.h"
#include "fleet/envelope.h"
#include "tls/identity.h"
#include "tls/tls.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MQTT_PROTOCOL "meshlet.fleet.mqtt"
#define TOPIC_PREFIX "meshlet/v1/node/"
/* The longest topic: the prefix, a node id at its wire bound, the longest suffix. */
#define TOPIC_MAX (sizeof(TOPIC_PREFIX) + ML_FLEET_NODE_ID_MAX + sizeof("/answer"))
/* MQTT keepalive (CONNECT): the broker drops a node silent for 1.5 times this. */
#define KEEPALIVE_S 30
/* lws sends PINGREQ after this long without a sign of life from the broker, and drops the
 * connection after HANGUP_AFTER_S: behind NAT a dead path otherwise looks alive for minutes. */
#define PING_AFTER_S 20
#define HANGUP_AFTER_S 60

struct mqtt_state {
    char client_id[ML_FLEET_NODE_ID_MAX + 1];
    char hello[TOPIC_MAX], push[TOPIC_MAX], answer[TOPIC_MAX], status[TOPIC_MAX];
    lws_mqtt_client_connect_param_t cp;
    lws_mqtt_topic_elem_t sub_topic;
    bool established; /* CONNACK came */
    bool subscribing; /* SUBSCRIBE out, SUBACK awaited */
    bool subscribed;
    bool awaiting_ack; /* a QoS 1 PUBLISH is out, its PUBACK awaited */
    bool resend;       /* lws asked for it again (MQTT_RESEND): DUP */
    bool said_other;   /* a PUBLISH on another topic was logged */
};

static const lws_retry_bo_t keepalive = {
    .secs_since_valid_ping = PING_AFTER_S,
    .secs_since_valid_hangup = HANGUP_AFTER_S,
};

void ml_fleet_mqtt_rx(struct ml_fleet_client *c, struct lws *wsi, const char *topic,
                      size_t topic_len, uint32_t total, uint32_t pos, const void *in, size_t len)
{
    struct mqtt_state *st = ml_fleet_conn_state(c);
    bool first = pos == 0, final = pos + len >= total;
    char why[160], shown[96];

    if (topic == NULL || strlen(st->push) != topic_len || memcmp(topic, st->push, topic_len) != 0) {
        /* Only the push topic is subscribed: a broker sending more is misconfigured. */
        if (first && !st->said_other) {
            ML_LOG_WRN(
                "fleet: PUBLISH on topic \"%s\", not %s: ignored",
                ml_fleet_printable(topic ? topic : "", topic ? topic_len : 0, shown, sizeof(shown)),
                st->push);
            st->said_other = true;
        }
        return;
    }
    if (total == 0) {
        /* The controller cleared this node's retained push: nothing to do, the config stays. */
        ML_LOG_INF("fleet: empty message on %s (the controller cleared this node): ignored",
                   st->push);
        return;
    }
    if (total > ML_FLEET_MAX_MESSAGE_BYTES) {
        /* Never buffered nor parsed; its first piece says the whole size. */
        if (first) {
            snprintf(why, sizeof(why),
                     "message of %u bytes over %d bytes (CONFIG_ML_FLEET_MAX_MESSAGE_BYTES)",
                     (unsigned)total, ML_FLEET_MAX_MESSAGE_BYTES);
            ml_fleet_conn_refused(c, wsi, why);
        }
        return;
    }
    ml_fleet_conn_receive(c, wsi, in, len, first, final, true);
}

/* WRITEABLE with the head of the send queue: the SUBSCRIBE first, then one PUBLISH at a time. */
static int mqtt_write(void *stv, struct lws *wsi, uint8_t *buf, size_t n,
                      enum ml_fleet_msg_kind kind)
{
    struct mqtt_state *st = stv;
    lws_mqtt_publish_param_t pub;
    lws_mqtt_subscribe_param_t sub;

    if (!st->subscribed) {
        if (st->subscribing) {
            return ML_FLEET_WRITE_NOT_YET;
        }
        st->sub_topic.name = st->push;
        /* QoS 0 on this side (the controller publishes at QoS 1): lws 4.3.5 acknowledges only
         * the last of several QoS 1 PUBLISHes it reads at once, and the broker stops delivering
         * once its in-flight window is full of the lost PUBACKs. A push lost with the connection
         * comes back retained at the next SUBSCRIBE, which is what QoS 1 would have given. */
        st->sub_topic.qos = QOS0;
        memset(&sub, 0, sizeof(sub));
        sub.num_topics = 1;
        sub.topic = &st->sub_topic;
        if (lws_mqtt_client_send_subcribe(wsi, &sub) != 0) {
            return -1;
        }
        st->subscribing = true;
        return ML_FLEET_WRITE_NOT_YET;
    }
    memset(&pub, 0, sizeof(pub));
    pub.topic = kind == ML_FLEET_MSG_HELLO    ? st->hello
                : kind == ML_FLEET_MSG_STATUS ? st->status
                                              : st->answer;
    pub.topic_len = (uint16_t)strlen(pub.topic);
    pub.qos = kind == ML_FLEET_MSG_STATUS ? QOS0 : QOS1;
    /* The Hello is retained: a controller started later still sees this node online. */
    pub.retain = kind == ML_FLEET_MSG_HELLO;
    pub.dup = st->resend;
    pub.payload_len = (uint32_t)n;
    st->resend = false;
    if (lws_mqtt_client_send_publish(wsi, &pub, buf + LWS_PRE, (uint32_t)n, 1) != 0) {
        return -1;
    }
    if (pub.qos == QOS0) {
        return ML_FLEET_WRITE_SENT;
    }
    st->awaiting_ack = true;
    return ML_FLEET_WRITE_HELD;
}

static int mqtt_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    struct ml_fleet_client *c = ml_fleet_conn_enter(wsi);
    struct mqtt_state *st;
    int rv = 0;

    (void)user;
    if (c == NULL) {
        return 0;
    }
    st = ml_fleet_conn_state(c);
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        ml_fleet_conn_failed(c, wsi, in, len);
        break;
    case LWS_CALLBACK_MQTT_CLIENT_ESTABLISHED:
        /* CONNACK: the Hello is queued; mqtt_write subscribes before it goes out. */
        st->established = true;
        ml_fleet_conn_established(c, wsi);
        break;
    case LWS_CALLBACK_MQTT_SUBSCRIBED:
        if (st->subscribing) {
            st->subscribing = false;
            st->subscribed = true;
            ML_LOG_DBG("fleet: subscribed to %s", st->push);
            ml_fleet_conn_release(c, wsi, false);
        }
        break;
    case LWS_CALLBACK_MQTT_CLIENT_WRITEABLE:
        rv = ml_fleet_conn_writeable(c, wsi);
        break;
    case LWS_CALLBACK_MQTT_CLIENT_RX:
        if (in != NULL) {
            const lws_mqtt_publish_param_t *pub = in;

            ml_fleet_mqtt_rx(c, wsi, pub->topic, pub->topic_len, pub->payload_len, pub->payload_pos,
                             pub->payload, len);
        }
        break;
    case LWS_CALLBACK_MQTT_ACK:
        if (st->awaiting_ack) {
            st->awaiting_ack = false;
            ml_fleet_conn_release(c, wsi, true);
        }
        break;
    case LWS_CALLBACK_MQTT_RESEND:
        if (st->awaiting_ack) {
            ML_LOG_INF("fleet: no PUBACK from the broker after 3 s: sending again");
            st->awaiting_ack = false;
            st->resend = true;
            ml_fleet_conn_release(c, wsi, false);
        }
        break;
    case LWS_CALLBACK_MQTT_CLIENT_CLOSED:
        ml_fleet_conn_closed(
            c, !st->established
                   ? "closed by the broker before its CONNACK (CONNECT refused: is the client "
                     "certificate's CN this node's id, and allowed?)"
               : st->subscribing ? "closed by the broker at SUBSCRIBE (does its ACL let this "
                                   "node read its push topic?)"
                                 : "closed by the broker (or no answer to pings for 60 s)");
        break;
    case LWS_CALLBACK_WSI_DESTROY:
        ml_fleet_conn_destroyed(c, wsi);
        break;
    default:
        break;
    }
    return ml_fleet_conn_leave(c, rv);
}

static const struct lws_protocols mqtt_protocols[] = {
    {
        .name = MQTT_PROTOCOL,
        .callback = mqtt_callback,
        .rx_buffer_size = 16 * 1024, /* chunks; messages are reassembled by client.c */
    },
    LWS_PROTOCOL_LIST_TERM,
};

static void mqtt_connect_info(void *stv, const char *node_id, const struct ml_cfg_fleet *cfg,
                              struct lws_client_connect_info *ci)
{
    struct mqtt_state *st = stv;

    (void)cfg;
    /* node ids are [A-Za-z0-9._:-] (fleet/token.h): never '/', '+' or '#' in a topic */
    snprintf(st->client_id, sizeof(st->client_id), "%s", node_id);
    snprintf(st->hello, sizeof(st->hello), TOPIC_PREFIX "%s/hello", node_id);
    snprintf(st->push, sizeof(st->push), TOPIC_PREFIX "%s/push", node_id);
    snprintf(st->answer, sizeof(st->answer), TOPIC_PREFIX "%s/answer", node_id);
    snprintf(st->status, sizeof(st->status), TOPIC_PREFIX "%s/status", node_id);
    st->cp.client_id = st->client_id; /* the broker knows the node by its id */
    st->cp.keep_alive = KEEPALIVE_S;
    st->cp.clean_start = 1; /* the retained push, not a session, brings the desired state */
    st->cp.client_id_nofree = 1;
    st->cp.username_nofree = 1;
    st->cp.password_nofree = 1;
    /* The Will: an empty retained Hello deletes the retained one, so the controller (also one
     * started later) sees this node offline when the broker loses it. */
    st->cp.will_param.topic = st->hello;
    st->cp.will_param.message = "";
    st->cp.will_param.qos = QOS1;
    st->cp.will_param.retain = 1;
    ci->method = "MQTT";
    ci->mqtt_cp = &st->cp;
    ci->protocol = MQTT_PROTOCOL;
    ci->local_protocol_name = MQTT_PROTOCOL;
    ci->retry_and_idle_policy = &keepalive;
}

/* The broker knows this node by its certificate's CN (the README's mosquitto setup:
 * use_identity_as_username, an ACL by %u), the topics name it by node_id: when they differ the
 * broker drops the Hello and delivers no push, and MQTT 3.1.1 says nothing of either. */
static void mqtt_started(const char *node_id, const struct ml_cfg_fleet *cfg)
{
    char cn[ML_TLS_IDENTITY_MAX];
    int rv;

    if (!cfg->url_tls || cfg->cert == NULL) {
        return;
    }
    rv = ml_tls_cert_file_cn(cfg->cert, cn, sizeof(cn));
    if (rv == 0 && strcmp(cn, node_id) != 0) {
        ML_LOG_WRN("fleet: the client certificate %s names \"%s\", not this node's id \"%s\": a "
                   "broker that takes the certificate's CN as the username (the fleet README's "
                   "setup) drops this node's Hello and never delivers its pushes",
                   cfg->cert, cn, node_id);
    } else if (rv == -ENOENT) {
        ML_LOG_WRN("fleet: the client certificate %s has no CN: a broker that takes it as the "
                   "username cannot match it to node \"%s\"",
                   cfg->cert, node_id);
    }
}

static void mqtt_goodbye(void *stv, struct lws *wsi)
{
    struct mqtt_state *st = stv;
    lws_mqtt_publish_param_t pub;
    uint8_t buf[LWS_PRE + 2] = {0};

    memset(&pub, 0, sizeof(pub));
    pub.topic = st->hello;
    pub.topic_len = (uint16_t)strlen(st->hello);
    /* QoS 0: the broker answers nothing, so no PUBACK reaches a socket we close right after
     * the DISCONNECT; one did 1 time in 9 under load, the kernel answered it with a RST, and
     * the broker lost the DISCONNECT it had not read yet (and sent the Will instead). TCP keeps
     * the order: the empty Hello is handled before the DISCONNECT. */
    pub.qos = QOS0;
    pub.retain = 1;
    /* The empty retained Hello: this node is offline now, not when the broker notices. */
    if (lws_mqtt_client_send_publish(wsi, &pub, buf + LWS_PRE, 0, 1) != 0) {
        ML_LOG_WRN("fleet: could not say goodbye on %s: the broker's Will will", st->hello);
        return;
    }
    /* DISCONNECT (type 14, no flags, no payload): a clean end; the broker drops the Will. */
    buf[LWS_PRE] = 0xe0;
    buf[LWS_PRE + 1] = 0x00;
    if (lws_write(lws_get_network_wsi(wsi), buf + LWS_PRE, 2, LWS_WRITE_BINARY) != 2) {
        ML_LOG_DBG("fleet: DISCONNECT not written");
    }
    ML_LOG_INF("fleet: offline: empty retained %s published", st->hello);
}

const struct ml_fleet_transport ml_fleet_mqtt_transport = {
    .name = "MQTT",
    .scheme = "mqtt://",
    .scheme_tls = "mqtts://",
    .protocols = mqtt_protocols,
    .bad_message_fatal = false,
    .state_size = sizeof(struct mqtt_state),
    .connect_info = mqtt_connect_info,
    .started = mqtt_started,
    .write = mqtt_write,
    .goodbye = mqtt_goodbye,
};
