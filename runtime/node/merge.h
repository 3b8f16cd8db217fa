/* A pushed or POSTed config made whole for this node (runtime/fleet/README.md "Which
 * configuration runs"): [node] and [fleet] are the node's bootstrap and come from its local file
 * only. A push may leave them out (the running values are kept) or repeat them; one that sets a
 * key of either section to a value other than the running one is refused, key by key with its
 * line, and so is one that names another node. Pure text work: no I/O, fuzzable. */
#ifndef ML_NODE_MERGE_H
#define ML_NODE_MERGE_H

#include "config/snapshot-t.h"

#include <stddef.h>

/* pushed: the push as checked (its own text, errors already reported against its own lines);
 * running: the config in force. Returns:
 *  0 and *text_out == NULL: neither has a [node] or [fleet]: the push runs as it is;
 *  0 and *text_out: a new NUL-terminated text of *n_out bytes (ml_free it): the push with the
 *    lines of its own [node] and [fleet] turned into empty comments (every other line keeps its
 *    number), then running's [node] and [fleet] sections, line for line as running has them;
 *  -EPERM: the push changes the bootstrap; why holds the error lines, in the form of the config
 *    errors joined by '\n' ("push:LINE: [node] admin: bootstrap setting, set only in the local
 *    file; running \"...\", got \"...\"", or "push:LINE: [node] id: expected this node's id
 *    ..."), cut at cap;
 *  -ENOMEM. */
int ml_node_merge_push(const struct ml_snapshot *running, const struct ml_snapshot *pushed,
                       char **text_out, size_t *n_out, char *why, size_t cap);

/* The text part of ml_node_merge_push, without its checks: pushed's [node] and [fleet] replaced
 * by running's, whatever they hold. For a config saved in state_dir at start: it runs with the
 * bootstrap of the local file as it is now. Returns 0 (*text_out as ml_node_merge_push's, NULL
 * when neither has a [node] or [fleet]) or -ENOMEM. */
int ml_node_merge_bootstrap(const struct ml_snapshot *running, const struct ml_snapshot *pushed,
                            char **text_out, size_t *n_out);

#endif
