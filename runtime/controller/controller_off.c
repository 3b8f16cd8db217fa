/* controller/controller.h in a build without CONFIG_ML_CONTROLLER (compiled instead of the
 * files of controller/, CMakeLists.txt): the command exists, says why it cannot run, and exits as
 * for a command line this binary does not take. */
#include "controller/controller.h"

#include <stdio.h>
#include <sysexits.h>

static int not_in_build(const char *command)
{
    fprintf(stderr, "meshlet %s: not in this build (CONFIG_ML_CONTROLLER is off)\n", command);
    return EX_USAGE;
}

int ml_controller_main(int argc, char **argv)
{
    return not_in_build("controller");
}

int ml_fleet_cli_main(int argc, char **argv)
{
    return not_in_build("fleet");
}
