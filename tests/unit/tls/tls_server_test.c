/* tls/tls_server.c over the memory transport (no socket, no loop): an mbedTLS client in the same
 * process talks to it through two byte queues. Shows the handshake (TLS 1.3 and 1.2, ALPN h2),
 * bytes both ways through the TLS transport, the peer identity of an mtls client, and the
 * refusals (no h2, plaintext, too many handshakes, wrong CA) each with its reason. */
#include "core/transport.h"
#include "tls/tls.h"

#include "test_certs.h"

#include <errno.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/ssl.h>
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
/* Rounds of the client's handshake before a test gives up. */
#define MAX_ROUNDS 50

struct queue {
    uint8_t b[QUEUE_BYTES];
    size_t n;
};

struct peer {
    /* client */
    mbedtls_ssl_context ssl;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca, cert;
    mbedtls_pk_context key;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    struct queue c2s, s2c;
    /* server */
    struct ml_tls_server *srv;
    struct ml_transport *mem; /* the "socket" under TLS */
    struct ml_transport *tls; /* after ready */
    int ready_calls, ready_rv;
    enum ml_tls_fail fail;
    char why[256];
    uint8_t got[64];
    size_t got_n;
};

static char paths[5][64];

static const char *write_tmp(int i, const char *pem)
{
    int fd;

    snprintf(paths[i], sizeof(paths[i]), "/tmp/ml-tls-test-XXXXXX");
    fd = mkstemp(paths[i]);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, pem, strlen(pem)), (ssize_t)strlen(pem));
    close(fd);
    return paths[i];
}

static int to_client(void *user, const uint8_t *p, size_t n)
{
    struct peer *k = user;

    assert_true(k->s2c.n + n <= sizeof(k->s2c.b));
    memcpy(k->s2c.b + k->s2c.n, p, n);
    k->s2c.n += n;
    return 0;
}

static int c_send(void *ctx, const unsigned char *p, size_t n)
{
    struct peer *k = ctx;

    assert_true(k->c2s.n + n <= sizeof(k->c2s.b));
    memcpy(k->c2s.b + k->c2s.n, p, n);
    k->c2s.n += n;
    return (int)n;
}

static int c_recv(void *ctx, unsigned char *p, size_t n)
{
    struct peer *k = ctx;

    if (k->s2c.n == 0) {
        return MBEDTLS_ERR_SSL_WANT_READ;
    }
    if (n > k->s2c.n) {
        n = k->s2c.n;
    }
    memcpy(p, k->s2c.b, n);
    memmove(k->s2c.b, k->s2c.b + n, k->s2c.n - n);
    k->s2c.n -= n;
    return (int)n;
}

static void on_read(void *user, const uint8_t *p, size_t n)
{
    struct peer *k = user;

    memcpy(k->got + k->got_n, p, n);
    k->got_n += n;
}

static void on_close(void *user, int reason, const char *why)
{
    (void)user;
    (void)reason;
    (void)why;
}

static const struct ml_sock_ops owner_ops = {.on_read = on_read, .on_close = on_close};

static void ready(void *user, struct ml_transport *tls, int rv, enum ml_tls_fail fail,
                  const char *why)
{
    struct peer *k = user;

    k->ready_calls++;
    k->ready_rv = rv;
    k->fail = fail;
    k->tls = tls;
    snprintf(k->why, sizeof(k->why), "%s", why != NULL ? why : "");
    if (tls != NULL) {
        ml_transport_set_ops(tls, &owner_ops, k);
    } else {
        k->mem = NULL; /* the TLS layer closed it */
    }
}

/* Delivers what the client sent to the server. */
static void deliver(struct peer *k)
{
    if (k->c2s.n > 0 && k->mem != NULL) {
        uint8_t tmp[QUEUE_BYTES];
        size_t n = k->c2s.n;

        memcpy(tmp, k->c2s.b, n);
        k->c2s.n = 0;
        ml_transport_mem_feed(k->mem, tmp, n);
    }
}

