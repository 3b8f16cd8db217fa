/* libFuzzer target: ml_grpc_timeout_parse (runtime/grpc/timeout.c), the grpc-timeout header a
 * client sends, checked against the grammar (1 to 8 digits, then one of H M S m u n), and the
 * round trip through ml_grpc_timeout_format: formatting never promises the peer more time than
 * it was given, and what it writes parses again. In memory, deterministic. */
#include "core/slice-t.h"
#include "grpc/timeout.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t unit_ns(uint8_t u)
{
    switch (u) {
    case 'H':
        return 3600000000000ULL;
    case 'M':
        return 60000000000ULL;
    case 'S':
        return 1000000000ULL;
    case 'm':
        return 1000000ULL;
    case 'u':
        return 1000ULL;
    case 'n':
        return 1ULL;
    default:
        return 0;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *p = malloc(size + 1); /* exactly the value: reading past it shows under ASan */
    uint64_t ns = 1, want = 0, ms, back;
    char text[ML_GRPC_TIMEOUT_TEXT_MAX + 1];
    int rv, valid = size >= 2 && size <= 9 && unit_ns(data[size - 1]) != 0;

    if (p == NULL) {
        return 0;
    }
    memcpy(p, data, size);
    for (size_t i = 0; valid && i + 1 < size; i++) {
        if (p[i] < '0' || p[i] > '9') {
            valid = 0;
        } else {
            want = want * 10 + (uint64_t)(p[i] - '0');
        }
    }
    rv = ml_grpc_timeout_parse((struct ml_slice){p, size}, &ns);
    if (valid) {
        if (rv != 0 || ns != want * unit_ns(p[size - 1])) {
            __builtin_trap();
        }
    } else if (rv != -EINVAL) {
        __builtin_trap();
    }
    free(p);
    if (rv != 0) {
        return 0;
    }
    /* Round trip at millisecond precision. */
    ms = ns / 1000000u;
    text[ML_GRPC_TIMEOUT_TEXT_MAX] = 'G';
    ml_grpc_timeout_format(ms, text, ML_GRPC_TIMEOUT_TEXT_MAX);
    if (text[ML_GRPC_TIMEOUT_TEXT_MAX] != 'G' ||
        ml_grpc_timeout_parse((struct ml_slice){(const uint8_t *)text, strlen(text)}, &back) != 0 ||
        back > ms * 1000000u) {
        __builtin_trap();
    }
    return 0;
}
