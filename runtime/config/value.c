#include "config/value.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int ml_value_uint(const char *s, uint64_t *out)
{
    uint64_t v = 0;

    if (*s == '\0') {
        return -EINVAL;
    }
    for (; *s; s++) {
        if (*s < '0' || *s > '9') {
            return -EINVAL;
        }
        if (v > (UINT64_MAX - 9) / 10) {
            return -ERANGE;
        }
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

/* Leading digits of s as a number; *end after them. -EINVAL when there are none. */
static int leading_uint(const char *s, const char **end, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;

    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10) {
            return -ERANGE;
        }
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (p == s) {
        return -EINVAL;
    }
    *end = p;
    *out = v;
    return 0;
}

struct unit {
    const char *name;
    uint64_t scale;
};

static int number_with_unit(const char *s, const struct unit *units, uint64_t *out)
{
    const char *end;
    uint64_t v;
    int rv;

    if ((rv = leading_uint(s, &end, &v)) < 0) {
        return rv;
    }
    for (const struct unit *u = units; u->name; u++) {
        if (strcmp(end, u->name) == 0) {
            if (u->scale != 0 && v > UINT64_MAX / u->scale) {
                return -ERANGE;
            }
            *out = v * u->scale;
            return 0;
        }
    }
    return -EINVAL;
}

int ml_value_duration(const char *s, uint64_t *out_ms)
{
    static const struct unit units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}, {NULL, 0}};

    if (strcmp(s, "0") == 0) {
        *out_ms = 0;
        return 0;
    }
    return number_with_unit(s, units, out_ms);
}

int ml_value_size(const char *s, uint64_t *out_bytes)
{
    static const struct unit units[] = {
        {"", 1}, {"KiB", 1024}, {"MiB", 1024 * 1024}, {"GiB", 1024 * 1024 * 1024}, {NULL, 0}};

    return number_with_unit(s, units, out_bytes);
}

int ml_value_percent(const char *s, bool percent_optional, uint32_t *out_ppm)
{
    const char *p;
    uint64_t whole, frac = 0, scale = 10000; /* ppm per whole percent */
    int rv;

    if ((rv = leading_uint(s, &p, &whole)) < 0) {
        return rv;
    }
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
            if (digits >= 4) { /* finer than 1 ppm */
                return -EINVAL;
            }
            scale /= 10;
            frac += (uint64_t)(*p - '0') * scale;
        }
        if (digits == 0) {
            return -EINVAL;
        }
    }
    if (*p == '%') {
        p++;
    } else if (!percent_optional) {
        return -EINVAL;
    }
    if (*p != '\0') {
        return -EINVAL;
    }
    if (whole > 100 || (whole == 100 && frac > 0)) {
        return -ERANGE;
    }
    *out_ppm = (uint32_t)(whole * 10000 + frac);
    return 0;
}

int ml_value_bool(const char *s, bool *out)
{
    if (strcmp(s, "on") == 0) {
        *out = true;
        return 0;
    }
    if (strcmp(s, "off") == 0) {
        *out = false;
        return 0;
    }
    return -EINVAL;
}

int ml_value_duration_range(const char *s, uint64_t *from_ms, uint64_t *to_ms)
{
    char from[64];
    const char *dots = strstr(s, "..");
    size_t n;
    int rv;

    if (dots == NULL || (n = (size_t)(dots - s)) >= sizeof(from)) {
        return -EINVAL;
    }
    memcpy(from, s, n);
    from[n] = '\0';
    if ((rv = ml_value_duration(from, from_ms)) < 0 || (rv = ml_value_duration(dots + 2, to_ms)) < 0) {
        return rv;
    }
    return *from_ms <= *to_ms ? 0 : -ERANGE;
}

static int parse_port(const char *s, uint16_t *port)
{
    uint64_t v;

    if (ml_value_uint(s, &v) < 0 || v < 1 || v > 65535) {
        return -EINVAL;
    }
    *port = (uint16_t)v;
    return 0;
}

