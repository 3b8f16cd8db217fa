/* Which file serves a node, and how a new version of it goes out (runtime/fleet/README.md,
 * "Rollouts"):
 *
 *   - a node is served by DIR/ID.ini when it exists, else by DIR/label=KEY=VALUE.ini for the
 *     first of its labels (Hello order) whose file exists, else by DIR/default.ini;
 *   - the first version a file has becomes its stable version at once (nothing to compare it
 *     with); every later version is a rollout: stage by stage (--stages, default one stage of
 *     every node; e.g. 1 node, 10 %, the rest, counted among the connected nodes the file
 *     serves, chosen in node id order),
 *     each stage waiting until every node chosen so far runs the version, has reported a
 *     healthy Status naming it, and stayed so for --soak;
 *   - the first Nack of the version (not a transient one) or a chosen node that disconnects or
 *     says nothing for --stale halts the rollout: nodes not chosen keep the stable version,
 *     chosen ones keep what they run, and the halt names the node and its error lines;
 *   - rollback (POST /rollback) puts every file back on its previous version (or, while a
 *     rollout runs or is halted, on its stable one) until the file changes again;
 *   - a transient Nack is pushed again after a backoff (ML_CTL_RETRY_*).
 *
 * Healthy: the Status names the version and, when the node has endpoints, at least one is
 * healthy. A chosen node that runs the version with no healthy endpoint for --stale halts the
 * rollout too (it would otherwise wait for ever). */
#include "controller/controller_int.h"

#include "core/alloc.h"
#include "core/log.h"
#include "core/timer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COPY(dst, src) snprintf((dst), sizeof(dst), "%s", (src))

uint64_t ml_ctl_wall_s(void)
{
    return (uint64_t)time(NULL);
}

const char *ml_ctl_ro_state_name(enum ml_ctl_ro_state s)
{
    switch (s) {
    case ML_CTL_RO_NONE:
        return "none";
    case ML_CTL_RO_ROLLING:
        return "rolling";
    case ML_CTL_RO_HALTED:
        return "halted";
    case ML_CTL_RO_ROLLED_BACK:
        return "rolled_back";
    }
    return "?";
}

void ml_ctl_rev_clear(struct ml_ctl_rev *r)
{
    ml_free(r->ini);
    memset(r, 0, sizeof(*r));
}

void ml_ctl_rev_set(struct ml_ctl_rev *dst, const struct ml_ctl_rev *src)
{
    uint8_t *copy = NULL;

    if (dst == src) {
        return;
    }
    if (src->ini != NULL && (copy = ml_malloc(src->n + 1)) != NULL) {
        memcpy(copy, src->ini, src->n);
        copy[src->n] = '\0';
    }
    ml_ctl_rev_clear(dst);
    if (src->ini != NULL && copy == NULL) {
        ML_LOG_ERR("rollout: out of memory keeping version %s", src->version);
        return;
    }
    COPY(dst->version, src->version);
    dst->ini = copy;
    dst->n = src->n;
}

static void rev_from_file(struct ml_ctl_rev *dst, const struct ml_ctl_file *f)
{
    struct ml_ctl_rev r = {.ini = f->ini, .n = f->n};

    COPY(r.version, f->version);
    ml_ctl_rev_set(dst, &r);
}

struct ml_ctl_file *ml_ctl_label_file(struct ml_ctl *ctl, const char *label)
{
    char name[ML_CTL_LABEL_MAX + sizeof("label=.ini")];
    struct ml_ctl_file *f;

    snprintf(name, sizeof(name), "label=%s.ini", label);
    for (size_t i = 0; i < ctl->n_label_files; i++) {
        if (strcmp(ctl->label_files[i]->name, name) == 0) {
            return ctl->label_files[i];
        }
    }
    if (ctl->n_label_files == ML_CTL_MAX_LABEL_FILES) {
        return NULL;
    }
    if ((f = ml_calloc(1, sizeof(*f))) == NULL) {
        return NULL;
    }
    if (ml_ctl_file_init(f, ctl->dir, name) < 0) {
        ml_free(f);
        return NULL;
    }
    ctl->label_files[ctl->n_label_files++] = f;
    ml_ctl_state_restore_file(ctl, f);
    return f;
}

