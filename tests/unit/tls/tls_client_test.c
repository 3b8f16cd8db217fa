/* tls/tls_client.c over the memory transport, against tls/tls_server.c on another memory
 * transport: two byte queues between them, no socket, no loop. Shows the handshake (ALPN h2),
 * the identity glob, the done hook told with the server's first bytes, and the refusals (wrong
 * identity, unknown CA) each with its reason, as a failed connect for the owner. */
#include "core/alloc.h"
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
/* Rounds of pumping before a test gives up. */
#define MAX_ROUNDS 50

struct queue {
    uint8_t b[QUEUE_BYTES];
    size_t n;
};

struct pair {
    struct queue c2s, s2c;
    /* client side */
    struct ml_transport *cmem; /* the client's "socket"; NULL once TLS closed it */
    struct ml_transport *ctls;
    int connected, closed, close_reason;
    char close_why[256];
    int done_calls, done_rv;
    enum ml_tls_fail done_fail;
    uint8_t got[64];
    size_t got_n;
    /* server side */
    struct ml_tls_server *srv;
    struct ml_transport *smem;
    struct ml_transport *stls; /* after its ready */
};

static char paths[4][64];

static const char *write_tmp(int i, const char *pem)
{
    int fd;

    snprintf(paths[i], sizeof(paths[i]), "/tmp/ml-tls-client-test-XXXXXX");
    fd = mkstemp(paths[i]);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, pem, strlen(pem)), (ssize_t)strlen(pem));
    close(fd);
    return paths[i];
}

static int push(struct queue *q, const uint8_t *p, size_t n)
{
    assert_true(q->n + n <= sizeof(q->b));
    memcpy(q->b + q->n, p, n);
    q->n += n;
    return 0;
}

static int to_server(void *user, const uint8_t *p, size_t n)
{
    return push(&((struct pair *)user)->c2s, p, n);
}

static int to_client(void *user, const uint8_t *p, size_t n)
{
    return push(&((struct pair *)user)->s2c, p, n);
}

/* ---- the client's owner (h2, in meshlet) --------------------------------------------------- */

static void c_connected(void *user)
{
    ((struct pair *)user)->connected++;
}

static void c_read(void *user, const uint8_t *p, size_t n)
{
    struct pair *k = user;

    assert_true(k->got_n + n <= sizeof(k->got));
    memcpy(k->got + k->got_n, p, n);
    k->got_n += n;
}

static void c_close(void *user, int reason, const char *why)
{
    struct pair *k = user;

    k->closed++;
    k->close_reason = reason;
    snprintf(k->close_why, sizeof(k->close_why), "%s", why);
    k->ctls = NULL; /* the TLS transport is gone for its owner */
    k->cmem = NULL;
}

static const struct ml_sock_ops client_owner = {
    .on_connected = c_connected, .on_read = c_read, .on_close = c_close};

static void done(void *user, int rv, enum ml_tls_fail fail, const char *why)
{
    struct pair *k = user;

    k->done_calls++;
    k->done_rv = rv;
    k->done_fail = fail;
    assert_true(rv == 0 || why != NULL);
}

/* ---- the server ---------------------------------------------------------------------------- */

static void s_read(void *user, const uint8_t *p, size_t n)
{
    (void)user;
    (void)p;
    (void)n;
}

static void s_close(void *user, int reason, const char *why)
{
    struct pair *k = user;

    (void)reason;
    (void)why;
    k->stls = NULL;
    k->smem = NULL;
}

static const struct ml_sock_ops server_owner = {.on_read = s_read, .on_close = s_close};

static void s_ready(void *user, struct ml_transport *tls, int rv, enum ml_tls_fail fail,
                    const char *why)
{
    struct pair *k = user;

    (void)rv;
    (void)fail;
    (void)why;
    k->stls = tls;
    if (tls != NULL) {
        ml_transport_set_ops(tls, &server_owner, k);
    } else {
        k->smem = NULL; /* the TLS layer closed it */
    }
}

/* Moves the queued bytes both ways until neither side has anything to say. */
static void pump(struct pair *k)
{
    for (int round = 0; round < MAX_ROUNDS && (k->c2s.n > 0 || k->s2c.n > 0); round++) {
        uint8_t buf[QUEUE_BYTES];
        size_t n;

        if ((n = k->c2s.n) > 0) {
            memcpy(buf, k->c2s.b, n);
            k->c2s.n = 0;
            if (k->smem != NULL) {
                ml_transport_mem_feed(k->smem, buf, n);
            }
        }
        if ((n = k->s2c.n) > 0) {
            memcpy(buf, k->s2c.b, n);
            k->s2c.n = 0;
            if (k->cmem != NULL) {
                ml_transport_mem_feed(k->cmem, buf, n);
            }
        }
    }
}

