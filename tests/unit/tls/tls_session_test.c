/* tls/tls_session.c, the open connection a listener's TLS (tls_server.c) and an upstream's
 * (tls_client.c) share, seen from both sides: each over a test "socket" whose send buffer the
 * test fills at will (the memory transport is always writable). A write the socket refuses is
 * kept, one at most, and goes out when the socket is writable again, after which the owner who
 * asked hears on_writable; a close_notify from the peer tells the owner "closed" (reason 0). */
#include "core/transport.h"
#include "tls/tls.h"
#include "tls/tls_client.h"

#include "test_certs.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* Enough for a whole handshake flight either way. */
#define QUEUE_BYTES (64 * 1024)
/* Rounds of moving bytes before a test gives up. */
#define MAX_ROUNDS 50

/* A socket under TLS: what TLS writes goes to out (the peer's input) unless full. */
struct sock {
    struct ml_transport tp; /* first: the ops cast back */
    const struct ml_sock_ops *ops;
    void *user;
    bool full;          /* the send buffer is full: writes are refused (-EAGAIN) */
    bool want_writable; /* TLS asked to hear when it may write again */
    bool closed;        /* TLS closed it (the test owns the memory) */
    uint8_t out[QUEUE_BYTES];
    size_t out_n;
};

/* The owner of a TLS connection (h2, in meshlet). */
struct owner {
    struct ml_transport *tls; /* NULL once it heard on_close */
    int writables, closes, close_reason;
    char close_why[128];
    uint8_t got[64];
    size_t got_n;
};

struct pair {
    struct sock cs, ss; /* the client's and the server's sockets */
    struct owner co, so;
    struct ml_tls_server *srv;
    struct ml_tls_client *cli;
    char paths[3][64];
};

static void sock_set_ops(struct ml_transport *t, const struct ml_sock_ops *ops, void *user)
{
    struct sock *s = (struct sock *)t;

    s->ops = ops;
    s->user = user;
}

static int sock_write(struct ml_transport *t, const uint8_t *p, size_t n)
{
    struct sock *s = (struct sock *)t;

    assert_false(s->closed);
    if (s->full) {
        return -EAGAIN;
    }
    assert_true(s->out_n + n <= sizeof(s->out));
    memcpy(s->out + s->out_n, p, n);
    s->out_n += n;
    return 0;
}

static bool sock_can_write(const struct ml_transport *t)
{
    return !((const struct sock *)t)->full;
}

static void sock_want_writable(struct ml_transport *t)
{
    ((struct sock *)t)->want_writable = true;
}

static void sock_close(struct ml_transport *t)
{
    ((struct sock *)t)->closed = true;
}

static const char *sock_none(const struct ml_transport *t)
{
    (void)t;
    return NULL;
}

static char *sock_peer_text(const struct ml_transport *t, char *buf, size_t cap)
{
    (void)t;
    snprintf(buf, cap, "test");
    return buf;
}

static const struct ml_transport_ops sock_ops = {
    .set_ops = sock_set_ops,
    .write = sock_write,
    .can_write = sock_can_write,
    .want_writable = sock_want_writable,
    .close = sock_close,
    .peer_identity = sock_none,
    .alpn = sock_none,
    .peer_text = sock_peer_text,
};

/* The socket may send again: TLS hears on_writable if it asked. */
static void sock_drain(struct sock *s)
{
    s->full = false;
    if (s->want_writable && !s->closed) {
        s->want_writable = false;
        s->ops->on_writable(s->user);
    }
}

/* ---- the owners ---------------------------------------------------------------------------- */

static void o_read(void *user, const uint8_t *p, size_t n)
{
    struct owner *o = user;

    assert_true(o->got_n + n <= sizeof(o->got));
    memcpy(o->got + o->got_n, p, n);
    o->got_n += n;
}

static void o_writable(void *user)
{
    ((struct owner *)user)->writables++;
}

static void o_close(void *user, int reason, const char *why)
{
    struct owner *o = user;

    o->closes++;
    o->close_reason = reason;
    snprintf(o->close_why, sizeof(o->close_why), "%s", why);
    o->tls = NULL;
}

static const struct ml_sock_ops owner_ops = {
    .on_read = o_read, .on_writable = o_writable, .on_close = o_close};

static void s_ready(void *user, struct ml_transport *tls, int rv, enum ml_tls_fail fail,
                    const char *why)
{
    struct pair *k = user;

    (void)fail;
    assert_int_equal(rv, 0);
    assert_null(why);
    k->so.tls = tls;
    ml_transport_set_ops(tls, &owner_ops, &k->so);
}

/* What each socket sent arrives at the other's TLS, until neither has anything to say. */
static void move_bytes(struct pair *k)
{
    for (int round = 0; round < MAX_ROUNDS && (k->cs.out_n > 0 || k->ss.out_n > 0); round++) {
        uint8_t buf[QUEUE_BYTES];
        size_t n;

        if ((n = k->cs.out_n) > 0) {
            memcpy(buf, k->cs.out, n);
            k->cs.out_n = 0;
            if (!k->ss.closed) {
                k->ss.ops->on_read(k->ss.user, buf, n);
            }
        }
        if ((n = k->ss.out_n) > 0) {
            memcpy(buf, k->ss.out, n);
            k->ss.out_n = 0;
            if (!k->cs.closed) {
                k->cs.ops->on_read(k->cs.user, buf, n);
            }
        }
    }
}

