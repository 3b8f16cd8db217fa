/* libFuzzer target: the TLS server's record input (tls/tls_server.c), what any client on the
 * network can send before it has proved anything. The input goes through the memory transport
 * (core/transport_mem.c) in pieces, as a socket would hand it over: ClientHello-shaped bytes,
 * broken records, alerts, plaintext. Whatever the input: no crash, no leak, ready runs at most
 * once, a failure has a reason, and the handshake count goes back to 0 once the connection is
 * gone.
 *
 * Input: byte 0 picks the piece size (1..256), the rest is the client's bytes. Seeds:
 * tests/fuzz/corpus/tls_server/ (ClientHellos of openssl s_client, TLS 1.3 and 1.2, ALPN h2). */
#include "tls/tls.h"
#include "tls_fuzz.h"

#include <errno.h>
#include <stdio.h>

struct run {
    struct ml_transport *mem; /* NULL once the TLS layer closed it */
    struct ml_transport *tls; /* after a successful handshake */
    int readies;
};

static struct ml_tls_server *srv; /* one listener for every input, as in meshlet */

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

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char cert[] = "/tmp/ml-tls-fuzz-XXXXXX", key[] = "/tmp/ml-tls-fuzz-XXXXXX";
    struct ml_tls_server_cfg cfg = {.cert = cert, .key = key};
    char why[256];

    (void)argc;
    (void)argv;
    tls_fuzz_write_pem(cert, TEST_SERVER_PEM);
    tls_fuzz_write_pem(key, TEST_SERVER_KEY);
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
    size_t piece = tls_fuzz_piece(&data, &size);

    if (piece == 0 || ml_transport_mem_new(tls_fuzz_discard, &r, &r.mem) < 0) {
        return 0;
    }
    if (ml_tls_accept(srv, NULL, r.mem, NULL, 0, on_ready, &r) < 0) {
        ml_transport_close(r.mem);
        return 0;
    }
    tls_fuzz_feed(&r.mem, data, size, piece, &r.readies); /* until the handshake ends */
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