/* The file's content changed (or was first read): maybe a new rollout. */
static void file_changed(struct ml_ctl *ctl, struct ml_ctl_file *f)
{
    struct ml_ctl_rollout *ro = &f->ro;

    if (f->error < 0 || f->version[0] == '\0') {
        return; /* gone or unusable: nodes keep what they were given */
    }
    if (ro->stable.version[0] == '\0') {
        rev_from_file(&ro->stable, f);
        ro->state = ML_CTL_RO_NONE;
        ctl->state_dirty = true;
        ML_LOG_INF("rollout: %s: version %s is the first, stable at once", f->name, f->version);
        return;
    }
    if (strcmp(f->version, ro->stable.version) == 0) {
        if (ro->state != ML_CTL_RO_NONE) {
            ML_LOG_INF("rollout: %s: back to the stable version %s", f->name, f->version);
        }
        if (ro->state == ML_CTL_RO_ROLLING || ro->state == ML_CTL_RO_HALTED) {
            ml_ctl_rev_clear(&ro->target);
        }
        ro->state = ML_CTL_RO_NONE;
        ro->blocked[0] = '\0';
        ctl->state_dirty = true;
        return;
    }
    if ((ro->state == ML_CTL_RO_ROLLING || ro->state == ML_CTL_RO_HALTED) &&
        strcmp(f->version, ro->target.version) == 0) {
        return;
    }
    if (strcmp(f->version, ro->blocked) == 0) {
        ML_LOG_WRN("rollout: %s: version %s was rolled back: not rolled out again until the file "
                   "changes",
                   f->name, f->version);
        return;
    }
    rev_from_file(&ro->target, f);
    ro->state = ML_CTL_RO_ROLLING;
    ro->stage = 0;
    ro->stage_ok_ms = 0;
    ro->halt[0] = '\0';
    ro->blocked[0] = '\0';
    ro->members = ro->done = 0;
    ctl->counters.rollouts_started++;
    ctl->state_dirty = true;
    ML_LOG_INF("rollout: %s: version %s starts (stable %s), stage 1 of %zu", f->name, f->version,
               ro->stable.version, ctl->n_stages);
}

static void refresh(struct ml_ctl *ctl, struct ml_ctl_file *f)
{
    if (ml_ctl_file_refresh(f)) {
        file_changed(ctl, f);
    }
}

static struct ml_ctl_file *choose(struct ml_ctl *ctl, struct ml_ctl_node *node)
{
    if (node->own.present) {
        return &node->own;
    }
    for (size_t i = 0; i < node->n_labels; i++) {
        struct ml_ctl_file *lf = ml_ctl_label_file(ctl, node->labels[i]);

        if (lf != NULL && lf->present) {
            return lf;
        }
    }
    return &ctl->fallback;
}

static bool is_member(const struct ml_ctl_node *node, const struct ml_ctl_rollout *ro)
{
    return ro->target.version[0] != '\0' && strcmp(node->member_of, ro->target.version) == 0;
}

const struct ml_ctl_rev *ml_ctl_rollout_desired(const struct ml_ctl *ctl,
                                                const struct ml_ctl_node *node)
{
    const struct ml_ctl_rollout *ro;

    (void)ctl;
    if (node->serving == NULL) {
        return NULL;
    }
    ro = &node->serving->ro;
    if ((ro->state == ML_CTL_RO_ROLLING || ro->state == ML_CTL_RO_HALTED) && is_member(node, ro)) {
        return &ro->target;
    }
    return ro->stable.version[0] != '\0' ? &ro->stable : NULL;
}

const char *ml_ctl_node_state(const struct ml_ctl *ctl, const struct ml_ctl_node *node)
{
    const struct ml_ctl_rev *d = ml_ctl_rollout_desired(ctl, node);

    if (node->conn == NULL) {
        return "OFFLINE";
    }
    if (d != NULL && node->has_nack && !node->nack_transient &&
        strcmp(node->nack_version, d->version) == 0) {
        return "NACKED";
    }
    if (ml_time_now_ms() - node->last_seen_ms > ctl->stale_ms) {
        return "STALE";
    }
    if (d == NULL || strcmp(d->version, node->config_version) == 0) {
        return "SYNCED";
    }
    return "STALE";
}

static void halt(struct ml_ctl *ctl, struct ml_ctl_file *f, const char *why)
{
    struct ml_ctl_rollout *ro = &f->ro;

    ro->state = ML_CTL_RO_HALTED;
    COPY(ro->halt, why);
    ctl->counters.rollouts_halted++;
    ctl->state_dirty = true;
    ML_LOG_WRN("rollout: %s: version %s HALTED at stage %u of %zu: %s", f->name, ro->target.version,
               ro->stage + 1, ctl->n_stages, why);
}

