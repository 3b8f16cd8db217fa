/* The TLS side of `meshlet fleet` (status_cli.c): one blocking HTTPS exchange with mbedTLS on a
 * socket already connected, for a controller started with --cert/--key (and --ca, which asks
 * for a client certificate). The controller's certificate must chain to --ca and name the host
 * of the URL (an IP SAN for an IP); nothing is sent before that is checked. */
#include "controller/status_tls.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <psa/crypto.h>

#include <stdio.h>
#include <string.h>

/* Handshake, write and each read give up after this long. */
#define TLS_IO_TIMEOUT_MS 10000
#define PERS "meshlet-fleet-cli"

struct tls {
    mbedtls_net_context net;
    mbedtls_ssl_context ssl;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca, cert;
    mbedtls_pk_context key;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
};

static void tls_init(struct tls *t, int fd)
{
    mbedtls_net_init(&t->net);
    t->net.fd = fd;
    mbedtls_ssl_init(&t->ssl);
    mbedtls_ssl_config_init(&t->conf);
    mbedtls_x509_crt_init(&t->ca);
    mbedtls_x509_crt_init(&t->cert);
    mbedtls_pk_init(&t->key);
    mbedtls_entropy_init(&t->entropy);
    mbedtls_ctr_drbg_init(&t->drbg);
}

static void tls_free(struct tls *t)
{
    mbedtls_ssl_free(&t->ssl);
    mbedtls_ssl_config_free(&t->conf);
    mbedtls_x509_crt_free(&t->ca);
    mbedtls_x509_crt_free(&t->cert);
    mbedtls_pk_free(&t->key);
    mbedtls_ctr_drbg_free(&t->drbg);
    mbedtls_entropy_free(&t->entropy);
    /* the socket is the caller's: not closed here */
}

static int fail(char *why, size_t cap, const char *what, int rv)
{
    char err[128];

    mbedtls_strerror(rv, err, sizeof(err));
    snprintf(why, cap, "%s: %s", what, err);
    return -1;
}

/* Sets up t for host with the files of o. 0, or -1 with why. */
static int tls_setup(struct tls *t, const struct ml_fleet_tls_opts *o, const char *host, char *why,
                     size_t cap)
{
    int rv;

    if ((rv = mbedtls_ctr_drbg_seed(&t->drbg, mbedtls_entropy_func, &t->entropy,
                                    (const unsigned char *)PERS, sizeof(PERS) - 1)) != 0) {
        return fail(why, cap, "random seed", rv);
    }
    if ((rv = mbedtls_x509_crt_parse_file(&t->ca, o->ca)) != 0) {
        return fail(why, cap, o->ca, rv);
    }
    if (o->cert != NULL) {
        if ((rv = mbedtls_x509_crt_parse_file(&t->cert, o->cert)) != 0) {
            return fail(why, cap, o->cert, rv);
        }
        if ((rv = mbedtls_pk_parse_keyfile(&t->key, o->key, NULL, mbedtls_ctr_drbg_random,
                                           &t->drbg)) != 0) {
            return fail(why, cap, o->key, rv);
        }
    }
    if ((rv = mbedtls_ssl_config_defaults(&t->conf, MBEDTLS_SSL_IS_CLIENT,
                                          MBEDTLS_SSL_TRANSPORT_STREAM,
                                          MBEDTLS_SSL_PRESET_DEFAULT)) != 0) {
        return fail(why, cap, "TLS setup", rv);
    }
    mbedtls_ssl_conf_authmode(&t->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&t->conf, &t->ca, NULL);
    mbedtls_ssl_conf_rng(&t->conf, mbedtls_ctr_drbg_random, &t->drbg);
    mbedtls_ssl_conf_read_timeout(&t->conf, TLS_IO_TIMEOUT_MS);
    if (o->cert != NULL && (rv = mbedtls_ssl_conf_own_cert(&t->conf, &t->cert, &t->key)) != 0) {
        return fail(why, cap, "client certificate", rv);
    }
    if ((rv = mbedtls_ssl_setup(&t->ssl, &t->conf)) != 0 ||
        (rv = mbedtls_ssl_set_hostname(&t->ssl, host)) != 0) {
        return fail(why, cap, "TLS setup", rv);
    }
    mbedtls_ssl_set_bio(&t->ssl, &t->net, mbedtls_net_send, NULL, mbedtls_net_recv_timeout);
    return 0;
}

int ml_fleet_tls_exchange(int fd, const struct ml_fleet_tls_opts *o, const char *host,
                          const char *req, size_t req_n, char *buf, size_t cap, size_t *n_out,
                          char *why, size_t why_cap)
{
    struct tls t;
    size_t sent = 0, n = 0;
    int rv = -1;

    *n_out = 0;
#ifdef MBEDTLS_PSA_CRYPTO_C
    if (psa_crypto_init() != PSA_SUCCESS) {
        snprintf(why, why_cap, "PSA crypto init failed");
        return -1;
    }
#endif
    tls_init(&t, fd);
    if (tls_setup(&t, o, host, why, why_cap) < 0) {
        goto out;
    }
    while ((rv = mbedtls_ssl_handshake(&t.ssl)) != 0) {
        if (rv != MBEDTLS_ERR_SSL_WANT_READ && rv != MBEDTLS_ERR_SSL_WANT_WRITE) {
            uint32_t flags = mbedtls_ssl_get_verify_result(&t.ssl);

            if (flags != 0 && flags != (uint32_t)-1) {
                char info[256];

                mbedtls_x509_crt_verify_info(info, sizeof(info), "", flags);
                info[strcspn(info, "\n")] = '\0';
                snprintf(why, why_cap, "the controller's certificate: %s", info);
            } else {
                fail(why, why_cap, "TLS handshake", rv);
            }
            rv = -1;
            goto out;
        }
    }
    while (sent < req_n) {
        int k = mbedtls_ssl_write(&t.ssl, (const unsigned char *)req + sent, req_n - sent);

        if (k == MBEDTLS_ERR_SSL_WANT_READ || k == MBEDTLS_ERR_SSL_WANT_WRITE) {
            continue;
        }
        if (k < 0) {
            rv = fail(why, why_cap, "TLS write", k);
            goto out;
        }
        sent += (size_t)k;
    }
    for (;;) {
        int k;

        if (n == cap) {
            break; /* the caller's bound */
        }
        k = mbedtls_ssl_read(&t.ssl, (unsigned char *)buf + n, cap - n);
        if (k == MBEDTLS_ERR_SSL_WANT_READ || k == MBEDTLS_ERR_SSL_WANT_WRITE) {
            continue;
        }
        if (k <= 0) {
            break; /* close_notify, EOF, or an error after what was read */
        }
        n += (size_t)k;
    }
    *n_out = n;
    rv = 0;
    mbedtls_ssl_close_notify(&t.ssl);
out:
    tls_free(&t);
    return rv;
}
