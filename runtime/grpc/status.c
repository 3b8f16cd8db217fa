#include "grpc/status.h"

#include <errno.h>
#include <string.h>

static const char *const status_names[ML_GRPC_STATUS_MAX + 1] = {
    "ok",           "cancelled",          "unknown",           "invalid-argument",
    "deadline-exceeded", "not-found",     "already-exists",    "permission-denied",
    "resource-exhausted", "failed-precondition", "aborted",    "out-of-range",
    "unimplemented", "internal",          "unavailable",       "data-loss",
    "unauthenticated",
};

int ml_grpc_status_parse(const char *s)
{
    if (s[0] >= '0' && s[0] <= '9') {
        int v = 0;
        for (const char *p = s; *p; p++) {
            if (*p < '0' || *p > '9' || p - s >= 2) {
                return -EINVAL;
            }
            v = v * 10 + (*p - '0');
        }
        return v <= ML_GRPC_STATUS_MAX ? v : -EINVAL;
    }
    for (int i = 0; i <= ML_GRPC_STATUS_MAX; i++) {
        if (strcmp(s, status_names[i]) == 0) {
            return i;
        }
    }
    return -EINVAL;
}

const char *ml_grpc_status_name(int code)
{
    if (code < 0 || code > ML_GRPC_STATUS_MAX) {
        return "?";
    }
    return status_names[code];
}
