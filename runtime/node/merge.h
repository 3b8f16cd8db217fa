/* A pushed config made whole for this node (runtime/fleet/README.md "Which configuration runs"): a
 * push may leave out [node] id and [fleet]; they are then kept from the running config, so that
 * what is saved in state_dir and run after a restart is complete. A push that names another node is
 * refused. Pure text work: no I/O, fuzzable. */
#ifndef ML_NODE_MERGE_H
#define ML_NODE_MERGE_H

#include "config/snapshot-t.h"

#include <stddef.h>

/* pushed: the push as checked (its own text, errors already reported against its own lines);
 * running: the config in force. Returns:
 *  0 and *text_out == NULL: the push is whole as it is;
 *  0 and *text_out: a new NUL-terminated text of *n_out bytes (ml_free it), the push with
 *    "id = ..." added to its [node] (or a [node] section appended) and/or running's [fleet]
 *    section appended, line for line as running has it;
 *  -EPERM: the push's [node] id is not this node's; why holds the error line, in the form of
 *    the config errors ("push:LINE: [node] id: ...");
 *  -ENOMEM. */
int ml_node_merge_push(const struct ml_snapshot *running, const struct ml_snapshot *pushed,
                       char **text_out, size_t *n_out, char *why, size_t cap);

#endif
