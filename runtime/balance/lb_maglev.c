/* lb = maglev: Maglev hashing (Eisenbud et al., NSDI 2016). A lookup table of ML_LB_MAGLEV_SIZE
 * entries (a prime) is filled by the hosts in turns, each host taking the next free entry of its
 * own permutation of the table (offset and skip from the hash of its address). A call's key
 * (hash =) picks an entry, the entry names the host. Hosts take turns in proportion to their
 * weights, so each owns about its weight's share of the entries; when one of N hosts goes the
 * others mostly keep their entries and about 1/N of the keys move. The table is built over the
 * usable hosts and rebuilt when usability changes (health, ejection, drain); a host the pick may
 * not take (tried) is passed over for the next entry's. A call without a key gets a host drawn
 * by weight (lb = random). */
#include "balance/lb.h"

#include "balance/lb_hash.h"
#include "core/alloc.h"

#include <errno.h>
#include <string.h>

/* Entries of the table: a prime (the permutations must cover it), over 100 × the most hosts
 * (ML_LB_HOSTS_MAX) as the paper advises so that hosts' shares stay within ~1 % of their
 * weights; one byte each (a host index < 128): 16 KiB per cluster. */
#define ML_LB_MAGLEV_SIZE 16381
#define NO_HOST 0xff

/* Seeds of the two hashes of a host's address. */
#define SEED_OFFSET 0x6f6666736574ull /* "offset" */
#define SEED_SKIP 0x736b6970ull       /* "skip" */

struct maglev_host {
    uint32_t offset, skip; /* the host's permutation: (offset + j·skip) mod size */
    uint32_t next;         /* j of the next entry to try while filling */
    uint32_t credit;       /* weight collected toward its next turn */
};

struct maglev {
    uint8_t table[ML_LB_MAGLEV_SIZE];
    uint32_t n_hosts;
    struct maglev_host hosts[];
};

/* (Re)fill the table over the usable hosts (all of them when none is: the pick then finds none
 * it may take). A host takes one entry each time its credit reaches the largest weight. */
static void build(struct ml_lb *lb)
{
    struct maglev *m = lb->priv;
    bool any = false;
    uint32_t max_w = 0, filled = 0;

    for (uint32_t h = 0; h < m->n_hosts; h++) {
        any = any || ml_lb_usable(lb, h);
    }
    for (uint32_t h = 0; h < m->n_hosts; h++) {
        m->hosts[h].next = 0;
        m->hosts[h].credit = 0;
        if ((!any || ml_lb_usable(lb, h)) && ml_lb_weight(lb, h) > max_w) {
            max_w = ml_lb_weight(lb, h);
        }
    }
    memset(m->table, NO_HOST, sizeof(m->table));
    if (max_w == 0) {
        return; /* no host */
    }
    while (filled < ML_LB_MAGLEV_SIZE) {
        for (uint32_t h = 0; h < m->n_hosts && filled < ML_LB_MAGLEV_SIZE; h++) {
            struct maglev_host *mh = &m->hosts[h];
            uint32_t c;

            if (any && !ml_lb_usable(lb, h)) {
                continue;
            }
            if ((mh->credit += ml_lb_weight(lb, h)) < max_w) {
                continue;
            }
            mh->credit -= max_w;
            /* terminates: size is prime, so the permutation visits every entry */
            do {
                c = (uint32_t)((mh->offset + (uint64_t)mh->next * mh->skip) % ML_LB_MAGLEV_SIZE);
                mh->next++;
            } while (m->table[c] != NO_HOST);
            m->table[c] = (uint8_t)h;
            filled++;
        }
    }
}

static int maglev_init(struct ml_lb *lb)
{
    uint32_t n = ml_lb_n_hosts(lb);
    struct maglev *m;

    if (n > ML_LB_HOSTS_MAX) {
        return -E2BIG; /* the schema bounds endpoints to it: a table entry is one byte */
    }
    if ((m = ml_calloc(1, sizeof(*m) + n * sizeof(m->hosts[0]))) == NULL) {
        return -ENOMEM;
    }
    m->n_hosts = n;
    for (uint32_t h = 0; h < n; h++) {
        m->hosts[h].offset = (uint32_t)(ml_lb_hash_host(lb, h, SEED_OFFSET) % ML_LB_MAGLEV_SIZE);
        m->hosts[h].skip =
            (uint32_t)(ml_lb_hash_host(lb, h, SEED_SKIP) % (ML_LB_MAGLEV_SIZE - 1)) + 1;
    }
    lb->priv = m;
    build(lb);
    return 0;
}

static int maglev_pick(struct ml_lb *lb, const struct ml_lb_pick_ctx *ctx)
{
    const struct maglev *m = lb->priv;
    uint32_t at;

    if (ctx->hash_key.n == 0) {
        return ml_lb_random.pick(lb, ctx);
    }
    at = (uint32_t)(ml_lb_hash(ctx->hash_key.p, ctx->hash_key.n, 0) % ML_LB_MAGLEV_SIZE);
    /* the key's entry, else the next entry whose host the pick may take */
    for (uint32_t i = 0; i < ML_LB_MAGLEV_SIZE; i++) {
        uint8_t h = m->table[(at + i) % ML_LB_MAGLEV_SIZE];

        if (h != NO_HOST && ml_lb_eligible(lb, ctx, h)) {
            return h;
        }
    }
    return -ENOENT;
}

static void maglev_on_host_state(struct ml_lb *lb, uint32_t host)
{
    (void)host;
    build(lb);
}

static void maglev_free(struct ml_lb *lb)
{
    ml_free(lb->priv);
}

const struct ml_lb_ops ml_lb_maglev = {
    .name = "maglev",
    .init = maglev_init,
    .pick = maglev_pick,
    .on_host_state = maglev_on_host_state,
    .free = maglev_free,
};
