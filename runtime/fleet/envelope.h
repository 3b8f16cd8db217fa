/* The fleet wire format: one protobuf Envelope per WebSocket message (README.md here), decoded and
 * encoded with nanopb against runtime/fleet/fleet.proto (+ fleet.options, which bounds every
 * field). No I/O here: bytes in, structs out, and back. This header exposes nanopb's generated
 * types, so only runtime/fleet includes it (nanopb stays behind this seam). */
#ifndef ML_FLEET_ENVELOPE_H
#define ML_FLEET_ENVELOPE_H

#include "core/slice-t.h"
#include "fleet/fleet.pb.h" /* generated into the build dir from fleet.proto + fleet.options */
#include "meshlet_config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Text bounds of the fields, without the NUL; fleet.options gives nanopb these + 1. */
#define ML_FLEET_VERSION_MAX 128
#define ML_FLEET_NODE_ID_MAX 128
#define ML_FLEET_BOARD_MAX 128
#define ML_FLEET_FEATURES_MAX 16
#define ML_FLEET_FEATURE_MAX 31
#define ML_FLEET_ERROR_MAX 4096 /* Nack.error is cut here (config/README.md "Errors") */
/* Hello.labels: at most this many "key=value" strings of at most ML_FLEET_LABEL_MAX bytes (key
 * and value 1..31 bytes each: config/README.md, [node] labels). */
#define ML_FLEET_LABELS_MAX 16
#define ML_FLEET_LABEL_MAX 63

/* What a Push envelope adds around its INI: the oneof's tag and length (1 + 5), the version
 * (1 + 2 + ML_FLEET_VERSION_MAX), the nonce (1 + 10) and the INI's tag and length (1 + 5) are
 * 154 bytes; rounded up. */
#define ML_FLEET_PUSH_OVERHEAD_BYTES 256
_Static_assert(ML_FLEET_PUSH_OVERHEAD_BYTES >= 6 + 3 + ML_FLEET_VERSION_MAX + 11 + 6,
               "a Push's envelope fits its overhead");

/* The largest envelope a node accepts (Kconfig; the fallback only keeps a build without
 * ML_FLEET compiling: nothing calls the fleet code there). */
#ifdef CONFIG_ML_FLEET_MAX_MESSAGE_BYTES
#define ML_FLEET_MAX_MESSAGE_BYTES CONFIG_ML_FLEET_MAX_MESSAGE_BYTES
#else
#define ML_FLEET_MAX_MESSAGE_BYTES (CONFIG_ML_MAX_CONFIG_BYTES + ML_FLEET_PUSH_OVERHEAD_BYTES)
#endif
/* Any config `meshlet check` accepts can be pushed: a board that raises ML_MAX_CONFIG_BYTES
 * raises ML_FLEET_MAX_MESSAGE_BYTES with it. */
_Static_assert(ML_FLEET_MAX_MESSAGE_BYTES >=
                   CONFIG_ML_MAX_CONFIG_BYTES + ML_FLEET_PUSH_OVERHEAD_BYTES,
               "CONFIG_ML_FLEET_MAX_MESSAGE_BYTES must be at least CONFIG_ML_MAX_CONFIG_BYTES + "
               "ML_FLEET_PUSH_OVERHEAD_BYTES: a valid config must fit in a Push");

/* ml_fleet_envelope_decode's one non-error, non-zero result: the envelope decoded but carries a
 * kind this node does not know (an empty oneof), to be ignored and counted (README.md). */
#define ML_FLEET_UNKNOWN_KIND 1

/* Decodes p[0..n) into *out. Returns 0 (out->which_msg is one of
 * meshlet_fleet_v1_Envelope_{hello,push,ack,nack,status}_tag); ML_FLEET_UNKNOWN_KIND when the
 * envelope is well formed but of a kind this node does not know (out is zeroed); -EMSGSIZE when
 * n > ML_FLEET_MAX_MESSAGE_BYTES (nothing is decoded); -EPROTO when the bytes are not an Envelope
 * (bad wire format, truncated, a wrong wire type, a string or repeated field over its bound).
 * Unknown fields inside a known message are skipped. Strings are not checked for UTF-8: they are
 * opaque bytes to the node (a NUL inside one ends the C string). Never allocates.
 * For a Push, out->msg.push.ini points INTO p (no copy): the caller keeps p alive and unchanged
 * while it uses the INI. */
int ml_fleet_envelope_decode(const uint8_t *p, size_t n, meshlet_fleet_v1_Envelope *out);

/* What the node says about itself in its first message. Strings are NUL-terminated and borrowed;
 * NULL is "". */
struct ml_fleet_hello {
    const char *node_id;
    const char *board;
    const char *version;        /* meshlet version */
    const char *config_version; /* "" = the local file runs */
    const char *const *features;
    size_t n_features;
    const char *const *labels; /* "key=value" each ([node] labels); may be NULL when none */
    size_t n_labels;
};

struct ml_fleet_status {
    const char *config_version;
    uint64_t uptime_s;
    uint64_t calls_total;
    uint64_t calls_failed;
    uint32_t endpoints_healthy;
    uint32_t endpoints_total;
};

/* The encoders write one whole Envelope into buf[0..cap) and its length to *n_out. They return 0,
 * -ENOBUFS when it does not fit in cap (buf then holds garbage), or -EINVAL when a string is over
 * its bound above (a programmer or config error: node ids and versions are checked long before;
 * Nack's error is the exception, it is cut). */
int ml_fleet_hello_encode(const struct ml_fleet_hello *h, uint8_t *buf, size_t cap, size_t *n_out);
int ml_fleet_status_encode(const struct ml_fleet_status *s, uint8_t *buf, size_t cap,
                           size_t *n_out);
int ml_fleet_ack_encode(const char *version, uint64_t nonce, uint8_t *buf, size_t cap,
                        size_t *n_out);
/* error[0..error_len) (need not be NUL-terminated) is cut to at most ML_FLEET_ERROR_MAX bytes: at
 * the last whole line that fits, else at a UTF-8 character boundary, so a controller's protobuf
 * library never sees invalid UTF-8 that we made. */
int ml_fleet_nack_encode(const char *version, uint64_t nonce, const char *error, size_t error_len,
                         uint8_t *buf, size_t cap, size_t *n_out);
/* The same with Nack.transient: true when the config is good but could not be applied now (a
 * bind, a save), so the controller may push the same version again later. */
int ml_fleet_nack_encode_transient(const char *version, uint64_t nonce, const char *error,
                                   size_t error_len, bool transient, uint8_t *buf, size_t cap,
                                   size_t *n_out);
/* The controller's side (meshlet controller, tests): ini is borrowed. */
int ml_fleet_push_encode(const char *version, uint64_t nonce, struct ml_slice ini, uint8_t *buf,
                         size_t cap, size_t *n_out);

/* How many bytes of error[0..n) ml_fleet_nack_encode keeps (exposed for tests). */
size_t ml_fleet_error_cut(const char *error, size_t n);

#endif
