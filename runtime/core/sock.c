/* The socket seam over libwebsockets' raw-skt role. Who frees what:
 *
 * - struct ml_sock is allocated here (accept or connect) and freed here, once lws has destroyed
 *   its wsi (LWS_CALLBACK_WSI_DESTROY) and any report still owed to the owner has been made.
 * - The owner holds its pointer until on_close runs or until it calls ml_sock_close(); after
 *   either, it never touches the socket again, and no callback reaches it.
 *
 * Deferred work (core/loop.h) runs when the outermost event handled here returns, so what the
 * owner queues from inside one socket's callback runs after it, never nested in it. */
#include "core/sock.h"
#include "core/transport.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/fd_budget.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/loop_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SOCK_PROTOCOL "ml-raw"

struct ml_sock_listener {
    struct ml_loop *loop;
    struct lws_vhost *vh;
    /* lws keeps the pointer (vh->iface, compared when a later vhost is made, until
     * lws_vhost_destroy1 takes vh off the context's list): it must live as long as l. */
    char iface[INET6_ADDRSTRLEN];
    ml_sock_accept_fn *on_accept;
    void *user;
};

/* What the socket's sul reports when it fires. */
enum sock_pending {
    SOCK_PENDING_NONE = 0,
    SOCK_PENDING_TIMEOUT,   /* the connect took longer than the owner's limit */
    SOCK_PENDING_CONNECTED, /* lws connected inside lws_client_connect_via_info */
    SOCK_PENDING_FAILED,    /* the connect failed inside lws_client_connect_via_info */
};

struct ml_sock {
    struct ml_transport tp; /* the socket as a transport (ml_sock_transport): first, cast back */
    struct ml_loop *loop;
    struct lws *wsi;               /* NULL until known, and once lws has destroyed it */
    const struct ml_sock_ops *ops; /* NULL once the owner closed the socket: no more callbacks */
    void *user;
    lws_sorted_usec_list_t sul; /* reports `pending` from the loop, never from inside a call */
    enum sock_pending pending;
    int fail_reason; /* SOCK_PENDING_FAILED: negative errno, and why */
    char fail_why[96];
    bool connecting; /* outgoing, not connected yet */
    bool in_connect; /* inside lws_client_connect_via_info: lws may call back synchronously */
    bool wsi_gone;   /* lws destroyed the wsi */
    bool closing;    /* ml_sock_close ran, or lws is closing it */
    bool reported;   /* on_close ran (or the owner closed it): nothing more to tell */
    bool outgoing;   /* made by ml_sock_connect: counted in loop->n_outgoing until freed */
};

static void on_sul(lws_sorted_usec_list_t *sul);

/* Frees s; an outgoing socket gives its share of the upstream fd budget back. */
static void sock_free(struct ml_sock *s)
{
    struct ml_loop *loop = s->loop;

    if (s->outgoing && --loop->n_outgoing < ML_FD_BUDGET_UPSTREAM && loop->outgoing_full) {
        loop->outgoing_full = false;
        ML_LOG_INF("sock: upstream connections below their fd budget (%d) again: connecting",
                   ML_FD_BUDGET_UPSTREAM);
    }
    ml_free(s);
}

static struct ml_loop *loop_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

/* Event nesting: deferred work runs when the outermost event handler returns, and the
 * handlers share one reading of the clock (core/clock.h). */
static void event_enter(struct ml_loop *loop)
{
    loop->depth++;
    ml_clock_hold();
}

static void event_leave(struct ml_loop *loop)
{
    ml_clock_release();
    if (--loop->depth == 0) {
        ml_loop_run_deferred(loop);
    }
}

/* What a socket's readiness caused: lws serves those after its poll(), the last thing of a
 * service turn, so when ml_loop_run turns the loop the deferred work waits for the turn's end
 * (loop.c runs it as lws_service returns). The reads of ten client connections that each add a
 * call to one upstream connection then end in one send upstream instead of ten (bench, 10x10:
 * 0.76 -> 0.32 sendto per call, tests/bench/README.md). Closes and connect errors may come
 * from lws's timers, which it serves before poll(): their work runs at once, as before. */
static bool is_readiness(int reason)
{
    return reason == LWS_CALLBACK_RAW_RX || reason == LWS_CALLBACK_RAW_WRITEABLE ||
           reason == LWS_CALLBACK_RAW_ADOPT || reason == LWS_CALLBACK_RAW_CONNECTED;
}

static void readiness_leave(struct ml_loop *loop)
{
    if (loop->in_turn) {
        ml_clock_release();
        loop->depth--;
    } else {
        event_leave(loop);
    }
}

