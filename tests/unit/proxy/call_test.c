/* proxy/call.c with an in-memory downstream connection (ml_h2_server_new_mem) on a real proxy
 * (real loop, a listener on a port the kernel picks, a cluster nothing listens on): a call
 * meshlet answers itself, with each allocation failing in turn, is freed exactly once and the
 * drain that waits for it completes. Before the fix a call whose answer failed with ENOMEM was
 * reset downstream but never freed: it held its snapshot and the drain waited for it until
 * drain_timeout. */
#include "proxy/call.h"

#include "config/errors.h"
#include "config/snapshot.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/loop.h"
#include "h2/h2.h"
#include "proxy/proxy.h"
#include "proxy/proxy_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "h2/h2_frames.h"

/* ---- the client's bytes (HPACK literals without Huffman, as tests/unit/h2/conn_test.c) ---- */

/* A gRPC request for path on stream, with END_STREAM (no body). */
static void put_grpc_call(struct h2_bytes *b, uint32_t stream, const char *path)
{
    struct h2_bytes block = {.n = 0};

    h2_put_field(&block, ":method", "POST");
    h2_put_field(&block, ":scheme", "http");
    h2_put_field(&block, ":path", path);
    h2_put_field(&block, ":authority", "localhost");
    h2_put_field(&block, "content-type", "application/grpc");
    h2_put_field(&block, "te", "trailers");
    h2_put_frame(b, 1 /* HEADERS */, 0x4 | 0x1 /* END_HEADERS | END_STREAM */, stream, block.p,
                 block.n);
}

/* ---- the downstream connection: h2 in memory, calls on a real proxy ---------------------- */

struct harness {
    struct ml_loop *loop;
    struct ml_snapshot *snap;
    struct ml_proxy *p;
    struct ml_h2_conn *c; /* NULL once torn down */
};

static void on_request(void *user, struct ml_h2_stream *s, struct ml_h2_hdrs *hdrs, bool end_stream)
{
    struct harness *h = user;

    ml_call_start(h->p, h->p->listeners[0], s, hdrs, end_stream);
}

static void on_conn_close(void *user, struct ml_h2_conn *c)
{
    ((struct harness *)user)->c = NULL;
}

static const struct ml_h2_server_ops server_ops = {.on_request = on_request,
                                                   .on_close = on_conn_close};

static int discard_output(void *user, const uint8_t *p, size_t n)
{
    return 0;
}

/* A loopback port nothing listens on right now. */
static unsigned free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &n), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void harness_new(struct harness *h)
{
    struct ml_config_errors errs;
    char text[512], why[256];
    struct h2_bytes preface = {.n = 0};

    snprintf(text, sizeof(text),
             "[node]\nstate_dir = /tmp\naccess_log = off\n[listener l]\nbind = 127.0.0.1:%u\n"
             "[route r]\nlistener = l\nprefix = /routed/\nto = c\n"
             "[cluster c]\nendpoint = 127.0.0.1:1\n",
             free_port());
    ml_config_errors_init(&errs);
    assert_int_equal(ml_config_load_text(text, strlen(text), NULL, &errs, &h->snap), 0);
    ml_config_errors_deinit(&errs);
    assert_non_null(h->loop = ml_loop_new());
    assert_int_equal(ml_proxy_new(h->loop, h->snap, why, sizeof(why), &h->p), 0);
    assert_int_equal(ml_h2_server_new_mem(1, &h->p->listeners[0]->settings, &server_ops, h,
                                          discard_output, h, &h->c),
                     0);
    h2_put(&preface, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    h2_put_frame(&preface, 4 /* SETTINGS */, 0, 0, NULL, 0);
    ml_h2_conn_feed(h->c, preface.p, preface.n);
}

static void harness_free(struct harness *h)
{
    if (h->c != NULL) {
        ml_h2_conn_close(h->c);
    }
    ml_loop_run_deferred(h->loop);
    ml_proxy_free(h->p);
    ml_loop_free(h->loop);
    ml_snapshot_unref(h->snap);
}

static int teardown(void **state)
{
    ml_alloc_fail_after(-1);
    return 0;
}

static int group_setup(void **state)
{
    ml_log_level = -1; /* the paths under test log; keep the output to cmocka's */
    return 0;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_an_answer_that_fails_for_memory_still_frees_the_call_once(void **state)
{
    bool finished = false;

    for (long n = 0; !finished && n < 200; n++) {
        struct harness h;
        struct h2_bytes req = {.n = 0};
        long made;

        harness_new(&h);
        put_grpc_call(&req, 1, "/not.Routed/Call"); /* meshlet answers UNIMPLEMENTED itself */
        ml_alloc_fail_after(n);
        if (h.c != NULL) {
            ml_h2_conn_feed(h.c, req.p, req.n);
        }
        made = ml_alloc_fail_after(-1);
        finished = made < n; /* no allocation failed: every one was tried */
        /* the call's end is deferred to the end of the event: here */
        ml_loop_run_deferred(h.loop);
        assert_int_equal(h.p->n_live_calls, 0);
        /* and a drain has nothing to wait for: it stops at once, no drain timer */
        ml_proxy_drain(h.p, 60000);
        assert_null(h.p->drain);
        harness_free(&h);
    }
    assert_true(finished);
}

static void test_a_call_answered_without_failures_is_freed_when_its_stream_ends(void **state)
{
    struct harness h;
    struct h2_bytes req = {.n = 0};

    harness_new(&h);
    put_grpc_call(&req, 1, "/not.Routed/Call");
    put_grpc_call(&req, 3, "/not.Routed/Other");
    ml_h2_conn_feed(h.c, req.p, req.n);
    ml_loop_run_deferred(h.loop);
    assert_int_equal(h.p->n_live_calls, 0);
    assert_int_equal(h.p->call_ids, 2);
    harness_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_an_answer_that_fails_for_memory_still_frees_the_call_once,
                                  teardown),
        cmocka_unit_test_teardown(
            test_a_call_answered_without_failures_is_freed_when_its_stream_ends, teardown),
    };

    return cmocka_run_group_tests(tests, group_setup, NULL);
}
