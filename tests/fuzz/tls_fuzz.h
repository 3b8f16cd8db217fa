/* What the TLS fuzz targets (tls_server_fuzz.c, tls_client_fuzz.c) share: the test PEMs written
 * to temporary files, the peer's output thrown away, and the input cut into pieces as a socket
 * would hand it over. Byte 0 of an input picks the piece size (1..256), the rest is the peer's
 * bytes. Header-only: each target is one executable of its own (tests/CMakeLists.txt). */
#ifndef ML_TESTS_FUZZ_TLS_FUZZ_H
#define ML_TESTS_FUZZ_TLS_FUZZ_H

#include "core/transport.h"

#include "../unit/tls/test_certs.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Writes pem to a new file made from path (a mkstemp template, rewritten with the name). */
static void tls_fuzz_write_pem(char *path, const char *pem)
{
    int fd = mkstemp(path);

    if (fd < 0 || write(fd, pem, strlen(pem)) != (ssize_t)strlen(pem)) {
        abort();
    }
    close(fd);
}

/* The memory transport's output: what the TLS layer under test says is thrown away. */
static int tls_fuzz_discard(void *user, const uint8_t *p, size_t n)
{
    (void)user;
    (void)p;
    (void)n;
    return 0;
}

/* Takes byte 0 of the input off *data: the piece size (1..256); 0 for an empty input. */
static size_t tls_fuzz_piece(const uint8_t **data, size_t *size)
{
    size_t piece;

    if (*size < 1) {
        return 0;
    }
    piece = (size_t)(*data)[0] + 1;
    (*data)++;
    (*size)--;
    return piece;
}

/* Feeds data[0..size) to *mem piece by piece while *mem is open (the TLS layer sets it NULL
 * when it closes it) and *stop (when given) is 0. */
static void tls_fuzz_feed(struct ml_transport *const *mem, const uint8_t *data, size_t size,
                          size_t piece, const int *stop)
{
    for (size_t off = 0; off < size && *mem != NULL && (stop == NULL || *stop == 0); off += piece) {
        ml_transport_mem_feed(*mem, data + off, size - off < piece ? size - off : piece);
    }
}

#endif
