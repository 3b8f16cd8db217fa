/* libFuzzer target: GET /fleet of `meshlet controller` (controller/json.c) over what nodes send.
 * The input is cut at NUL bytes into a node's strings (id, board, version, config_version, the
 * Nack's version and error, the Status's config_version, then features), each bounded as the
 * wire bounds it. Whatever they hold: no crash, no read outside them, no raw control byte in the
 * answer, the record within ML_CTL_JSON_NODE_MAX_BYTES, and a cut marker only on a long error.
 *
 * In memory, deterministic. Seeds: tests/fuzz/corpus/controller_json/. */
#include "controller/controller_int.h"

#include "core/alloc.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HEAD "{\"nodes\":["
#define TAIL "]}\n"

/* The next NUL-terminated piece of data[*at..n) into dst[cap], cut to fit. */
static void take(const uint8_t *data, size_t n, size_t *at, char *dst, size_t cap)
{
    size_t len = 0;

    while (*at < n && data[*at] != 0) {
        if (len + 1 < cap) {
            dst[len++] = (char)data[*at];
        }
        (*at)++;
    }
    dst[len] = '\0';
    if (*at < n) {
        (*at)++; /* the NUL */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ml_ctl ctl; /* large: not on the stack */
    struct ml_ctl_node *node = calloc(1, sizeof(*node));
    char *out = NULL;
    size_t n = 0, at = 0;

    if (node == NULL) {
        return 0;
    }
    take(data, size, &at, node->id, sizeof(node->id));
    take(data, size, &at, node->board, sizeof(node->board));
    take(data, size, &at, node->version, sizeof(node->version));
    take(data, size, &at, node->config_version, sizeof(node->config_version));
    take(data, size, &at, node->nack_version, sizeof(node->nack_version));
    take(data, size, &at, node->nack_error, sizeof(node->nack_error));
    take(data, size, &at, node->status.config_version, sizeof(node->status.config_version));
    while (at < size && node->n_features < ML_CTL_FEATURES_MAX) {
        take(data, size, &at, node->features[node->n_features], ML_CTL_FEATURE_MAX + 1);
        node->n_features++;
    }
    node->has_nack = size > 0 && (data[0] & 1) != 0;
    node->has_status = size > 0 && (data[0] & 2) != 0;
    node->conn = size > 0 && (data[0] & 4) != 0 ? (struct ml_ctl_conn *)node : NULL;
    memset(&ctl, 0, sizeof(ctl));
    ctl.nodes[0] = node;
    ctl.n_nodes = 1;
    if (ml_ctl_json_fleet(&ctl, NULL, NULL, &out, &n) == 0) {
        size_t record = n - strlen(HEAD) - strlen(TAIL);

        if (record > ML_CTL_JSON_NODE_MAX_BYTES) {
            abort(); /* invariant broken: a record over its cap */
        }
        for (size_t i = 0; i < n - 1; i++) {
            if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f) {
                abort(); /* invariant broken: a raw control byte in the JSON */
            }
        }
        if (strstr(out, ML_CTL_JSON_CUT_MARKER) != NULL &&
            (!node->has_nack || strlen(node->nack_error) * 6 <= ML_CTL_JSON_ERROR_MAX_BYTES) &&
            memmem(data, size, ML_CTL_JSON_CUT_MARKER, strlen(ML_CTL_JSON_CUT_MARKER)) == NULL) {
            abort(); /* invariant broken: a cut marker where nothing was cut */
        }
        ml_free(out);
    }
    free(node);
    return 0;
}
