/* h2_backend — a fast gRPC-shaped HTTP/2 backend for tests/bench (a benchmark peer, not a test).
 *
 *   h2_backend PORT [MESSAGE_BYTES [DELAY_MS]]   (listens on 127.0.0.1:PORT; default message
 *                                                100 bytes, no delay)
 *
 * h2c with prior knowledge only (no TLS, no Upgrade). Every request (any method, any path) is
 * answered, once its END_STREAM arrives, like a unary gRPC call: HEADERS (:status 200,
 * content-type application/grpc), one DATA frame with a 5-byte-framed MESSAGE_BYTES message,
 * then trailers (grpc-status 0). The request body is read and dropped (nghttp2's automatic
 * WINDOW_UPDATEs). One thread, level-triggered epoll, 64 KiB reads, nghttp2's output written
 * straight after each read (EPOLLOUT only while a socket is backed up). One process per port.
 * Stops on SIGTERM/SIGINT. Built by tests/bench/build.sh against the meshlet deps prefix.
 *
 * DELAY_MS > 0: a backend that answers late (bench.py's pending deadlines): every request is
 * held DELAY_MS after its END_STREAM, then answered as above. Requests wait in a FIFO per
 * connection (one delay for all: FIFO order is due order); a stream reset meanwhile is skipped.
 * Prints "held N" on stdout each time the number of held requests (streams still open) reaches
 * a multiple of 1000 (0 too), so a benchmark can wait for its load to be in place and gone.
 */
#define _GNU_SOURCE
#include <nghttp2/nghttp2.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_BUF (64 * 1024)
#define MAX_STREAMS 1024

struct held {
    int32_t sid;
    uint64_t due_ms;
};

struct conn {
    int fd;
    nghttp2_session *s;
    uint8_t *out;   /* bytes nghttp2 produced that the socket did not take yet */
    size_t out_len, out_cap;
    int want_out;   /* EPOLLOUT registered */
    struct held *held; /* DELAY_MS: requests waiting for their answer, [held_head, held_len) */
    size_t held_head, held_len, held_cap;
    struct conn *prev, *next; /* every connection (DELAY_MS: the timeout scan) */
};

static uint8_t *g_msg;      /* the 5-byte-framed response message */
static size_t g_msg_len;
static int g_ep;
static volatile sig_atomic_t g_stop;
static uint64_t g_delay_ms;
static size_t g_held; /* requests held on streams still open, all connections */
static char g_mark;   /* stream user data of a held stream */
static struct conn *g_conns;

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const nghttp2_nv g_resp_hdrs[] = {
    {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
    {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE},
};
static const nghttp2_nv g_trailers[] = {
    {(uint8_t *)"grpc-status", (uint8_t *)"0", 11, 1, NGHTTP2_NV_FLAG_NONE},
};

static ssize_t msg_read(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len,
                        uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    size_t off = (size_t)src->fd; /* bytes of g_msg already sent on this stream */
    size_t n = g_msg_len - off;

    (void)ud;
    if (n > len) {
        n = len;
    }
    memcpy(buf, g_msg + off, n);
    src->fd = (int)(off + n);
    if (off + n == g_msg_len) {
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        if (nghttp2_submit_trailer(s, sid, g_trailers, 1) != 0) {
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
    }
    return (ssize_t)n;
}

static void answer(nghttp2_session *s, int32_t sid)
{
    nghttp2_data_provider dp = {.source = {.fd = 0}, .read_callback = msg_read};

    if (nghttp2_submit_response(s, sid, g_resp_hdrs, 2, &dp) != 0) {
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, sid, NGHTTP2_INTERNAL_ERROR);
    }
}

/* Counts held requests in or out; says the count at each multiple of 1000 (0 included). */
static void held_add(int d)
{
    g_held += (size_t)(ssize_t)d;
    if (g_held % 1000 == 0) {
        printf("held %zu\n", g_held);
        fflush(stdout);
    }
}

static int hold(struct conn *c, int32_t sid)
{
    if (c->held_len == c->held_cap) {
        if (c->held_head > 0) { /* compact: the answered ones are before held_head */
            memmove(c->held, c->held + c->held_head,
                    (c->held_len - c->held_head) * sizeof(*c->held));
            c->held_len -= c->held_head;
            c->held_head = 0;
        }
        if (c->held_len == c->held_cap) {
            size_t cap = c->held_cap ? 2 * c->held_cap : 256;
            struct held *h = realloc(c->held, cap * sizeof(*h));
            if (h == NULL) {
                return -1;
            }
            c->held = h;
            c->held_cap = cap;
        }
    }
    nghttp2_session_set_stream_user_data(c->s, sid, &g_mark);
    c->held[c->held_len].sid = sid;
    c->held[c->held_len].due_ms = now_ms() + g_delay_ms;
    c->held_len++;
    held_add(1);
    return 0;
}

/* Answers c's held requests that are due; the earliest due time left, or UINT64_MAX. */
static uint64_t answer_due(struct conn *c, uint64_t now)
{
    while (c->held_head < c->held_len && c->held[c->held_head].due_ms <= now) {
        int32_t sid = c->held[c->held_head++].sid;

        if (nghttp2_session_get_stream_user_data(c->s, sid) == &g_mark) { /* still open */
            nghttp2_session_set_stream_user_data(c->s, sid, NULL);
            held_add(-1);
            answer(c->s, sid);
        }
    }
    return c->held_head < c->held_len ? c->held[c->held_head].due_ms : UINT64_MAX;
}

static int on_stream_close(nghttp2_session *s, int32_t sid, uint32_t error_code, void *ud)
{
    (void)error_code;
    (void)ud;
    if (nghttp2_session_get_stream_user_data(s, sid) == &g_mark) { /* reset while held */
        held_add(-1);
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        if (g_delay_ms == 0 || hold(ud, f->hd.stream_id) < 0) {
            answer(s, f->hd.stream_id);
        }
    }
    return 0;
}

static void conn_free(struct conn *c)
{
    epoll_ctl(g_ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    for (size_t i = c->held_head; i < c->held_len; i++) { /* session_del calls no callbacks */
        if (nghttp2_session_get_stream_user_data(c->s, c->held[i].sid) == &g_mark) {
            held_add(-1);
        }
    }
    nghttp2_session_del(c->s);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        g_conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    free(c->held);
    free(c->out);
    free(c);
}

static int out_append(struct conn *c, const uint8_t *p, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 16384;
        while (cap < c->out_len + n) {
            cap *= 2;
        }
        uint8_t *o = realloc(c->out, cap);
        if (o == NULL) {
            return -1;
        }
        c->out = o;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return 0;
}

/* Collects everything nghttp2 wants to send and writes it; keeps the rest for EPOLLOUT.
 * -1: the connection is done (error or both sides finished). */
static int conn_flush(struct conn *c)
{
    const uint8_t *p;
    ssize_t n;

    while ((n = nghttp2_session_mem_send(c->s, &p)) > 0) {
        if (out_append(c, p, (size_t)n) < 0) {
            return -1;
        }
    }
    if (n < 0) {
        return -1;
    }
    while (c->out_len > 0) {
        ssize_t w = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                break;
            }
            return -1;
        }
        memmove(c->out, c->out + w, c->out_len - (size_t)w);
        c->out_len -= (size_t)w;
    }
    int want = c->out_len > 0;
    if (want != c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
        epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = want;
    }
    if (c->out_len == 0 && !nghttp2_session_want_read(c->s) && !nghttp2_session_want_write(c->s)) {
        return -1;
    }
    return 0;
}