/* Tells the owner, once, that the socket is gone. */
static void report_close(struct ml_sock *s, int reason, const char *why)
{
    const struct ml_sock_ops *ops = s->ops;

    s->closing = true;
    if (s->reported) {
        return;
    }
    s->reported = true;
    s->ops = NULL;
    lws_sul_cancel(&s->sul);
    if (ops != NULL && ops->on_close != NULL) {
        ops->on_close(s->user, reason, why);
    }
}

/* lws is done with the wsi: free the socket unless its sul still has something to report. */
static void wsi_destroyed(struct ml_sock *s)
{
    s->wsi = NULL;
    s->wsi_gone = true;
    if (s->in_connect) {
        return; /* ml_sock_connect notices and reports from the sul */
    }
    if (!s->reported) {
        /* Neither the peer nor the owner closed it: lws is being torn down under it. */
        report_close(s, -EIO, "event loop shut down");
    }
    lws_sul_cancel(&s->sul);
    sock_free(s);
}

static void schedule(struct ml_sock *s, enum sock_pending what, uint32_t delay_ms)
{
    s->pending = what;
    lws_sul_schedule(s->loop->lws, 0, &s->sul, on_sul, (lws_usec_t)delay_ms * LWS_US_PER_MS);
}

static void kill_wsi(struct ml_sock *s)
{
    if (s->wsi != NULL) {
        /* Asynchronously, at the next service: lws first flushes what it keeps back (5 s max). */
        lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
}

static void on_sul(lws_sorted_usec_list_t *sul)
{
    struct ml_sock *s = lws_container_of(sul, struct ml_sock, sul);
    struct ml_loop *loop = s->loop;
    enum sock_pending what = s->pending;

    s->pending = SOCK_PENDING_NONE;
    event_enter(loop);
    switch (what) {
    case SOCK_PENDING_CONNECTED:
        if (s->ops != NULL && s->ops->on_connected != NULL) {
            s->ops->on_connected(s->user);
        }
        break;
    case SOCK_PENDING_TIMEOUT:
        report_close(s, -ETIMEDOUT, "connect timed out");
        kill_wsi(s);
        break;
    case SOCK_PENDING_FAILED:
        report_close(s, s->fail_reason, s->fail_why);
        if (s->wsi_gone) {
            sock_free(s); /* lws destroyed the wsi inside lws_client_connect_via_info */
        } else {
            kill_wsi(s);
        }
        break;
    case SOCK_PENDING_NONE:
        break;
    }
    event_leave(loop);
}

static const struct ml_transport_ops sock_transport_ops;

static int on_adopt(struct lws *wsi)
{
    struct ml_sock_listener *l = lws_get_vhost_user(lws_get_vhost(wsi));
    struct ml_sock *s;

    if (l == NULL || l->on_accept == NULL) {
        return -1;
    }
    if ((s = ml_calloc(1, sizeof(*s))) == NULL) {
        ML_LOG_WRN("sock: out of memory accepting a connection: closed");
        return -1;
    }
    s->tp.ops = &sock_transport_ops;
    s->loop = l->loop;
    s->wsi = wsi;
    lws_set_opaque_user_data(wsi, s);
    l->on_accept(l->user, s);
    if (s->ops == NULL && !s->closing) {
        ml_sock_close(s); /* the owner neither took nor closed it */
    }
    return 0;
}

/* Best effort: the errno of a failed connect, for a reason a person can act on. */
static int connect_errno(struct lws *wsi)
{
    int fd = lws_get_socket_fd(wsi), err = 0;
    socklen_t len = sizeof(err);

    if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
        return 0;
    }
    return err;
}

