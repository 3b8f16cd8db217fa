/* The seam between the fleet client (client.c: Hello, Status, Push, Ack/Nack, the send queue,
 * the backoff, the counters) and the transports that carry its envelopes: a WebSocket to the
 * controller (ws.c) and an MQTT broker (mqtt.c). client.c picks one by the url's scheme from
 * its table; the transport owns its lws protocol and callback and turns lws' events into the
 * ml_fleet_conn_* calls below, so the protocol logic exists once. Internal to runtime/fleet. */
#ifndef ML_FLEET_TRANSPORT_H
#define ML_FLEET_TRANSPORT_H

#include "config/snapshot-t.h"

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ml_fleet_client;

/* What an outgoing envelope is: MQTT publishes each kind on its own topic, QoS and retain. */
enum ml_fleet_msg_kind {
    ML_FLEET_MSG_HELLO,
    ML_FLEET_MSG_STATUS,
    ML_FLEET_MSG_ANSWER, /* an Ack or a Nack */
};

/* What a transport's write did with the head of the send queue. */
enum ml_fleet_write {
    ML_FLEET_WRITE_SENT,    /* out and done: the next one may follow */
    ML_FLEET_WRITE_HELD,    /* out, but the next waits for ml_fleet_conn_release(c, true)
                               (MQTT: the broker's PUBACK); this one stays for a resend */
    ML_FLEET_WRITE_NOT_YET, /* the transport wrote something of its own first (MQTT: the
                               SUBSCRIBE): the head stays, writes wait for ml_fleet_conn_release */
};

struct ml_fleet_transport {
    const char *name;                      /* for log lines: "WebSocket", "MQTT" */
    const char *scheme;                    /* "ws://": plain (only with insecure = on) */
    const char *scheme_tls;                /* "wss://" */
    const struct lws_protocols *protocols; /* the client vhost's */
    /* A message that cannot be used (undecodable, over the bound) ends the connection when the
     * peer sent it (WebSocket), or is only counted and skipped when a relay did (MQTT: the broker
     * passes on whatever someone allowed to publish there sent, and reconnecting brings the
     * same retained message back). */
    bool bad_message_fatal;
    size_t state_size; /* per client, zeroed before every attempt (ml_fleet_conn_state) */
    /* An attempt starts: fills what ci needs beyond context, vhost, address, port, host, TLS and
     * opaque_user_data (client.c's). node_id and cfg stay valid for the connection. */
    void (*connect_info)(void *st, const char *node_id, const struct ml_cfg_fleet *cfg,
                         struct lws_client_connect_info *ci);
    /* Optional: the client starts (once, not per attempt): what the transport can tell about
     * the setup before any attempt, logged (MQTT: a client certificate whose CN is not node_id,
     * which the broker's ACL will silently ignore). */
    void (*started)(const char *node_id, const struct ml_cfg_fleet *cfg);
    /* WRITEABLE: buf[LWS_PRE .. LWS_PRE + n) is the envelope (LWS_PRE bytes of headroom before
     * it, writable). An ml_fleet_write, or -1 when lws could not write (the connection ends). */
    int (*write)(void *st, struct lws *wsi, uint8_t *buf, size_t n, enum ml_fleet_msg_kind kind);
    /* Optional: the client stops cleanly while connected (ml_fleet_client_free): last words
     * written at once on wsi, which is closed right after (MQTT: the empty retained Hello, so
     * the controller sees this node offline, then DISCONNECT). */
    void (*goodbye)(void *st, struct lws *wsi);
};

extern const struct ml_fleet_transport ml_fleet_ws_transport;
extern const struct ml_fleet_transport ml_fleet_mqtt_transport; /* CONFIG_ML_FLEET_MQTT only */

/* ---- what a transport's lws callback calls (client.c) ------------------------------------ */

/* The client wsi serves, or NULL: the wsi is not (or no longer) the current connection, or it
 * is a vhost-level event. A stream of the current connection (lws' MQTT client moves the
 * connection onto a child stream at CONNACK) becomes the current one. Non-NULL must be paired
 * with ml_fleet_conn_leave, whose value the callback returns. */
struct ml_fleet_client *ml_fleet_conn_enter(struct lws *wsi);
int ml_fleet_conn_leave(struct ml_fleet_client *c, int rv);

void *ml_fleet_conn_state(struct ml_fleet_client *c);
bool ml_fleet_conn_tls(const struct ml_fleet_client *c);
const char *ml_fleet_conn_node_id(const struct ml_fleet_client *c);

/* The attempt failed before the connection was up (lws' CONNECTION_ERROR text in[0..len)). */
void ml_fleet_conn_failed(struct ml_fleet_client *c, struct lws *wsi, const char *in, size_t len);
/* The connection is up: the Hello is queued, the report timer armed. */
void ml_fleet_conn_established(struct ml_fleet_client *c, struct lws *wsi);
/* One piece of one incoming message: its first and/or final piece; binary: not a text frame.
 * Always 0 (a bad message drops the connection without returning -1: client.c's top). */
int ml_fleet_conn_receive(struct ml_fleet_client *c, struct lws *wsi, const void *in, size_t len,
                          bool first, bool final, bool binary);
/* An incoming message the transport refused before any of it reached ml_fleet_conn_receive
 * (MQTT: a payload over the bound): counted as a protocol error and logged; the connection
 * stays or ends as bad_message_fatal says. */
void ml_fleet_conn_refused(struct ml_fleet_client *c, struct lws *wsi, const char *why);
/* WRITEABLE: the next queued envelope out. 0, or -1 to close (the connection has ended). */
int ml_fleet_conn_writeable(struct ml_fleet_client *c, struct lws *wsi);
/* After ML_FLEET_WRITE_HELD or _NOT_YET: delivered (the head leaves the queue) or not (it is
 * written again); either way writes go on. */
void ml_fleet_conn_release(struct ml_fleet_client *c, struct lws *wsi, bool delivered);
/* The peer's own words on why it closes (escaped by the caller), for the log line. */
void ml_fleet_conn_peer_said(struct ml_fleet_client *c, const char *words);
/* The connection ended: why, unless the peer said why (ml_fleet_conn_peer_said). */
void ml_fleet_conn_closed(struct ml_fleet_client *c, const char *why);
/* lws destroyed the wsi without saying more (a catch-all end). */
void ml_fleet_conn_destroyed(struct ml_fleet_client *c, struct lws *wsi);

/* A piece in[0..len) at pos of a PUBLISH of total payload bytes on topic[0..topic_len), as lws'
 * MQTT_CLIENT_RX hands it over (mqtt.c; also client.c's test hook). Only the node's push topic is
 * used; an empty payload is ignored, one over the bound refused. */
void ml_fleet_mqtt_rx(struct ml_fleet_client *c, struct lws *wsi, const char *topic,
                      size_t topic_len, uint32_t total, uint32_t pos, const void *in, size_t len);

/* s[0..n) as printable ASCII (other bytes as \xHH, a backslash as \\), cut to fit out[cap]. */
const char *ml_fleet_printable(const void *s, size_t n, char *out, size_t cap);

#endif
