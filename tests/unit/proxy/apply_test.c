/* proxy/apply.c: prepare, commit and abort on a real loop with real listening sockets (ports the
 * kernel picks, on 127.0.0.1), no traffic: which binds are kept, made or closed; a bind that fails
 * and each failing allocation leave the running proxy as it was; the snapshot switches only at
 * commit; ml_proxy_free after any number of commits. The data path across an apply (calls in
 * flight, pooled connections) is tested end to end in tests/integration/test_hot_apply.py. */
#include "proxy/proxy.h"

#include "config/errors.h"
#include "config/snapshot-t.h"
#include "config/snapshot.h"
#include "core/alloc.h"
#include "core/loop.h"
#include "core/loop_int.h" /* spin(): runs the loop again after a stop */
#include "core/timer.h"
#include "proxy/obs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

static int teardown(void **state)
{
    ml_alloc_fail_after(-1);
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

/* A socket listening on port (the test holds it: a bind there fails). */
static int hold_port(unsigned port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 1), 0);
    return fd;
}

static void stop_loop(void *user)
{
    ml_loop_stop(user);
}

/* Runs the loop for ms: lws closes a listening socket from its service. */
static void spin(struct ml_loop *loop, uint32_t ms)
{
    struct ml_timer *t = ml_timer_new(loop, stop_loop, loop);

    assert_non_null(t);
    loop->stop = 0; /* ml_loop_run runs once per ml_loop_stop: the tests run it again */
    ml_timer_arm(t, ms);
    assert_int_equal(ml_loop_run(loop), 0);
    ml_timer_free(t);
}

/* true when a socket is bound to port (a bind there fails); no connection is made, which would
 * leave one on the proxy's side. */
static bool listening(unsigned port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    bool yes;

    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    yes = bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 && errno == EADDRINUSE;
    close(fd);
    return yes;
}

/* Listeners named l<port> on each port (0 ends the list), each with a route to cluster c. */
static struct ml_snapshot *config(const char *cluster_extra, const unsigned *ports)
{
    struct ml_config_errors errs;
    struct ml_snapshot *s = NULL;
    char text[2048];
    size_t n = 0;
    int rv;

    n += (size_t)snprintf(text + n, sizeof(text) - n, "[node]\nstate_dir = /tmp\n");
    for (; *ports != 0; ports++) {
        n += (size_t)snprintf(text + n, sizeof(text) - n,
                              "[listener l%u]\nbind = 127.0.0.1:%u\n"
                              "[route r%u]\nlistener = l%u\nto = c\n",
                              *ports, *ports, *ports, *ports);
    }
    snprintf(text + n, sizeof(text) - n, "[cluster c]\nendpoint = 127.0.0.1:1\n%s\n",
             cluster_extra);
    ml_config_errors_init(&errs);
    rv = ml_config_load_text(text, strlen(text), NULL, &errs, &s);
    for (size_t i = 0; i < errs.n; i++) {
        print_error("  %d: %s\n", errs.v[i].line, errs.v[i].text);
    }
    ml_config_errors_deinit(&errs);
    assert_int_equal(rv, 0);
    return s;
}

static void test_commit_keeps_remaining_binds_makes_new_ones_and_closes_the_gone(void **state)
{
    unsigned a = free_port(), b = free_port(), c = free_port();
    struct ml_snapshot *s1 = config("", (unsigned[]){a, b, 0});
    struct ml_snapshot *s2 = config("max_requests = 9", (unsigned[]){c, a, 0});
    struct ml_loop *loop = ml_loop_new();
    struct ml_proxy_change *ch;
    struct ml_proxy *p;
    char why[256];

    assert_non_null(loop);
    assert_int_equal(ml_proxy_new(loop, s1, why, sizeof(why), &p), 0);
    assert_int_equal(ml_proxy_prepare(p, s2, why, sizeof(why), &ch), 0);
    assert_true(listening(c)); /* bound (the kernel's backlog holds clients) */
    assert_ptr_equal(ml_proxy_snapshot(p), s1);
    assert_true(ml_proxy_ready(p));
    /* one change at a time */
    assert_int_equal(ml_proxy_prepare(p, s2, why, sizeof(why), &(struct ml_proxy_change *){0}),
                     -EBUSY);
    ml_proxy_commit(p, ch);
    spin(loop, 50);
    assert_ptr_equal(ml_proxy_snapshot(p), s2);
    assert_true(ml_proxy_ready(p));
    assert_true(listening(a));
    assert_true(listening(c));
    assert_false(listening(b));
    /* and back again, twice: nothing left over at ml_proxy_free */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ml_proxy_prepare(p, i == 0 ? s1 : s2, why, sizeof(why), &ch), 0);
        ml_proxy_commit(p, ch);
        spin(loop, 50);
    }
    assert_ptr_equal(ml_proxy_snapshot(p), s2);
    assert_false(listening(b));
    ml_proxy_free(p);
    ml_loop_free(loop);
    ml_snapshot_unref(s2);
    ml_snapshot_unref(s1);
}

