/* The table behind config/unimplemented.h: one line per key whose code does not exist yet. */
#include "config/unimplemented.h"

#include "config/snapshot-t.h"

#include <stddef.h>

/* What is off, read from the parsed section struct (the same value the running code would see).
 * NONE: the key has no value that asks for nothing. */
enum off_test {
    NONE = 0,
    ROUTE_RETRIES_ZERO,
    ROUTE_FAULT_DELAY_ZERO,
    ROUTE_FAULT_ABORT_ZERO,
    ROUTE_FAULT_HEADERS_OFF,
    ROUTE_RATE_LIMIT_ZERO,
    CLUSTER_LB_BUILT,
    CLUSTER_MAX_RETRIES_ZERO,
    CLUSTER_HEALTH_CHECK_OFF,
    CLUSTER_HEALTH_SERVICE_EMPTY,
};

static const struct {
    int key;
    enum off_test test;
    const char *off_text;
} table[] = {
    /* data-plane TLS is refused by its own check (tls = on|mtls); these only mean something
     * with it */
    {ML_K_listener_cert, NONE, NULL},
    {ML_K_listener_key, NONE, NULL},
    {ML_K_listener_ca, NONE, NULL},
    {ML_K_cluster_sni, NONE, NULL},
    {ML_K_cluster_identity, NONE, NULL},
    /* retries */
    {ML_K_route_retries, ROUTE_RETRIES_ZERO, "0"},
    {ML_K_route_retry_on, NONE, NULL},
    {ML_K_route_retry_backoff, NONE, NULL},
    {ML_K_cluster_max_retries, CLUSTER_MAX_RETRIES_ZERO, "0"},
    /* fault injection, rate limits */
    {ML_K_route_fault_delay, ROUTE_FAULT_DELAY_ZERO, "0"},
    {ML_K_route_fault_abort, ROUTE_FAULT_ABORT_ZERO, "0"},
    {ML_K_route_fault_headers, ROUTE_FAULT_HEADERS_OFF, "off"},
    {ML_K_route_rate_limit, ROUTE_RATE_LIMIT_ZERO, "0"},
    /* balancers with no policy in balance/lb.c's table yet, dns endpoints */
    {ML_K_cluster_lb, CLUSTER_LB_BUILT, "round_robin"},
    {ML_K_cluster_hash, NONE, NULL},
    {ML_K_cluster_dns, NONE, NULL},
    {ML_K_cluster_dns_refresh, NONE, NULL},
    /* health checks */
    {ML_K_cluster_health_check, CLUSTER_HEALTH_CHECK_OFF, "off"},
    {ML_K_cluster_health_service, CLUSTER_HEALTH_SERVICE_EMPTY, ""},
    {ML_K_cluster_health_interval, NONE, NULL},
    {ML_K_cluster_health_timeout, NONE, NULL},
    {ML_K_cluster_healthy_threshold, NONE, NULL},
    {ML_K_cluster_unhealthy_threshold, NONE, NULL},
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
    *off_text = table[i].off_text;
    return true;
}

bool ml_config_unimplemented_is_off(int key, const void *obj)
{
    const struct ml_cfg_route *r = obj;
    const struct ml_cfg_cluster *c = obj;
    int i = find(key);

    if (i < 0) {
        return true;
    }
    switch (table[i].test) {
    case NONE:
        return false;
    case ROUTE_RETRIES_ZERO:
        return r->retries == 0;
    case ROUTE_FAULT_DELAY_ZERO:
        return r->fault_delay_ppm == 0;
    case ROUTE_FAULT_ABORT_ZERO:
        return r->fault_abort_ppm == 0;
    case ROUTE_FAULT_HEADERS_OFF:
        return !r->fault_headers;
    case ROUTE_RATE_LIMIT_ZERO:
        return r->rate_per_min == 0;
    case CLUSTER_LB_BUILT:
        /* the policies of balance/lb.c's table (config/ does not call up into balance/) */
        return c->lb == ML_CFG_LB_ROUND_ROBIN || c->lb == ML_CFG_LB_RANDOM;
    case CLUSTER_MAX_RETRIES_ZERO:
        return c->max_retries == 0;
    case CLUSTER_HEALTH_CHECK_OFF:
        return c->health_check == ML_CFG_HEALTH_OFF;
    case CLUSTER_HEALTH_SERVICE_EMPTY:
        return c->health_service == NULL || c->health_service[0] == '\0';
    }
    return false;
}

bool ml_config_kind_unimplemented(enum ml_config_kind kind)
{
    return kind == ML_KIND_AUTHZ; /* [authz]: no enforcement yet, so no rule may be relied on */
}