/* A server with the test certificate and a client trusting ca, with identity (NULL: any);
 * the client's "socket" connects and both sides talk until they have nothing more to say. */
static struct pair *handshake(const char *ca_pem, const char *identity, struct ml_tls_client **cli)
{
    struct pair *k = calloc(1, sizeof(*k));
    struct ml_tls_server_cfg scfg = {.cert = write_tmp(0, TEST_SERVER_PEM),
                                     .key = write_tmp(1, TEST_SERVER_KEY)};
    struct ml_tls_client_cfg ccfg = {.ca = write_tmp(2, ca_pem), .identity = identity};
    char why[256];

    assert_non_null(k);
    assert_int_equal(ml_tls_server_new(&scfg, why, sizeof(why), &k->srv), 0);
    assert_int_equal(ml_tls_client_new(&ccfg, why, sizeof(why), cli), 0);
    assert_int_equal(ml_transport_mem_new(to_client, k, &k->smem), 0);
    assert_int_equal(ml_tls_accept(k->srv, NULL, k->smem, NULL, 0, s_ready, k), 0);
    assert_int_equal(ml_transport_mem_new(to_server, k, &k->cmem), 0);
    assert_int_equal(ml_tls_connect(*cli, k->cmem, "localhost", done, k, &k->ctls), 0);
    ml_transport_set_ops(k->ctls, &client_owner, k);
    ml_transport_mem_connected(k->cmem); /* the ClientHello goes out */
    pump(k);
    return k;
}

static void pair_free(struct pair *k, struct ml_tls_client *cli)
{
    if (k->ctls != NULL) {
        ml_transport_close(k->ctls); /* closes cmem under it */
    } else if (k->cmem != NULL) {
        ml_transport_close(k->cmem);
    }
    if (k->stls != NULL) {
        ml_transport_close(k->stls);
    } else if (k->smem != NULL) {
        ml_transport_mem_hangup(k->smem, -ECONNRESET, "test over");
    }
    ml_tls_server_free(k->srv);
    ml_tls_client_free(cli);
    for (int i = 0; i < 3; i++) {
        unlink(paths[i]);
    }
    free(k);
}

static void test_handshake_with_a_matching_identity_then_done_with_the_first_bytes(void **state)
{
    struct ml_tls_client *cli;
    struct pair *k = handshake(TEST_CA_PEM, "server-*", &cli);

    (void)state;
    assert_int_equal(k->connected, 1);
    assert_int_equal(k->closed, 0);
    assert_string_equal(ml_transport_alpn(k->ctls), "h2");
    assert_string_equal(ml_transport_peer_identity(k->ctls), "server-cn");
    assert_true(ml_transport_can_write(k->ctls));
    /* TLS 1.3: the server has not spoken yet, so the outcome is not told yet */
    assert_int_equal(k->done_calls, 0);
    assert_non_null(k->stls);
    assert_int_equal(ml_transport_write(k->stls, (const uint8_t *)"hello", 5), 0);
    pump(k);
    assert_int_equal(k->got_n, 5);
    assert_memory_equal(k->got, "hello", 5);
    assert_int_equal(k->done_calls, 1);
    assert_int_equal(k->done_rv, 0);
    assert_int_equal(ml_transport_write(k->ctls, (const uint8_t *)"ping", 4), 0);
    pair_free(k, cli);
}

static void test_wrong_identity_fails_the_connect_with_its_reason(void **state)
{
    struct ml_tls_client *cli;
    struct pair *k = handshake(TEST_CA_PEM, "spiffe://unit.test/ns/b/*", &cli);

    (void)state;
    assert_int_equal(k->connected, 0);
    assert_int_equal(k->closed, 1);
    assert_int_equal(k->close_reason, -ECONNREFUSED);
    assert_non_null(strstr(k->close_why, "TLS handshake failed (identity)"));
    assert_non_null(strstr(k->close_why, "server-cn"));
    assert_int_equal(k->done_calls, 1);
    assert_int_equal(k->done_rv, -EPROTO);
    assert_int_equal(k->done_fail, ML_TLS_FAIL_IDENTITY);
    pair_free(k, cli);
}

static void test_a_server_of_another_ca_fails_as_unknown_ca(void **state)
{
    struct ml_tls_client *cli;
    /* the client certificate is no CA of the server's: the chain does not verify */
    struct pair *k = handshake(TEST_CLIENT_PEM, NULL, &cli);

    (void)state;
    assert_int_equal(k->connected, 0);
    assert_int_equal(k->closed, 1);
    assert_non_null(strstr(k->close_why, "TLS handshake failed (unknown_ca)"));
    assert_int_equal(k->done_calls, 1);
    assert_int_equal(k->done_fail, ML_TLS_FAIL_UNKNOWN_CA);
    pair_free(k, cli);
}

