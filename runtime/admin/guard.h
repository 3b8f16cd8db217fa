/* The checks an admin request passes before it is served (admin/guard.c): how its body is
 * framed, whose page could have sent it (Origin, Host) and whether it carries the token. Pure
 * functions over header values, apart from libwebsockets so that they are unit tested alone. */
#ifndef ML_ADMIN_GUARD_H
#define ML_ADMIN_GUARD_H

#include "config/snapshot-t.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest Content-Length value read (digits); more is refused, not truncated. */
#define ML_ADMIN_CONTENT_LENGTH_MAX_DIGITS 19

/* A Content-Length value: digits only, 1..ML_ADMIN_CONTENT_LENGTH_MAX_DIGITS of them (no sign,
 * no spaces, no list: a second Content-Length header reaches here as "10, 10" and is refused).
 * 0 and *out, or -EINVAL. */
int ml_admin_content_length(const char *text, uint64_t *out);

/* true when host (a Host header value, NULL when there was none) names the admin endpoint at
 * admin: its IP literal and port as configured; for a loopback admin also localhost, 127.0.0.1
 * and [::1] with its port; for a wildcard admin (0.0.0.0, [::]) any IP literal or localhost with
 * its port. A host name other than localhost is never the admin: a web page whose name was
 * rebound to this board's address sends its own name (DNS rebinding). No port means 80. */
bool ml_admin_host_allowed(const struct ml_cfg_addr *admin, const char *host);

/* true when authorization (an Authorization header value, NULL when none) is "Bearer TOKEN"
 * (scheme case-insensitive) with TOKEN equal to token[0..token_len). The bytes are compared in
 * a time that does not depend on where they differ. */
bool ml_admin_bearer_matches(const char *authorization, const char *token, size_t token_len);

#endif
