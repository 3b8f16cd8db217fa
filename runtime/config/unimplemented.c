/* The table behind config/unimplemented.h: one line per key whose code does not exist yet. */
#include "config/unimplemented.h"

#include "config/features.h"
#include "config/snapshot-t.h"

#include <stddef.h>

/* What is off, read from the parsed section struct (the same value the running code would see).
 * NONE: the key has no value that asks for nothing. */
enum off_test {
    NONE = 0,
    CLUSTER_LB_BUILT,
};

static const struct {
    int key;
    enum off_test test;
    const char *off_text;
} table[] = {
    /* TLS works on listeners (tls/tls_server.c) and to clusters (tls/tls_client.c); a build
     * without ML_TLS refuses tls = on|mtls in config/validate_tls.c. */
    /* balancers Kconfig left out of balance/lb.c's table (ring_hash, maglev) */
    {ML_K_cluster_lb, CLUSTER_LB_BUILT, "round_robin"},
};

#define N_TABLE (sizeof(table) / sizeof(table[0]))

static int find(int key)
{
    for (size_t i = 0; i < N_TABLE; i++) {
        if (table[i].key == key) {
            return (int)i;
        }
    }
    return -1;
}

bool ml_config_unimplemented(int key, const char **off_text)
{
    int i = find(key);

    if (i < 0) {
        return false;
    }
    if (table[i].test == CLUSTER_LB_BUILT && ML_HAVE_LB_RING_HASH && ML_HAVE_LB_MAGLEV) {
        return false; /* every balancer is in this build: nothing of lb is refused */
    }
    *off_text = table[i].off_text;
    return true;
}

bool ml_config_unimplemented_is_off(int key, const void *obj)
{
    const struct ml_cfg_cluster *c = obj;
    int i = find(key);

    if (i < 0) {
        return true;
    }
    switch (table[i].test) {
    case NONE:
        return false;
    case CLUSTER_LB_BUILT:
        /* the policies of balance/lb.c's table (config/ does not call up into balance/) */
        return c->lb == ML_CFG_LB_ROUND_ROBIN || c->lb == ML_CFG_LB_RANDOM ||
               c->lb == ML_CFG_LB_LEAST_REQUEST ||
               (c->lb == ML_CFG_LB_RING_HASH && ML_HAVE_LB_RING_HASH) ||
               (c->lb == ML_CFG_LB_MAGLEV && ML_HAVE_LB_MAGLEV);
    }
    return false;
}

bool ml_config_kind_unimplemented(enum ml_config_kind kind)
{
    (void)kind; /* every section kind has its code ([authz]: proxy/step_authz.c) */
    return false;
}
