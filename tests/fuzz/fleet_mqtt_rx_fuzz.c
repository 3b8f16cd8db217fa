/* libFuzzer target: the fleet client's receive path over MQTT (fleet/mqtt.c ml_fleet_mqtt_rx →
 * fleet/client.c), fed through the test hook ml_fleet_client_feed_mqtt (fleet/client_int.h) as
 * lws' MQTT_CLIENT_RX would: PUBLISH payloads in pieces, on the node's push topic or another,
 * with a total size that may be over the bound, empty, or not what the pieces add up to. Over
 * MQTT a bad message is counted and skipped, never fatal (the broker relays it): so the client
 * must stay connected through anything, and never push more than one envelope per PUBLISH.
 * No socket: one client per input on a loop that never runs.
 *
 * Input: a sequence of PUBLISHes, each [flags][len lo][len hi][len bytes] (cut at the end).
 * flags: bit 0 another topic (a node's neighbour), bit 1 the total says one byte over the bound,
 * bits 2-4 the piece size (1 << (4 + n) bytes, so from 16 up to 2048), bit 5 on_push answers
 * with a Nack, bit 6 on_push frees the client (the input ends there), bit 7 total = len + 1 (the
 * last byte never comes: the message stays incomplete until the next PUBLISH starts).
 * Seeds: tests/fuzz/corpus/fleet_mqtt_rx/ (tests/fuzz/fleet_mqtt_rx_seeds.py). */
#include "fleet/envelope.h"
#include "fleet_fuzz.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PUSH_TOPIC "meshlet/v1/node/" FLEET_FUZZ_NODE "/push"
#define OTHER_TOPIC "meshlet/v1/node/gw-other/push"

static struct ml_fleet_client *client_new(void)
{
    static const char *const features[] = {"fleet", "fleet-mqtt"};

    return fleet_fuzz_client_new("mqtt://127.0.0.1:9", true, "/", features, 2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t at = 0;

    memset(&run, 0, sizeof(run));
    run.c = client_new();
    while (at + 3 <= size) {
        uint8_t flags = data[at];
        size_t len = (size_t)data[at + 1] | (size_t)data[at + 2] << 8, piece, pos = 0;
        const uint8_t *p = data + at + 3;
        const char *topic = flags & 0x01 ? OTHER_TOPIC : PUSH_TOPIC;
        uint32_t total;
        const struct ml_fleet_client_counters *k = ml_fleet_client_counters(run.c);
        uint64_t pushes = k->pushes;

        at += 3;
        if (len > size - at) {
            len = size - at;
        }
        at += len;
        total = flags & 0x02 ? ML_FLEET_MAX_MESSAGE_BYTES + 1u
                             : (uint32_t)len + (flags & 0x80 ? 1u : 0u);
        piece = (size_t)1 << (4 + ((flags >> 2) & 7));
        run.nack = flags & 0x20;
        run.free_it = flags & 0x40;
        do {
            size_t n = len - pos < piece ? len - pos : piece;
            int rv = ml_fleet_client_feed_mqtt(run.c, topic, total, (uint32_t)pos, p + pos, n);

            if (run.freed) {
                if (rv != -ECONNRESET) {
                    __builtin_trap();
                }
                return 0;
            }
            if (rv != 0) {
                __builtin_trap(); /* over MQTT nothing a relay sends ends the connection */
            }
            pos += n;
        } while (pos < len);
        if (k->pushes > pushes + 1) {
            __builtin_trap(); /* one PUBLISH, at most one push */
        }
    }
    ml_fleet_client_free(run.c);
    return 0;
}
