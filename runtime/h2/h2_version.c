#include "h2/h2_version.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>

const char *ml_h2_library_version(void)
{
    static char buf[48];

    if (buf[0] == '\0') {
        snprintf(buf, sizeof(buf), "nghttp2 %s", nghttp2_version(0)->version_str);
    }
    return buf;
}