static bool healthy(const struct ml_ctl *ctl, const struct ml_ctl_node *n, const char *version,
                    uint64_t now_ms)
{
    return n->conn != NULL && now_ms - n->last_seen_ms <= ctl->stale_ms &&
           strcmp(n->config_version, version) == 0 && n->has_status &&
           strcmp(n->status.config_version, version) == 0 &&
           (n->status.endpoints_total == 0 || n->status.endpoints_healthy > 0);
}

/* Nodes stage `stage` covers, cumulatively, out of total (at least 1). */
static size_t stage_want(const struct ml_ctl *ctl, unsigned stage, size_t total)
{
    size_t want = 1;

    for (unsigned i = 0; i <= stage && i < ctl->n_stages; i++) {
        const struct ml_ctl_stage *s = &ctl->stages[i];
        size_t w = s->percent ? (total * s->value + 99) / 100 : s->value;

        if (w > want) {
            want = w;
        }
    }
    return want < total ? want : total;
}

static int by_id(const void *a, const void *b)
{
    const struct ml_ctl_node *const *x = a, *const *y = b;

    return strcmp((*x)->id, (*y)->id);
}

/* Moves the rollout of f on: more nodes, the soak, the next stage, done; or a halt. */
static void advance(struct ml_ctl *ctl, struct ml_ctl_file *f, uint64_t now_ms)
{
    static struct ml_ctl_node *served[ML_CTL_MAX_NODES]; /* the loop's thread only */
    struct ml_ctl_rollout *ro = &f->ro;
    size_t total = 0, members = 0, done = 0, want;
    char why[ML_CTL_HALT_TEXT_MAX + 1];

    if (ro->state != ML_CTL_RO_ROLLING) {
        return;
    }
    for (size_t i = 0; i < ctl->n_nodes; i++) {
        struct ml_ctl_node *n = ctl->nodes[i];
        bool member = is_member(n, ro);

        if (member && n->serving != f && n->conn != NULL) {
            /* another file serves it now (its own or a label file appeared): it leaves this
             * rollout rather than hold a stage for a version it will never be given */
            n->member_of[0] = '\0';
            member = false;
            ctl->state_dirty = true;
        }
        if (n->serving != f && !member) {
            continue;
        }
        if (member) {
            members++;
            if (n->conn == NULL || now_ms - n->last_seen_ms > ctl->stale_ms) {
                snprintf(why, sizeof(why), "node %s stopped reporting (%s)", n->id,
                         n->conn == NULL ? "disconnected" : "no message within --stale");
                halt(ctl, f, why);
                return;
            }
            if (healthy(ctl, n, ro->target.version, now_ms)) {
                n->unhealthy_ms = 0;
                done++;
            } else if (n->has_status && strcmp(n->status.config_version, ro->target.version) == 0 &&
                       n->status.endpoints_total > 0 && n->status.endpoints_healthy == 0) {
                /* runs it but serves nothing: given --stale to recover, then a halt */
                if (n->unhealthy_ms == 0) {
                    n->unhealthy_ms = now_ms;
                } else if (now_ms - n->unhealthy_ms > ctl->stale_ms) {
                    snprintf(why, sizeof(why),
                             "node %s runs it unhealthy: 0 of %u endpoints healthy for over "
                             "--stale",
                             n->id, n->status.endpoints_total);
                    halt(ctl, f, why);
                    return;
                }
            }
        }
        if (n->conn != NULL && n->serving == f) {
            served[total++] = n;
        }
    }
    want = stage_want(ctl, ro->stage, total);
    if (members < want) {
        qsort(served, total, sizeof(served[0]), by_id);
        for (size_t i = 0; i < total && members < want; i++) {
            if (!is_member(served[i], ro)) {
                COPY(served[i]->member_of, ro->target.version);
                members++;
                ML_LOG_INF("rollout: %s: node %s gets version %s (stage %u)", f->name,
                           served[i]->id, ro->target.version, ro->stage + 1);
            }
        }
        ctl->state_dirty = true;
    }
    ro->members = members;
    ro->done = done;
    if (members == 0 || done < members) {
        ro->stage_ok_ms = 0;
        return;
    }
    if (ro->stage_ok_ms == 0) {
        ro->stage_ok_ms = now_ms;
        ML_LOG_INF("rollout: %s: stage %u: %zu nodes on %s and healthy, soaking %u ms", f->name,
                   ro->stage + 1, members, ro->target.version, ctl->soak_ms);
        return;
    }
    if (now_ms - ro->stage_ok_ms < ctl->soak_ms) {
        return;
    }
    if (members < total && ro->stage + 1 < ctl->n_stages) {
        ro->stage++;
        ro->stage_ok_ms = 0;
        ctl->state_dirty = true;
        ML_LOG_INF("rollout: %s: version %s, stage %u of %zu", f->name, ro->target.version,
                   ro->stage + 1, ctl->n_stages);
        return;
    }
    if (members < total) {
        return; /* nodes came since the last stage began: they are chosen next tick */
    }
    ML_LOG_INF("rollout: %s: version %s is out on all %zu nodes: stable (previous %s)", f->name,
               ro->target.version, total, ro->stable.version);
    ml_ctl_rev_set(&ro->previous, &ro->stable);
    ml_ctl_rev_set(&ro->stable, &ro->target);
    ml_ctl_rev_clear(&ro->target);
    ro->state = ML_CTL_RO_NONE;
    ctl->counters.rollouts_done++;
    ctl->state_dirty = true;
}