static int sock_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    struct ml_sock *s = wsi != NULL ? lws_get_opaque_user_data(wsi) : NULL;
    struct ml_loop *loop;
    int rv = 0;

    switch (reason) {
    case LWS_CALLBACK_RAW_ADOPT:
    case LWS_CALLBACK_RAW_CONNECTED:
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    case LWS_CALLBACK_RAW_RX:
    case LWS_CALLBACK_RAW_WRITEABLE:
    case LWS_CALLBACK_RAW_CLOSE:
    case LWS_CALLBACK_WSI_DESTROY:
        break;
    default:
        return 0;
    }
    loop = loop_of(wsi);
    event_enter(loop);
    if (s != NULL && reason != LWS_CALLBACK_WSI_DESTROY) {
        s->wsi = wsi; /* an outgoing wsi is known before lws_client_connect_via_info returns */
    }
    switch (reason) {
    case LWS_CALLBACK_RAW_ADOPT:
        rv = on_adopt(wsi);
        break;
    case LWS_CALLBACK_RAW_CONNECTED:
        if (s == NULL) {
            rv = -1;
            break;
        }
        s->connecting = false;
        if (s->in_connect) {
            schedule(s, SOCK_PENDING_CONNECTED, 0);
        } else {
            lws_sul_cancel(&s->sul); /* the connect timeout */
            s->pending = SOCK_PENDING_NONE;
            if (s->ops != NULL && s->ops->on_connected != NULL) {
                s->ops->on_connected(s->user);
            }
        }
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (s != NULL) {
            int err = connect_errno(wsi);

            s->connecting = false;
            s->fail_reason = err != 0 ? -err : -ECONNREFUSED;
            if (err != 0) {
                snprintf(s->fail_why, sizeof(s->fail_why), "%s", strerror(err));
            } else {
                snprintf(s->fail_why, sizeof(s->fail_why), "%.*s", in != NULL ? (int)len : 14,
                         in != NULL ? (const char *)in : "connect failed");
            }
            if (s->in_connect) {
                schedule(s, SOCK_PENDING_FAILED, 0);
            } else {
                report_close(s, s->fail_reason, s->fail_why);
            }
        }
        break;
    case LWS_CALLBACK_RAW_RX:
        if (s != NULL && s->ops != NULL && len > 0) {
            s->ops->on_read(s->user, in, len);
        }
        break;
    case LWS_CALLBACK_RAW_WRITEABLE:
        if (s != NULL && s->ops != NULL && s->ops->on_writable != NULL) {
            s->ops->on_writable(s->user);
        }
        break;
    case LWS_CALLBACK_RAW_CLOSE:
        if (s != NULL) {
            report_close(s, 0, "connection closed");
        }
        break;
    case LWS_CALLBACK_WSI_DESTROY:
        if (s != NULL) {
            lws_set_opaque_user_data(wsi, NULL);
            wsi_destroyed(s);
        }
        break;
    default:
        break;
    }
    if (is_readiness(reason)) {
        readiness_leave(loop);
    } else {
        event_leave(loop);
    }
    return rv;
}

static const struct lws_protocols sock_protocols[] = {
    {
        .name = SOCK_PROTOCOL,
        .callback = sock_callback,
        /* Reads: pt_serv_buf_size (core/loop.c). Writes: one ml_sock_write goes to the kernel
         * in one send() (lws splits at tx_packet_size). */
        .tx_packet_size = ML_SOCK_WRITE_MAX_BYTES,
    },
    LWS_PROTOCOL_LIST_TERM,
};

char *ml_sock_addr_text(const struct ml_sock_addr *a, char *buf, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];

    if (inet_ntop(a->family, a->ip, ip, sizeof(ip)) == NULL) {
        snprintf(ip, sizeof(ip), "?");
    }
    snprintf(buf, cap, a->family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, (unsigned)a->port);
    return buf;
}

char *ml_sock_peer_text(const struct ml_sock *s, char *buf, size_t cap)
{
    static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    struct ml_sock_addr a = {0};
    int fd = s != NULL && s->wsi != NULL && !s->wsi_gone ? lws_get_socket_fd(s->wsi) : -1;

    buf[0] = '\0';
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) < 0) {
        return buf;
    }
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;

        a.family = AF_INET;
        a.port = ntohs(in->sin_port);
        memcpy(a.ip, &in->sin_addr, 4);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        bool mapped = memcmp(in6->sin6_addr.s6_addr, v4_mapped, sizeof(v4_mapped)) == 0;

        a.family = mapped ? AF_INET : AF_INET6;
        a.port = ntohs(in6->sin6_port);
        memcpy(a.ip, in6->sin6_addr.s6_addr + (mapped ? 12 : 0), mapped ? 4 : 16);
    } else {
        return buf;
    }
    return ml_sock_addr_text(&a, buf, cap);
}

/* Why lws could not bind addr: it only says "init server failed", so try the bind once more
 * ourselves to learn the errno (failure path only). */
int ml_sock_bind_errno(const struct ml_sock_addr *a)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd, one = 1, rv = -EIO;

    memset(&ss, 0, sizeof(ss));
    if (a->family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(a->port);
        memcpy(&s6->sin6_addr, a->ip, 16);
        len = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(a->port);
        memcpy(&s4->sin_addr, a->ip, 4);
        len = sizeof(*s4);
    }
    fd = socket(a->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
        rv = -errno;
    }
    close(fd);
    return rv;
}