static void test_closed_by_its_owner_mid_handshake_tells_nothing(void **state)
{
    struct pair *k = calloc(1, sizeof(*k));
    struct ml_tls_client_cfg ccfg = {.ca = write_tmp(2, TEST_CA_PEM)};
    struct ml_tls_client *cli;
    char why[256];

    (void)state;
    assert_non_null(k);
    assert_int_equal(ml_tls_client_new(&ccfg, why, sizeof(why), &cli), 0);
    assert_int_equal(ml_transport_mem_new(to_server, k, &k->cmem), 0);
    assert_int_equal(ml_tls_connect(cli, k->cmem, NULL, done, k, &k->ctls), 0);
    ml_transport_set_ops(k->ctls, &client_owner, k);
    ml_transport_mem_connected(k->cmem);
    assert_true(ml_tls_client_handshaking(k->ctls));
    assert_true(k->c2s.n > 0); /* the ClientHello */
    ml_transport_close(k->ctls);
    assert_int_equal(k->done_calls, 0);
    assert_int_equal(k->closed, 0);
    ml_tls_client_free(cli);
    unlink(paths[2]);
    free(k);
}

static void test_files_that_do_not_parse_are_refused_with_the_path(void **state)
{
    struct ml_tls_client_cfg ccfg = {.ca = write_tmp(2, "not a certificate\n")};
    struct ml_tls_client *cli = NULL;
    char why[256];

    (void)state;
    assert_int_equal(ml_tls_client_new(&ccfg, why, sizeof(why), &cli), -EINVAL);
    assert_null(cli);
    assert_non_null(strstr(why, paths[2]));
    unlink(paths[2]);
    ccfg.ca = NULL;
    assert_int_equal(ml_tls_client_new(&ccfg, why, sizeof(why), &cli), -EINVAL);
    assert_non_null(strstr(why, "no ca"));
}

/* Each of the client's own allocations fails in turn (mbedTLS allocates on its own): the
 * connect is refused, or the connection fails as a connect would, and nothing leaks (ASan). */
static void test_each_allocation_failing_in_turn_fails_cleanly(void **state)
{
    (void)state;
    for (long n = 0;; n++) {
        struct pair *k = calloc(1, sizeof(*k));
        struct ml_tls_server_cfg scfg = {.cert = write_tmp(0, TEST_SERVER_PEM),
                                         .key = write_tmp(1, TEST_SERVER_KEY)};
        struct ml_tls_client_cfg ccfg = {.ca = write_tmp(2, TEST_CA_PEM), .identity = "server-*"};
        struct ml_tls_client *cli = NULL;
        char why[256];
        long made;

        assert_non_null(k);
        assert_int_equal(ml_tls_server_new(&scfg, why, sizeof(why), &k->srv), 0);
        assert_int_equal(ml_transport_mem_new(to_client, k, &k->smem), 0);
        assert_int_equal(ml_tls_accept(k->srv, NULL, k->smem, NULL, 0, s_ready, k), 0);
        ml_alloc_fail_after(n);
        if (ml_tls_client_new(&ccfg, why, sizeof(why), &cli) == 0 &&
            ml_transport_mem_new(to_server, k, &k->cmem) == 0) {
            if (ml_tls_connect(cli, k->cmem, "localhost", done, k, &k->ctls) == 0) {
                ml_transport_set_ops(k->ctls, &client_owner, k);
                ml_tls_client_resume(k->ctls, "127.0.0.1:1");
                ml_transport_mem_connected(k->cmem);
                pump(k);
                if (k->stls != NULL && k->ctls != NULL) {
                    ml_transport_write(k->stls, (const uint8_t *)"hello", 5);
                    pump(k);
                }
            } else {
                ml_transport_close(k->cmem);
                k->cmem = NULL;
            }
        }
        made = ml_alloc_fail_after(-1);
        assert_true(k->connected + k->closed <= 2 && k->done_calls <= 1);
        pair_free(k, cli);
        if (made < n) {
            break; /* this round needed fewer than n: every one has failed once */
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_with_a_matching_identity_then_done_with_the_first_bytes),
        cmocka_unit_test(test_wrong_identity_fails_the_connect_with_its_reason),
        cmocka_unit_test(test_a_server_of_another_ca_fails_as_unknown_ca),
        cmocka_unit_test(test_closed_by_its_owner_mid_handshake_tells_nothing),
        cmocka_unit_test(test_files_that_do_not_parse_are_refused_with_the_path),
        cmocka_unit_test(test_each_allocation_failing_in_turn_fails_cleanly),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
