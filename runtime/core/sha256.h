/* SHA-256 behind a small helper, so only core/ sees mbedTLS's hash API. */
#ifndef ML_CORE_SHA256_H
#define ML_CORE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define ML_SHA256_BYTES 32

void ml_sha256(const void *data, size_t n, uint8_t out[ML_SHA256_BYTES]);
/* The first n_hex hex digits (n_hex <= 64) of SHA-256(data) into hex[n_hex + 1], NUL-terminated. */
void ml_sha256_hex(const void *data, size_t n, char *hex, size_t n_hex);

#endif
