/* GET /metrics (Prometheus text format 0.0.4) and GET /fleet/status (one line per node, what
 * `meshlet fleet status` prints), and the filters GET /fleet shares with them. Every name a
 * line carries comes from a rule-checked source (node ids, labels, file names, hex versions),
 * so nothing here needs escaping beyond what those rules allow. */
#include "controller/controller_int.h"

#include "core/alloc.h"
#include "core/timer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One status line at most: id, state, versions, stage, age, 16 labels. */
#define STATUS_LINE_MAX                                                                            \
    (ML_CTL_NODE_ID_MAX + 16 + 2 * (ML_CTL_TEXT_MAX + 2) + 32 + 32 +                               \
     ML_CTL_LABELS_MAX * (ML_CTL_LABEL_MAX + 1) + 64)

struct text {
    char *p;
    size_t n, cap;
    int error;
};

static void putf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct text *t, const char *fmt, ...)
{
    char line[STATUS_LINE_MAX];
    va_list ap;
    int n;

    if (t->error != 0) {
        return;
    }
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if ((size_t)n >= sizeof(line)) {
        n = sizeof(line) - 1;
    }
    if (t->n + (size_t)n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 4096;
        char *p;

        while (cap < t->n + (size_t)n + 1) {
            cap *= 2;
        }
        if (cap > ML_CTL_MAX_JSON_BYTES) {
            t->error = -ENOBUFS;
            return;
        }
        if ((p = ml_realloc(t->p, cap)) == NULL) {
            t->error = -ENOMEM;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->n, line, (size_t)n + 1);
    t->n += (size_t)n;
}

static int finish(struct text *t, char **out, size_t *n_out)
{
    if (t->error == 0 && t->p == NULL) {
        putf(t, "%s", "");
    }
    if (t->error != 0) {
        ml_free(t->p);
        return t->error;
    }
    *out = t->p;
    *n_out = t->n;
    return 0;
}

bool ml_ctl_node_matches(const struct ml_ctl *ctl, const struct ml_ctl_node *node,
                         const char *label, const char *state)
{
    if (state != NULL && state[0] != '\0' && strcasecmp(state, ml_ctl_node_state(ctl, node)) != 0) {
        return false;
    }
    if (label != NULL && label[0] != '\0') {
        for (size_t i = 0; i < node->n_labels; i++) {
            if (strcmp(node->labels[i], label) == 0) {
                return true;
            }
        }
        return false;
    }
    return true;
}

/* The stage node is in, as "2/3", or "-" when it is not in a rollout under way. */
static void stage_of(const struct ml_ctl *ctl, const struct ml_ctl_node *n, char *buf, size_t cap)
{
    const struct ml_ctl_file *f = n->serving;

    if (f != NULL && (f->ro.state == ML_CTL_RO_ROLLING || f->ro.state == ML_CTL_RO_HALTED) &&
        strcmp(n->member_of, f->ro.target.version) == 0) {
        snprintf(buf, cap, "%u/%zu%s", f->ro.stage + 1, ctl->n_stages,
                 f->ro.state == ML_CTL_RO_HALTED ? "-halted" : "");
    } else {
        snprintf(buf, cap, "-");
    }
}

static int by_id(const void *a, const void *b)
{
    const struct ml_ctl_node *const *x = a, *const *y = b;

    return strcmp((*x)->id, (*y)->id);
}

int ml_ctl_status_text(const struct ml_ctl *ctl, const char *label, const char *state, char **out,
                       size_t *n_out)
{
    uint64_t now_s = ml_ctl_wall_s();
    struct text t = {0};

    /* in node id order, as an operator reads it */
    const struct ml_ctl_node *sorted[ML_CTL_MAX_NODES];

    for (size_t i = 0; i < ctl->n_nodes; i++) {
        sorted[i] = ctl->nodes[i];
    }
    qsort(sorted, ctl->n_nodes, sizeof(sorted[0]), by_id);
    putf(&t, "%-24s %-8s %-17s %-17s %-10s %-9s %s\n", "NODE", "STATE", "RUNNING", "DESIRED",
         "STAGE", "LAST-SEEN", "LABELS");
    for (size_t i = 0; i < ctl->n_nodes; i++) {
        const struct ml_ctl_node *n = sorted[i];
        const struct ml_ctl_rev *d = ml_ctl_rollout_desired(ctl, n);
        char stage[32], seen[24], labels[ML_CTL_LABELS_MAX * (ML_CTL_LABEL_MAX + 1) + 2] = "";
        size_t used = 0;

        if (!ml_ctl_node_matches(ctl, n, label, state)) {
            continue;
        }
        stage_of(ctl, n, stage, sizeof(stage));
        snprintf(seen, sizeof(seen), "%llus",
                 (unsigned long long)(now_s >= n->last_seen_s ? now_s - n->last_seen_s : 0));
        for (size_t k = 0; k < n->n_labels && used < sizeof(labels); k++) {
            used += (size_t)snprintf(labels + used, sizeof(labels) - used, "%s%s", k ? "," : "",
                                     n->labels[k]);
        }
        putf(&t, "%-24s %-8s %-17s %-17s %-10s %-9s %s\n", n->id, ml_ctl_node_state(ctl, n),
             n->config_version[0] != '\0' ? n->config_version : "local",
             d != NULL ? d->version : "-", stage, seen, labels[0] != '\0' ? labels : "-");
    }
    for (size_t i = 0; i <= ctl->n_label_files + ctl->n_nodes; i++) {
        const struct ml_ctl_file *f = i == 0 ? &ctl->fallback
                                      : i - 1 < ctl->n_label_files
                                          ? ctl->label_files[i - 1]
                                          : &ctl->nodes[i - 1 - ctl->n_label_files]->own;

        if (f->ro.state == ML_CTL_RO_HALTED) {
            putf(&t, "ROLLOUT %s HALTED at stage %u/%zu, version %s: %s\n", f->name,
                 f->ro.stage + 1, ctl->n_stages, f->ro.target.version, f->ro.halt);
        } else if (f->ro.state == ML_CTL_RO_ROLLING) {
            putf(&t, "ROLLOUT %s rolling stage %u/%zu, version %s: %zu of %zu nodes done\n",
                 f->name, f->ro.stage + 1, ctl->n_stages, f->ro.target.version, f->ro.done,
                 f->ro.members);
        }
    }
    return finish(&t, out, n_out);
}

int ml_ctl_metrics(const struct ml_ctl *ctl, char **out, size_t *n_out)
{
    static const char *const states[] = {"SYNCED", "STALE", "NACKED", "OFFLINE"};
    const struct ml_ctl_counters *c = &ctl->counters;
    size_t count[4] = {0};
    struct text t = {0};

    for (size_t i = 0; i < ctl->n_nodes; i++) {
        const char *s = ml_ctl_node_state(ctl, ctl->nodes[i]);

        for (size_t k = 0; k < 4; k++) {
            count[k] += strcmp(s, states[k]) == 0;
        }
    }
    putf(&t, "# HELP meshlet_controller_nodes Nodes the controller knows, by state.\n"
             "# TYPE meshlet_controller_nodes gauge\n");
    for (size_t k = 0; k < 4; k++) {
        /* the label is the state in lower case: "SYNCED" -> "synced" */
        static const char *const label[] = {"synced", "stale", "nacked", "offline"};

        putf(&t, "meshlet_controller_nodes{state=\"%s\"} %zu\n", label[k], count[k]);
    }
    putf(&t,
         "# TYPE meshlet_controller_pushes_total counter\n"
         "meshlet_controller_pushes_total %" PRIu64 "\n"
         "# TYPE meshlet_controller_acks_total counter\n"
         "meshlet_controller_acks_total %" PRIu64 "\n"
         "# TYPE meshlet_controller_nacks_total counter\n"
         "meshlet_controller_nacks_total %" PRIu64 "\n"
         "# TYPE meshlet_controller_nacks_transient_total counter\n"
         "meshlet_controller_nacks_transient_total %" PRIu64 "\n"
         "# TYPE meshlet_controller_push_retries_total counter\n"
         "meshlet_controller_push_retries_total %" PRIu64 "\n",
         c->pushes, c->acks, c->nacks, c->nacks_transient, c->retries);
    putf(&t,
         "# TYPE meshlet_controller_rollouts_started_total counter\n"
         "meshlet_controller_rollouts_started_total %" PRIu64 "\n"
         "# TYPE meshlet_controller_rollouts_done_total counter\n"
         "meshlet_controller_rollouts_done_total %" PRIu64 "\n"
         "# TYPE meshlet_controller_rollouts_halted_total counter\n"
         "meshlet_controller_rollouts_halted_total %" PRIu64 "\n"
         "# TYPE meshlet_controller_rollbacks_total counter\n"
         "meshlet_controller_rollbacks_total %" PRIu64 "\n"
         "# TYPE meshlet_controller_state_save_failures_total counter\n"
         "meshlet_controller_state_save_failures_total %" PRIu64 "\n",
         c->rollouts_started, c->rollouts_done, c->rollouts_halted, c->rollbacks,
         c->state_save_failures);
    if (ctl->mqtt != NULL) {
        putf(&t,
             "# TYPE meshlet_controller_mqtt_connected gauge\n"
             "meshlet_controller_mqtt_connected %" PRIu64 "\n"
             "# TYPE meshlet_controller_mqtt_connects_total counter\n"
             "meshlet_controller_mqtt_connects_total %" PRIu64 "\n"
             "# TYPE meshlet_controller_mqtt_dropped_total counter\n"
             "meshlet_controller_mqtt_dropped_total %" PRIu64 "\n",
             c->mqtt_connected, c->mqtt_connects, c->mqtt_dropped);
    }
    putf(&t, "# HELP meshlet_controller_rollout_stage Stage under way (1-based) of each rollout "
             "that is rolling or halted; halted 1 when halted.\n"
             "# TYPE meshlet_controller_rollout_stage gauge\n"
             "# TYPE meshlet_controller_rollout_halted gauge\n"
             "# TYPE meshlet_controller_rollout_nodes gauge\n"
             "# TYPE meshlet_controller_rollout_nodes_done gauge\n");
    for (size_t i = 0; i <= ctl->n_label_files + ctl->n_nodes; i++) {
        const struct ml_ctl_file *f = i == 0 ? &ctl->fallback
                                      : i - 1 < ctl->n_label_files
                                          ? ctl->label_files[i - 1]
                                          : &ctl->nodes[i - 1 - ctl->n_label_files]->own;
        const struct ml_ctl_rollout *ro = &f->ro;

        if (ro->state != ML_CTL_RO_ROLLING && ro->state != ML_CTL_RO_HALTED) {
            continue;
        }
        putf(&t, "meshlet_controller_rollout_stage{file=\"%s\",version=\"%s\"} %u\n", f->name,
             ro->target.version, ro->stage + 1);
        putf(&t, "meshlet_controller_rollout_halted{file=\"%s\",version=\"%s\"} %d\n", f->name,
             ro->target.version, ro->state == ML_CTL_RO_HALTED);
        putf(&t, "meshlet_controller_rollout_nodes{file=\"%s\",version=\"%s\"} %zu\n", f->name,
             ro->target.version, ro->members);
        putf(&t, "meshlet_controller_rollout_nodes_done{file=\"%s\",version=\"%s\"} %zu\n", f->name,
             ro->target.version, ro->done);
    }
    return finish(&t, out, n_out);
}
