/* libFuzzer target: ml_fleet_envelope_decode on outside bytes (what a controller, or anything
 * on the path to it, sends a node). Whatever the input: no crash, no read outside it (it is
 * copied to a buffer of exactly its size), one of the documented results; and what decodes
 * re-encodes with the node's encoders and decodes again to the same message.
 *
 * Input: the bytes of one WebSocket message. In memory, deterministic. Seeds:
 * tests/fuzz/corpus/fleet_envelope/ (tests/fuzz/fleet_envelope_seeds.py). */
#include "fleet/envelope.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint8_t out[ML_FLEET_MAX_MESSAGE_BYTES + 16];
static meshlet_fleet_v1_Envelope a, b;

static int reencode(const meshlet_fleet_v1_Envelope *e, size_t *n)
{
    const char *features[ML_FLEET_FEATURES_MAX];
    const char *labels[ML_FLEET_LABELS_MAX];
    const meshlet_fleet_v1_Hello *h = &e->msg.hello;

    switch (e->which_msg) {
    case meshlet_fleet_v1_Envelope_hello_tag:
        for (size_t i = 0; i < h->features_count; i++) {
            features[i] = h->features[i];
        }
        for (size_t i = 0; i < h->labels_count; i++) {
            labels[i] = h->labels[i];
        }
        return ml_fleet_hello_encode(
            &(struct ml_fleet_hello){h->node_id, h->board, h->version, h->config_version, features,
                                     h->features_count, labels, h->labels_count},
            out, sizeof(out), n);
    case meshlet_fleet_v1_Envelope_push_tag:
        return ml_fleet_push_encode(e->msg.push.version, e->msg.push.nonce, e->msg.push.ini, out,
                                    sizeof(out), n);
    case meshlet_fleet_v1_Envelope_ack_tag:
        return ml_fleet_ack_encode(e->msg.ack.version, e->msg.ack.nonce, out, sizeof(out), n);
    case meshlet_fleet_v1_Envelope_nack_tag:
        return ml_fleet_nack_encode_transient(e->msg.nack.version, e->msg.nack.nonce,
                                              e->msg.nack.error, strlen(e->msg.nack.error),
                                              e->msg.nack.transient, out, sizeof(out), n);
    case meshlet_fleet_v1_Envelope_status_tag: {
        const meshlet_fleet_v1_Status *s = &e->msg.status;

        return ml_fleet_status_encode(
            &(struct ml_fleet_status){s->config_version, s->uptime_s, s->calls_total,
                                      s->calls_failed, s->endpoints_healthy, s->endpoints_total},
            out, sizeof(out), n);
    }
    }
    __builtin_trap();
}

#define STR_EQ(x, y) (strcmp((x), (y)) == 0)

/* Field by field: strings as C strings (the wire may carry bytes after a NUL, which a C string
 * drops, and a repeated string field leaves bytes of a longer earlier value behind its NUL). */
static int same(const meshlet_fleet_v1_Envelope *x, const meshlet_fleet_v1_Envelope *y)
{
    switch (x->which_msg) {
    case meshlet_fleet_v1_Envelope_hello_tag: {
        const meshlet_fleet_v1_Hello *h = &x->msg.hello, *k = &y->msg.hello;

        if (!STR_EQ(h->node_id, k->node_id) || !STR_EQ(h->board, k->board) ||
            !STR_EQ(h->version, k->version) || !STR_EQ(h->config_version, k->config_version) ||
            h->features_count != k->features_count) {
            return 0;
        }
        for (size_t i = 0; i < h->features_count; i++) {
            if (!STR_EQ(h->features[i], k->features[i])) {
                return 0;
            }
        }
        return 1;
    }
    case meshlet_fleet_v1_Envelope_push_tag:
        return STR_EQ(x->msg.push.version, y->msg.push.version) &&
               x->msg.push.nonce == y->msg.push.nonce && x->msg.push.ini.n == y->msg.push.ini.n &&
               (x->msg.push.ini.n == 0 ||
                memcmp(x->msg.push.ini.p, y->msg.push.ini.p, x->msg.push.ini.n) == 0);
    case meshlet_fleet_v1_Envelope_ack_tag:
        return STR_EQ(x->msg.ack.version, y->msg.ack.version) &&
               x->msg.ack.nonce == y->msg.ack.nonce;
    case meshlet_fleet_v1_Envelope_nack_tag:
        return STR_EQ(x->msg.nack.version, y->msg.nack.version) &&
               x->msg.nack.nonce == y->msg.nack.nonce &&
               STR_EQ(x->msg.nack.error, y->msg.nack.error);
    case meshlet_fleet_v1_Envelope_status_tag: {
        const meshlet_fleet_v1_Status *s = &x->msg.status, *t = &y->msg.status;

        return STR_EQ(s->config_version, t->config_version) && s->uptime_s == t->uptime_s &&
               s->calls_total == t->calls_total && s->calls_failed == t->calls_failed &&
               s->endpoints_healthy == t->endpoints_healthy &&
               s->endpoints_total == t->endpoints_total;
    }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *p = malloc(size ? size : 1);
    size_t n = 0;
    int rv;

    if (p == NULL) {
        return 0;
    }
    memcpy(p, data, size);
    rv = ml_fleet_envelope_decode(p, size, &a);
    if (rv != 0 && rv != ML_FLEET_UNKNOWN_KIND && rv != -EPROTO && rv != -EMSGSIZE) {
        __builtin_trap();
    }
    if (rv != 0) {
        if (a.which_msg != 0) {
            __builtin_trap();
        }
        free(p);
        return 0;
    }
    if (a.which_msg == meshlet_fleet_v1_Envelope_push_tag && a.msg.push.ini.n > 0 &&
        (a.msg.push.ini.p < p || a.msg.push.ini.p + a.msg.push.ini.n > p + size)) {
        __builtin_trap();
    }
    if (reencode(&a, &n) != 0 || ml_fleet_envelope_decode(out, n, &b) != 0 ||
        a.which_msg != b.which_msg) {
        __builtin_trap();
    }
    if (!same(&a, &b)) {
        __builtin_trap();
    }
    free(p);
    return 0;
}
