/* [cluster]: its readers (endpoints, dns, hash) and the checks across its keys (TLS keys that
 * would ask for nothing, endpoint or dns, the health service's bound). */
#include "config/validate_int.h"

#include "config/features.h"
#include "config/schema.h"
#include "config/snapshot-t.h"
#include "config/value.h"
#include "grpc/health.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

int ml_config_read_endpoint(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                            int line, struct ml_cfg_cluster *cl)
{
    static const char what[] = "IP:PORT or IP:PORT weight=N (N 1..128)";
    char buf[96], *rest;
    struct ml_cfg_endpoint *ep;
    uint64_t weight = 1;

    if (strlen(v) >= sizeof(buf)) {
        return ml_config_bad_value(c, line, k, v, "%s", what);
    }
    strcpy(buf, v);
    rest = strchr(buf, ' ');
    if (rest != NULL) {
        *rest++ = '\0';
        while (*rest == ' ') {
            rest++;
        }
        if (strncmp(rest, "weight=", 7) != 0 || ml_value_uint(rest + 7, &weight) < 0 ||
            weight < k->min || weight > k->max) {
            return ml_config_bad_value(c, line, k, v, "%s", what);
        }
    }
    if (cl->n_endpoints >= CONFIG_ML_MAX_ENDPOINTS) {
        return ml_config_bad_value(c, line, k, v,
                                   "at most %d endpoints per cluster (CONFIG_ML_MAX_ENDPOINTS)",
                                   CONFIG_ML_MAX_ENDPOINTS);
    }
    ep = &cl->endpoints[cl->n_endpoints];
    if (ml_value_addr(buf, &ep->addr) < 0) {
        return ml_config_bad_value(c, line, k, v, "%s", what);
    }
    for (uint32_t i = 0; i < cl->n_endpoints; i++) {
        const struct ml_cfg_addr *o = &cl->endpoints[i].addr;
        if (o->family == ep->addr.family && o->port == ep->addr.port &&
            memcmp(o->ip, ep->addr.ip, 16) == 0) {
            return ml_config_bad_value(c, line, k, v, "each endpoint once in a cluster");
        }
    }
    ep->addr.text = ml_config_strdup(c, buf, strlen(buf));
    ep->weight = (uint32_t)weight;
    cl->n_endpoints++;
    return 0;
}

int ml_config_read_dns(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                       int line, struct ml_cfg_cluster *cl)
{
    size_t host_len;

    if (ml_value_host_port(v, &host_len, &cl->dns_port) < 0) {
        return ml_config_bad_value(c, line, k, v, "HOST:PORT (a host name and a port 1..65535)");
    }
    cl->dns_host = ml_config_strdup(c, v, host_len);
    return 0;
}

int ml_config_read_hash(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                        int line, struct ml_cfg_cluster *cl)
{
    if (strcmp(v, "authority") == 0) {
        cl->hash = ML_CFG_HASH_AUTHORITY;
    } else if (strcmp(v, "path") == 0) {
        cl->hash = ML_CFG_HASH_PATH;
    } else if (strncmp(v, "header:", 7) == 0 && ml_value_is_header_name(v + 7, strlen(v + 7))) {
        char *name = ml_config_strdup(c, v + 7, strlen(v + 7));
        if (name == NULL) {
            return 0;
        }
        for (char *p = name; *p; p++) {
            *p = (char)tolower((unsigned char)*p);
        }
        cl->hash = ML_CFG_HASH_HEADER;
        cl->hash_header = name;
    } else {
        return ml_config_bad_value(c, line, k, v, "header:NAME, authority or path");
    }
    return 0;
}

/* Cluster TLS keys that would ask for nothing are refused, never ignored: an identity without
 * tls, or a cert without mtls, would look checked or shown and not be. Readability and the PEM
 * are checked with the other certificate files (check_tls_files). */
