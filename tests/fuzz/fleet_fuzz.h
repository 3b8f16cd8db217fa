/* What the fleet client's receive fuzz targets (fleet_client_rx_fuzz.c over WebSocket,
 * fleet_mqtt_rx_fuzz.c over MQTT) share: one loop that never runs, a client per input, and the
 * node's side of a push, which checks what the client hands over and answers as the input says.
 * Header-only: each target is one executable of its own (tests/CMakeLists.txt). */
#ifndef ML_TESTS_FUZZ_FLEET_FUZZ_H
#define ML_TESTS_FUZZ_FLEET_FUZZ_H

#include "core/log.h"
#include "core/loop.h"
#include "fleet/client.h"
#include "fleet/client_int.h"
#include "fleet/token.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FLEET_FUZZ_NODE "gw-fuzz"

static struct ml_loop *fleet_fuzz_loop;

/* The current input's client and what its on_push does. */
static struct {
    struct ml_fleet_client *c;
    bool nack, free_it; /* what on_push does with the next push */
    bool freed;         /* on_push freed c: the input ends */
} run;

static void fleet_fuzz_on_push(void *user, const char *version, uint64_t nonce, const char *ini,
                               size_t n)
{
    (void)user;
    if (!ml_fleet_token_valid(version, strlen(version), ML_FLEET_VERSION_CHARS_MAX)) {
        __builtin_trap(); /* the version rule is checked before the node sees a push */
    }
    if (n > 0) {
        /* every byte of the INI is readable (ASan checks the client's buffer bounds) */
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
        ml_fleet_client_nack(run.c, version, nonce, ini, n); /* any bytes as an error text */
    } else {
        ml_fleet_client_ack(run.c, version, nonce);
    }
}

static void fleet_fuzz_fill_report(void *user, struct ml_fleet_report *r)
{
    (void)user;
    (void)r;
}

static void fleet_fuzz_on_push_refused(void *user, const char *version, uint64_t nonce,
                                       const char *error)
{
    (void)user;
    (void)nonce;
    /* what the node logs and shows: printable ASCII only */
    for (const char *s = version; *s; s++) {
        if (*s < 0x20 || *s > 0x7e) {
            __builtin_trap();
        }
    }
    for (const char *s = error; *s; s++) {
        if ((*s < 0x20 && *s != '\n') || *s > 0x7e) {
            __builtin_trap();
        }
    }
}

static const struct ml_fleet_client_ops fleet_fuzz_ops = {
    .on_push = fleet_fuzz_on_push,
    .fill_report = fleet_fuzz_fill_report,
    .on_push_refused = fleet_fuzz_on_push_refused,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ml_log_level = -1; /* thousands of inputs a second: no log lines */
    if ((fleet_fuzz_loop = ml_loop_new()) == NULL) {
        __builtin_trap();
    }
    return 0;
}

/* A client of node FLEET_FUZZ_NODE for url (plain, insecure = on: no TLS under the fuzzer), with
 * the url's parts as config/validate_node.c would set them; it never connects (the loop never
 * runs), inputs reach it through the client_int.h feed hooks. */
static struct ml_fleet_client *fleet_fuzz_client_new(const char *url, bool mqtt, const char *path,
                                                     const char *const *features, size_t n_features)
{
    struct ml_cfg_fleet f = {0};
    struct ml_fleet_client *c = NULL;
    const struct ml_fleet_identity id = {FLEET_FUZZ_NODE, "host", "0.0.0", features,
                                         n_features,      NULL,   0};
    char why[256];

    f.present = true;
    f.url = url;
    f.url_mqtt = mqtt;
    f.url_host = "127.0.0.1";
    f.url_port = 9;
    f.url_path = path;
    f.insecure = true;
    f.backoff.from_ms = 100;
    f.backoff.to_ms = 400;
    f.report_interval_ms = 60000;
    if (ml_fleet_client_new(fleet_fuzz_loop, &f, &id, "", &fleet_fuzz_ops, NULL, why, sizeof(why),
                            &c) != 0) {
        __builtin_trap();
    }
    return c;
}

#endif
