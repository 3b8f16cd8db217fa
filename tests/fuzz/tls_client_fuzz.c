/* libFuzzer target: what an upstream endpoint sends to the TLS client (tls/tls_client.c) of a
 * cluster with tls = on, before and after the handshake: any server on the network meshlet is
 * pointed at. The input goes through the memory transport (core/transport_mem.c) in pieces, as a
 * socket would hand it over. Whatever the input: no crash, no leak, the owner hears
 * on_connected at most once and on_close at most once, the done hook runs at most once and a
 * failure has a reason.
 *
 * Input: byte 0 picks the piece size (1..256), the rest is the server's bytes. */
#include "tls/tls_client.h"
#include "tls_fuzz.h"

#include <errno.h>
#include <stdio.h>

struct run {
    struct ml_transport *mem; /* NULL once the TLS layer closed it */
    struct ml_transport *tls; /* NULL once its owner heard on_close */
    int connected, closed, dones;
};

static struct ml_tls_client *cli; /* one cluster for every input, as in meshlet */

static void on_connected(void *user)
{
    struct run *r = user;

    if (++r->connected > 1 || r->closed) {
        abort(); /* invariant broken: connected twice, or after the close */
    }
}

static void on_read(void *user, const uint8_t *p, size_t n)
{
    struct run *r = user;

    (void)p;
    if (r->connected != 1 || r->closed || n == 0) {
        abort(); /* invariant broken: plaintext before the handshake, or after the close */
    }
}

static void on_close(void *user, int reason, const char *why)
{
    struct run *r = user;

    if (++r->closed > 1 || why == NULL) {
        abort(); /* invariant broken: closed twice, or without a reason */
    }
    (void)reason;
    r->tls = NULL;
    r->mem = NULL;
}

static const struct ml_sock_ops owner = {
    .on_connected = on_connected, .on_read = on_read, .on_close = on_close};

static void done(void *user, int rv, enum ml_tls_fail fail, const char *why)
{
    struct run *r = user;

    if (++r->dones > 1 || (rv < 0 && (fail >= ML_TLS_FAIL_COUNT || why == NULL))) {
        abort(); /* invariant broken: told twice, or a failure without its reason */
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char ca[] = "/tmp/ml-tls-client-fuzz-XXXXXX";
    struct ml_tls_client_cfg cfg = {.ca = ca, .identity = "server-*"};
    char why[256];

    (void)argc;
    (void)argv;
    tls_fuzz_write_pem(ca, TEST_CA_PEM);
    if (ml_tls_client_new(&cfg, why, sizeof(why), &cli) < 0) {
        fprintf(stderr, "tls_client_fuzz: %s\n", why);
        abort();
    }
    unlink(ca);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run r = {0};
    size_t piece = tls_fuzz_piece(&data, &size);

    if (piece == 0 || ml_transport_mem_new(tls_fuzz_discard, &r, &r.mem) < 0) {
        return 0;
    }
    if (ml_tls_connect(cli, r.mem, "localhost", done, &r, &r.tls) < 0) {
        ml_transport_close(r.mem);
        return 0;
    }
    ml_transport_set_ops(r.tls, &owner, &r);
    ml_transport_mem_connected(r.mem); /* the ClientHello goes out */
    tls_fuzz_feed(&r.mem, data, size, piece, NULL);
    if (r.tls != NULL && (size & 1)) {
        ml_transport_close(r.tls); /* the owner gives up (its connect_timeout) */
    } else if (r.mem != NULL) {
        ml_transport_mem_hangup(r.mem, -ECONNRESET, "input over"); /* the server went */
        if (r.closed != 1) {
            abort(); /* invariant broken: the owner never heard its connection go */
        }
    }
    return 0;
}
