/* fleet/client.c's test hook: drives the real receive path (message reassembly, the bound,
 * envelope decoding, the version rule, on_push, the answers) without a socket, for
 * tests/fuzz/fleet_client_rx_fuzz.c and unit tests. Not for production code. */
#ifndef ML_FLEET_CLIENT_INT_H
#define ML_FLEET_CLIENT_INT_H

#include "fleet/client.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hands in[0..len) to c as libwebsockets' CLIENT_RECEIVE would, with its first/final fragment
 * and binary-frame flags. A client that is not connected is first made so, as if an upgrade had
 * completed (Hello queued, report timer armed) on a connection without a socket; whatever it
 * would write stays queued (bounded) and is dropped when that connection ends. 0: the connection
 * goes on; -ECONNRESET: the piece ended it (protocol error, no memory) or on_push freed c (c is
 * then gone). */
int ml_fleet_client_feed(struct ml_fleet_client *c, const void *in, size_t len, bool first,
                         bool final, bool binary);

/* The same through the MQTT transport (fleet/mqtt.c), as lws' MQTT_CLIENT_RX would: in[0..len)
 * is the piece at pos of a PUBLISH of total payload bytes on topic (NUL-terminated). c's url must
 * be mqtt:// or mqtts:// (else -EINVAL; -ENOTSUP in a build without CONFIG_ML_FLEET_MQTT). The
 * node's own push topic is "meshlet/v1/node/<id>/push". Returns as ml_fleet_client_feed. */
int ml_fleet_client_feed_mqtt(struct ml_fleet_client *c, const char *topic, uint32_t total,
                              uint32_t pos, const void *in, size_t len);

#endif
