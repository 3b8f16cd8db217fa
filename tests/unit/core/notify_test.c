/* core/notify.c: sd_notify's datagrams on $NOTIFY_SOCKET (path and abstract forms), the
 * watchdog period from $WATCHDOG_USEC / $WATCHDOG_PID, and nothing at all without a socket. */
#include "core/alloc.h"
#include "core/loop.h"
#include "core/notify.h"
#include "core/timer.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h> /* struct timeval (glibc brings it with sys/socket.h, musl does not) */
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

struct manager {
    int fd;
    char env[108]; /* what NOTIFY_SOCKET says */
    char path[108];
};

static void manager_open(struct manager *m, bool abstract)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    socklen_t len;

    m->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(m->fd >= 0);
    if (abstract) {
        snprintf(m->env, sizeof(m->env), "@ml-notify-test-%ld", (long)getpid());
        memcpy(sa.sun_path, m->env, strlen(m->env));
        sa.sun_path[0] = '\0';
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(m->env));
        m->path[0] = '\0';
    } else {
        snprintf(m->path, sizeof(m->path), "/tmp/ml-notify-test-%ld.sock", (long)getpid());
        unlink(m->path);
        strcpy(m->env, m->path);
        strcpy(sa.sun_path, m->path);
        len = sizeof(sa);
    }
    assert_int_equal(bind(m->fd, (struct sockaddr *)&sa, len), 0);
    setenv("NOTIFY_SOCKET", m->env, 1);
}

static void manager_close(struct manager *m)
{
    close(m->fd);
    if (m->path[0] != '\0') {
        unlink(m->path);
    }
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
}

/* The next datagram, waiting at most 2 s; "" when none came. */
static const char *manager_recv(struct manager *m)
{
    static char buf[256];
    struct timeval tv = {.tv_sec = 2};
    ssize_t n;

    setsockopt(m->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    n = recv(m->fd, buf, sizeof(buf) - 1, 0);
    buf[n < 0 ? 0 : n] = '\0';
    return buf;
}

static bool manager_quiet(struct manager *m)
{
    char c;

    return recv(m->fd, &c, 1, MSG_DONTWAIT | MSG_PEEK) < 0 && errno == EAGAIN;
}

static void test_without_notify_socket_nothing_is_made_and_null_is_a_no_op(void **state)
{
    struct ml_loop *loop = ml_loop_new();
    struct ml_notify *n = (struct ml_notify *)1;

    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(ml_notify_new(loop, &n), 0);
    assert_null(n);
    ml_notify_ready(NULL);
    ml_notify_stopping(NULL);
    ml_notify_free(NULL);
    ml_loop_free(loop);
}

static void test_a_name_that_is_not_a_socket_address_is_einval(void **state)
{
    static const char *bad[] = {"relative/path", "x"};
    struct ml_loop *loop = ml_loop_new();
    char longname[200];
    struct ml_notify *n;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("NOTIFY_SOCKET", bad[i], 1);
        assert_int_equal(ml_notify_new(loop, &n), -EINVAL);
        assert_null(n);
    }
    memset(longname, 'a', sizeof(longname) - 1);
    longname[0] = '/';
    longname[sizeof(longname) - 1] = '\0';
    setenv("NOTIFY_SOCKET", longname, 1);
    assert_int_equal(ml_notify_new(loop, &n), -EINVAL);
    unsetenv("NOTIFY_SOCKET");
    ml_loop_free(loop);
}

static void ready_then_stopping(bool abstract)
{
    struct ml_loop *loop = ml_loop_new();
    struct manager m;
    struct ml_notify *n;

    manager_open(&m, abstract);
    assert_int_equal(ml_notify_new(loop, &n), 0);
    assert_non_null(n);
    ml_notify_ready(n);
    assert_string_equal(manager_recv(&m), "READY=1");
    assert_true(manager_quiet(&m)); /* no watchdog asked for */
    ml_notify_stopping(n);
    assert_string_equal(manager_recv(&m), "STOPPING=1");
    ml_notify_free(n);
    manager_close(&m);
    ml_loop_free(loop);
}

