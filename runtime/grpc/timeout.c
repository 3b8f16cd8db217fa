#include "grpc/timeout.h"

#include "core/fmt.h"

#include <errno.h>
#include <stdio.h>

#define MAX_DIGITS 8
#define MAX_VALUE 99999999ULL

int ml_grpc_timeout_parse(struct ml_slice value, uint64_t *ns)
{
    uint64_t v = 0, unit_ns;
    size_t n_digits = value.n > 0 ? value.n - 1 : 0;

    *ns = 0;
    if (value.n < 2 || n_digits > MAX_DIGITS) {
        return -EINVAL;
    }
    for (size_t i = 0; i < n_digits; i++) {
        if (value.p[i] < '0' || value.p[i] > '9') {
            return -EINVAL;
        }
        v = v * 10 + (uint64_t)(value.p[i] - '0');
    }
    switch (value.p[n_digits]) {
    case 'H':
        unit_ns = 3600ULL * 1000000000ULL;
        break;
    case 'M':
        unit_ns = 60ULL * 1000000000ULL;
        break;
    case 'S':
        unit_ns = 1000000000ULL;
        break;
    case 'm':
        unit_ns = 1000000ULL;
        break;
    case 'u':
        unit_ns = 1000ULL;
        break;
    case 'n':
        unit_ns = 1ULL;
        break;
    default:
        return -EINVAL;
    }
    *ns = v * unit_ns; /* <= 99999999 h = 3.6e17 ns: no overflow */
    return 0;
}

char *ml_grpc_timeout_format(uint64_t ms, char *buf, size_t cap)
{
    static const struct {
        uint64_t ms;
        char unit;
    } units[] = {{1, 'm'}, {1000, 'S'}, {60 * 1000, 'M'}, {3600 * 1000, 'H'}};
    size_t i = 0, n;

    while (i + 1 < sizeof(units) / sizeof(units[0]) && ms / units[i].ms > MAX_VALUE) {
        i++;
    }
    if (ms / units[i].ms > MAX_VALUE) {
        ms = MAX_VALUE * units[i].ms; /* beyond 99999999 hours: as long as can be said */
    }
    n = ml_fmt_u64(buf, cap, ms / units[i].ms); /* per call: not snprintf (core/fmt.h) */
    if (n + 1 < cap) {
        buf[n] = units[i].unit;
        buf[n + 1] = '\0';
    }
    return buf;
}
