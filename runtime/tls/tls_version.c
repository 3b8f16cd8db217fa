#include "tls/tls_version.h"

#include <mbedtls/build_info.h>

const char *ml_tls_library_version(void)
{
    return "mbedTLS " MBEDTLS_VERSION_STRING;
}
