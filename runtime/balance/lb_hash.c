/* balance/lb_hash.h: the hash the hash policies place keys and hosts with. */
#include "balance/lb_hash.h"

#include "balance/host.h"
#include "balance/lb.h"

#include <string.h>

#define FNV64_OFFSET 0xcbf29ce484222325ull
#define FNV64_PRIME 0x100000001b3ull

uint64_t ml_lb_hash(const void *p, size_t n, uint64_t seed)
{
    const uint8_t *b = p;
    uint64_t h = FNV64_OFFSET ^ (seed * 0x9e3779b97f4a7c15ull);

    for (size_t i = 0; i < n; i++) {
        h = (h ^ b[i]) * FNV64_PRIME;
    }
    /* splitmix64's finaliser: FNV alone leaves similar keys (x-user: 1, 2, ...) close */
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

uint64_t ml_lb_hash_host(const struct ml_lb *lb, uint32_t host, uint64_t seed)
{
    const struct ml_host *h = ml_lb_host(lb, host);
    /* a free slot of a dns cluster: placed somewhere, never picked (not usable) */
    const char *addr = h != NULL ? ml_host_addr_text(h) : "";

    return ml_lb_hash(addr, strlen(addr), seed);
}
