/* balance/health.h in a build without CONFIG_ML_HEALTH_CHECK (compiled instead of
 * balance/health.c, CMakeLists.txt). The config check refuses the health_* keys in such a build,
 * so no cluster asks for checks: every host stays healthy, as with health_check = off. */
#include "balance/health.h"

void ml_balance_health_sync(struct ml_balance *b)
{
}

void ml_host_health_stop(struct ml_host *h)
{
}