/* Pushes what node should run when the push rule says so (nodes.c's rule, with retries). */
static void push_if_needed(struct ml_ctl *ctl, struct ml_ctl_node *node, uint64_t now_ms)
{
    const struct ml_ctl_rev *d = ml_ctl_rollout_desired(ctl, node);
    uint8_t *buf;
    size_t n;
    int rv;

    if (node->conn == NULL || d == NULL || d->ini == NULL) {
        return;
    }
    if (strcmp(d->version, node->config_version) == 0 ||
        strcmp(d->version, node->pushed_version) == 0) {
        return;
    }
    if (node->has_nack && strcmp(d->version, node->nack_version) == 0) {
        if (!node->nack_transient || now_ms < node->retry_at_ms) {
            return;
        }
        ctl->counters.retries++;
        ML_LOG_INF("node %s: version %s pushed again after a transient Nack (try %u)", node->id,
                   d->version, node->retries + 1);
    }
    rv = ml_ctl_msg_push(d->version, ctl->next_nonce + 1, (struct ml_slice){d->ini, d->n},
                         node->conn->ops->pre, &buf, &n);
    if (rv < 0) {
        ML_LOG_ERR("node %s: cannot push version %s: %s", node->id, d->version,
                   rv == -ENOBUFS ? "larger than a fleet message" : strerror(-rv));
        return;
    }
    ctl->next_nonce++;
    COPY(node->pushed_version, d->version);
    node->pushed_nonce = ctl->next_nonce;
    ctl->counters.pushes++;
    ML_LOG_INF("node %s: push version %s of %s (nonce %llu, was %s)", node->id, d->version,
               node->serving->name, (unsigned long long)node->pushed_nonce,
               node->config_version[0] != '\0' ? node->config_version : "\"\"");
    node->conn->ops->send_take(node->conn, buf, n);
}

void ml_ctl_rollout_on_nack(struct ml_ctl *ctl, struct ml_ctl_node *node)
{
    struct ml_ctl_file *f = node->serving;
    char why[ML_CTL_HALT_TEXT_MAX + 1];

    if (node->nack_transient) {
        if (++node->retries <= ML_CTL_RETRY_LIMIT) {
            uint64_t wait = (uint64_t)ML_CTL_RETRY_BASE_MS << (node->retries - 1);

            if (wait > ML_CTL_RETRY_MAX_MS) {
                wait = ML_CTL_RETRY_MAX_MS;
            }
            node->retry_at_ms = ml_time_now_ms() + wait;
            ML_LOG_WRN("node %s: transient Nack of version %s: pushed again in %llu ms (try %u "
                       "of %d)",
                       node->id, node->nack_version, (unsigned long long)wait, node->retries,
                       ML_CTL_RETRY_LIMIT);
            return;
        }
        ML_LOG_WRN("node %s: version %s nacked as transient %d times: taken as a Nack", node->id,
                   node->nack_version, ML_CTL_RETRY_LIMIT);
        node->nack_transient = false;
    }
    node->retries = 0;
    if (f != NULL && f->ro.state == ML_CTL_RO_ROLLING && is_member(node, &f->ro) &&
        strcmp(node->nack_version, f->ro.target.version) == 0) {
        snprintf(why, sizeof(why), "node %.64s nacked version %.16s: %.800s", node->id,
                 node->nack_version, node->nack_error);
        halt(ctl, f, why);
    }
}

