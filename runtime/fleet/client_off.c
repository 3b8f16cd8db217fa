/* fleet/client.h in a build without CONFIG_ML_FLEET (compiled instead of the files of fleet/,
 * CMakeLists.txt). The config check refuses a [fleet] section in such a build, so the node never
 * asks for a client; these keep its calls free of #ifdef, and a client that cannot exist is a
 * clean error, never a silent no-op. */
#include "fleet/client.h"

#include <errno.h>
#include <stdio.h>

int ml_fleet_client_new(struct ml_loop *loop, const struct ml_cfg_fleet *cfg,
                        const struct ml_fleet_identity *id, const char *config_version,
                        const struct ml_fleet_client_ops *ops, void *user, char *why, size_t cap,
                        struct ml_fleet_client **out)
{
    snprintf(why, cap, "this build of meshlet has no fleet client (CONFIG_ML_FLEET is off)");
    *out = NULL;
    return -EINVAL;
}

void ml_fleet_client_free(struct ml_fleet_client *c)
{
}

void ml_fleet_client_update(struct ml_fleet_client *c, const struct ml_cfg_fleet *cfg,
                            const char *config_version)
{
}

int ml_fleet_client_ack(struct ml_fleet_client *c, const char *version, uint64_t nonce)
{
    return -ENOTCONN;
}

int ml_fleet_client_nack(struct ml_fleet_client *c, const char *version, uint64_t nonce,
                         const char *error, size_t n)
{
    return -ENOTCONN;
}

int ml_fleet_client_nack_transient(struct ml_fleet_client *c, const char *version, uint64_t nonce,
                                   const char *error, size_t n)
{
    return -ENOTCONN;
}

const struct ml_fleet_client_counters *ml_fleet_client_counters(const struct ml_fleet_client *c)
{
    static const struct ml_fleet_client_counters none;

    return &none;
}