static void test_a_bind_that_fails_fails_the_prepare_and_nothing_changes(void **state)
{
    unsigned a = free_port(), b = free_port(), c = free_port();
    struct ml_snapshot *s1 = config("", (unsigned[]){a, 0});
    struct ml_snapshot *s2 = config("", (unsigned[]){a, b, c, 0});
    struct ml_loop *loop = ml_loop_new();
    struct ml_proxy_change *ch = (struct ml_proxy_change *)&ch;
    struct ml_proxy *p;
    char why[256] = "";
    int held = hold_port(c);

    assert_int_equal(ml_proxy_new(loop, s1, why, sizeof(why), &p), 0);
    assert_int_equal(ml_proxy_prepare(p, s2, why, sizeof(why), &ch), -EADDRINUSE);
    assert_null(ch);
    assert_non_null(strstr(why, "cannot bind"));
    spin(loop, 50);
    assert_false(listening(b)); /* the bind made before the failing one was undone */
    assert_true(listening(a));
    assert_ptr_equal(ml_proxy_snapshot(p), s1);
    close(held);
    /* an abort undoes a prepare that worked */
    assert_int_equal(ml_proxy_prepare(p, s2, why, sizeof(why), &ch), 0);
    assert_true(listening(b));
    ml_proxy_abort(p, ch);
    spin(loop, 50);
    assert_false(listening(b));
    assert_false(listening(c));
    assert_ptr_equal(ml_proxy_snapshot(p), s1);
    /* and a prepare left open is undone by ml_proxy_free */
    assert_int_equal(ml_proxy_prepare(p, s2, why, sizeof(why), &ch), 0);
    ml_proxy_free(p);
    ml_loop_free(loop);
    ml_snapshot_unref(s2);
    ml_snapshot_unref(s1);
}

static int connect_to(unsigned port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* A client of a new bind that comes between prepare and commit is not served before the commit
 * (no SETTINGS from us, its bytes wait), and is served after it as if it had just come. */
static void test_a_connection_to_a_prepared_bind_waits_for_the_commit(void **state)
{
    static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                     "\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    unsigned a = free_port(), b = free_port();
    struct ml_snapshot *s1 = config("", (unsigned[]){a, 0});
    struct ml_snapshot *s2 = config("", (unsigned[]){a, b, 0});
    struct ml_loop *loop = ml_loop_new();
    struct ml_proxy_change *ch;
    struct ml_proxy *p;
    uint8_t got[64];
    char why[256];
    int fd;

    assert_int_equal(ml_proxy_new(loop, s1, why, sizeof(why), &p), 0);
    assert_int_equal(ml_proxy_prepare(p, s2, why, sizeof(why), &ch), 0);
    fd = connect_to(b);
    assert_int_equal(write(fd, preface, sizeof(preface) - 1), (ssize_t)(sizeof(preface) - 1));
    spin(loop, 50);
    assert_int_equal(recv(fd, got, sizeof(got), MSG_DONTWAIT), -1); /* nothing yet */
    assert_int_equal(errno, EAGAIN);
    ml_proxy_commit(p, ch);
    spin(loop, 50);
    /* our SETTINGS (type 4, not an ACK first), then the ACK of theirs */
    assert_true(recv(fd, got, sizeof(got), MSG_DONTWAIT) >= 9);
    assert_int_equal(got[3], 0x04);
    assert_int_equal(got[4], 0x00);
    close(fd);
    ml_proxy_free(p);
    ml_loop_free(loop);
    ml_snapshot_unref(s2);
    ml_snapshot_unref(s1);
}

/* Each allocation of a prepare failing in turn: -ENOMEM, nothing bound, nothing leaked (the
 * sanitizer build checks), then it works. */
static void test_each_failing_allocation_in_prepare_leaves_the_proxy_as_it_was(void **state)
{
    unsigned a = free_port(), b = free_port();
    struct ml_snapshot *s1 = config("", (unsigned[]){a, 0});
    struct ml_snapshot *s2 = config("", (unsigned[]){a, b, 0});
    struct ml_loop *loop = ml_loop_new();
    struct ml_proxy_change *ch;
    struct ml_proxy *p;
    char why[256];
    long fail_at;
    int rv;

    assert_int_equal(ml_proxy_new(loop, s1, why, sizeof(why), &p), 0);
    for (fail_at = 0;; fail_at++) {
        ml_alloc_fail_after(fail_at);
        rv = ml_proxy_prepare(p, s2, why, sizeof(why), &ch);
        ml_alloc_fail_after(-1);
        spin(loop, 50);
        if (rv == 0) {
            break;
        }
        assert_true(rv == -ENOMEM || rv == -EIO);
        assert_null(ch);
        assert_false(listening(b));
        assert_ptr_equal(ml_proxy_snapshot(p), s1);
    }
    assert_true(fail_at >= 5);
    ml_proxy_commit(p, ch);
    assert_ptr_equal(ml_proxy_snapshot(p), s2);
    ml_proxy_free(p);
    ml_loop_free(loop);
    ml_snapshot_unref(s2);
    ml_snapshot_unref(s1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_teardown(f, teardown)
        T(test_commit_keeps_remaining_binds_makes_new_ones_and_closes_the_gone),
        T(test_a_bind_that_fails_fails_the_prepare_and_nothing_changes),
        T(test_a_connection_to_a_prepared_bind_waits_for_the_commit),
        T(test_each_failing_allocation_in_prepare_leaves_the_proxy_as_it_was),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
