/* The service manager's readiness protocol (systemd's sd_notify, spoken here without libsystemd):
 * one datagram per state change ("READY=1", "STOPPING=1", "WATCHDOG=1") to the AF_UNIX socket
 * named by $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace). Under any other init
 * system $NOTIFY_SOCKET is not set and every call here is a no-op. */
#ifndef ML_CORE_NOTIFY_H
#define ML_CORE_NOTIFY_H

#include "core/loop-t.h"

struct ml_notify;

/* The notify socket of this process, if the service manager gave one. Returns 0 with *out set, or
 * 0 with *out NULL when $NOTIFY_SOCKET is not set (nothing to tell); -EINVAL for a name that does
 * not fit a socket address, -ENOMEM, or the socket's error. The caller owns *out (ml_notify_free).
 * Reads $WATCHDOG_USEC / $WATCHDOG_PID too: the watchdog starts with ml_notify_ready. */
int ml_notify_new(struct ml_loop *loop, struct ml_notify **out);
/* Disarms the watchdog and closes the socket; NULL is a no-op. */
void ml_notify_free(struct ml_notify *n);

/* "READY=1" (listeners are bound and accept), then "WATCHDOG=1" every WATCHDOG_USEC / 2 from the
 * loop when the manager asked for it: a wedged loop stops the pings and the manager restarts us.
 * NULL is a no-op. */
void ml_notify_ready(struct ml_notify *n);
/* "STOPPING=1": the drain has begun; the watchdog keeps pinging until ml_notify_free. */
void ml_notify_stopping(struct ml_notify *n);

#endif