int ml_value_addr(const char *s, struct ml_cfg_addr *a)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *colon;
    size_t n;

    memset(a, 0, sizeof(*a));
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':' || (n = (size_t)(close - s - 1)) >= sizeof(host)) {
            return -EINVAL;
        }
        memcpy(host, s + 1, n);
        host[n] = '\0';
        if (inet_pton(AF_INET6, host, a->ip) != 1) {
            return -EINVAL;
        }
        a->family = AF_INET6;
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || (n = (size_t)(colon - s)) >= sizeof(host)) {
            return -EINVAL;
        }
        memcpy(host, s, n);
        host[n] = '\0';
        if (inet_pton(AF_INET, host, a->ip) != 1) {
            return -EINVAL;
        }
        a->family = AF_INET;
    }
    if (parse_port(colon + 1, &a->port) < 0) {
        return -EINVAL;
    }
    a->set = true;
    return 0;
}

static bool addr_is_wildcard(const struct ml_cfg_addr *a)
{
    static const uint8_t zero[16];

    return memcmp(a->ip, zero, a->family == AF_INET ? 4 : 16) == 0;
}

bool ml_value_addr_overlaps(const struct ml_cfg_addr *a, const struct ml_cfg_addr *b)
{
    if (!a->set || !b->set || a->port != b->port) {
        return false;
    }
    if (a->family == b->family && memcmp(a->ip, b->ip, 16) == 0) {
        return true;
    }
    if ((a->family == AF_INET6 && addr_is_wildcard(a)) ||
        (b->family == AF_INET6 && addr_is_wildcard(b))) {
        return true;
    }
    return a->family == b->family && (addr_is_wildcard(a) || addr_is_wildcard(b));
}

bool ml_value_addr_is_loopback(const struct ml_cfg_addr *a)
{
    static const uint8_t v6_loopback[16] = {[15] = 1};

    if (a->family == AF_INET) {
        return a->ip[0] == 127;
    }
    return memcmp(a->ip, v6_loopback, 16) == 0;
}

bool ml_value_is_hostname(const char *s, size_t n)
{
    size_t label = 0;

    if (n == 0 || n > 253) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-') {
                return false;
            }
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-')) {
            return false;
        }
        if ((label == 0 && c == '-') || ++label > 63) {
            return false;
        }
    }
    return s[n - 1] != '-';
}

int ml_value_host_port(const char *s, size_t *host_len, uint16_t *port)
{
    struct ml_cfg_addr a;
    const char *colon;

    if (ml_value_addr(s, &a) == 0) {
        *host_len = (size_t)(strrchr(s, ':') - s);
        *port = a.port;
        return 0;
    }
    colon = strrchr(s, ':');
    if (colon == NULL || !ml_value_is_hostname(s, (size_t)(colon - s)) ||
        parse_port(colon + 1, port) < 0) {
        return -EINVAL;
    }
    *host_len = (size_t)(colon - s);
    return 0;
}

bool ml_value_is_name(const char *s, size_t n)
{
    if (n < 1 || n > 63) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-')) {
            return false;
        }
    }
    return true;
}

bool ml_value_is_header_name(const char *s, size_t n)
{
    static const char tchar_extra[] = "!#$%&'*+-.^_`|~";

    if (n == 0 || n > 255) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c != '\0' && strchr(tchar_extra, c) != NULL))) {
            return false;
        }
    }
    return true;
}

void ml_value_format_duration(uint64_t ms, char *buf, size_t cap)
{
    if (ms == 0) {
        snprintf(buf, cap, "0");
    } else if (ms % (60 * 60 * 1000) == 0) {
        snprintf(buf, cap, "%lluh", (unsigned long long)(ms / (60 * 60 * 1000)));
    } else if (ms % (60 * 1000) == 0) {
        snprintf(buf, cap, "%llum", (unsigned long long)(ms / (60 * 1000)));
    } else if (ms % 1000 == 0) {
        snprintf(buf, cap, "%llus", (unsigned long long)(ms / 1000));
    } else {
        snprintf(buf, cap, "%llums", (unsigned long long)ms);
    }
}

void ml_value_format_size(uint64_t bytes, char *buf, size_t cap)
{
    if (bytes != 0 && bytes % (1024 * 1024 * 1024) == 0) {
        snprintf(buf, cap, "%lluGiB", (unsigned long long)(bytes >> 30));
    } else if (bytes != 0 && bytes % (1024 * 1024) == 0) {
        snprintf(buf, cap, "%lluMiB", (unsigned long long)(bytes >> 20));
    } else if (bytes != 0 && bytes % 1024 == 0) {
        snprintf(buf, cap, "%lluKiB", (unsigned long long)(bytes >> 10));
    } else {
        snprintf(buf, cap, "%llu", (unsigned long long)bytes);
    }
}
