/* Envelopes in and out for the controller: fleet/envelope.h's nanopb codec, translated into the
 * controller's own structs so nanopb's types stay in this file. */
#include "controller/controller_int.h"

#include "core/alloc.h"
#include "fleet/envelope.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

_Static_assert(ML_CTL_TEXT_MAX == ML_FLEET_NODE_ID_MAX && ML_CTL_TEXT_MAX == ML_FLEET_BOARD_MAX &&
                   ML_CTL_TEXT_MAX == ML_FLEET_VERSION_MAX,
               "controller text bounds follow fleet/envelope.h");
_Static_assert(ML_CTL_FEATURES_MAX == ML_FLEET_FEATURES_MAX &&
                   ML_CTL_FEATURE_MAX == ML_FLEET_FEATURE_MAX,
               "controller feature bounds follow fleet/envelope.h");
_Static_assert(ML_CTL_ERROR_MAX == ML_FLEET_ERROR_MAX, "Nack error bound");
_Static_assert(ML_CTL_LABELS_MAX == ML_FLEET_LABELS_MAX && ML_CTL_LABEL_MAX == ML_FLEET_LABEL_MAX,
               "controller label bounds follow fleet/envelope.h");

/* nanopb's strings are NUL-terminated within their bound; copy with the same bound. */
#define COPY(dst, src) snprintf((dst), sizeof(dst), "%s", (src))

int ml_ctl_msg_decode(const uint8_t *p, size_t n, struct ml_ctl_msg *out)
{
    /* ~5 KiB: on the heap-free path, still small enough for the loop's stack. */
    meshlet_fleet_v1_Envelope env;
    int rv;

    memset(out, 0, sizeof(*out));
    rv = ml_fleet_envelope_decode(p, n, &env);
    if (rv == ML_FLEET_UNKNOWN_KIND) {
        out->kind = ML_CTL_MSG_UNKNOWN;
        return 0;
    }
    if (rv < 0) {
        return rv;
    }
    switch (env.which_msg) {
    case meshlet_fleet_v1_Envelope_hello_tag: {
        const meshlet_fleet_v1_Hello *h = &env.msg.hello;

        out->kind = ML_CTL_MSG_HELLO;
        COPY(out->hello.node_id, h->node_id);
        COPY(out->hello.board, h->board);
        COPY(out->hello.version, h->version);
        COPY(out->hello.config_version, h->config_version);
        for (size_t i = 0; i < h->features_count && i < ML_CTL_FEATURES_MAX; i++) {
            COPY(out->hello.features[i], h->features[i]);
        }
        out->hello.n_features = h->features_count;
        for (size_t i = 0; i < h->labels_count && i < ML_CTL_LABELS_MAX; i++) {
            COPY(out->hello.labels[i], h->labels[i]);
        }
        out->hello.n_labels = h->labels_count;
        break;
    }
    case meshlet_fleet_v1_Envelope_push_tag:
        out->kind = ML_CTL_MSG_PUSH;
        break;
    case meshlet_fleet_v1_Envelope_ack_tag:
        out->kind = ML_CTL_MSG_ACK;
        COPY(out->answer.version, env.msg.ack.version);
        out->answer.nonce = env.msg.ack.nonce;
        break;
    case meshlet_fleet_v1_Envelope_nack_tag:
        out->kind = ML_CTL_MSG_NACK;
        COPY(out->answer.version, env.msg.nack.version);
        out->answer.nonce = env.msg.nack.nonce;
        COPY(out->answer.error, env.msg.nack.error);
        out->answer.transient = env.msg.nack.transient;
        break;
    case meshlet_fleet_v1_Envelope_status_tag: {
        const meshlet_fleet_v1_Status *s = &env.msg.status;

        out->kind = ML_CTL_MSG_STATUS;
        COPY(out->status.config_version, s->config_version);
        out->status.uptime_s = s->uptime_s;
        out->status.calls_total = s->calls_total;
        out->status.calls_failed = s->calls_failed;
        out->status.endpoints_healthy = s->endpoints_healthy;
        out->status.endpoints_total = s->endpoints_total;
        break;
    }
    default:
        out->kind = ML_CTL_MSG_UNKNOWN;
        break;
    }
    return 0;
}

int ml_ctl_msg_push(const char *version, uint64_t nonce, struct ml_slice ini, size_t pre,
                    uint8_t **out, size_t *n_out)
{
    /* The envelope is the INI plus a few dozen bytes of tags, lengths, version and nonce. */
    size_t cap = ini.n + 64 + ML_CTL_TEXT_MAX;
    uint8_t *buf;
    int rv;

    *out = NULL;
    if (cap > ML_FLEET_MAX_MESSAGE_BYTES) {
        cap = ML_FLEET_MAX_MESSAGE_BYTES;
    }
    if ((buf = ml_malloc(pre + cap)) == NULL) {
        return -ENOMEM;
    }
    if ((rv = ml_fleet_push_encode(version, nonce, ini, buf + pre, cap, n_out)) < 0) {
        ml_free(buf);
        return rv == -EINVAL ? -ENOBUFS : rv;
    }
    *out = buf;
    return 0;
}

size_t ml_ctl_msg_max_bytes(void)
{
    return ML_FLEET_MAX_MESSAGE_BYTES;
}
