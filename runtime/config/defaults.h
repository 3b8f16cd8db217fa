#ifndef ML_CONFIG_DEFAULTS_H
#define ML_CONFIG_DEFAULTS_H

#include <stdio.h>

/* `meshlet check --defaults`: every key of every section kind with its default, as INI, each
 * preceded by its help as a comment; required keys and keys without a default commented out. */
void ml_config_print_defaults(FILE *out);

#endif