int ml_sock_listen(struct ml_loop *loop, const struct ml_sock_addr *addr, const char *name,
                   ml_sock_accept_fn *on_accept, void *user, struct ml_sock_listener **out)
{
    struct lws_context_creation_info info;
    struct ml_sock_listener *l;
    int rv;

    *out = NULL;
    if ((l = ml_calloc(1, sizeof(*l))) == NULL) {
        return -ENOMEM;
    }
    if (inet_ntop(addr->family, addr->ip, l->iface, sizeof(l->iface)) == NULL) {
        ml_free(l);
        return -EINVAL;
    }
    l->loop = loop;
    l->on_accept = on_accept;
    l->user = user;
    memset(&info, 0, sizeof(info));
    info.vhost_name = name;
    info.iface = l->iface;
    info.port = addr->port;
    info.protocols = sock_protocols;
    info.options = LWS_SERVER_OPTION_ADOPT_APPLY_LISTEN_ACCEPT_CONFIG |
                   LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
    if (loop->listen_share) {
        /* [node] workers > 1: every worker binds the same address with SO_REUSEPORT and the
         * kernel spreads new connections over them; with one worker the bind stays exclusive */
        info.options |= LWS_SERVER_OPTION_ALLOW_LISTEN_SHARE;
    }
    info.listen_accept_role = "raw-skt";
    info.listen_accept_protocol = SOCK_PROTOCOL;
    info.user = l;
    l->vh = lws_create_vhost(loop->lws, &info);
    if (l->vh == NULL) {
        rv = ml_sock_bind_errno(addr);
        ml_free(l);
        return rv < 0 ? rv : -EIO;
    }
    *out = l;
    return 0;
}

void ml_sock_listener_free(struct ml_sock_listener *l)
{
    if (l == NULL) {
        return;
    }
    /* Closes the listening socket now, and only that: lws_vhost_destroy() would also close
     * every connection accepted on it. lws frees the vhost once its last connection is gone (or
     * with the context). Nothing reaches l afterwards: accepts come only from the listening
     * socket. */
    lws_vhost_destroy1(l->vh);
    ml_free(l);
}

static struct lws_vhost *client_vhost(struct ml_loop *loop)
{
    struct lws_context_creation_info info;

    if (loop->client_vhost == NULL) {
        memset(&info, 0, sizeof(info));
        info.vhost_name = "ml-upstream";
        info.port = CONTEXT_PORT_NO_LISTEN;
        info.protocols = sock_protocols;
        loop->client_vhost = lws_create_vhost(loop->lws, &info);
    }
    return loop->client_vhost;
}

int ml_sock_connect(struct ml_loop *loop, const struct ml_sock_addr *addr, uint32_t timeout_ms,
                    const struct ml_sock_ops *ops, void *user, struct ml_sock **out)
{
    struct lws_client_connect_info ci;
    char ip[INET6_ADDRSTRLEN];
    struct ml_sock *s;
    struct lws *wsi;

    *out = NULL;
    if (inet_ntop(addr->family, addr->ip, ip, sizeof(ip)) == NULL) {
        return -EINVAL;
    }
    if (loop->n_outgoing >= ML_FD_BUDGET_UPSTREAM) {
        /* Upstream keeps to its share of the one fd table (core/fd_budget.h), so the listeners,
         * admin and the fleet client keep theirs. Said once, not per refused connect. */
        if (!loop->outgoing_full) {
            loop->outgoing_full = true;
            ML_LOG_WRN("sock: upstream connections reached their fd budget (%d, "
                       "ML_FD_BUDGET_UPSTREAM): new ones are refused until one closes",
                       ML_FD_BUDGET_UPSTREAM);
        }
        return -EMFILE;
    }
    if (client_vhost(loop) == NULL) {
        return -ENOMEM;
    }
    if ((s = ml_calloc(1, sizeof(*s))) == NULL) {
        return -ENOMEM;
    }
    s->tp.ops = &sock_transport_ops;
    s->loop = loop;
    s->outgoing = true;
    loop->n_outgoing++;
    s->ops = ops;
    s->user = user;
    s->connecting = true;
    memset(&ci, 0, sizeof(ci));
    ci.context = loop->lws;
    ci.vhost = loop->client_vhost;
    ci.address = ip;
    ci.host = ip;
    ci.origin = ip;
    ci.port = addr->port;
    ci.method = "RAW";
    ci.protocol = SOCK_PROTOCOL;
    ci.local_protocol_name = SOCK_PROTOCOL;
    ci.opaque_user_data = s;
    s->in_connect = true;
    wsi = lws_client_connect_via_info(&ci);
    s->in_connect = false;
    if (wsi == NULL || s->wsi_gone) {
        /* Failed at once (lws makes no error callback for that, or made one we held back):
         * report it from the loop, never from inside this call. */
        s->wsi = NULL;
        s->wsi_gone = true;
        if (s->pending != SOCK_PENDING_FAILED) {
            s->fail_reason = -ECONNREFUSED;
            snprintf(s->fail_why, sizeof(s->fail_why), "could not start the connection");
        }
        schedule(s, SOCK_PENDING_FAILED, 0);
    } else {
        s->wsi = wsi;
        if (s->pending == SOCK_PENDING_NONE && timeout_ms > 0) {
            schedule(s, SOCK_PENDING_TIMEOUT, timeout_ms);
        }
    }
    *out = s;
    return 0;
}

