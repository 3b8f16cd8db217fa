#include "core/sha256.h"

#include <mbedtls/sha256.h>

void ml_sha256(const void *data, size_t n, uint8_t out[ML_SHA256_BYTES])
{
    /* mbedtls_sha256 only fails on bad parameters (never for a plain software SHA-256). */
    (void)mbedtls_sha256(data, n, out, 0);
}

void ml_sha256_hex(const void *data, size_t n, char *hex, size_t n_hex)
{
    static const char digits[] = "0123456789abcdef";
    uint8_t sum[ML_SHA256_BYTES];

    if (n_hex > 2 * ML_SHA256_BYTES) {
        n_hex = 2 * ML_SHA256_BYTES;
    }
    ml_sha256(data, n, sum);
    for (size_t i = 0; i < n_hex; i++) {
        hex[i] = digits[(sum[i / 2] >> (i % 2 ? 0 : 4)) & 0xf];
    }
    hex[n_hex] = '\0';
}
