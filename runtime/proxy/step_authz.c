/* Step authz: the [authz LISTENER] section of the listener the call came in on (none: every
 * call passes, as the contract says). Its rules are tried in file order against the peer's
 * principal and :path (proxy/authz.h), the first that matches decides, else `default`. A denied
 * call ends PERMISSION_DENIED (plain HTTP: 403) with a message naming the rule, before any
 * backend, fault delay or rate-limit token. Runs on the call's own snapshot: a hot apply's
 * rules decide the calls that start after it. */
#include "proxy/step.h"

#include "core/log.h"
#include "core/stats.h"
#include "grpc/status-t.h"
#include "proxy/authz.h"
#include "proxy/call_int.h"

#include <stdio.h>
#include <string.h>

static enum ml_step_rv authz_run(struct ml_call *call)
{
    const struct ml_cfg_authz *az = ml_authz_of_listener(call->snap, call->listener);
    const char *principal = call->obs.principal;
    /* The whole :path (call->path is cut for logs, a cut one could match another glob). */
    struct ml_slice path = call->fields.path;
    char msg[CALL_PATH_MAX + 160];
    int rule;

    if (az == NULL) {
        return ML_STEP_CONTINUE;
    }
    rule = ml_authz_decide(az, principal, path);
    if (ml_authz_allows(az, rule)) {
        ml_stats_authz(call->obs.stats, (int)(az - call->snap->authz), rule, true);
        return ML_STEP_CONTINUE;
    }
    ml_stats_authz(call->obs.stats, (int)(az - call->snap->authz), rule, false);
    if (rule == ML_AUTHZ_DEFAULT) {
        snprintf(msg, sizeof(msg), "permission denied: [authz %s] default = deny (no rule matched)",
                 az->name);
    } else {
        snprintf(msg, sizeof(msg), "permission denied: [authz %s] rule %d (deny = %s -> %s)",
                 az->name, rule + 1, az->rules[rule].principal, az->rules[rule].path);
    }
    ML_LOG_DBG("call %llu: %s (principal \"%s\", path %s)", (unsigned long long)call->id, msg,
               principal[0] != '\0' ? principal : ML_AUTHZ_NO_PRINCIPAL, call->path);
    ml_call_answer(call, ML_GRPC_PERMISSION_DENIED, 403, msg);
    return ML_STEP_ANSWERED;
}

const struct ml_step ml_step_authz = {.name = "authz", .run = authz_run};
