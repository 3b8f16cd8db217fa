/* What proxy.c calls of step_rate_limit.c, in a build without CONFIG_ML_RATE_LIMIT (compiled
 * instead of it, CMakeLists.txt; its step has no entry in steps.c). The config check refuses
 * rate_limit in such a build, so no proxy ever holds buckets: there is nothing to free. */
#include "proxy/proxy_int.h"

void ml_rate_limits_free(struct ml_rate_limits *rl)
{
}