static const char *write_tmp(struct pair *k, int i, const char *pem)
{
    int fd;

    snprintf(k->paths[i], sizeof(k->paths[i]), "/tmp/ml-tls-session-test-XXXXXX");
    fd = mkstemp(k->paths[i]);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, pem, strlen(pem)), (ssize_t)strlen(pem));
    close(fd);
    return k->paths[i];
}

/* A listener's TLS and an upstream's, handshaken over the two test sockets; the server has sent
 * its first bytes ("hi"), so the client's connect is confirmed. */
static struct pair *open_pair(void)
{
    struct pair *k = calloc(1, sizeof(*k));
    struct ml_tls_server_cfg scfg;
    struct ml_tls_client_cfg ccfg;
    char why[256];

    assert_non_null(k);
    scfg = (struct ml_tls_server_cfg){.cert = write_tmp(k, 0, TEST_SERVER_PEM),
                                      .key = write_tmp(k, 1, TEST_SERVER_KEY)};
    ccfg = (struct ml_tls_client_cfg){.ca = write_tmp(k, 2, TEST_CA_PEM)};
    k->cs.tp.ops = &sock_ops;
    k->ss.tp.ops = &sock_ops;
    assert_int_equal(ml_tls_server_new(&scfg, why, sizeof(why), &k->srv), 0);
    assert_int_equal(ml_tls_client_new(&ccfg, why, sizeof(why), &k->cli), 0);
    assert_int_equal(ml_tls_accept(k->srv, NULL, &k->ss.tp, NULL, 0, s_ready, k), 0);
    assert_int_equal(ml_tls_connect(k->cli, &k->cs.tp, "localhost", NULL, NULL, &k->co.tls), 0);
    ml_transport_set_ops(k->co.tls, &owner_ops, &k->co);
    k->cs.ops->on_connected(k->cs.user); /* the ClientHello goes out */
    move_bytes(k);
    assert_non_null(k->so.tls);
    assert_int_equal(ml_transport_write(k->so.tls, (const uint8_t *)"hi", 2), 0);
    move_bytes(k);
    assert_int_equal(k->co.got_n, 2);
    k->co.got_n = 0;
    return k;
}

static void close_pair(struct pair *k)
{
    ml_transport_close(k->co.tls);
    ml_transport_close(k->so.tls);
    ml_tls_server_free(k->srv);
    ml_tls_client_free(k->cli);
    for (int i = 0; i < 3; i++) {
        unlink(k->paths[i]);
    }
    free(k);
}

/* from writes "hello" with its socket full: kept, then sent when the socket drains. */
static void write_through_a_full_socket(struct pair *k, struct owner *from, struct sock *sock,
                                        struct owner *to)
{
    sock->full = true;
    assert_false(ml_transport_can_write(from->tls));
    /* taken whole: mbedTLS holds the record the socket refused, the session the bytes */
    assert_int_equal(ml_transport_write(from->tls, (const uint8_t *)"hello", 5), 0);
    assert_true(sock->want_writable);
    /* one write kept at most, like a socket: the next is refused and on_writable follows */
    assert_int_equal(ml_transport_write(from->tls, (const uint8_t *)"world", 5), -EAGAIN);
    move_bytes(k);
    assert_int_equal(to->got_n, 0);
    assert_int_equal(from->writables, 0);
    sock_drain(sock);
    assert_int_equal(from->writables, 1);
    assert_true(ml_transport_can_write(from->tls));
    assert_int_equal(ml_transport_write(from->tls, (const uint8_t *)"world", 5), 0);
    move_bytes(k);
    assert_int_equal(to->got_n, 10);
    assert_memory_equal(to->got, "helloworld", 10);
    assert_int_equal(from->closes + to->closes, 0);
}

static void test_listener_write_to_a_full_socket_goes_out_when_it_drains(void **state)
{
    struct pair *k = open_pair();

    (void)state;
    write_through_a_full_socket(k, &k->so, &k->ss, &k->co);
    close_pair(k);
}

static void test_upstream_write_to_a_full_socket_goes_out_when_it_drains(void **state)
{
    struct pair *k = open_pair();

    (void)state;
    write_through_a_full_socket(k, &k->co, &k->cs, &k->so);
    close_pair(k);
}

static void test_close_notify_from_the_client_tells_the_listener_closed(void **state)
{
    struct pair *k = open_pair();

    (void)state;
    ml_transport_close(k->co.tls); /* close_notify, then the socket */
    k->co.tls = NULL;
    assert_true(k->cs.closed);
    move_bytes(k);
    assert_int_equal(k->so.closes, 1);
    assert_int_equal(k->so.close_reason, 0);
    assert_string_equal(k->so.close_why, "closed");
    assert_true(k->ss.closed);
    close_pair(k);
}

static void test_close_notify_from_the_server_tells_the_upstream_closed(void **state)
{
    struct pair *k = open_pair();

    (void)state;
    ml_transport_close(k->so.tls);
    k->so.tls = NULL;
    assert_true(k->ss.closed);
    move_bytes(k);
    assert_int_equal(k->co.closes, 1);
    assert_int_equal(k->co.close_reason, 0);
    assert_string_equal(k->co.close_why, "closed");
    assert_true(k->cs.closed);
    close_pair(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listener_write_to_a_full_socket_goes_out_when_it_drains),
        cmocka_unit_test(test_upstream_write_to_a_full_socket_goes_out_when_it_drains),
        cmocka_unit_test(test_close_notify_from_the_client_tells_the_listener_closed),
        cmocka_unit_test(test_close_notify_from_the_server_tells_the_upstream_closed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
