/* What `meshlet check` says about a valid config beyond its validity (config/README.md "Errors
 * and exit codes"): warnings about parts that can never be used, and errors about paths this
 * machine cannot give the node. Reads the file system, never changes it. */
#ifndef ML_CONFIG_LINT_H
#define ML_CONFIG_LINT_H

#include "config/errors-t.h"
#include "config/snapshot-t.h"

/* Adds one line to warn (text starting "warning: ") for each cluster no route sends calls to,
 * each listener no route is attached to, and each route an earlier route of its listener
 * always matches first. Returns 0 or -ENOMEM. */
int ml_config_lint_unused(const struct ml_snapshot *s, struct ml_config_errors *warn);

/* Adds to errs what keeps state_dir or access_log from working on this machine, as far as the
 * user running the check can know it: a path of the wrong kind, a component that is not a
 * directory and a read-only file system always; a missing directory or a refused write only
 * when that user is root or owns the path (else another user may run the node), the missing
 * directory as a warning otherwise. Returns 0 or -ENOMEM. */
int ml_config_lint_paths(const struct ml_snapshot *s, struct ml_config_errors *errs,
                         struct ml_config_errors *warn);

/* Adds a warning for each certificate of [fleet] and the listeners that expires within
 * ML_TLS_EXPIRY_WARN_S, is not valid yet, or does not chain to the section's ca, and for an
 * expired certificate among others in a ca file (tls/cert_check.h), at the key's line; the
 * errors about those files are the validator's. Returns 0 or -ENOMEM. */
int ml_config_lint_certs(const struct ml_snapshot *s, struct ml_config_errors *warn);

/* Adds a warning on an [authz] header for each allow rule of a plaintext listener whose
 * PRINCIPAL is not `-`: no peer of it has a principal, so the rule never matches. Returns 0 or
 * -ENOMEM. */
int ml_config_lint_authz(const struct ml_snapshot *s, struct ml_config_errors *warn);

#endif
