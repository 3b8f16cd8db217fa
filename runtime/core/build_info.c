#include "core/build_info.h"

#include "core/kconfig.h"

#include <stddef.h>

#ifndef ML_VERSION
#define ML_VERSION "0.0.0-unknown"
#endif

/* What this binary can do: compiled in AND implemented. `meshlet version` prints it and the fleet
 * Hello sends it, and a controller chooses configs by it, so a feature is listed only once its
 * code exists (its keys are then accepted by the validator, config/unimplemented.c) and only
 * when Kconfig compiled that code in. A Kconfig option for a feature still to come adds a line
 * here once its code exists. */
/* One entry a line: clang-format cannot tell that ML_IF_ENABLED ends with a comma. */
/* clang-format off */
static const char *const features[] = {
    ML_IF_ENABLED(CONFIG_ML_ADMIN, ("admin",))
    ML_IF_ENABLED(CONFIG_ML_FLEET, ("fleet",))
    ML_IF_ENABLED(CONFIG_ML_FLEET_MQTT, ("fleet-mqtt",))
    ML_IF_ENABLED(CONFIG_ML_CONTROLLER, ("controller",))
    ML_IF_ENABLED(CONFIG_ML_DNS, ("dns",))
    ML_IF_ENABLED(CONFIG_ML_HEALTH_CHECK, ("health_check",))
    ML_IF_ENABLED(CONFIG_ML_FAULT, ("fault",))
    ML_IF_ENABLED(CONFIG_ML_RATE_LIMIT, ("rate_limit",))
    ML_IF_ENABLED(CONFIG_ML_TLS, ("tls",)) /* listeners; TLS to clusters is not implemented yet */
    "authz",
    "outlier", /* passive outlier ejection (balance/outlier.c) */
    "lb.round_robin",
    "lb.random",
    "lb.least_request",
    ML_IF_ENABLED(CONFIG_ML_LB_RING_HASH, ("lb.ring_hash",))
    ML_IF_ENABLED(CONFIG_ML_LB_MAGLEV, ("lb.maglev",))
    NULL,
};
/* clang-format on */

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
