/* libFuzzer target: what a node does with one WebSocket message from its controller, up to the
 * point where it would touch sockets or the disk — envelope decoding, then for a Push the whole
 * check of its INI (ml_config_load_text) and the merge with this node's [node] id and [fleet]
 * (node/merge.c), and the check of the merged text. Whatever the input: no crash, no leak, no
 * read outside it; a merged text that came from a valid push is valid too and keeps our id.
 *
 * Input: the bytes of one WebSocket message. In memory, deterministic. Seeds:
 * tests/fuzz/corpus/fleet_push/ (tests/fuzz/fleet_push_seeds.py). */
#include "config/errors.h"
#include "config/snapshot.h"
#include "core/alloc.h"
#include "fleet/envelope.h"
#include "node/merge.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char running_ini[] = "[node]\n"
                                  "id = gw-1\n"
                                  "admin = off\n"
                                  "state_dir = /tmp\n"
                                  "\n"
                                  "[fleet]\n"
                                  "url = ws://127.0.0.1:9443/fleet\n"
                                  "insecure = on\n"
                                  "backoff = 100ms..2s\n"
                                  "\n"
                                  "[listener in]\n"
                                  "bind = 127.0.0.1:15001\n"
                                  "\n"
                                  "[route all]\n"
                                  "listener = in\n"
                                  "prefix = /\n"
                                  "to = c\n"
                                  "\n"
                                  "[cluster c]\n"
                                  "endpoint = 127.0.0.1:50051\n";

static struct ml_snapshot *running;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct ml_config_errors errs;

    (void)argc;
    (void)argv;
    ml_config_errors_init(&errs);
    if (ml_config_load_text(running_ini, sizeof(running_ini) - 1, "v0", &errs, &running) != 0) {
        __builtin_trap(); /* the fixture itself must be valid */
    }
    ml_config_errors_deinit(&errs);
    return 0;
}

/* Whether one of why's lines ("push:LINE: [node] id: ...") refuses the id itself. Matched at a
 * line's start: a refused value is quoted inside its line and may hold "] id: " (a fuzz find). */
static bool refuses_id(const char *why)
{
    for (const char *l = why; l != NULL && *l != '\0'; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        const char *p = l;

        if (strncmp(p, "push:", 5) != 0) {
            continue;
        }
        for (p += 5; *p >= '0' && *p <= '9'; p++) {
        }
        if (strncmp(p, ": [node] id: ", 13) == 0) {
            return true;
        }
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static meshlet_fleet_v1_Envelope env;
    struct ml_config_errors errs;
    struct ml_snapshot *pushed = NULL, *whole = NULL;
    uint8_t *copy = malloc(size ? size : 1);
    char why[512], *text = NULL;
    size_t n = 0;
    int rv;

    memcpy(copy, data, size);
    rv = ml_fleet_envelope_decode(copy, size, &env);
    if (rv != 0 || env.which_msg != meshlet_fleet_v1_Envelope_push_tag) {
        free(copy);
        return 0;
    }
    ml_config_errors_init(&errs);
    rv = ml_config_load_text((const char *)env.msg.push.ini.p, env.msg.push.ini.n,
                             env.msg.push.version, &errs, &pushed);
    if (rv == 0) {
        rv = ml_node_merge_push(running, pushed, &text, &n, why, sizeof(why));
        if (rv == 0 && text != NULL) {
            ml_config_errors_clear(&errs);
            if (ml_config_load_text(text, n, env.msg.push.version, &errs, &whole) != 0 ||
                strcmp(whole->node.id, "gw-1") != 0 || !whole->fleet.present) {
                __builtin_trap(); /* merging a valid push must give a valid, whole config */
            }
        } else if (rv == -EPERM && strcmp(pushed->node.id, "gw-1") == 0 && refuses_id(why)) {
            __builtin_trap(); /* our own id is never refused (other bootstrap keys may be) */
        }
    }
    ml_snapshot_unref(whole);
    ml_snapshot_unref(pushed);
    ml_free(text);
    ml_config_errors_deinit(&errs);
    free(copy);
    return 0;
}
