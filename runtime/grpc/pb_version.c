#include "grpc/pb_version.h"

#include <pb.h>
#include <stdio.h>
#include <string.h>

const char *ml_pb_library_version(void)
{
    static char buf[48];
    const char *v = NANOPB_VERSION; /* "nanopb-0.4.9.1" */

    if (buf[0] == '\0') {
        snprintf(buf, sizeof(buf), "nanopb %s", strncmp(v, "nanopb-", 7) == 0 ? v + 7 : v);
    }
    return buf;
}