static void check_cluster_tls(struct ml_config_vctx *c, const struct ml_raw_section *sec,
                              const struct ml_cfg_cluster *cl)
{
    /* Only values that parsed: a bad one has its own error already. */
    const struct {
        int key;
        const char *value;
    } keys[] = {
        {ML_K_cluster_ca, cl->ca},
        {ML_K_cluster_sni, cl->sni},
        {ML_K_cluster_identity, cl->identity},
        {ML_K_cluster_cert, cl->cert},
        {ML_K_cluster_key, cl->key},
    };
    char got[GOT_MAX];

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        int k = keys[i].key, line = sec->key_line[k];

        if (line == 0 || keys[i].value == NULL) {
            continue;
        }
        if (cl->tls == ML_CFG_TLS_OFF) {
            ml_config_key_error(
                c, sec, line, ml_schema_keys[k].name,
                "expected tls = on|mtls in this section (%s is used only with TLS), got "
                "\"%s\" with tls = off",
                ml_schema_keys[k].name,
                ml_config_shown(ml_config_value_at(c, sec, k), got, sizeof(got)));
        } else if ((k == ML_K_cluster_cert || k == ML_K_cluster_key) &&
                   cl->tls != ML_CFG_TLS_MTLS) {
            ml_config_key_error(
                c, sec, line, ml_schema_keys[k].name,
                "expected tls = mtls in this section (%s is shown only with mtls), got "
                "\"%s\" with tls = on",
                ml_schema_keys[k].name,
                ml_config_shown(ml_config_value_at(c, sec, k), got, sizeof(got)));
        }
    }
    if (cl->tls == ML_CFG_TLS_OFF || !ML_HAVE_DATA_TLS) {
        return;
    }
    if (cl->ca == NULL) {
        ml_config_key_error(
            c, sec, sec->key_line[ML_K_cluster_tls], "tls",
            "expected ca = PATH with tls = on|mtls (the endpoints' certificates chain to "
            "it), got no ca");
    }
    if (cl->tls == ML_CFG_TLS_MTLS && (cl->cert == NULL || cl->key == NULL)) {
        ml_config_key_error(c, sec, sec->key_line[ML_K_cluster_tls], "tls",
                            "expected cert = PATH and key = PATH with tls = mtls, got %s",
                            cl->cert == NULL ? "no cert" : "no key");
    }
}

void ml_config_check_cluster(struct ml_config_vctx *c, const struct ml_raw_section *sec)
{
    struct ml_cfg_cluster *cl = &c->snap->clusters[sec->index];
    char got[GOT_MAX];

    ml_config_tls_refused(c, sec, ML_K_cluster_tls, cl->tls, ML_HAVE_DATA_TLS);
    check_cluster_tls(c, sec, cl);
    if (sec->key_count[ML_K_cluster_endpoint] == 0 && sec->key_line[ML_K_cluster_dns] == 0) {
        ml_config_key_error(
            c, sec, sec->line, NULL,
            "expected endpoint = IP:PORT (repeatable) or dns = HOST:PORT, got no endpoints");
    }
    if (sec->key_count[ML_K_cluster_endpoint] > 0 && sec->key_line[ML_K_cluster_dns] != 0) {
        ml_config_key_error(
            c, sec, sec->key_line[ML_K_cluster_dns], "dns",
            "expected either endpoint or dns, not both, got \"%s\"",
            ml_config_shown(ml_config_value_at(c, sec, ML_K_cluster_dns), got, sizeof(got)));
    }
    /* lb other than round_robin and health_check other than off: refused where they are read
     * (config/unimplemented.c), whatever this build's Kconfig says. */
    if (cl->health_service != NULL && strlen(cl->health_service) > ML_GRPC_HEALTH_SERVICE_MAX) {
        /* the Check request's bound (grpc/health.options): never a cut name */
        ml_config_key_error(c, sec, sec->key_line[ML_K_cluster_health_service], "health_service",
                            "expected a service name of at most %d bytes, got %zu bytes",
                            ML_GRPC_HEALTH_SERVICE_MAX, strlen(cl->health_service));
    }
}
