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
#include "core/alloc.h"
#include "core/log.h"
#include "core/loop.h"
#include "fleet/client.h"
#include "fleet/client_int.h"
#include "fleet/envelope.h"
#include "fleet/token.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NODE "gw-fuzz"
#define PUSH_TOPIC "meshlet/v1/node/" NODE "/push"
#define OTHER_TOPIC "meshlet/v1/node/gw-other/push"

static struct ml_loop *loop;

static struct {
    struct ml_fleet_client *c;
    bool nack, free_it;
    bool freed;
} run;

static void on_push(void *user, const char *version, uint64_t nonce, const char *ini, size_t n)
{
    (void)user;
    if (!ml_fleet_token_valid(version, strlen(version), ML_FLEET_VERSION_CHARS_MAX)) {
        __builtin_trap();
    }
    if (n > 0) {
        volatile uint8_t sum = 0;
        for (size_t i = 0; i < n; i++) {
            sum += (uint8_t)ini[i];
        }
        (void)sum;
    }
    if (run.free_it) {
        ml_fleet_client_free(run.c);
        run.freed = true;
        return;
    }
    if (run.nack) {
        ml_fleet_client_nack(run.c, version, nonce, ini, n);
    } else {
        ml_fleet_client_ack(run.c, version, nonce);
    }
}

static void fill_report(void *user, struct ml_fleet_report *r)
{
    (void)user;
    (void)r;
}

static const struct ml_fleet_client_ops ops = {
    .on_push = on_push,
    .fill_report = fill_report,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ml_log_level = -1;
    if ((loop = ml_loop_new()) == NULL) {
        __builtin_trap();
    }
    return 0;
}

static struct ml_fleet_client *client_new(void)
{
    struct ml_cfg_fleet f = {0};
    struct ml_fleet_client *c = NULL;
    static const char *const features[] = {"fleet", "fleet-mqtt"};
    const struct ml_fleet_identity id = {NODE, "host", "0.0.0", features, 2};
    char why[256];

    f.present = true;
    f.url = "mqtt://127.0.0.1:9";
    f.url_mqtt = true;
    f.url_host = "127.0.0.1";
    f.url_port = 9;
    f.url_path = "/";
    f.insecure = true;
    f.backoff.from_ms = 100;
    f.backoff.to_ms = 400;
    f.report_interval_ms = 60000;
    if (ml_fleet_client_new(loop, &f, &id, "", &ops, NULL, why, sizeof(why), &c) != 0) {
        __builtin_trap();
    }
    return c;
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