static void setup_peer(struct peer *k, bool mtls, const char **alpn, int client_version,
                       bool client_cert)
{
    struct ml_tls_server_cfg cfg = {
        .cert = paths[1],
        .key = paths[2],
        .ca = mtls ? paths[0] : NULL,
        .mtls = mtls,
    };
    char why[256];

    memset(k, 0, sizeof(*k));
    assert_int_equal(ml_tls_server_new(&cfg, why, sizeof(why), &k->srv), 0);
    mbedtls_ssl_init(&k->ssl);
    mbedtls_ssl_config_init(&k->conf);
    mbedtls_x509_crt_init(&k->ca);
    mbedtls_x509_crt_init(&k->cert);
    mbedtls_pk_init(&k->key);
    mbedtls_entropy_init(&k->entropy);
    mbedtls_ctr_drbg_init(&k->drbg);
    assert_int_equal(mbedtls_ctr_drbg_seed(&k->drbg, mbedtls_entropy_func, &k->entropy, NULL, 0),
                     0);
    assert_int_equal(mbedtls_ssl_config_defaults(&k->conf, MBEDTLS_SSL_IS_CLIENT,
                                                 MBEDTLS_SSL_TRANSPORT_STREAM,
                                                 MBEDTLS_SSL_PRESET_DEFAULT),
                     0);
    mbedtls_ssl_conf_rng(&k->conf, mbedtls_ctr_drbg_random, &k->drbg);
    assert_int_equal(
        mbedtls_x509_crt_parse(&k->ca, (const unsigned char *)TEST_CA_PEM, sizeof(TEST_CA_PEM)), 0);
    mbedtls_ssl_conf_ca_chain(&k->conf, &k->ca, NULL);
    mbedtls_ssl_conf_authmode(&k->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    if (alpn != NULL) {
        mbedtls_ssl_conf_alpn_protocols(&k->conf, alpn);
    }
    if (client_version != 0) {
        mbedtls_ssl_conf_min_tls_version(&k->conf, (mbedtls_ssl_protocol_version)client_version);
        mbedtls_ssl_conf_max_tls_version(&k->conf, (mbedtls_ssl_protocol_version)client_version);
    }
    if (client_cert) {
        assert_int_equal(mbedtls_x509_crt_parse(&k->cert, (const unsigned char *)TEST_CLIENT_PEM,
                                                sizeof(TEST_CLIENT_PEM)),
                         0);
        assert_int_equal(mbedtls_pk_parse_key(&k->key, (const unsigned char *)TEST_CLIENT_KEY,
                                              sizeof(TEST_CLIENT_KEY), NULL, 0,
                                              mbedtls_ctr_drbg_random, &k->drbg),
                         0);
        assert_int_equal(mbedtls_ssl_conf_own_cert(&k->conf, &k->cert, &k->key), 0);
    }
    assert_int_equal(mbedtls_ssl_setup(&k->ssl, &k->conf), 0);
    assert_int_equal(mbedtls_ssl_set_hostname(&k->ssl, "localhost"), 0);
    mbedtls_ssl_set_bio(&k->ssl, k, c_send, c_recv, NULL);
    assert_int_equal(ml_transport_mem_new(to_client, k, &k->mem), 0);
    assert_int_equal(ml_tls_accept(k->srv, NULL, k->mem, NULL, 0, ready, k), 0);
}

static void teardown_peer(struct peer *k)
{
    if (k->tls != NULL) {
        ml_transport_close(k->tls);
    } else if (k->ready_calls == 0 && k->mem != NULL) {
        ml_transport_mem_hangup(k->mem, -ECONNRESET, "test over");
    }
    ml_tls_server_free(k->srv);
    mbedtls_ssl_free(&k->ssl);
    mbedtls_ssl_config_free(&k->conf);
    mbedtls_x509_crt_free(&k->ca);
    mbedtls_x509_crt_free(&k->cert);
    mbedtls_pk_free(&k->key);
    mbedtls_ctr_drbg_free(&k->drbg);
    mbedtls_entropy_free(&k->entropy);
}

/* Runs the client's handshake against the server. Returns the client's last result. */
static int handshake(struct peer *k)
{
    int rv = MBEDTLS_ERR_SSL_WANT_READ;

    for (int i = 0; i < MAX_ROUNDS && k->mem != NULL; i++) {
        rv = mbedtls_ssl_handshake(&k->ssl);
        deliver(k);
        if (rv == 0 && k->ready_calls > 0) {
            break;
        }
        if (rv != 0 && rv != MBEDTLS_ERR_SSL_WANT_READ && rv != MBEDTLS_ERR_SSL_WANT_WRITE) {
            break;
        }
    }
    return rv;
}

static void served(int version)
{
    static const char *h2[] = {"h2", NULL};
    struct peer *k = malloc(sizeof(*k));
    uint8_t buf[16];
    int n = 0;

    setup_peer(k, false, h2, version, false);
    assert_int_equal(handshake(k), 0);
    assert_int_equal(k->ready_calls, 1);
    assert_int_equal(k->ready_rv, 0);
    assert_non_null(k->tls);
    assert_string_equal(ml_transport_alpn(k->tls), "h2");
    assert_null(ml_transport_peer_identity(k->tls)); /* no client certificate */
    assert_int_equal(mbedtls_ssl_write(&k->ssl, (const unsigned char *)"ping", 4), 4);
    deliver(k);
    assert_int_equal(k->got_n, 4);
    assert_memory_equal(k->got, "ping", 4);
    assert_true(ml_transport_can_write(k->tls));
    assert_int_equal(ml_transport_write(k->tls, (const uint8_t *)"pong", 4), 0);
    for (int i = 0; i < MAX_ROUNDS && n <= 0; i++) {
        n = mbedtls_ssl_read(&k->ssl, buf, sizeof(buf)); /* tickets first, on TLS 1.3 */
    }
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "pong", 4);
    assert_int_equal(ml_tls_server_handshaking(k->srv), 0);
    teardown_peer(k);
    free(k);
}

