/* controller/mqtt.c in a build without CONFIG_ML_FLEET_MQTT (CMakeLists.txt compiles this
 * instead): `meshlet controller --mqtt` says why it cannot run and exits as for a command line
 * this binary does not take (-EINVAL: 64), the way the node refuses an mqtts:// url. */
#include "controller/controller_int.h"

#include <errno.h>
#include <stdio.h>

int ml_ctl_mqtt_start(struct ml_ctl *ctl, const struct ml_ctl_mqtt_opts *opts, char *why,
                      size_t cap)
{
    (void)ctl;
    (void)opts;
    snprintf(why, cap, "--mqtt: this build of meshlet has no MQTT (CONFIG_ML_FLEET_MQTT is off)");
    return -EINVAL;
}

void ml_ctl_mqtt_stop(struct ml_ctl *ctl)
{
    (void)ctl;
}

void ml_ctl_mqtt_free(struct ml_ctl *ctl)
{
    (void)ctl;
}
