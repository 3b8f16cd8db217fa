/* The node: the job of `meshlet -c FILE`. It picks the configuration to run
 * (runtime/fleet/README.md "Which configuration runs"), starts the data plane (proxy/), the admin
 * endpoint (admin/) and the fleet client (fleet/) on one loop, and applies new configurations —
 * from a push, SIGHUP or POST /config — through one path (node/apply.c). */
#ifndef ML_NODE_NODE_H
#define ML_NODE_NODE_H

#include <stdbool.h>

struct ml_node_options {
    const char *config_path; /* the local file */
    bool reset_state;        /* --reset-state: discard state_dir's saved config first */
};

/* Runs the node until SIGINT/SIGTERM (drained). Returns the process exit code of config/README.md:
 * 0, 1 (the config is invalid), 2 (it cannot be read), 3 (cannot start: a bind, state_dir). */
int ml_node_run(const struct ml_node_options *o);

#endif
