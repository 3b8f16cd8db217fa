/* sd_notify over a datagram socket: the whole protocol is "KEY=VALUE\n..." in one datagram to
 * $NOTIFY_SOCKET. Sends never block the loop (MSG_DONTWAIT): a manager that does not read loses
 * a state line, which is what libsystemd does as well. */
#include "core/notify.h"

#include "core/alloc.h"
#include "core/log.h"
#include "core/timer.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* The manager's variables (systemd.exec(5), sd_notify(3)). */
#define ML_NOTIFY_SOCKET_ENV "NOTIFY_SOCKET"
#define ML_NOTIFY_WATCHDOG_USEC_ENV "WATCHDOG_USEC"
#define ML_NOTIFY_WATCHDOG_PID_ENV "WATCHDOG_PID"
/* A watchdog period longer than this is taken as this (the timer's argument is 32-bit ms). */
#define ML_NOTIFY_WATCHDOG_MAX_MS (24u * 60u * 60u * 1000u)

struct ml_notify {
    int fd;
    struct sockaddr_un addr;
    socklen_t addr_len;
    uint32_t watchdog_ms; /* between two WATCHDOG=1; 0: the manager asked for no watchdog */
    struct ml_timer *watchdog;
};

static void send_state(struct ml_notify *n, const char *state)
{
    ssize_t rv;

    do {
        rv = sendto(n->fd, state, strlen(state), MSG_DONTWAIT | MSG_NOSIGNAL,
                    (const struct sockaddr *)&n->addr, n->addr_len);
    } while (rv < 0 && errno == EINTR);
    if (rv < 0) {
        ML_LOG_DBG("notify: %s not sent: %s", state, strerror(errno));
    }
}

/* Half the period the manager gave, as sd_watchdog_enabled(3) advises; 0 when none is asked for
 * us (WATCHDOG_PID names another process) or the value is not a number. */
static uint32_t watchdog_period_ms(void)
{
    const char *usec = getenv(ML_NOTIFY_WATCHDOG_USEC_ENV);
    const char *pid = getenv(ML_NOTIFY_WATCHDOG_PID_ENV);
    unsigned long long v;
    char *end;

    if (usec == NULL || *usec == '\0') {
        return 0;
    }
    if (pid != NULL && *pid != '\0' && strtoll(pid, NULL, 10) != (long long)getpid()) {
        return 0;
    }
    errno = 0;
    v = strtoull(usec, &end, 10);
    if (errno != 0 || *end != '\0' || v == 0) {
        ML_LOG_WRN("notify: %s=%s is not a number of microseconds: no watchdog pings",
                   ML_NOTIFY_WATCHDOG_USEC_ENV, usec);
        return 0;
    }
    v = v / 2 / 1000;
    if (v == 0) {
        v = 1;
    }
    return v > ML_NOTIFY_WATCHDOG_MAX_MS ? ML_NOTIFY_WATCHDOG_MAX_MS : (uint32_t)v;
}

static void on_watchdog(void *user)
{
    struct ml_notify *n = user;

    send_state(n, "WATCHDOG=1");
    ml_timer_arm(n->watchdog, n->watchdog_ms);
}

int ml_notify_new(struct ml_loop *loop, struct ml_notify **out)
{
    const char *name = getenv(ML_NOTIFY_SOCKET_ENV);
    struct ml_notify *n;
    size_t len;
    int rv;

    *out = NULL;
    if (name == NULL || *name == '\0') {
        return 0;
    }
    len = strlen(name);
    if ((name[0] != '/' && name[0] != '@') || len >= sizeof(n->addr.sun_path)) {
        return -EINVAL;
    }
    if ((n = ml_calloc(1, sizeof(*n))) == NULL) {
        return -ENOMEM;
    }
    n->addr.sun_family = AF_UNIX;
    memcpy(n->addr.sun_path, name, len);
    if (name[0] == '@') {
        n->addr.sun_path[0] = '\0'; /* abstract: the name's length says where it ends */
    }
    n->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    if ((n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0) {
        rv = -errno;
        goto fail;
    }
    if ((n->watchdog_ms = watchdog_period_ms()) > 0 &&
        (n->watchdog = ml_timer_new(loop, on_watchdog, n)) == NULL) {
        rv = -ENOMEM;
        goto fail_fd;
    }
    *out = n;
    return 0;

fail_fd:
    close(n->fd);
fail:
    ml_free(n);
    return rv;
}

void ml_notify_free(struct ml_notify *n)
{
    if (n == NULL) {
        return;
    }
    ml_timer_free(n->watchdog);
    close(n->fd);
    ml_free(n);
}

void ml_notify_ready(struct ml_notify *n)
{
    if (n == NULL) {
        return;
    }
    send_state(n, "READY=1");
    if (n->watchdog != NULL) {
        send_state(n, "WATCHDOG=1");
        ml_timer_arm(n->watchdog, n->watchdog_ms);
    }
}

void ml_notify_stopping(struct ml_notify *n)
{
    if (n != NULL) {
        send_state(n, "STOPPING=1");
    }
}
