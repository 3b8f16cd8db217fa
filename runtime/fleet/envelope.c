/* Envelope coding (README.md here) with nanopb: bounded, allocation-free, no I/O.
 *
 * Push.ini is a callback field whose storage is a struct ml_slice (fleet.options): decoding reads
 * the input through our own stream (src_read) so that the callback knows where in the caller's
 * bytes the INI starts and can point the slice there instead of copying a whole config. */
#include "fleet/envelope.h"

#include "config/store.h"

#include <pb_decode.h>
#include <pb_encode.h>

#include <errno.h>
#include <stdbool.h>
#include <string.h>

/* A pushed version is saved as it came (config/store.h). */
_Static_assert(ML_CONFIG_STORE_VERSION_MAX == ML_FLEET_VERSION_MAX, "version bounds");

/* Every string bound of fleet.options is the one envelope.h says, + 1 for the NUL. */
#define FIELD_CAP(type, member) sizeof(((type *)0)->member)
_Static_assert(FIELD_CAP(meshlet_fleet_v1_Push, version) == ML_FLEET_VERSION_MAX + 1, "options");
_Static_assert(FIELD_CAP(meshlet_fleet_v1_Ack, version) == ML_FLEET_VERSION_MAX + 1, "options");
_Static_assert(FIELD_CAP(meshlet_fleet_v1_Nack, version) == ML_FLEET_VERSION_MAX + 1, "options");
_Static_assert(FIELD_CAP(meshlet_fleet_v1_Nack, error) == ML_FLEET_ERROR_MAX + 1, "options");
_Static_assert(FIELD_CAP(meshlet_fleet_v1_Status, config_version) == ML_FLEET_VERSION_MAX + 1,
               "options");
_Static_assert(FIELD_CAP(meshlet_fleet_v1_Hello, node_id) == ML_FLEET_NODE_ID_MAX + 1, "options");
_Static_assert(FIELD_CAP(meshlet_fleet_v1_Hello, board) == ML_FLEET_BOARD_MAX + 1, "options");
_Static_assert(FIELD_CAP(meshlet_fleet_v1_Hello, version) == ML_FLEET_VERSION_MAX + 1, "options");
_Static_assert(FIELD_CAP(meshlet_fleet_v1_Hello, config_version) == ML_FLEET_VERSION_MAX + 1,
               "options");
_Static_assert(FIELD_CAP(meshlet_fleet_v1_Hello, features[0]) == ML_FLEET_FEATURE_MAX + 1,
               "options");
_Static_assert(FIELD_CAP(meshlet_fleet_v1_Hello, features) /
                       FIELD_CAP(meshlet_fleet_v1_Hello, features[0]) ==
                   ML_FLEET_FEATURES_MAX,
               "options");
_Static_assert(FIELD_CAP(meshlet_fleet_v1_Hello, labels[0]) == ML_FLEET_LABEL_MAX + 1, "options");
_Static_assert(FIELD_CAP(meshlet_fleet_v1_Hello, labels) /
                       FIELD_CAP(meshlet_fleet_v1_Hello, labels[0]) ==
                   ML_FLEET_LABELS_MAX,
               "options");

/* The input of one decode: the caller's bytes and how far nanopb has read. Substreams copy the
 * state pointer, so every level of nesting advances the same pos. */
struct src {
    const uint8_t *p;
    size_t pos;
};

static bool src_read(pb_istream_t *stream, pb_byte_t *buf, size_t count)
{
    struct src *s = stream->state;

    /* pb_read has checked count against bytes_left, which never exceeds the input. */
    if (buf != NULL) {
        memcpy(buf, s->p + s->pos, count);
    }
    s->pos += count;
    return true;
}

