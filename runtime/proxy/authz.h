/* [authz LISTENER] decisions: pure functions over a config snapshot (no I/O, no state), used by
 * the call step (step_authz.c) and unit-tested on their own.
 *
 * A rule's PRINCIPAL is matched against the peer's principal (the URI SAN of its verified client
 * certificate, else its subject CN; see config/README.md, [authz LISTENER]); a peer without one
 * (plaintext, or TLS without a client certificate) has NO principal. The semantics never fail open:
 *   -    matches only a peer without a principal;
 *   *    in a deny rule: every peer, with or without a principal (denying more is safe);
 *        in an allow rule: every peer WITH a principal (letting an unauthenticated peer in must
 *        be written as `-`);
 *   any other glob matches only a principal ('*' any run, '?' one byte, case-sensitive).
 * PATH is a glob on :path without its query string ('*' any run, also across '/'),
 * case-sensitive (gRPC method names are). */
#ifndef ML_PROXY_AUTHZ_H
#define ML_PROXY_AUTHZ_H

#include "config/snapshot-t.h"
#include "core/slice-t.h"

#include <stdbool.h>

/* The rule's PRINCIPAL that stands for "no principal". */
#define ML_AUTHZ_NO_PRINCIPAL "-"

/* ml_authz_decide's answer when no rule matched: the section's default decides. */
#define ML_AUTHZ_DEFAULT (-1)

/* Case-sensitive glob match of s against pattern ('*' any run, '?' one byte). */
bool ml_authz_glob(const char *pattern, struct ml_slice s);

/* Whether rule matches a peer with principal (NULL or "": none) calling path (:path as sent). */
bool ml_authz_rule_matches(const struct ml_cfg_authz_rule *rule, const char *principal,
                           struct ml_slice path);

/* The first rule of az that matches (its index), or ML_AUTHZ_DEFAULT. */
int ml_authz_decide(const struct ml_cfg_authz *az, const char *principal, struct ml_slice path);

/* Whether the decision lets the call through. */
bool ml_authz_allows(const struct ml_cfg_authz *az, int decision);

/* The [authz] section of listener (index into snap->listeners), or NULL: no section, every call
 * passes (the contract: absent = allow all). */
const struct ml_cfg_authz *ml_authz_of_listener(const struct ml_snapshot *snap, int listener);

#endif
