/* The node table and what each message does to it. Which version a node should run and when
 * it is pushed is rollout.c's (runtime/fleet/README.md, "meshlet controller" and "Rollouts"): a
 * connected node gets the version its file wants for it unless it already runs it, is still
 * answering a push of it on this connection, or nacked it (a transient Nack: pushed again after
 * a backoff); a nacked version is pushed again only after the file changes to another version.
 * Versions are content hashes, so a controller that restarts and hears a Hello with the current
 * version pushes nothing. */
#include "controller/controller_int.h"

#include "core/alloc.h"
#include "core/log.h"
#include "core/timer.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define COPY(dst, src) snprintf((dst), sizeof(dst), "%s", (src))

static struct ml_ctl_node *find(struct ml_ctl *ctl, const char *id)
{
    for (size_t i = 0; i < ctl->n_nodes; i++) {
        if (strcmp(ctl->nodes[i]->id, id) == 0) {
            return ctl->nodes[i];
        }
    }
    return NULL;
}

static void node_free(struct ml_ctl_node *node)
{
    ml_ctl_file_deinit(&node->own);
    ml_free(node);
}

/* Frees the node disconnected longest, to make room. false when every node is connected. */
static bool evict_one(struct ml_ctl *ctl)
{
    size_t victim = ctl->n_nodes;
    uint64_t now_ms = ml_time_now_ms();

    for (size_t i = 0; i < ctl->n_nodes; i++) {
        const struct ml_ctl_node *n = ctl->nodes[i];

        if (n->conn == NULL &&
            (victim == ctl->n_nodes || n->disconnected_ms < ctl->nodes[victim]->disconnected_ms)) {
            victim = i;
        }
    }
    if (victim == ctl->n_nodes) {
        return false;
    }
    ML_LOG_WRN("nodes: table full (ML_CTL_MAX_NODES = %d): forgetting node %s, disconnected "
               "for %llu s",
               ML_CTL_MAX_NODES, ctl->nodes[victim]->id,
               (unsigned long long)((now_ms - ctl->nodes[victim]->disconnected_ms) / 1000));
    ctl->counters.nodes_forgotten++;
    node_free(ctl->nodes[victim]);
    ctl->nodes[victim] = ctl->nodes[--ctl->n_nodes];
    return true;
}

/* A new record for id (safe as a file name), or NULL with the reason in why. */
static struct ml_ctl_node *add(struct ml_ctl *ctl, const char *id, char *why, size_t cap)
{
    char name[ML_CTL_TEXT_MAX + sizeof(".ini")];
    struct ml_ctl_node *node;

    if (ctl->n_nodes == ML_CTL_MAX_NODES && !evict_one(ctl)) {
        snprintf(why, cap, "node table full: %d nodes connected (ML_CTL_MAX_NODES)",
                 ML_CTL_MAX_NODES);
        return NULL;
    }
    if ((node = ml_calloc(1, sizeof(*node))) == NULL) {
        snprintf(why, cap, "out of memory for node %s", id);
        return NULL;
    }
    snprintf(name, sizeof(name), "%s.ini", id);
    if (ml_ctl_file_init(&node->own, ctl->dir, name) < 0) {
        snprintf(why, cap, "node id %s makes a path longer than PATH_MAX", id);
        ml_free(node);
        return NULL;
    }
    COPY(node->id, id);
    ctl->nodes[ctl->n_nodes++] = node;
    return node;
}

