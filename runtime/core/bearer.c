#include "core/bearer.h"

#include "core/alloc.h"
#include "core/file.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool ml_bearer_matches(const char *authorization, const char *token, size_t token_len)
{
    const char *given;
    size_t n;
    unsigned diff;

    if (authorization == NULL || token == NULL || token_len == 0 ||
        strncasecmp(authorization, "Bearer ", 7) != 0) {
        return false;
    }
    given = authorization + 7;
    while (*given == ' ') {
        given++;
    }
    n = strlen(given);
    /* Every byte of the token is looked at whatever the input: no early exit that a timing
     * measurement could use to guess the token byte by byte. */
    diff = n != token_len;
    for (size_t i = 0; i < token_len; i++) {
        diff |= (unsigned)((uint8_t)token[i] ^ (uint8_t)(i < n ? given[i] : 0));
    }
    return diff == 0;
}

int ml_bearer_token_read(const char *path, char **out, size_t *n)
{
    char *buf = NULL;
    size_t len = 0;
    int rv;

    /* room for a trailing "\r\n" after the longest token */
    if ((rv = ml_file_read_all(path, ML_BEARER_TOKEN_MAX_BYTES + 2, &buf, &len)) < 0) {
        return rv;
    }
    if (len > 0 && buf[len - 1] == '\n') {
        len--;
        if (len > 0 && buf[len - 1] == '\r') {
            len--;
        }
    }
    rv = len < ML_BEARER_TOKEN_MIN_BYTES || len > ML_BEARER_TOKEN_MAX_BYTES ? -EINVAL : 0;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)buf[i] <= 0x20 || (unsigned char)buf[i] >= 0x7f) {
            rv = -EINVAL; /* it goes in a header: one line of visible ASCII */
        }
    }
    if (rv == 0 && (*out = ml_malloc(len + 1)) == NULL) {
        rv = -ENOMEM;
    }
    if (rv == 0) {
        memcpy(*out, buf, len);
        (*out)[len] = '\0';
        *n = len;
    }
    explicit_bzero(buf, len);
    free(buf);
    return rv;
}
