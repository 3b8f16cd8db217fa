/* The node table and the push rule (PROTOCOL.md "meshlet controller"): a connected node gets the
 * version of its file (DIR/ID.ini, else DIR/default.ini) unless it already runs it, is still
 * answering a push of it on this connection, or nacked it; a nacked version is pushed again only
 * after the file changes to another version. Versions are content hashes, so a controller that
 * restarts and hears a Hello with the current version pushes nothing. */
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

/* The file that serves node now (its own when present), its stat refreshed. */
static const struct ml_ctl_file *effective(struct ml_ctl *ctl, struct ml_ctl_node *node,
                                           bool *changed)
{
    *changed = ml_ctl_file_refresh(&node->own);
    return node->own.present ? &node->own : &ctl->fallback;
}

/* Pushes f's version to node if the rule says so; hello: log why nothing is pushed. */
static void sync_node(struct ml_ctl *ctl, struct ml_ctl_node *node, const struct ml_ctl_file *f,
                      bool hello)
{
    uint8_t *buf;
    size_t n;
    int rv;

    if (node->conn == NULL) {
        return;
    }
    if (f->error < 0) {
        if (hello) {
            ML_LOG_WRN("node %s: nothing to push: %s %s", node->id, f->path,
                       f->error == -ENOENT ? "does not exist" : "is not usable (see above)");
        }
        return;
    }
    if (strcmp(f->version, node->config_version) == 0 ||
        strcmp(f->version, node->pushed_version) == 0) {
        return;
    }
    if (node->has_nack && strcmp(f->version, node->nack_version) == 0) {
        if (hello) {
            ML_LOG_INF("node %s: version %s is not pushed again: the node nacked it", node->id,
                       f->version);
        }
        return;
    }
    rv = ml_ctl_msg_push(f->version, ctl->next_nonce + 1, (struct ml_slice){f->ini, f->n},
                         ml_ctl_ws_pre(), &buf, &n);
    if (rv < 0) {
        ML_LOG_ERR("node %s: cannot push version %s of %s: %s", node->id, f->version, f->path,
                   rv == -ENOBUFS ? "larger than a fleet message" : strerror(-rv));
        return;
    }
    ctl->next_nonce++;
    COPY(node->pushed_version, f->version);
    node->pushed_nonce = ctl->next_nonce;
    ML_LOG_INF("node %s: push version %s of %s (nonce %llu, was %s)", node->id, f->version, f->path,
               (unsigned long long)node->pushed_nonce,
               node->config_version[0] != '\0' ? node->config_version : "\"\"");
    ml_ctl_ws_send_take(node->conn, buf, n);
}

int ml_ctl_on_hello(struct ml_ctl *ctl, struct ml_ctl_conn *conn, const struct ml_ctl_msg *m,
                    char *why, size_t cap)
{
    const char *id = m->hello.node_id;
    const struct ml_ctl_file *f;
    struct ml_ctl_node *node;
    bool changed;

    if (!ml_ctl_node_id_safe(id)) {
        snprintf(why, cap,
                 "node id \"%.64s\" is not a safe file name (empty, '/' or a leading "
                 "'.')",
                 id);
        return -1;
    }
    if ((node = find(ctl, id)) == NULL && (node = add(ctl, id, why, cap)) == NULL) {
        return -1;
    }
    if (node->conn != NULL && node->conn != conn) {
        ML_LOG_WRN("node %s: connected again (c%u): closing its older connection c%u", id,
                   ml_ctl_ws_conn_id(conn), ml_ctl_ws_conn_id(node->conn));
        ml_ctl_ws_close(node->conn, "replaced by a newer connection of this node");
    }
    COPY(node->board, m->hello.board);
    COPY(node->version, m->hello.version);
    COPY(node->config_version, m->hello.config_version);
    node->n_features = m->hello.n_features;
    for (size_t i = 0; i < node->n_features; i++) {
        COPY(node->features[i], m->hello.features[i]);
    }
    node->pushed_version[0] = '\0';
    node->conn = conn;
    ml_ctl_ws_set_node(conn, node);
    ML_LOG_INF("c%u: node %s connected (board %s, meshlet %s, config %s)", ml_ctl_ws_conn_id(conn),
               id, node->board, node->version,
               node->config_version[0] != '\0' ? node->config_version : "local");
    ml_ctl_file_refresh(&ctl->fallback);
    f = effective(ctl, node, &changed);
    sync_node(ctl, node, f, true);
    return 0;
}

/* A line of text for the log: newlines become spaces. */
static void one_line(char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\n' || *s == '\r') {
            *s = ' ';
        }
    }
}

void ml_ctl_on_answer(struct ml_ctl *ctl, struct ml_ctl_node *node, const struct ml_ctl_msg *m)
{
    const char *v = m->answer.version;

    if (m->answer.nonce != node->pushed_nonce) {
        ML_LOG_DBG("node %s: answer for nonce %llu, last push had %llu", node->id,
                   (unsigned long long)m->answer.nonce, (unsigned long long)node->pushed_nonce);
    }
    if (strcmp(v, node->pushed_version) == 0) {
        node->pushed_version[0] = '\0';
    }
    if (m->kind == ML_CTL_MSG_ACK) {
        COPY(node->config_version, v);
        ML_LOG_INF("node %s: acked version %s", node->id, v);
        return;
    }
    node->has_nack = true;
    COPY(node->nack_version, v);
    COPY(node->nack_error, m->answer.error);
    {
        char line[sizeof(node->nack_error)];

        COPY(line, m->answer.error);
        one_line(line);
        ML_LOG_WRN("node %s: nacked version %s (not pushed to it again until the file changes): "
                   "%s",
                   node->id, v, line);
    }
}

void ml_ctl_on_status(struct ml_ctl *ctl, struct ml_ctl_node *node, const struct ml_ctl_msg *m)
{
    node->has_status = true;
    node->status = m->status;
    /* What the node runs, from the node: also after a local change (SIGHUP, POST /config),
     * which the controller replaces only when the file changes (PROTOCOL.md). */
    COPY(node->config_version, m->status.config_version);
}

void ml_ctl_on_gone(struct ml_ctl *ctl, struct ml_ctl_node *node)
{
    node->conn = NULL;
    node->disconnected_ms = ml_time_now_ms();
    node->pushed_version[0] = '\0';
    ML_LOG_INF("node %s: disconnected", node->id);
}

void ml_ctl_sync_all(struct ml_ctl *ctl)
{
    bool fallback_changed = ml_ctl_file_refresh(&ctl->fallback);

    for (size_t i = 0; i < ctl->n_nodes; i++) {
        struct ml_ctl_node *node = ctl->nodes[i];
        const struct ml_ctl_file *f;
        bool changed;

        if (node->conn == NULL) {
            continue;
        }
        f = effective(ctl, node, &changed);
        if (changed || (f == &ctl->fallback && fallback_changed)) {
            sync_node(ctl, node, f, false);
        }
    }
}

void ml_ctl_nodes_free(struct ml_ctl *ctl)
{
    for (size_t i = 0; i < ctl->n_nodes; i++) {
        node_free(ctl->nodes[i]);
    }
    ctl->n_nodes = 0;
}