static void test_tls13_with_alpn_h2_carries_bytes_both_ways(void **state)
{
    (void)state;
    served(MBEDTLS_SSL_VERSION_TLS1_3);
}

static void test_tls12_with_alpn_h2_carries_bytes_both_ways(void **state)
{
    (void)state;
    served(MBEDTLS_SSL_VERSION_TLS1_2);
}

static void test_mtls_client_uri_san_is_the_peer_identity(void **state)
{
    static const char *h2[] = {"h2", NULL};
    struct peer *k = malloc(sizeof(*k));

    (void)state;
    setup_peer(k, true, h2, 0, true);
    assert_int_equal(handshake(k), 0);
    assert_int_equal(k->ready_rv, 0);
    assert_string_equal(ml_transport_peer_identity(k->tls), "spiffe://unit.test/ns/a/sa/client");
    teardown_peer(k);
    free(k);
}

static void test_mtls_without_client_certificate_is_bad_cert(void **state)
{
    static const char *h2[] = {"h2", NULL};
    struct peer *k = malloc(sizeof(*k));

    (void)state;
    setup_peer(k, true, h2, MBEDTLS_SSL_VERSION_TLS1_2, false);
    handshake(k);
    assert_int_equal(k->ready_calls, 1);
    assert_true(k->ready_rv < 0);
    assert_int_equal(k->fail, ML_TLS_FAIL_BAD_CERT);
    assert_int_equal(ml_tls_server_handshaking(k->srv), 0);
    teardown_peer(k);
    free(k);
}

static void test_only_http11_offered_is_no_alpn(void **state)
{
    static const char *h1[] = {"http/1.1", NULL};
    struct peer *k = malloc(sizeof(*k));

    (void)state;
    setup_peer(k, false, h1, 0, false);
    handshake(k);
    /* the server's fatal alert is what the client reads next */
    assert_int_equal(mbedtls_ssl_handshake(&k->ssl), MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE);
    assert_int_equal(k->ready_calls, 1);
    assert_int_equal(k->fail, ML_TLS_FAIL_NO_ALPN);
    assert_string_equal(ml_tls_fail_name(k->fail), "no_alpn_h2");
    teardown_peer(k);
    free(k);
}