static void test_ready_and_stopping_on_a_path_socket(void **state)
{
    ready_then_stopping(false);
}

static void test_ready_and_stopping_on_an_abstract_socket(void **state)
{
    ready_then_stopping(true);
}

static void stop_loop(void *user)
{
    ml_loop_stop(user);
}

static void test_watchdog_pings_from_the_loop_at_half_the_period(void **state)
{
    struct ml_loop *loop = ml_loop_new();
    struct ml_timer *stop = ml_timer_new(loop, stop_loop, loop);
    struct manager m;
    struct ml_notify *n;
    int pings = 0;

    manager_open(&m, false);
    setenv("WATCHDOG_USEC", "100000", 1); /* a ping every 50 ms */
    assert_int_equal(ml_notify_new(loop, &n), 0);
    ml_notify_ready(n);
    assert_string_equal(manager_recv(&m), "READY=1");
    assert_string_equal(manager_recv(&m), "WATCHDOG=1"); /* at once: the period starts now */
    ml_timer_arm(stop, 300);
    assert_int_equal(ml_loop_run(loop), 0);
    while (!manager_quiet(&m)) {
        assert_string_equal(manager_recv(&m), "WATCHDOG=1");
        pings++;
    }
    /* 300 ms at 50 ms: about 6; generous bounds, a loaded machine is slow. */
    assert_true(pings >= 1 && pings <= 10);
    ml_notify_free(n);
    ml_timer_free(stop);
    manager_close(&m);
    ml_loop_free(loop);
}

static void test_no_watchdog_for_another_pid_or_a_bad_period(void **state)
{
    static const char *cases[][2] = {{"100000", "1"}, {"1x", NULL}, {"0", NULL}, {"", NULL}};
    struct ml_loop *loop = ml_loop_new();
    struct manager m;
    struct ml_notify *n;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        manager_open(&m, false);
        setenv("WATCHDOG_USEC", cases[i][0], 1);
        if (cases[i][1] != NULL) {
            setenv("WATCHDOG_PID", cases[i][1], 1);
        }
        assert_int_equal(ml_notify_new(loop, &n), 0);
        ml_notify_ready(n);
        assert_string_equal(manager_recv(&m), "READY=1");
        assert_true(manager_quiet(&m));
        ml_notify_free(n);
        manager_close(&m);
    }
    ml_loop_free(loop);
}

static void test_each_allocation_failing_in_turn_is_enomem_without_a_leak(void **state)
{
    struct ml_loop *loop = ml_loop_new();
    struct manager m;
    struct ml_notify *n;
    int fail_at, rv;

    manager_open(&m, false);
    setenv("WATCHDOG_USEC", "100000", 1);
    for (fail_at = 0;; fail_at++) {
        ml_alloc_fail_after(fail_at);
        rv = ml_notify_new(loop, &n);
        ml_alloc_fail_after(-1);
        if (rv == 0) {
            break;
        }
        assert_int_equal(rv, -ENOMEM);
        assert_null(n);
    }
    assert_true(fail_at >= 2); /* the notifier, its watchdog timer */
    ml_notify_free(n);
    manager_close(&m);
    ml_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_without_notify_socket_nothing_is_made_and_null_is_a_no_op),
        cmocka_unit_test(test_a_name_that_is_not_a_socket_address_is_einval),
        cmocka_unit_test(test_ready_and_stopping_on_a_path_socket),
        cmocka_unit_test(test_ready_and_stopping_on_an_abstract_socket),
        cmocka_unit_test(test_watchdog_pings_from_the_loop_at_half_the_period),
        cmocka_unit_test(test_no_watchdog_for_another_pid_or_a_bad_period),
        cmocka_unit_test(test_each_allocation_failing_in_turn_is_enomem_without_a_leak),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
