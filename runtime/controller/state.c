/* What survives a controller restart (--state DIR): every file's rollout (stable, target and
 * previous versions, the stage, a halt and its reason, a version rolled back from) and every
 * node's Nack and rollout membership. Written with config/store.c, the node's own atomic save
 * (a random temporary file, fsync, rename, fsync of the directory; a torn file is refused on
 * load), so a crash leaves the old state or the new one, never half:
 *
 *   DIR/index/config.state    the text below (its "version" is STATE_MAGIC)
 *   DIR/v-VERSION/config.state  the INI bytes of one version (content-addressed: written once,
 *                               checked against its hash when read back)
 *
 * The index text, one record a line, tab-separated, the free texts escaped (\\, \t, \n):
 *
 *   file NAME STATE STAGE STABLE TARGET PREVIOUS BLOCKED HALT
 *   node ID MEMBER_OF NACK_VERSION TRANSIENT NACK_ERROR
 *
 * Versions a file keeps but the index no longer names are removed from DIR after a save. */
#include "controller/controller_int.h"

#include "config/store.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/sha256.h"
#include "meshlet_config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_MAGIC "meshlet-controller-state-1"
/* A Nack's error as kept in the state file: the first bytes, so the index stays far below the
 * store's bound (CONFIG_ML_MAX_CONFIG_BYTES) with a full node table. */
#define SAVED_ERROR_BYTES 160
#define FIELDS_MAX 10

struct saved_file {
    char name[ML_CTL_LABEL_MAX + 16 > ML_CTL_TEXT_MAX + 8 ? ML_CTL_LABEL_MAX + 16
                                                          : ML_CTL_TEXT_MAX + 8];
    enum ml_ctl_ro_state state;
    unsigned stage;
    char stable[ML_CTL_VERSION_HEX + 1], target[ML_CTL_VERSION_HEX + 1];
    char previous[ML_CTL_VERSION_HEX + 1], blocked[ML_CTL_VERSION_HEX + 1];
    char halt[ML_CTL_HALT_TEXT_MAX + 1];
    bool used;
};

struct saved_node {
    char id[ML_CTL_TEXT_MAX + 1];
    char member_of[ML_CTL_VERSION_HEX + 1];
    char nack_version[ML_CTL_TEXT_MAX + 1];
    bool transient;
    char nack_error[SAVED_ERROR_BYTES * 2 + 1];
    bool used;
};

struct ml_ctl_saved {
    struct saved_file *files;
    size_t n_files;
    struct saved_node *nodes;
    size_t n_nodes;
};

#define COPY(dst, src) snprintf((dst), sizeof(dst), "%s", (src))

/* ---- text ------------------------------------------------------------------------------- */

