/* What this binary is: version, board, Kconfig features, linked libraries. Read by
 * `meshlet version`, the admin endpoint and the fleet Hello. */
#ifndef ML_CORE_BUILD_INFO_H
#define ML_CORE_BUILD_INFO_H

#include <stddef.h>

const char *ml_build_version(void);
const char *ml_build_board(void);
/* The Kconfig features compiled in, as the names the fleet Hello carries ("fault",
 * "lb.maglev", ...), NULL-terminated; static storage. */
const char *const *ml_build_features(void);

#endif
