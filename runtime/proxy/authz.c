/* proxy/authz.h: the [authz] matcher. */
#include "proxy/authz.h"

#include "core/glob.h"

#include <string.h>

bool ml_authz_glob(const char *pattern, struct ml_slice s)
{
    return ml_glob_match(pattern, s, ML_GLOB_EXACT);
}

static bool principal_matches(const struct ml_cfg_authz_rule *rule, const char *principal)
{
    bool none = principal == NULL || principal[0] == '\0';

    if (strcmp(rule->principal, ML_AUTHZ_NO_PRINCIPAL) == 0) {
        return none;
    }
    if (none) {
        /* Only a deny rule's bare "*" covers a peer without a principal: an allow rule must
         * name that case ("-"), so no glob ever lets an unauthenticated peer in by accident. */
        return !rule->allow && strcmp(rule->principal, "*") == 0;
    }
    return ml_authz_glob(rule->principal,
                         (struct ml_slice){(const uint8_t *)principal, strlen(principal)});
}

bool ml_authz_rule_matches(const struct ml_cfg_authz_rule *rule, const char *principal,
                           struct ml_slice path)
{
    const uint8_t *q = path.n > 0 ? memchr(path.p, '?', path.n) : NULL;

    if (q != NULL) {
        path.n = (size_t)(q - path.p); /* the query string is no part of the method */
    }
    return principal_matches(rule, principal) && ml_authz_glob(rule->path, path);
}

int ml_authz_decide(const struct ml_cfg_authz *az, const char *principal, struct ml_slice path)
{
    for (uint32_t i = 0; i < az->n_rules; i++) {
        if (ml_authz_rule_matches(&az->rules[i], principal, path)) {
            return (int)i;
        }
    }
    return ML_AUTHZ_DEFAULT;
}

bool ml_authz_allows(const struct ml_cfg_authz *az, int decision)
{
    if (decision >= 0 && (uint32_t)decision < az->n_rules) {
        return az->rules[decision].allow;
    }
    return az->default_allow == 1;
}

const struct ml_cfg_authz *ml_authz_of_listener(const struct ml_snapshot *snap, int listener)
{
    for (uint32_t i = 0; i < snap->n_authz; i++) {
        if (snap->authz[i].listener == listener) {
            return &snap->authz[i];
        }
    }
    return NULL;
}