int ml_ctl_on_hello(struct ml_ctl *ctl, struct ml_ctl_conn *conn, const struct ml_ctl_msg *m,
                    char *why, size_t cap)
{
    const char *id = m->hello.node_id;
    struct ml_ctl_node *node;

    if ((node = find(ctl, id)) == NULL) {
        if ((node = add(ctl, id, why, cap)) == NULL) {
            ctl->counters.hello_refused_table_full++;
            return -1;
        }
        ml_ctl_state_restore_file(ctl, &node->own);
        ml_ctl_state_restore_node(ctl, node);
    }
    if (node->conn != NULL && node->conn != conn) {
        /* The first connection keeps the id while it is alive (pings find a dead one: ws.c). Had
         * the newer one replaced it, two peers with one id would take turns for ever, each
         * reconnect knocking the other off and rewriting the record. */
        ctl->counters.hello_refused_in_use++;
        snprintf(why, cap,
                 "node id %s is in use by connection c%u (the first connection keeps it while it "
                 "is alive)",
                 id, node->conn->id);
        return -1;
    }
    COPY(node->board, m->hello.board);
    COPY(node->version, m->hello.version);
    COPY(node->config_version, m->hello.config_version);
    node->n_features = m->hello.n_features;
    for (size_t i = 0; i < node->n_features; i++) {
        COPY(node->features[i], m->hello.features[i]);
    }
    node->n_labels = m->hello.n_labels;
    for (size_t i = 0; i < node->n_labels; i++) {
        COPY(node->labels[i], m->hello.labels[i]);
    }
    node->pushed_version[0] = '\0';
    node->conn = conn;
    node->connected_since_s = node->last_seen_s = ml_ctl_wall_s();
    node->last_seen_ms = ml_time_now_ms();
    conn->node = node;
    ML_LOG_INF("c%u: node %s connected (board %s, meshlet %s, config %s)", conn->id, id,
               node->board, node->version,
               node->config_version[0] != '\0' ? node->config_version : "local");
    ml_ctl_rollout_refresh_node(ctl, node);
    ml_ctl_rollout_tick(ctl, false);
    if (ml_ctl_rollout_desired(ctl, node) == NULL) {
        ML_LOG_WRN("node %s: nothing to push yet: %s (and its label files, %s) %s", node->id,
                   node->own.path, ctl->fallback.path, "do not exist or are not usable");
    }
    return 0;
}

/* Whether m answers the push outstanding on conn; logs and counts when it does not. */
static bool answers_outstanding(struct ml_ctl *ctl, struct ml_ctl_conn *conn,
                                const struct ml_ctl_node *node, const struct ml_ctl_msg *m)
{
    char v[ML_CTL_TEXT_MAX + 1];

    if (node->conn == conn && node->pushed_version[0] != '\0' &&
        m->answer.nonce == node->pushed_nonce &&
        strcmp(m->answer.version, node->pushed_version) == 0) {
        return true;
    }
    ctl->counters.answers_ignored++;
    ml_ctl_text_printable(m->answer.version, ML_CTL_TEXT_MAX, v, sizeof(v));
    if (node->pushed_version[0] == '\0') {
        ML_LOG_WRN("c%u node %s: %s for version %s nonce %llu ignored: no push is outstanding",
                   conn->id, node->id, m->kind == ML_CTL_MSG_ACK ? "Ack" : "Nack", v,
                   (unsigned long long)m->answer.nonce);
    } else {
        ML_LOG_WRN("c%u node %s: %s for version %s nonce %llu ignored: the push outstanding is "
                   "version %s nonce %llu",
                   conn->id, node->id, m->kind == ML_CTL_MSG_ACK ? "Ack" : "Nack", v,
                   (unsigned long long)m->answer.nonce, node->pushed_version,
                   (unsigned long long)node->pushed_nonce);
    }
    return false;
}

