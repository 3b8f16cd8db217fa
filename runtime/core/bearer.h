/* Bearer tokens of the HTTP endpoints that change state: the node's admin endpoint ([node]
 * admin_token, admin/guard.c) and the controller's (`meshlet controller --admin-token FILE`).
 * One compare and one file rule for both. */
#ifndef ML_CORE_BEARER_H
#define ML_CORE_BEARER_H

#include <stdbool.h>
#include <stddef.h>

/* A token file holds one token of this many visible ASCII bytes (no spaces), then at most a
 * "\n" or "\r\n": it goes in a header line, and 16 bytes is the least worth guessing against. */
#define ML_BEARER_TOKEN_MIN_BYTES 16
#define ML_BEARER_TOKEN_MAX_BYTES 256

/* true when authorization (an Authorization header value, NULL when none) is "Bearer TOKEN"
 * (scheme case-insensitive) with TOKEN equal to token[0..token_len). The bytes are compared in
 * a time that does not depend on where they differ. */
bool ml_bearer_matches(const char *authorization, const char *token, size_t token_len);

/* Reads a token file by the rule above into a new ml_malloc'd NUL-terminated *out (*n bytes).
 * 0; -EFBIG for a larger file; -EINVAL for a token too short, too long or with a space or
 * control byte; -ENOMEM; or the -errno of reading it. */
int ml_bearer_token_read(const char *path, char **out, size_t *n);

#endif
