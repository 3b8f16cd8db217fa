/* admin/guard.h: request checks over header values. */
#include "admin/guard.h"

#include "core/bearer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int ml_admin_content_length(const char *text, uint64_t *out)
{
    uint64_t v = 0;
    size_t n = 0;

    if (text == NULL) {
        return -EINVAL;
    }
    for (; text[n] != '\0'; n++) {
        if (text[n] < '0' || text[n] > '9' || n >= ML_ADMIN_CONTENT_LENGTH_MAX_DIGITS) {
            return -EINVAL;
        }
        v = v * 10 + (uint64_t)(text[n] - '0'); /* 19 digits cannot wrap 64 bits */
    }
    if (n == 0) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

/* "HOST[:PORT]" / "[V6][:PORT]" → host (copied, without brackets) and port (80 when absent).
 * -EINVAL for anything else. */
static int split_host(const char *value, char *host, size_t cap, unsigned *port)
{
    const char *end, *colon;
    size_t n;

    if (value[0] == '[') {
        if ((end = strchr(value, ']')) == NULL) {
            return -EINVAL;
        }
        value++;
        colon = end[1] == ':' ? end + 1 : NULL;
        if (colon == NULL && end[1] != '\0') {
            return -EINVAL;
        }
    } else {
        colon = strchr(value, ':');
        end = colon != NULL ? colon : value + strlen(value);
    }
    n = (size_t)(end - value);
    if (n == 0 || n >= cap) {
        return -EINVAL;
    }
    memcpy(host, value, n);
    host[n] = '\0';
    *port = 80;
    if (colon != NULL) {
        unsigned p = 0;
        const char *d = colon + 1;
        if (*d == '\0') {
            return -EINVAL;
        }
        for (; *d != '\0'; d++) {
            if (*d < '0' || *d > '9' || p > 65535) {
                return -EINVAL;
            }
            p = p * 10 + (unsigned)(*d - '0');
        }
        if (p == 0 || p > 65535) {
            return -EINVAL;
        }
        *port = p;
    }
    return 0;
}

static bool is_wildcard(const struct ml_cfg_addr *a)
{
    static const uint8_t zero[16];

    return memcmp(a->ip, zero, a->family == AF_INET ? 4 : 16) == 0;
}

static bool is_loopback(const struct ml_cfg_addr *a)
{
    static const uint8_t v6_loopback[16] = {[15] = 1};

    return a->family == AF_INET ? a->ip[0] == 127 : memcmp(a->ip, v6_loopback, 16) == 0;
}

bool ml_admin_host_allowed(const struct ml_cfg_addr *admin, const char *host)
{
    char name[INET6_ADDRSTRLEN + 8];
    uint8_t ip[16];
    unsigned port;
    bool local = is_loopback(admin) || is_wildcard(admin);

    if (host == NULL || split_host(host, name, sizeof(name), &port) < 0 || port != admin->port) {
        return false;
    }
    if (strcasecmp(name, "localhost") == 0 || strcasecmp(name, "localhost.") == 0) {
        return local;
    }
    if (inet_pton(AF_INET, name, ip) == 1) {
        if (admin->family == AF_INET && memcmp(ip, admin->ip, 4) == 0) {
            return true;
        }
        return is_wildcard(admin) || (local && memcmp(ip, "\x7f\x00\x00\x01", 4) == 0);
    }
    if (inet_pton(AF_INET6, name, ip) == 1) {
        static const uint8_t v6_loopback[16] = {[15] = 1};
        if (admin->family == AF_INET6 && memcmp(ip, admin->ip, 16) == 0) {
            return true;
        }
        return is_wildcard(admin) || (local && memcmp(ip, v6_loopback, 16) == 0);
    }
    return false; /* a name: whoever chose it is not the admin's own address */
}

/* One compare for the node's token and the controller's (core/bearer.c). */
_Static_assert(ML_CFG_ADMIN_TOKEN_MIN_BYTES == ML_BEARER_TOKEN_MIN_BYTES &&
                   ML_CFG_ADMIN_TOKEN_MAX_BYTES == ML_BEARER_TOKEN_MAX_BYTES,
               "[node] admin_token and --admin-token follow one rule");

bool ml_admin_bearer_matches(const char *authorization, const char *token, size_t token_len)
{
    return ml_bearer_matches(authorization, token, token_len);
}
