#ifndef ML_GRPC_STATUS_H
#define ML_GRPC_STATUS_H

#include "grpc/status-t.h"

/* "unavailable", "deadline-exceeded", ... (config/README.md spelling: lower case, dashes) or a
 * number 0..16 → the code; -EINVAL otherwise. */
int ml_grpc_status_parse(const char *s);
/* The config/README.md spelling of a code ("unavailable"); "?" for a code outside 0..16. */
const char *ml_grpc_status_name(int code);

#endif
