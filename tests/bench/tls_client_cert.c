/* tls_client_cert.so: LD_PRELOAD for h2load, which has no option for a client certificate.
 * Not a test; used by tests/bench/tls_bench.py for the mTLS calls.
 *
 *   ML_BENCH_CERT=client.pem ML_BENCH_KEY=client.key LD_PRELOAD=.../tls_client_cert.so h2load ...
 *
 * Every SSL_CTX h2load makes gets that certificate and key, so a server that asks for a client
 * certificate (mTLS) gets one; nothing else of h2load's TLS changes. Fails loudly (exit 2) when
 * the files do not load, so a run cannot silently measure plain TLS. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>

SSL_CTX *SSL_CTX_new(const SSL_METHOD *method)
{
    SSL_CTX *(*real)(const SSL_METHOD *) =
        (SSL_CTX * (*)(const SSL_METHOD *)) dlsym(RTLD_NEXT, "SSL_CTX_new");
    const char *cert = getenv("ML_BENCH_CERT"), *key = getenv("ML_BENCH_KEY");
    SSL_CTX *ctx = real(method);

    if (ctx != NULL && cert != NULL && key != NULL &&
        (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
         SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)) {
        fprintf(stderr, "tls_client_cert: cannot load %s / %s\n", cert, key);
        ERR_print_errors_fp(stderr);
        exit(2);
    }
    return ctx;
}
