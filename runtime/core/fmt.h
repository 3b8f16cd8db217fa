/* Text formatting for the per-call path, where snprintf's format parsing costs more than the
 * work (tests/bench/README.md's profile): plain copies and decimal integers. */
#ifndef ML_CORE_FMT_H
#define ML_CORE_FMT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Longest decimal uint64_t: 18446744073709551615. */
#define ML_FMT_U64_DIGITS 20

/* p[0..n) as a NUL-terminated string in buf, cut to cap - 1 bytes like snprintf's "%.*s".
 * Returns the length written. cap must be at least 1. */
static inline size_t ml_fmt_copy(char *buf, size_t cap, const void *p, size_t n)
{
    if (n > cap - 1) {
        n = cap - 1;
    }
    if (n > 0) {
        memcpy(buf, p, n);
    }
    buf[n] = '\0';
    return n;
}

/* v in decimal, NUL-terminated, in buf (cut to cap - 1 bytes like snprintf's "%llu"). Returns
 * the length written. cap must be at least 1. */
static inline size_t ml_fmt_u64(char *buf, size_t cap, uint64_t v)
{
    char digits[ML_FMT_U64_DIGITS];
    size_t n = 0;

    do {
        digits[sizeof(digits) - ++n] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return ml_fmt_copy(buf, cap, digits + sizeof(digits) - n, n);
}

#endif