void ml_ctl_on_answer(struct ml_ctl *ctl, struct ml_ctl_conn *conn, struct ml_ctl_node *node,
                      const struct ml_ctl_msg *m)
{
    const char *v = m->answer.version;

    if (!answers_outstanding(ctl, conn, node, m)) {
        return;
    }
    node->pushed_version[0] = '\0';
    node->last_seen_s = ml_ctl_wall_s();
    node->last_seen_ms = ml_time_now_ms();
    if (m->kind == ML_CTL_MSG_ACK) {
        ctl->counters.acks++;
        COPY(node->config_version, v);
        if (node->has_nack && strcmp(node->nack_version, v) == 0) {
            node->has_nack = false; /* a transient Nack retried with success */
            node->retries = 0;
            ctl->state_dirty = true;
        }
        ML_LOG_INF("node %s: acked version %s", node->id, v);
        ml_ctl_rollout_tick(ctl, false);
        return;
    }
    ctl->counters.nacks++;
    ctl->counters.nacks_transient += m->answer.transient;
    if (!node->has_nack || strcmp(node->nack_version, v) != 0) {
        node->retries = 0;
    }
    node->has_nack = true;
    node->nack_transient = m->answer.transient;
    COPY(node->nack_version, v);
    COPY(node->nack_error, m->answer.error);
    ctl->state_dirty = true;
    {
        char line[sizeof(node->nack_error)];

        /* Control bytes and all: one log line, whatever the node sent. */
        ml_ctl_text_printable(m->answer.error, ML_CTL_ERROR_MAX, line, sizeof(line));
        ML_LOG_WRN("node %s: nacked version %s (%s): %s", node->id, v,
                   m->answer.transient ? "transient: pushed again after a backoff"
                                       : "not pushed to it again until the file changes",
                   line);
    }
    ml_ctl_rollout_on_nack(ctl, node);
    ml_ctl_rollout_tick(ctl, false);
}

void ml_ctl_on_status(struct ml_ctl *ctl, struct ml_ctl_conn *conn, struct ml_ctl_node *node,
                      const struct ml_ctl_msg *m)
{
    if (node->conn != conn) {
        return; /* ws.c links a connection only to the node it owns: not reached */
    }
    node->has_status = true;
    node->status = m->status;
    node->last_seen_s = ml_ctl_wall_s();
    node->last_seen_ms = ml_time_now_ms();
    /* What the node runs, from the node: also after a local change (SIGHUP, POST /config),
     * which the controller replaces only when the file changes (runtime/fleet/README.md). */
    COPY(node->config_version, m->status.config_version);
}

void ml_ctl_on_gone(struct ml_ctl *ctl, struct ml_ctl_node *node)
{
    node->conn = NULL;
    node->disconnected_ms = ml_time_now_ms();
    node->pushed_version[0] = '\0';
    ML_LOG_INF("node %s: disconnected", node->id);
}

/* Forgets node i when it has been disconnected longer than ML_CTL_FORGET_AFTER_S (the last node
 * takes its slot). true when it did. */
static bool forget_if_stale(struct ml_ctl *ctl, size_t i, uint64_t now_ms)
{
    struct ml_ctl_node *node = ctl->nodes[i];

    if (node->conn != NULL || now_ms - node->disconnected_ms < ML_CTL_FORGET_AFTER_S * 1000ull) {
        return false;
    }
    ML_LOG_INF("node %s: forgotten, disconnected for over %u s (ML_CTL_FORGET_AFTER_S)", node->id,
               ML_CTL_FORGET_AFTER_S);
    ctl->counters.nodes_forgotten++;
    node_free(node);
    ctl->nodes[i] = ctl->nodes[--ctl->n_nodes];
    return true;
}

void ml_ctl_sync_all(struct ml_ctl *ctl)
{
    uint64_t now_ms = ml_time_now_ms();

    for (size_t i = 0; i < ctl->n_nodes; i++) {
        if (ctl->nodes[i]->conn == NULL && forget_if_stale(ctl, i, now_ms)) {
            i--; /* slot i now holds the node that was last */
        }
    }
    ml_ctl_rollout_tick(ctl, true);
}

void ml_ctl_nodes_free(struct ml_ctl *ctl)
{
    for (size_t i = 0; i < ctl->n_nodes; i++) {
        node_free(ctl->nodes[i]);
    }
    ctl->n_nodes = 0;
}
