#include "core/build_info.h"

#include "meshlet_config.h"

#ifndef ML_VERSION
#define ML_VERSION "0.0.0-unknown"
#endif

/* What this binary can do: compiled in AND implemented. `meshlet version` prints it and the fleet
 * Hello sends it, and a controller chooses configs by it, so a feature is listed only once its
 * code exists (its keys are then accepted by the validator, config/unimplemented.c). Kconfig
 * options for features still to come (ML_FAULT, ML_RATE_LIMIT, ML_HEALTH_CHECK, ML_LB_RING_HASH,
 * ML_LB_MAGLEV, ML_DNS) add nothing here yet. */
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
    "outlier", /* passive outlier ejection (balance/outlier.c) */
    "lb.round_robin", "lb.random", NULL,
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