struct buf {
    char *p;
    size_t n, cap;
    bool failed;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->failed) {
        return;
    }
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        char *p;

        while (cap < b->n + n + 1) {
            cap *= 2;
        }
        if ((p = ml_realloc(b->p, cap)) == NULL) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void put_s(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* s (at most max bytes) with \\, \t and \n escaped: one field of one line. */
static void put_escaped(struct buf *b, const char *s, size_t max)
{
    for (size_t i = 0; s[i] != '\0' && i < max; i++) {
        if (s[i] == '\\') {
            put_s(b, "\\\\");
        } else if (s[i] == '\t') {
            put_s(b, "\\t");
        } else if (s[i] == '\n') {
            put_s(b, "\\n");
        } else {
            put(b, &s[i], 1);
        }
    }
}

static void unescape(char *s)
{
    char *o = s;

    for (char *c = s; *c != '\0'; c++) {
        if (*c == '\\' && c[1] != '\0') {
            c++;
            *o++ = *c == 't' ? '\t' : *c == 'n' ? '\n' : *c;
        } else {
            *o++ = *c;
        }
    }
    *o = '\0';
}

static size_t split(char *line, char **f, size_t max)
{
    size_t n = 0;

    for (char *p = line; n < max;) {
        char *tab = strchr(p, '\t');

        f[n++] = p;
        if (tab == NULL) {
            break;
        }
        *tab = '\0';
        p = tab + 1;
    }
    return n;
}

/* ---- versions' bytes -------------------------------------------------------------------- */

static int rev_dir(const struct ml_ctl *ctl, const char *version, char *path, size_t cap)
{
    int n = snprintf(path, cap, "%s/v-%s", ctl->state_dir, version);

    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static void rev_save(struct ml_ctl *ctl, const struct ml_ctl_rev *r)
{
    char dir[PATH_MAX], file[PATH_MAX + 16];
    struct stat st;
    int rv;

    if (r->version[0] == '\0' || r->ini == NULL || rev_dir(ctl, r->version, dir, sizeof(dir)) < 0) {
        return;
    }
    snprintf(file, sizeof(file), "%s/config.state", dir);
    if (stat(file, &st) == 0) {
        return; /* content-addressed: already there */
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        rv = -errno;
    } else {
        rv = ml_config_store_save(NULL, dir, r->version, (const char *)r->ini, r->n);
    }
    if (rv < 0) {
        ctl->counters.state_save_failures++;
        ML_LOG_ERR("state: cannot keep version %s in %s: %s", r->version, dir, strerror(-rv));
    }
}

static void rev_load(struct ml_ctl *ctl, const char *version, struct ml_ctl_rev *out)
{
    char dir[PATH_MAX], got[ML_CONFIG_STORE_VERSION_MAX + 1], hex[ML_CTL_VERSION_HEX + 1];
    char *text = NULL;
    size_t n = 0;
    int rv;

    ml_ctl_rev_clear(out);
    if (version[0] == '\0' || rev_dir(ctl, version, dir, sizeof(dir)) < 0) {
        return;
    }
    if ((rv = ml_config_store_load(NULL, dir, got, &text, &n)) < 0) {
        ML_LOG_ERR("state: version %s cannot be read back from %s: %s", version, dir,
                   strerror(-rv));
        return;
    }
    ml_sha256_hex(text, n, hex, ML_CTL_VERSION_HEX);
    if (strcmp(got, version) != 0 || strcmp(hex, version) != 0) {
        ML_LOG_ERR("state: %s does not hold version %s: not used", dir, version);
        ml_free(text);
        return;
    }
    COPY(out->version, version);
    out->ini = (uint8_t *)text;
    out->n = n;
}

/* ---- load ------------------------------------------------------------------------------- */

static bool is_version(const char *s)
{
    size_t n = strlen(s);

    if (n != 0 && n != ML_CTL_VERSION_HEX) {
        return false;
    }
    return strspn(s, "0123456789abcdef") == n;
}

static int parse_file(struct ml_ctl_saved *sv, char **f, size_t n)
{
    struct saved_file *x, *grown;
    static const char *const states[] = {"none", "rolling", "halted", "rolled_back"};
    int state = -1;

    if (n != 9) {
        return -EBADMSG;
    }
    for (int i = 0; i < 4; i++) {
        if (strcmp(f[2], states[i]) == 0) {
            state = i;
        }
    }
    if (state < 0 || strlen(f[1]) >= sizeof(x->name) || strchr(f[1], '/') != NULL ||
        !is_version(f[4]) || !is_version(f[5]) || !is_version(f[6]) || !is_version(f[7])) {
        return -EBADMSG;
    }
    if ((grown = ml_realloc(sv->files, (sv->n_files + 1) * sizeof(*grown))) == NULL) {
        return -ENOMEM;
    }
    sv->files = grown;
    x = &sv->files[sv->n_files++];
    memset(x, 0, sizeof(*x));
    COPY(x->name, f[1]);
    x->state = (enum ml_ctl_ro_state)state;
    x->stage = (unsigned)strtoul(f[3], NULL, 10);
    COPY(x->stable, f[4]);
    COPY(x->target, f[5]);
    COPY(x->previous, f[6]);
    COPY(x->blocked, f[7]);
    unescape(f[8]);
    COPY(x->halt, f[8]);
    return 0;
}

static int parse_node(struct ml_ctl_saved *sv, char **f, size_t n)
{
    struct saved_node *x, *grown;

    if (n != 6 || !ml_ctl_node_id_safe(f[1]) || !is_version(f[2]) ||
        strlen(f[3]) > ML_CTL_TEXT_MAX) {
        return -EBADMSG;
    }
    if ((grown = ml_realloc(sv->nodes, (sv->n_nodes + 1) * sizeof(*grown))) == NULL) {
        return -ENOMEM;
    }
    sv->nodes = grown;
    x = &sv->nodes[sv->n_nodes++];
    memset(x, 0, sizeof(*x));
    COPY(x->id, f[1]);
    COPY(x->member_of, f[2]);
    COPY(x->nack_version, f[3]);
    x->transient = strcmp(f[4], "1") == 0;
    unescape(f[5]);
    COPY(x->nack_error, f[5]);
    return 0;
}

static int parse(struct ml_ctl_saved *sv, char *text)
{
    char *line = text, *f[FIELDS_MAX];
    int rv = 0;

    while (line != NULL && *line != '\0' && rv == 0) {
        char *nl = strchr(line, '\n');
        size_t n;

        if (nl != NULL) {
            *nl = '\0';
        }
        n = split(line, f, FIELDS_MAX);
        if (strcmp(f[0], "file") == 0) {
            rv = parse_file(sv, f, n);
        } else if (strcmp(f[0], "node") == 0) {
            rv = parse_node(sv, f, n);
        } else {
            rv = -EBADMSG;
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    return rv;
}

int ml_ctl_state_open(struct ml_ctl *ctl, const char *dir, char *why, size_t cap)
{
    char index[PATH_MAX + 16], version[ML_CONFIG_STORE_VERSION_MAX + 1], reason[256];
    char *text = NULL;
    size_t n = 0;
    int rv;

    if (strlen(dir) >= sizeof(ctl->state_dir) - 64) {
        snprintf(why, cap, "--state %s: path too long", dir);
        return -ENAMETOOLONG;
    }
    snprintf(ctl->state_dir, sizeof(ctl->state_dir), "%s", dir);
    snprintf(index, sizeof(index), "%s/index", dir);
    if ((rv = ml_config_store_check_dir(NULL, dir, reason, sizeof(reason))) < 0 ||
        (rv = ml_config_store_check_dir(NULL, index, reason, sizeof(reason))) < 0) {
        snprintf(why, cap, "--state %s: %s", dir, reason);
        return rv;
    }
    if ((ctl->saved = ml_calloc(1, sizeof(*ctl->saved))) == NULL) {
        snprintf(why, cap, "out of memory");
        return -ENOMEM;
    }
    rv = ml_config_store_load(NULL, index, version, &text, &n);
    if (rv == -ENOENT) {
        ML_LOG_INF("state: %s: nothing saved yet", dir);
        return 0;
    }
    if (rv == 0 && strcmp(version, STATE_MAGIC) != 0) {
        rv = -EBADMSG;
    }
    if (rv == 0) {
        rv = parse(ctl->saved, text);
    }
    ml_free(text);
    if (rv < 0) {
        /* Starting afresh is what a controller without --state does: say so, refuse nothing. */
        ML_LOG_ERR("state: %s/config.state cannot be used (%s): starting without it", index,
                   rv == -EBADMSG ? "not a controller state, or garbled" : strerror(-rv));
        ml_ctl_state_free(ctl);
        ctl->saved = ml_calloc(1, sizeof(*ctl->saved));
        return 0;
    }
    ML_LOG_INF("state: %s: %zu files and %zu nodes restored", dir, ctl->saved->n_files,
               ctl->saved->n_nodes);
    return 0;
}

void ml_ctl_state_restore_file(struct ml_ctl *ctl, struct ml_ctl_file *f)
{
    struct ml_ctl_rollout *ro = &f->ro;

    if (ctl->saved == NULL) {
        return;
    }
    for (size_t i = 0; i < ctl->saved->n_files; i++) {
        struct saved_file *x = &ctl->saved->files[i];

        if (x->used || strcmp(x->name, f->name) != 0) {
            continue;
        }
        x->used = true;
        rev_load(ctl, x->stable, &ro->stable);
        rev_load(ctl, x->target, &ro->target);
        rev_load(ctl, x->previous, &ro->previous);
        COPY(ro->blocked, x->blocked);
        COPY(ro->halt, x->halt);
        ro->stage = x->stage < ctl->n_stages ? x->stage : 0;
        ro->state = x->state;
        if ((ro->state == ML_CTL_RO_ROLLING || ro->state == ML_CTL_RO_HALTED) &&
            ro->target.ini == NULL) {
            ro->state = ML_CTL_RO_NONE; /* its bytes are gone: the file's content restarts it */
        }
        f->ro_loaded = true;
        ML_LOG_INF("state: %s: %s, stable %s, target %s, previous %s", f->name,
                   ml_ctl_ro_state_name(ro->state), ro->stable.version, ro->target.version,
                   ro->previous.version);
        return;
    }
}

void ml_ctl_state_restore_node(struct ml_ctl *ctl, struct ml_ctl_node *node)
{
    if (ctl->saved == NULL) {
        return;
    }
    for (size_t i = 0; i < ctl->saved->n_nodes; i++) {
        struct saved_node *x = &ctl->saved->nodes[i];

        if (x->used || strcmp(x->id, node->id) != 0) {
            continue;
        }
        x->used = true;
        COPY(node->member_of, x->member_of);
        if (x->nack_version[0] != '\0') {
            node->has_nack = true;
            node->nack_transient = x->transient;
            COPY(node->nack_version, x->nack_version);
            COPY(node->nack_error, x->nack_error);
        }
        return;
    }
}

/* ---- save ------------------------------------------------------------------------------- */

static void put_file(struct ml_ctl *ctl, struct buf *b, const struct ml_ctl_file *f)
{
    const struct ml_ctl_rollout *ro = &f->ro;
    char num[24];

    if (ro->stable.version[0] == '\0' && ro->blocked[0] == '\0') {
        return;
    }
    rev_save(ctl, &ro->stable);
    rev_save(ctl, &ro->target);
    rev_save(ctl, &ro->previous);
    snprintf(num, sizeof(num), "%u", ro->stage);
    put_s(b, "file\t");
    put_s(b, f->name);
    put_s(b, "\t");
    put_s(b, ml_ctl_ro_state_name(ro->state));
    put_s(b, "\t");
    put_s(b, num);
    put_s(b, "\t");
    put_s(b, ro->stable.version);
    put_s(b, "\t");
    put_s(b, ro->target.version);
    put_s(b, "\t");
    put_s(b, ro->previous.version);
    put_s(b, "\t");
    put_s(b, ro->blocked);
    put_s(b, "\t");
    put_escaped(b, ro->halt, ML_CTL_HALT_TEXT_MAX);
    put_s(b, "\n");
}

/* Whether the index names version (a file's stable, target or previous). */
static bool named(const struct ml_ctl *ctl, const char *version)
{
    const struct ml_ctl_file *f;

    for (size_t i = 0;; i++) {
        if (i == 0) {
            f = &ctl->fallback;
        } else if (i - 1 < ctl->n_label_files) {
            f = ctl->label_files[i - 1];
        } else if (i - 1 - ctl->n_label_files < ctl->n_nodes) {
            f = &ctl->nodes[i - 1 - ctl->n_label_files]->own;
        } else {
            break;
        }
        if (strcmp(f->ro.stable.version, version) == 0 ||
            strcmp(f->ro.target.version, version) == 0 ||
            strcmp(f->ro.previous.version, version) == 0) {
            return true;
        }
    }
    /* files of nodes not seen since the restart keep theirs */
    for (size_t i = 0; ctl->saved != NULL && i < ctl->saved->n_files; i++) {
        const struct saved_file *x = &ctl->saved->files[i];

        if (!x->used && (strcmp(x->stable, version) == 0 || strcmp(x->target, version) == 0 ||
                         strcmp(x->previous, version) == 0)) {
            return true;
        }
    }
    return false;
}

/* Removes DIR/v-* that nothing names any more. */
static void collect(struct ml_ctl *ctl)
{
    DIR *d = opendir(ctl->state_dir);
    struct dirent *e;

    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char path[PATH_MAX + 300];

        if (strncmp(e->d_name, "v-", 2) != 0 || !is_version(e->d_name + 2) ||
            named(ctl, e->d_name + 2)) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", ctl->state_dir, e->d_name);
        ml_config_store_reset(NULL, path);
        rmdir(path);
    }
    closedir(d);
}

void ml_ctl_state_save(struct ml_ctl *ctl)
{
    char index[PATH_MAX + 16];
    struct buf b = {0};
    int rv;

    if (ctl->state_dir[0] == '\0' || !ctl->state_dirty) {
        return;
    }
    ctl->state_dirty = false;
    put_file(ctl, &b, &ctl->fallback);
    for (size_t i = 0; i < ctl->n_label_files; i++) {
        put_file(ctl, &b, ctl->label_files[i]);
    }
    for (size_t i = 0; i < ctl->n_nodes; i++) {
        put_file(ctl, &b, &ctl->nodes[i]->own);
    }
    /* records of files and nodes not seen since the restart stay as they were */
    for (size_t i = 0; ctl->saved != NULL && i < ctl->saved->n_files; i++) {
        const struct saved_file *x = &ctl->saved->files[i];
        static const char *const states[] = {"none", "rolling", "halted", "rolled_back"};
        char num[24];

        if (x->used) {
            continue;
        }
        snprintf(num, sizeof(num), "%u", x->stage);
        put_s(&b, "file\t");
        put_s(&b, x->name);
        put_s(&b, "\t");
        put_s(&b, states[x->state]);
        put_s(&b, "\t");
        put_s(&b, num);
        put_s(&b, "\t");
        put_s(&b, x->stable);
        put_s(&b, "\t");
        put_s(&b, x->target);
        put_s(&b, "\t");
        put_s(&b, x->previous);
        put_s(&b, "\t");
        put_s(&b, x->blocked);
        put_s(&b, "\t");
        put_escaped(&b, x->halt, ML_CTL_HALT_TEXT_MAX);
        put_s(&b, "\n");
    }
    for (size_t i = 0; i < ctl->n_nodes; i++) {
        const struct ml_ctl_node *n = ctl->nodes[i];

        if (n->member_of[0] == '\0' && !n->has_nack) {
            continue;
        }
        put_s(&b, "node\t");
        put_s(&b, n->id);
        put_s(&b, "\t");
        put_s(&b, n->member_of);
        put_s(&b, "\t");
        put_s(&b, n->has_nack ? n->nack_version : "");
        put_s(&b, n->has_nack && n->nack_transient ? "\t1\t" : "\t0\t");
        put_escaped(&b, n->has_nack ? n->nack_error : "", SAVED_ERROR_BYTES);
        put_s(&b, "\n");
    }
    for (size_t i = 0; ctl->saved != NULL && i < ctl->saved->n_nodes; i++) {
        const struct saved_node *x = &ctl->saved->nodes[i];

        if (x->used) {
            continue;
        }
        put_s(&b, "node\t");
        put_s(&b, x->id);
        put_s(&b, "\t");
        put_s(&b, x->member_of);
        put_s(&b, "\t");
        put_s(&b, x->nack_version);
        put_s(&b, x->transient ? "\t1\t" : "\t0\t");
        put_escaped(&b, x->nack_error, SAVED_ERROR_BYTES);
        put_s(&b, "\n");
    }
    if (b.failed) {
        rv = -ENOMEM;
    } else {
        snprintf(index, sizeof(index), "%s/index", ctl->state_dir);
        rv = ml_config_store_save(NULL, index, STATE_MAGIC, b.p != NULL ? b.p : "", b.n);
    }
    ml_free(b.p);
    if (rv < 0) {
        ctl->counters.state_save_failures++;
        ctl->state_dirty = true; /* tried again at the next poll */
        ML_LOG_ERR("state: cannot save in %s: %s", ctl->state_dir, strerror(-rv));
        return;
    }
    collect(ctl);
}

void ml_ctl_state_free(struct ml_ctl *ctl)
{
    if (ctl->saved != NULL) {
        ml_free(ctl->saved->files);
        ml_free(ctl->saved->nodes);
        ml_free(ctl->saved);
        ctl->saved = NULL;
    }
}