static void test_plaintext_first_byte_is_refused(void **state)
{
    static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    struct peer *k = malloc(sizeof(*k));

    (void)state;
    setup_peer(k, false, NULL, 0, false);
    ml_transport_mem_feed(k->mem, preface, sizeof(preface) - 1);
    assert_int_equal(k->ready_calls, 1);
    assert_int_equal(k->fail, ML_TLS_FAIL_PLAINTEXT);
    assert_int_equal(k->s2c.n, 0); /* nothing said back in TLS to a plaintext client */
    teardown_peer(k);
    free(k);
}

static int nop_output(void *user, const uint8_t *p, size_t n)
{
    (void)user;
    (void)p;
    (void)n;
    return 0;
}

static void nop_ready(void *user, struct ml_transport *tls, int rv, enum ml_tls_fail fail,
                      const char *why)
{
    (void)tls;
    (void)rv;
    (void)fail;
    (void)why;
    (*(int *)user)++;
}

static void test_handshakes_in_progress_are_capped(void **state)
{
    struct ml_tls_server_cfg cfg = {.cert = paths[1], .key = paths[2]};
    struct ml_transport *mem[ML_TLS_HANDSHAKES_MAX + 1];
    struct ml_tls_server *srv;
    char why[256];
    int readies = 0;

    (void)state;
    assert_int_equal(ml_tls_server_new(&cfg, why, sizeof(why), &srv), 0);
    for (int i = 0; i <= ML_TLS_HANDSHAKES_MAX; i++) {
        assert_int_equal(ml_transport_mem_new(nop_output, NULL, &mem[i]), 0);
    }
    for (int i = 0; i < ML_TLS_HANDSHAKES_MAX; i++) {
        assert_int_equal(ml_tls_accept(srv, NULL, mem[i], NULL, 0, nop_ready, &readies), 0);
    }
    assert_int_equal(ml_tls_server_handshaking(srv), ML_TLS_HANDSHAKES_MAX);
    assert_int_equal(
        ml_tls_accept(srv, NULL, mem[ML_TLS_HANDSHAKES_MAX], NULL, 0, nop_ready, &readies), -EBUSY);
    ml_transport_close(mem[ML_TLS_HANDSHAKES_MAX]); /* not taken: still the caller's */
    /* the listener goes first; each connection's hangup ends its handshake */
    ml_tls_server_free(srv);
    for (int i = 0; i < ML_TLS_HANDSHAKES_MAX; i++) {
        ml_transport_mem_hangup(mem[i], -ECONNRESET, "gone");
    }
    assert_int_equal(readies, ML_TLS_HANDSHAKES_MAX);
}

static void test_bad_files_are_refused_with_a_reason(void **state)
{
    struct ml_tls_server_cfg cfg = {.cert = paths[1], .key = paths[4]}; /* client's key */
    struct ml_tls_server *srv;
    char why[256];

    (void)state;
    assert_int_equal(ml_tls_server_new(&cfg, why, sizeof(why), &srv), -EINVAL);
    assert_null(srv);
    assert_non_null(strstr(why, "not the key of"));
    cfg.key = "/nonexistent/key.pem";
    assert_int_equal(ml_tls_server_new(&cfg, why, sizeof(why), &srv), -EINVAL);
    assert_non_null(strstr(why, "/nonexistent/key.pem"));
}

static int setup(void **state)
{
    (void)state;
    write_tmp(0, TEST_CA_PEM);
    write_tmp(1, TEST_SERVER_PEM);
    write_tmp(2, TEST_SERVER_KEY);
    write_tmp(3, TEST_CLIENT_PEM);
    write_tmp(4, TEST_CLIENT_KEY);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++) {
        unlink(paths[i]);
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls13_with_alpn_h2_carries_bytes_both_ways),
        cmocka_unit_test(test_tls12_with_alpn_h2_carries_bytes_both_ways),
        cmocka_unit_test(test_mtls_client_uri_san_is_the_peer_identity),
        cmocka_unit_test(test_mtls_without_client_certificate_is_bad_cert),
        cmocka_unit_test(test_only_http11_offered_is_no_alpn),
        cmocka_unit_test(test_plaintext_first_byte_is_refused),
        cmocka_unit_test(test_handshakes_in_progress_are_capped),
        cmocka_unit_test(test_bad_files_are_refused_with_a_reason),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
