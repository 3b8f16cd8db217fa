/* libFuzzer target: the TLS server's record input (tls/tls_server.c), what any client on the
 * network can send before it has proved anything. The input goes through the memory transport
 * (core/transport_mem.c) in pieces, as a socket would hand it over: ClientHello-shaped bytes,
 * broken records, alerts, plaintext. Whatever the input: no crash, no leak, ready runs at most
 * once, a failure has a reason, and the handshake count goes back to 0 once the connection is
 * gone.
 *
 * Input: byte 0 picks the piece size (1..256), the rest is the client's bytes. Seeds:
 * tests/fuzz/corpus/tls_server/ (ClientHellos of openssl s_client, TLS 1.3 and 1.2, ALPN h2). */
#include "core/transport.h"
#include "tls/tls.h"

#include "../unit/tls/test_certs.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct run {
    struct ml_transport *mem; /* NULL once the TLS layer closed it */
    struct ml_transport *tls; /* after a successful handshake */
    int readies;
};

static struct ml_tls_server *srv; /* one listener for every input, as in meshlet */

static int on_output(void *user, const uint8_t *p, size_t n)
{
    (void)user;
    (void)p;
    (void)n;
    return 0; /* what the server answers is thrown away */
}

static void on_ready(void *user, struct ml_transport *tls, int rv, enum ml_tls_fail fail,
                     const char *why)
{
    struct run *r = user;

    if (++r->readies > 1) {
        abort(); /* invariant broken: ready ran twice */
    }
    if (rv < 0 && (tls != NULL || fail >= ML_TLS_FAIL_COUNT || why == NULL)) {
        abort(); /* invariant broken: a failure without its reason */
    }
    r->tls = tls;
    if (tls == NULL) {
        r->mem = NULL;
    }
}

static void write_file(char *path, const char *pem)
{
    int fd = mkstemp(path);

    if (fd < 0 || write(fd, pem, strlen(pem)) != (ssize_t)strlen(pem)) {
        abort();
    }
    close(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char cert[] = "/tmp/ml-tls-fuzz-XXXXXX", key[] = "/tmp/ml-tls-fuzz-XXXXXX";
    struct ml_tls_server_cfg cfg = {.cert = cert, .key = key};
    char why[256];

    (void)argc;
    (void)argv;
    write_file(cert, TEST_SERVER_PEM);
    write_file(key, TEST_SERVER_KEY);
    if (ml_tls_server_new(&cfg, why, sizeof(why), &srv) < 0) {
        fprintf(stderr, "tls_server_fuzz: %s\n", why);
        abort();
    }
    unlink(cert);
    unlink(key);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run r = {0};
    size_t piece;

    if (size < 1) {
        return 0;
    }
    piece = (size_t)data[0] + 1;
    data++;
    size--;
    if (ml_transport_mem_new(on_output, &r, &r.mem) < 0) {
        return 0;
    }
    if (ml_tls_accept(srv, NULL, r.mem, NULL, 0, on_ready, &r) < 0) {
        ml_transport_close(r.mem);
        return 0;
    }
    for (size_t off = 0; off < size && r.mem != NULL && r.readies == 0; off += piece) {
        ml_transport_mem_feed(r.mem, data + off, size - off < piece ? size - off : piece);
    }
    if (r.tls != NULL) {
        ml_transport_close(r.tls); /* closes mem under it */
    } else if (r.mem != NULL) {
        ml_transport_mem_hangup(r.mem, -ECONNRESET, "input over"); /* the client went */
    }
    if (ml_tls_server_handshaking(srv) != 0) {
        abort(); /* invariant broken: a handshake slot leaked */
    }
    return 0;
}
