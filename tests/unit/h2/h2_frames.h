/* HTTP/2 bytes as a client or server writes them, for unit tests that feed a connection in
 * memory: frames, HPACK literals (without indexing, no Huffman), the client preface. One copy
 * for every test that needs them (h2/conn_test.c, h2/closed_streams_test.c, proxy/call_test.c). */
#ifndef ML_TEST_H2_FRAMES_H
#define ML_TEST_H2_FRAMES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* the largest sequence of frames a test builds in one go */
#define H2_BYTES_MAX 65536

struct h2_bytes {
    uint8_t p[H2_BYTES_MAX];
    size_t n;
};

static inline void h2_put(struct h2_bytes *b, const void *p, size_t n)
{
    assert_true(b->n + n <= sizeof(b->p));
    if (n > 0) { /* an empty frame passes p = NULL: memcpy's arguments must not be (UBSan) */
        memcpy(b->p + b->n, p, n);
    }
    b->n += n;
}

static inline void h2_put_frame(struct h2_bytes *b, uint8_t type, uint8_t flags, uint32_t stream,
                                const void *payload, size_t n)
{
    uint8_t hd[9] = {(uint8_t)(n >> 16),
                     (uint8_t)(n >> 8),
                     (uint8_t)n,
                     type,
                     flags,
                     (uint8_t)(stream >> 24),
                     (uint8_t)(stream >> 16),
                     (uint8_t)(stream >> 8),
                     (uint8_t)stream};

    h2_put(b, hd, sizeof(hd));
    h2_put(b, payload, n);
}

/* HPACK literal without indexing, literal name, no Huffman; name and value < 127 bytes. */
static inline void h2_put_field(struct h2_bytes *b, const char *name, const char *value)
{
    uint8_t l;

    assert_true(strlen(name) < 127 && strlen(value) < 127);
    h2_put(b, "\x00", 1);
    l = (uint8_t)strlen(name);
    h2_put(b, &l, 1);
    h2_put(b, name, l);
    l = (uint8_t)strlen(value);
    h2_put(b, &l, 1);
    h2_put(b, value, l);
}

/* The client's connection preface and an empty SETTINGS frame. */
static inline void h2_put_preface(struct h2_bytes *b)
{
    h2_put(b, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    h2_put_frame(b, 0x4 /* SETTINGS */, 0, 0, NULL, 0);
}

#endif
