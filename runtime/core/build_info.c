#include "core/build_info.h"

#include "meshlet_config.h"

#ifndef ML_VERSION
#define ML_VERSION "0.0.0-unknown"
#endif

/* What this binary can do: compiled in AND implemented. `meshlet version` prints it and the fleet
 * Hello sends it, and a controller chooses configs by it, so a feature is listed only once its
 * code exists (its keys are then accepted by the validator, config/unimplemented.c). Kconfig
 * options for features still to come add a line here once their code exists. */
static const char *const features[] = {
#ifdef CONFIG_ML_ADMIN
    "admin",
#endif
#ifdef CONFIG_ML_FLEET
    "fleet",
#endif
#ifdef CONFIG_ML_CONTROLLER
    "controller",
#endif
#ifdef CONFIG_ML_DNS
    "dns",
#endif
#ifdef CONFIG_ML_HEALTH_CHECK
    "health_check",
#endif
#ifdef CONFIG_ML_FAULT
    "fault",
#endif
#ifdef CONFIG_ML_RATE_LIMIT
    "rate_limit",
#endif
#ifdef CONFIG_ML_TLS
    "tls", /* listeners; TLS to clusters is not implemented yet */
#endif
    "authz",
    "outlier", /* passive outlier ejection (balance/outlier.c) */
    "lb.round_robin",
    "lb.random",
    "lb.least_request",
#ifdef CONFIG_ML_LB_RING_HASH
    "lb.ring_hash",
#endif
#ifdef CONFIG_ML_LB_MAGLEV
    "lb.maglev",
#endif
    NULL,
};

const char *ml_build_version(void)
{
    return ML_VERSION;
}

const char *ml_build_board(void)
{
    return CONFIG_ML_BOARD_NAME;
}

const char *const *ml_build_features(void)
{
    return features;
}