void ml_sock_set_ops(struct ml_sock *s, const struct ml_sock_ops *ops, void *user)
{
    s->ops = ops;
    s->user = user;
}

int ml_sock_write(struct ml_sock *s, const uint8_t *p, size_t n)
{
    if (n > ML_SOCK_WRITE_MAX_BYTES) {
        return -EMSGSIZE;
    }
    if (s->wsi == NULL || s->closing || s->connecting) {
        return -EPIPE;
    }
    if (lws_partial_buffered(s->wsi)) {
        lws_callback_on_writable(s->wsi);
        return -EAGAIN;
    }
    if (n == 0) {
        return 0;
    }
    /* LWS_WRITE_RAW adds nothing (no LWS_PRE headroom needed). lws sends what the kernel takes
     * and keeps the rest (at most this write: we refuse more while it does), asking for
     * WRITEABLE itself once it is out. */
    if (lws_write(s->wsi, (unsigned char *)p, n, LWS_WRITE_RAW) < 0) {
        s->closing = true;
        kill_wsi(s); /* on_close follows from lws */
        return -EPIPE;
    }
    return 0;
}

bool ml_sock_can_write(const struct ml_sock *s)
{
    return s->wsi != NULL && !s->closing && !s->connecting && !lws_partial_buffered(s->wsi);
}

void ml_sock_want_writable(struct ml_sock *s)
{
    if (s->wsi != NULL && !s->closing) {
        lws_callback_on_writable(s->wsi);
    }
}

void ml_sock_close(struct ml_sock *s)
{
    if (s == NULL) {
        return;
    }
    s->ops = NULL;
    s->user = NULL;
    s->reported = true;
    s->closing = true;
    if (!s->wsi_gone) {
        lws_sul_cancel(&s->sul);
        s->pending = SOCK_PENDING_NONE;
        kill_wsi(s); /* lws destroys the wsi, then s is freed */
    }
    /* else the sul reporting a failed connect is still scheduled: it frees s (telling nobody) */
}

/* ---- the socket as a transport (core/transport.h) ---------------------------------------- */

static void tp_set_ops(struct ml_transport *t, const struct ml_sock_ops *ops, void *user)
{
    ml_sock_set_ops((struct ml_sock *)t, ops, user);
}

static int tp_write(struct ml_transport *t, const uint8_t *p, size_t n)
{
    return ml_sock_write((struct ml_sock *)t, p, n);
}

static bool tp_can_write(const struct ml_transport *t)
{
    return ml_sock_can_write((const struct ml_sock *)t);
}

static void tp_want_writable(struct ml_transport *t)
{
    ml_sock_want_writable((struct ml_sock *)t);
}

static void tp_close(struct ml_transport *t)
{
    ml_sock_close((struct ml_sock *)t);
}

static const char *tp_none(const struct ml_transport *t)
{
    (void)t;
    return NULL; /* plaintext: no identity, no ALPN */
}

static char *tp_peer_text(const struct ml_transport *t, char *buf, size_t cap)
{
    return ml_sock_peer_text((const struct ml_sock *)t, buf, cap);
}

static const struct ml_transport_ops sock_transport_ops = {
    .set_ops = tp_set_ops,
    .write = tp_write,
    .can_write = tp_can_write,
    .want_writable = tp_want_writable,
    .close = tp_close,
    .peer_identity = tp_none,
    .alpn = tp_none,
    .peer_text = tp_peer_text,
};

struct ml_transport *ml_sock_transport(struct ml_sock *s)
{
    return &s->tp;
}