/* nanopb's per-message callback for Push's callback fields (named in fleet.pb.h). */
bool meshlet_fleet_v1_Push_callback(pb_istream_t *istream, pb_ostream_t *ostream,
                                    const pb_field_t *field)
{
    struct ml_slice *ini = field->pData;

    if (field->tag != meshlet_fleet_v1_Push_ini_tag) {
        return true;
    }
    if (istream != NULL) {
        struct src *s;

        /* A varint or fixed wire type for ini arrives through a copy on nanopb's stack, not our
         * stream: that is not bytes, so not a Push. */
        if (istream->callback != src_read) {
            PB_RETURN_ERROR(istream, "ini: wrong wire type");
        }
        s = istream->state;
        ini->p = s->p + s->pos;
        ini->n = istream->bytes_left;
        s->pos += istream->bytes_left;
        istream->bytes_left = 0;
        return true;
    }
    if (ostream != NULL && ini->n > 0) {
        return pb_encode_tag_for_field(ostream, field) && pb_encode_string(ostream, ini->p, ini->n);
    }
    return true;
}

int ml_fleet_envelope_decode(const uint8_t *p, size_t n, meshlet_fleet_v1_Envelope *out)
{
    struct src s = {p, 0};
    pb_istream_t stream = {src_read, &s, n, NULL};

    memset(out, 0, sizeof(*out));
    if (n > ML_FLEET_MAX_MESSAGE_BYTES) {
        return -EMSGSIZE;
    }
    if (!pb_decode(&stream, meshlet_fleet_v1_Envelope_fields, out)) {
        memset(out, 0, sizeof(*out));
        return -EPROTO;
    }
    switch (out->which_msg) {
    case meshlet_fleet_v1_Envelope_hello_tag:
    case meshlet_fleet_v1_Envelope_push_tag:
    case meshlet_fleet_v1_Envelope_ack_tag:
    case meshlet_fleet_v1_Envelope_nack_tag:
    case meshlet_fleet_v1_Envelope_status_tag:
        return 0;
    default:
        memset(out, 0, sizeof(*out));
        return ML_FLEET_UNKNOWN_KIND;
    }
}

/* Copies NUL-terminated src (NULL = "") into dst[cap]; -EINVAL if it does not fit. */
static int copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = src != NULL ? strlen(src) : 0;

    if (n >= cap) {
        return -EINVAL;
    }
    memcpy(dst, src != NULL ? src : "", n);
    dst[n] = '\0';
    return 0;
}

static int encode(const meshlet_fleet_v1_Envelope *env, uint8_t *buf, size_t cap, size_t *n_out)
{
    pb_ostream_t stream = pb_ostream_from_buffer(buf, cap);

    if (!pb_encode(&stream, meshlet_fleet_v1_Envelope_fields, env)) {
        /* The messages are all bounded and checked above: only room can run out. */
        return -ENOBUFS;
    }
    *n_out = stream.bytes_written;
    return 0;
}

int ml_fleet_hello_encode(const struct ml_fleet_hello *h, uint8_t *buf, size_t cap, size_t *n_out)
{
    meshlet_fleet_v1_Envelope env = meshlet_fleet_v1_Envelope_init_zero;
    meshlet_fleet_v1_Hello *m = &env.msg.hello;
    int rv;

    env.which_msg = meshlet_fleet_v1_Envelope_hello_tag;
    if ((rv = copy_str(m->node_id, sizeof(m->node_id), h->node_id)) < 0 ||
        (rv = copy_str(m->board, sizeof(m->board), h->board)) < 0 ||
        (rv = copy_str(m->version, sizeof(m->version), h->version)) < 0 ||
        (rv = copy_str(m->config_version, sizeof(m->config_version), h->config_version)) < 0) {
        return rv;
    }
    if (h->n_features > ML_FLEET_FEATURES_MAX) {
        return -EINVAL;
    }
    for (size_t i = 0; i < h->n_features; i++) {
        if ((rv = copy_str(m->features[i], sizeof(m->features[i]), h->features[i])) < 0) {
            return rv;
        }
    }
    m->features_count = (pb_size_t)h->n_features;
    if (h->n_labels > ML_FLEET_LABELS_MAX) {
        return -EINVAL;
    }
    for (size_t i = 0; i < h->n_labels; i++) {
        if ((rv = copy_str(m->labels[i], sizeof(m->labels[i]), h->labels[i])) < 0) {
            return rv;
        }
    }
    m->labels_count = (pb_size_t)h->n_labels;
    return encode(&env, buf, cap, n_out);
}

