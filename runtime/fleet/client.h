/* The fleet client (README.md): one outbound WebSocket to the controller, subprotocol
 * meshlet.fleet.v1, or one MQTT connection to a broker the controller also uses ([fleet] url =
 * mqtts://, README.md "The fleet over MQTT"), over TLS (mbedTLS through libwebsockets) unless
 * [fleet] insecure = on allows ws:// or mqtt://. It says Hello on every connect, sends a Status every report_interval, hands each Push to
 * the node (ops->on_push) and sends the node's Ack or Nack back. It reconnects with exponential
 * backoff and full jitter between the [fleet] backoff bounds, and resets the backoff once a
 * connection stayed up for the upper bound. The controller's host name is resolved with
 * libwebsockets' asynchronous DNS: nothing here blocks the loop.
 *
 * Whatever the controller does (refuse TLS, close at once, send garbage, an envelope over
 * ML_FLEET_MAX_MESSAGE_BYTES, a kind this node does not know, a version that is not one), the
 * client logs why, counts it, and goes on; the data plane never waits for it. Nothing the
 * controller sends reaches a log line unescaped. */
#ifndef ML_FLEET_CLIENT_H
#define ML_FLEET_CLIENT_H

#include "config/snapshot-t.h"
#include "core/loop-t.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ml_fleet_client;

/* What the node reports in a Status; strings borrowed until the callback returns. */
struct ml_fleet_report {
    const char *config_version;
    uint64_t uptime_s;
    uint64_t calls_total;
    uint64_t calls_failed;
    uint32_t endpoints_healthy;
    uint32_t endpoints_total;
};

struct ml_fleet_client_ops {
    /* A Push arrived (runs on the loop). The node answers it, now or later, with one
     * ml_fleet_client_ack or ml_fleet_client_nack carrying the same nonce. version and ini are
     * borrowed until the callback returns (copy what is kept). */
    void (*on_push)(void *user, const char *version, uint64_t nonce, const char *ini, size_t n);
    /* Fills *r for the next Status report. */
    void (*fill_report)(void *user, struct ml_fleet_report *r);
    /* Optional. A Push the client nacked itself, before on_push: its version is not 1..128
     * characters of [A-Za-z0-9._:-] (fleet/token.h). version is that version made printable
     * (other bytes as \xHH, cut), error the Nack's text; both borrowed. For the node's nack
     * count and last error; the Nack is already queued. */
    void (*on_push_refused)(void *user, const char *version, uint64_t nonce, const char *error);
};

/* What the Hello says, besides the config version. Strings are copied. */
struct ml_fleet_identity {
    const char *node_id;
    const char *board;
    const char *version; /* meshlet's */
    const char *const *features;
    size_t n_features;
    const char *const *labels; /* "key=value" each, from [node] labels; NULL when none */
    size_t n_labels;
};

/* Counters, for the admin endpoint (fleet_* in /stats). */
struct ml_fleet_client_counters {
    uint64_t connect_attempts;  /* connections tried (DNS, TCP, TLS, WebSocket upgrade) */
    uint64_t connects;          /* upgrades that succeeded */
    uint64_t connect_failures;  /* attempts that failed before the upgrade completed */
    uint64_t disconnects;       /* established connections that ended */
    uint64_t protocol_errors;   /* undecodable or oversized envelopes, text frames: dropped;
                                   a Hello/Status/Ack/Nack from the controller: ignored */
    uint64_t unknown_kinds;     /* envelopes of a kind this node does not know: ignored */
    uint64_t pushes;            /* Push envelopes received */
    uint64_t acks, nacks;       /* answers sent */
    bool connected;
};

/* Starts connecting to cfg->url (cfg and id are copied; config_version is what the Hello says
 * runs: "" for the local file). 0 and *out; -EINVAL (cfg not present, or a url/cert the client
 * cannot use: why says so), -ENOMEM. The first attempt starts at once. */
int ml_fleet_client_new(struct ml_loop *loop, const struct ml_cfg_fleet *cfg,
                        const struct ml_fleet_identity *id, const char *config_version,
                        const struct ml_fleet_client_ops *ops, void *user, char *why, size_t cap,
                        struct ml_fleet_client **out);
/* Closes the connection (if any) and frees c. NULL is a no-op. Safe at any moment, also from
 * inside ops->on_push or ops->fill_report (the rest is then finished at the end of the event);
 * no callback runs afterwards. An answer queued but not yet written is dropped. */
void ml_fleet_client_free(struct ml_fleet_client *c);

/* A new config was applied: the Hello of later connections says config_version, and a changed
 * [fleet] (cfg, copied) is used from the next reconnect on (README.md). */
void ml_fleet_client_update(struct ml_fleet_client *c, const struct ml_cfg_fleet *cfg,
                            const char *config_version);

/* Answers the Push of (version, nonce). Sent if the connection that brought it is still up,
 * else dropped (the next Hello tells the controller what runs). 0; -ENOTCONN (dropped: another
 * connection, or no such unanswered push); -ENOBUFS (the controller reads nothing and the small
 * send queue is full: dropped); -ENOMEM. The Nack's error[0..n) is cut as ml_fleet_nack_encode
 * says. */
int ml_fleet_client_ack(struct ml_fleet_client *c, const char *version, uint64_t nonce);
int ml_fleet_client_nack(struct ml_fleet_client *c, const char *version, uint64_t nonce,
                         const char *error, size_t n);
/* A Nack whose Nack.transient says the config is good but could not be applied now (a bind, a
 * save): the controller may push the same version again (README.md). */
int ml_fleet_client_nack_transient(struct ml_fleet_client *c, const char *version, uint64_t nonce,
                                   const char *error, size_t n);

const struct ml_fleet_client_counters *ml_fleet_client_counters(const struct ml_fleet_client *c);

#endif