static void conn_new(int fd, nghttp2_session_callbacks *cbs, const nghttp2_settings_entry *iv,
                     size_t niv)
{
    struct conn *c = calloc(1, sizeof(*c));
    int one = 1;

    if (c == NULL) {
        close(fd);
        return;
    }
    c->fd = fd;
    c->next = g_conns;
    if (g_conns != NULL) {
        g_conns->prev = c;
    }
    g_conns = c;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (nghttp2_session_server_new(&c->s, cbs, c) != 0) {
        g_conns = c->next;
        if (g_conns != NULL) {
            g_conns->prev = NULL;
        }
        close(fd);
        free(c);
        return;
    }
    nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, niv);
    /* a big connection window, so a proxy's pooled connection never waits on us */
    nghttp2_session_set_local_window_size(c->s, NGHTTP2_FLAG_NONE, 0, 16 * 1024 * 1024);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev) < 0 || conn_flush(c) < 0) {
        conn_free(c);
    }
}

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

int main(int argc, char **argv)
{
    static uint8_t rbuf[READ_BUF];
    struct sockaddr_in sa = {.sin_family = AF_INET};
    nghttp2_session_callbacks *cbs;
    struct epoll_event evs[64];
    int lfd, one = 1;
    size_t msg = 100;

    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: h2_backend PORT [MESSAGE_BYTES [DELAY_MS]]\n");
        return 2;
    }
    if (argc >= 3) {
        msg = strtoul(argv[2], NULL, 10);
    }
    if (argc == 4) {
        g_delay_ms = strtoull(argv[3], NULL, 10);
    }
    g_msg_len = 5 + msg;
    g_msg = calloc(1, g_msg_len);
    g_msg[1] = (uint8_t)(msg >> 24);
    g_msg[2] = (uint8_t)(msg >> 16);
    g_msg[3] = (uint8_t)(msg >> 8);
    g_msg[4] = (uint8_t)msg;
    memset(g_msg + 5, 'x', msg);

    signal(SIGPIPE, SIG_IGN);
    struct sigaction act = {.sa_handler = on_signal};
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);

    sa.sin_port = htons((uint16_t)atoi(argv[1]));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 128) < 0) {
        fprintf(stderr, "h2_backend: 127.0.0.1:%s: %s\n", argv[1], strerror(errno));
        return 1;
    }

    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    const nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1024 * 1024},
    };

    g_ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(g_ep, EPOLL_CTL_ADD, lfd, &lev);
    printf("h2_backend: listening on 127.0.0.1:%s, %zu-byte messages, answered after %llu ms\n",
           argv[1], msg, (unsigned long long)g_delay_ms);
    fflush(stdout);

    while (!g_stop) {
        int wait_ms = -1;

        if (g_delay_ms > 0) { /* answer what is due, then sleep until the next one */
            uint64_t now = now_ms(), next = UINT64_MAX;
            for (struct conn *c = g_conns, *nc; c != NULL; c = nc) {
                uint64_t due = answer_due(c, now);
                nc = c->next;
                if (conn_flush(c) < 0) {
                    conn_free(c);
                    continue;
                }
                next = due < next ? due : next;
            }
            if (next != UINT64_MAX) {
                wait_ms = next > now ? (int)(next - now) : 0;
            }
        }
        int n = epoll_wait(g_ep, evs, 64, wait_ms);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c == NULL) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    conn_new(fd, cbs, iv, sizeof(iv) / sizeof(iv[0]));
                }
                continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                ssize_t r = recv(c->fd, rbuf, sizeof(rbuf), 0);
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                    conn_free(c);
                    continue;
                }
                if (r > 0 && nghttp2_session_mem_recv(c->s, rbuf, (size_t)r) < 0) {
                    conn_free(c);
                    continue;
                }
            }
            if (conn_flush(c) < 0) {
                conn_free(c);
            }
        }
    }
    nghttp2_session_callbacks_del(cbs);
    close(lfd);
    return 0;
}
