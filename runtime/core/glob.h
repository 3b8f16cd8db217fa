/* core/glob.h: the one glob matcher ('*' any run, '?' one byte) behind route authorities, authz
 * principals and paths, and upstream identities. */
#ifndef ML_CORE_GLOB_H
#define ML_CORE_GLOB_H

#include "core/slice-t.h"

#include <stdbool.h>

enum ml_glob_case {
    ML_GLOB_EXACT,     /* bytes compare as they are: paths, SPIFFE IDs */
    ML_GLOB_FOLD_CASE, /* ASCII letters compare without case: host names */
};

/* Whether s matches pattern (NUL-terminated) as a whole. Linear backtracking to the last '*':
 * O(len(pattern) * len(s)) at worst, no recursion, no allocation. */
bool ml_glob_match(const char *pattern, struct ml_slice s, enum ml_glob_case mode);

#endif