/* Every file the controller knows, one at a time. */
static struct ml_ctl_file *file_at(struct ml_ctl *ctl, size_t i)
{
    if (i == 0) {
        return &ctl->fallback;
    }
    if (--i < ctl->n_label_files) {
        return ctl->label_files[i];
    }
    i -= ctl->n_label_files;
    return i < ctl->n_nodes ? &ctl->nodes[i]->own : NULL;
}

int ml_ctl_rollout_rollback(struct ml_ctl *ctl, char *msg, size_t cap)
{
    size_t used = 0;
    int n = 0;

    msg[0] = '\0';
    for (size_t i = 0;; i++) {
        struct ml_ctl_file *f = file_at(ctl, i);
        struct ml_ctl_rollout *ro;
        int k = 0;

        if (f == NULL) {
            break;
        }
        ro = &f->ro;
        if (ro->state == ML_CTL_RO_ROLLING || ro->state == ML_CTL_RO_HALTED) {
            k = snprintf(msg + used, cap - used, "%s: %s %s abandoned, back to %s\n", f->name,
                         ml_ctl_ro_state_name(ro->state), ro->target.version, ro->stable.version);
            COPY(ro->blocked, ro->target.version);
            ml_ctl_rev_clear(&ro->target);
        } else if (ro->previous.version[0] != '\0') {
            k = snprintf(msg + used, cap - used, "%s: %s rolled back to %s\n", f->name,
                         ro->stable.version, ro->previous.version);
            COPY(ro->blocked, ro->stable.version);
            ml_ctl_rev_set(&ro->stable, &ro->previous);
            ml_ctl_rev_clear(&ro->previous);
        } else {
            continue;
        }
        ro->state = ML_CTL_RO_ROLLED_BACK;
        ro->halt[0] = '\0';
        n++;
        ML_LOG_WRN("rollout: rollback: %.*s", k > 0 ? k - 1 : 0, msg + used);
        if (k > 0 && used + (size_t)k < cap) {
            used += (size_t)k;
        }
    }
    if (n > 0) {
        ctl->counters.rollbacks++;
        ctl->state_dirty = true;
        ml_ctl_rollout_tick(ctl, false);
    } else {
        snprintf(msg, cap, "nothing to roll back: no file has a previous version\n");
    }
    return n;
}

void ml_ctl_rollout_refresh_node(struct ml_ctl *ctl, struct ml_ctl_node *node)
{
    refresh(ctl, &node->own);
    for (size_t i = 0; i < node->n_labels; i++) {
        struct ml_ctl_file *lf = ml_ctl_label_file(ctl, node->labels[i]);

        if (lf != NULL && !lf->seen) {
            refresh(ctl, lf);
        }
    }
    if (!ctl->fallback.seen) {
        refresh(ctl, &ctl->fallback);
    }
    node->serving = choose(ctl, node);
}

void ml_ctl_rollout_tick(struct ml_ctl *ctl, bool poll)
{
    uint64_t now_ms = ml_time_now_ms();
    struct ml_ctl_file *f;

    if (poll) {
        refresh(ctl, &ctl->fallback);
        for (size_t i = 0; i < ctl->n_label_files; i++) {
            refresh(ctl, ctl->label_files[i]);
        }
        for (size_t i = 0; i < ctl->n_nodes; i++) {
            if (ctl->nodes[i]->conn != NULL) {
                ml_ctl_rollout_refresh_node(ctl, ctl->nodes[i]);
            }
        }
    }
    for (size_t i = 0; (f = file_at(ctl, i)) != NULL; i++) {
        advance(ctl, f, now_ms);
    }
    for (size_t i = 0; i < ctl->n_nodes; i++) {
        push_if_needed(ctl, ctl->nodes[i], now_ms);
    }
    if (poll) {
        ml_ctl_state_save(ctl);
    }
}

void ml_ctl_rollout_free(struct ml_ctl *ctl)
{
    for (size_t i = 0; i < ctl->n_label_files; i++) {
        ml_ctl_file_deinit(ctl->label_files[i]);
        ml_free(ctl->label_files[i]);
    }
    ctl->n_label_files = 0;
}
