/* `meshlet controller`: arguments and the run (controller/controller.h). */
#include "controller/controller.h"

#include <stdio.h>

int ml_controller_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "meshlet controller: not implemented yet\n");
    return 3;
}