int ml_fleet_status_encode(const struct ml_fleet_status *s, uint8_t *buf, size_t cap, size_t *n_out)
{
    meshlet_fleet_v1_Envelope env = meshlet_fleet_v1_Envelope_init_zero;
    meshlet_fleet_v1_Status *m = &env.msg.status;
    int rv;

    env.which_msg = meshlet_fleet_v1_Envelope_status_tag;
    if ((rv = copy_str(m->config_version, sizeof(m->config_version), s->config_version)) < 0) {
        return rv;
    }
    m->uptime_s = s->uptime_s;
    m->calls_total = s->calls_total;
    m->calls_failed = s->calls_failed;
    m->endpoints_healthy = s->endpoints_healthy;
    m->endpoints_total = s->endpoints_total;
    return encode(&env, buf, cap, n_out);
}

int ml_fleet_ack_encode(const char *version, uint64_t nonce, uint8_t *buf, size_t cap,
                        size_t *n_out)
{
    meshlet_fleet_v1_Envelope env = meshlet_fleet_v1_Envelope_init_zero;
    int rv;

    env.which_msg = meshlet_fleet_v1_Envelope_ack_tag;
    if ((rv = copy_str(env.msg.ack.version, sizeof(env.msg.ack.version), version)) < 0) {
        return rv;
    }
    env.msg.ack.nonce = nonce;
    return encode(&env, buf, cap, n_out);
}

/* A byte inside a UTF-8 sequence, not the start of a character. */
static bool utf8_continuation(unsigned char c)
{
    return (c & 0xc0) == 0x80;
}

size_t ml_fleet_error_cut(const char *error, size_t n)
{
    size_t cut;

    if (n <= ML_FLEET_ERROR_MAX) {
        return n;
    }
    /* The last whole line (without its '\n') that fits. */
    for (cut = ML_FLEET_ERROR_MAX; cut > 0; cut--) {
        if (error[cut] == '\n') {
            return cut;
        }
    }
    /* One line longer than the bound: cut before a character, never inside one. */
    cut = ML_FLEET_ERROR_MAX;
    while (cut > 0 && utf8_continuation((unsigned char)error[cut])) {
        cut--;
    }
    return cut;
}

int ml_fleet_nack_encode(const char *version, uint64_t nonce, const char *error, size_t error_len,
                         uint8_t *buf, size_t cap, size_t *n_out)
{
    return ml_fleet_nack_encode_transient(version, nonce, error, error_len, false, buf, cap, n_out);
}

int ml_fleet_nack_encode_transient(const char *version, uint64_t nonce, const char *error,
                                   size_t error_len, bool transient, uint8_t *buf, size_t cap,
                                   size_t *n_out)
{
    meshlet_fleet_v1_Envelope env = meshlet_fleet_v1_Envelope_init_zero;
    meshlet_fleet_v1_Nack *m = &env.msg.nack;
    size_t keep = error != NULL ? ml_fleet_error_cut(error, error_len) : 0;
    const char *nul = keep > 0 ? memchr(error, '\0', keep) : NULL;
    int rv;

    env.which_msg = meshlet_fleet_v1_Envelope_nack_tag;
    if ((rv = copy_str(m->version, sizeof(m->version), version)) < 0) {
        return rv;
    }
    m->nonce = nonce;
    if (nul != NULL) {
        keep = (size_t)(nul - error); /* a C string ends there anyway */
    }
    memcpy(m->error, error != NULL ? error : "", keep);
    m->error[keep] = '\0';
    m->transient = transient;
    return encode(&env, buf, cap, n_out);
}

int ml_fleet_push_encode(const char *version, uint64_t nonce, struct ml_slice ini, uint8_t *buf,
                         size_t cap, size_t *n_out)
{
    meshlet_fleet_v1_Envelope env = meshlet_fleet_v1_Envelope_init_zero;
    int rv;

    env.which_msg = meshlet_fleet_v1_Envelope_push_tag;
    if ((rv = copy_str(env.msg.push.version, sizeof(env.msg.push.version), version)) < 0) {
        return rv;
    }
    env.msg.push.nonce = nonce;
    env.msg.push.ini = ini;
    return encode(&env, buf, cap, n_out);
}
