/* libFuzzer target: one admin HTTP connection through the REAL libwebsockets callbacks — request
 * line, headers (framing, Origin, Host, Authorization) and body, up to the node's answer to a
 * POST /config. Whatever the bytes: no crash, no leak, no read or write outside a buffer, and the
 * connection is gone (its fd closed) once the client hangs up.
 *
 * How: one lws context (ml_loop) made once, with the admin of a fixed config on a vhost that
 * listens nowhere (ml_admin_new_detached; [node] admin says what Host must name, admin_token a
 * file written here). Per input a socketpair: one end is adopted into the admin vhost, the input
 * is written to the other while the loop is serviced without waiting (lws_service(ctx, -1)),
 * the answer read and thrown away, a bounded number of turns; then the client end is closed and
 * the loop serviced until the admin has no connection left. The node's hooks answer at once, so
 * nothing depends on time: deterministic.
 *
 * Input: the bytes a client sends. Seeds: tests/fuzz/corpus/admin_request/. */
#include "admin/admin_int.h"
#include "config/errors.h"
#include "config/snapshot.h"
#include "core/log.h"
#include "core/loop.h"
#include "proxy/proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Loop turns per input while the client still talks, and after it hung up. */
#define FUZZ_TURNS 256
#define FUZZ_CLOSE_TURNS 64
/* The token the seeds carry (the *_token files of tests/fuzz/corpus/admin_request). */
#define FUZZ_TOKEN "fuzz-admin-token-0123456789abcdef"

static struct ml_loop *loop;
static struct ml_proxy *proxy;
static struct ml_admin *admin;
static char token_path[64];

static void fake_apply(void *user, const char *text, size_t n, unsigned int token)
{
    (void)user;
    /* answered at once, as a node whose check fails or passes quickly would */
    if (n > 0 && text[0] == '[') {
        ml_admin_apply_done(admin, token, 200, "version: local-000000000000\n");
    } else {
        ml_admin_apply_done(admin, token, 400, "push:1: expected a section header");
    }
}

static long fake_stats(void *user, bool prometheus, char *out, size_t cap)
{
    (void)user;
    int n = snprintf(out, cap, prometheus ? "meshlet_fake 1\n" : "fake 1\n");
    return n < 0 || (size_t)n >= cap ? -ENOBUFS : n;
}

static long fake_fleet(void *user, bool prometheus, char *out, size_t cap)
{
    (void)user;
    (void)prometheus;
    int n = snprintf(out, cap, "fleet: off\n");
    return n < 0 || (size_t)n >= cap ? -ENOBUFS : n;
}

static const struct ml_admin_hooks hooks = {
    .apply = fake_apply,
    .render_stats = fake_stats,
    .render_fleet = fake_fleet,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct ml_config_errors errs;
    struct ml_snapshot *snap;
    char ini[256], why[256];
    int fd;

    (void)argc;
    (void)argv;
    ml_log_level = ML_LOG_LEVEL_ERR;
    snprintf(token_path, sizeof(token_path), "/tmp/ml-admin-fuzz-XXXXXX");
    if ((fd = mkstemp(token_path)) < 0 ||
        write(fd, FUZZ_TOKEN "\n", sizeof(FUZZ_TOKEN)) != (ssize_t)sizeof(FUZZ_TOKEN)) {
        __builtin_trap();
    }
    close(fd);
    snprintf(ini, sizeof(ini),
             "[node]\nadmin = 127.0.0.1:15000\nadmin_token = %s\nstate_dir = /tmp\n", token_path);
    ml_config_errors_init(&errs);
    if (ml_config_load_text(ini, strlen(ini), NULL, &errs, &snap) != 0) {
        __builtin_trap(); /* the fixture itself must be valid */
    }
    ml_config_errors_deinit(&errs);
    unlink(token_path); /* read into the snapshot already */
    if ((loop = ml_loop_new()) == NULL || ml_proxy_new(loop, snap, why, sizeof(why), &proxy) != 0 ||
        ml_admin_new_detached(loop, proxy, why, sizeof(why), &admin) != 0 || admin == NULL) {
        __builtin_trap();
    }
    ml_snapshot_unref(snap); /* the proxy holds it */
    ml_admin_set_hooks(admin, &hooks, NULL);
    lws_set_log_level(0, NULL); /* hostile input makes lws talk; nothing to learn from it */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lws_context *ctx = ml_loop_lws_context(loop);
    char sink[4096];
    size_t off = 0;
    bool eof = false;
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
        return 0;
    }
    if (ml_admin_adopt(admin, sv[0]) < 0) {
        close(sv[1]);
        return 0;
    }
    for (int turn = 0; turn < FUZZ_TURNS && !eof; turn++) {
        ssize_t n;
        if (off < size && (n = write(sv[1], data + off, size - off)) > 0) {
            off += (size_t)n;
        }
        lws_service(ctx, -1);
        while ((n = read(sv[1], sink, sizeof(sink))) > 0) {
        }
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            eof = true; /* the admin closed the connection */
        }
    }
    close(sv[1]);
    for (int turn = 0; turn < FUZZ_CLOSE_TURNS && ml_admin_connections(admin) > 0; turn++) {
        lws_service(ctx, -1);
    }
    if (ml_admin_connections(admin) > 0 || fcntl(sv[0], F_GETFD) != -1) {
        __builtin_trap(); /* a connection outlived its client: an fd leak */
    }
    return 0;
}
