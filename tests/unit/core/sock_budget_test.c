/* core/sock.c keeps outgoing (upstream) sockets within ML_FD_BUDGET_UPSTREAM, so upstream can
 * never take the descriptors of the listeners, admin and the fleet client (core/fd_budget.h):
 * the connect past it is refused with -EMFILE and no callback, and once sockets are freed
 * connects work again. A real loop, connects to a loopback port nothing listens on. */
#include "core/alloc.h"
#include "core/fd_budget.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/sock.h"
#include "core/timer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

struct counts {
    struct ml_loop *loop;
    struct ml_sock_addr addr;
    struct ml_timer *timer;
    int n_closed;
    int phase;       /* 0: the budget's sockets are failing; 1: after they are freed */
    int again_rv;    /* what the connect after they were freed returned */
    bool again_done; /* that socket reported too */
};

static const struct ml_sock_ops ops;

static void on_connected(void *user)
{
}

static void on_read(void *user, const uint8_t *p, size_t n)
{
}

static void on_close(void *user, int reason, const char *why)
{
    struct counts *c = user;

    if (c->phase == 1) {
        c->again_done = true;
        ml_loop_stop(c->loop);
        return;
    }
    if (++c->n_closed == ML_FD_BUDGET_UPSTREAM) {
        ml_timer_arm(c->timer, 200); /* lws frees each socket right after its on_close */
    }
}

/* Every socket of the budget is gone: a connect works again (its failure ends the run). */
static void on_timer(void *user)
{
    struct counts *c = user;
    struct ml_sock *s;

    if (c->phase == 1) {
        ml_loop_stop(c->loop); /* the bound: never reached when the kernel refuses at once */
        return;
    }
    c->phase = 1;
    c->again_rv = ml_sock_connect(c->loop, &c->addr, 5000, &ops, c, &s);
    if (c->again_rv != 0) {
        ml_loop_stop(c->loop);
        return;
    }
    ml_timer_arm(c->timer, 20000);
}

static const struct ml_sock_ops ops = {
    .on_connected = on_connected,
    .on_read = on_read,
    .on_close = on_close,
};

/* A loopback port nothing listens on (bound, then closed): connects to it are refused. */
static struct ml_sock_addr closed_port(void)
{
    struct ml_sock_addr a = {.family = AF_INET};
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    a.port = ntohs(sin.sin_port);
    memcpy(a.ip, &sin.sin_addr, 4);
    return a;
}

static void test_connects_past_the_upstream_budget_are_refused_until_sockets_close(void **state)
{
    static struct counts c;
    struct ml_sock *s;

    memset(&c, 0, sizeof(c));
    c.loop = ml_loop_new();
    assert_non_null(c.loop);
    c.addr = closed_port();
    c.timer = ml_timer_new(c.loop, on_timer, &c);
    assert_non_null(c.timer);
    for (int i = 0; i < ML_FD_BUDGET_UPSTREAM; i++) {
        assert_int_equal(ml_sock_connect(c.loop, &c.addr, 5000, &ops, &c, &s), 0);
    }
    assert_int_equal(ml_sock_connect(c.loop, &c.addr, 5000, &ops, &c, &s), -EMFILE);
    assert_int_equal(ml_sock_connect(c.loop, &c.addr, 5000, &ops, &c, &s), -EMFILE);
    ml_loop_run(c.loop);
    assert_int_equal(c.n_closed, ML_FD_BUDGET_UPSTREAM); /* the refused ones never report */
    assert_int_equal(c.again_rv, 0);
    assert_true(c.again_done);
    ml_timer_free(c.timer);
    ml_loop_free(c.loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connects_past_the_upstream_budget_are_refused_until_sockets_close),
    };

    ml_log_level = -1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
