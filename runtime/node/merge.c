/* node/merge.h: a push or POST /config made whole with this node's bootstrap ([node], [fleet]). */
#include "node/merge.h"

#include "config/schema.h"
#include "config/value.h"
#include "core/alloc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* One value as INI text, for messages and comparison. */
#define VALUE_TEXT_MAX 256

/* Start of line (1-based) of text[0..n), or n when there are fewer lines. */
static size_t line_start(const char *text, size_t n, int line)
{
    size_t i = 0;

    for (int l = 1; l < line && i < n; i++) {
        if (text[i] == '\n') {
            l++;
        }
    }
    return i;
}

/* The end of a section: the start of end_line, the next header as the parser read it (a '[' after
 * any blank inih skips, '\r' included), or n when it is the last section. Taken from the parse, not
 * found again here: a second reading of the text would one day differ from the parser's. */
static size_t section_end(const char *text, size_t n, int end_line)
{
    return end_line > 0 ? line_start(text, n, end_line) : n;
}

/* Key k (of [node] or [fleet]) of snap as INI text. Returns false for a type this file does not
 * know how to read: such a key is then never taken as unchanged (fail closed). */
static bool value_text(const struct ml_snapshot *snap, int key, char *buf, size_t cap)
{
    const struct ml_key_def *k = &ml_schema_keys[key];
    const char *obj =
        k->kind == ML_KIND_NODE ? (const char *)&snap->node : (const char *)&snap->fleet;
    const void *field = obj + k->offset;

    buf[0] = '\0';
    if (k->kind == ML_KIND_FLEET && !snap->fleet.present) {
        snprintf(buf, cap, "(no [fleet])");
        return true;
    }
    switch (k->type) {
    case ML_KT_NAME:
    case ML_KT_PATH:
    case ML_KT_STRING:
    case ML_KT_LABELS:
    case ML_KT_URL:
    case ML_KT_HOSTNAME:
    case ML_KT_URI: {
        const char *s = *(const char *const *)field;
        snprintf(buf, cap, "%s", s != NULL ? s : "");
        return true;
    }
    case ML_KT_ADMIN:
    case ML_KT_ADDR: {
        const struct ml_cfg_addr *a = field;
        snprintf(buf, cap, "%s", a->set ? a->text : "off");
        return true;
    }
    case ML_KT_BOOL:
        snprintf(buf, cap, "%s", *(const bool *)field ? "on" : "off");
        return true;
    case ML_KT_ENUM: {
        const char *p = ml_schema_key_choices(k);
        for (int i = *(const int *)field; i > 0 && p != NULL; i--) {
            p = strchr(p, '|');
            p = p != NULL ? p + 1 : NULL;
        }
        if (p == NULL) {
            return false;
        }
        snprintf(buf, cap, "%.*s", (int)strcspn(p, "|"), p);
        return true;
    }
    case ML_KT_ACCESS_LOG: {
        static const char *const names[] = {"off", "stderr", "syslog", "", "stdout"};
        enum ml_cfg_access_log a = *(const enum ml_cfg_access_log *)field;
        snprintf(buf, cap, "%s",
                 a == ML_CFG_ACCESS_LOG_FILE ? snap->node.access_log_path : names[a]);
        return true;
    }
    case ML_KT_DURATION:
        ml_value_format_duration(*(const uint32_t *)field, buf, cap);
        return true;
    case ML_KT_UINT:
    case ML_KT_SIZE:
        snprintf(buf, cap, "%u", (unsigned)*(const uint32_t *)field);
        return true;
    case ML_KT_RANGE: {
        const struct ml_cfg_range_ms *r = field;
        char from[32], to[32];
        ml_value_format_duration(r->from_ms, from, sizeof(from));
        ml_value_format_duration(r->to_ms, to, sizeof(to));
        snprintf(buf, cap, "%s..%s", from, to);
        return true;
    }
    default:
        return false;
    }
}

/* Appends one line to why (lines joined by '\n', cut at cap). */
static void why_add(char *why, size_t cap, const char *line)
{
    size_t len = strlen(why);

    if (len > 0 && len + 1 < cap) {
        why[len++] = '\n';
        why[len] = '\0';
    }
    if (len < cap) {
        snprintf(why + len, cap - len, "%s", line);
    }
}

/* Every [node] / [fleet] key the push sets, against the running value. Returns how many differ
 * (each reported in why). */
static int bootstrap_changes(const struct ml_snapshot *running, const struct ml_snapshot *pushed,
                             char *why, size_t cap)
{
    char line[2 * VALUE_TEXT_MAX + 160], have[VALUE_TEXT_MAX], got[VALUE_TEXT_MAX];
    int n = 0;

    for (int key = 0; key < ML_K_COUNT; key++) {
        const struct ml_key_def *k = &ml_schema_keys[key];
        bool known;

        if ((k->kind != ML_KIND_NODE && k->kind != ML_KIND_FLEET) ||
            pushed->bootstrap_line[key] == 0 || key == ML_K_node_id) {
            continue;
        }
        known = value_text(running, key, have, sizeof(have)) &&
                value_text(pushed, key, got, sizeof(got));
        if (known && strcmp(have, got) == 0) {
            continue;
        }
        if (!known) {
            snprintf(got, sizeof(got), "?");
        }
        snprintf(line, sizeof(line),
                 "push:%d: [%s] %s: bootstrap setting, set only in the local file; running "
                 "\"%s\", got \"%s\"",
                 pushed->bootstrap_line[key], ml_schema_kind_name(k->kind), k->name, have, got);
        why_add(why, cap, line);
        n++;
    }
    return n;
}

struct out {
    char *buf;
    size_t len, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

/* text[from..to) with every line turned into an empty comment: the push's own lines keep their
 * numbers (its errors were reported against them) and say nothing. */
static void put_blanked(struct out *o, const char *text, size_t from, size_t to)
{
    bool line_open = false;

    for (size_t i = from; i < to; i++) {
        if (text[i] == '\n') {
            put(o, line_open ? "\n" : ";\n", line_open ? 1 : 2);
            line_open = false;
        } else if (!line_open) {
            put(o, ";", 1);
            line_open = true;
        }
    }
    if (line_open) {
        put(o, "\n", 1);
    }
}

/* running's section from header line to end_line (0: the end) as it stands, ending with a
 * newline. */
static void put_section(struct out *o, const struct ml_snapshot *running, int line, int end_line)
{
    size_t from = line_start(running->text, running->text_bytes, line);
    size_t to = section_end(running->text, running->text_bytes, end_line);

    put(o, running->text + from, to - from);
    if (o->len > 0 && o->buf[o->len - 1] != '\n') {
        put(o, "\n", 1);
    }
}

/* Whether a section (header line a_line / b_line, 0: absent) is absent from both, or the same
 * bytes in both texts (its lines up to the next header). A push that carries this node's
 * bootstrap unchanged then needs no merge: its text is what runs, is saved and is hashed, and it
 * never grows past the config bound by the merge. */
static bool same_section(const struct ml_snapshot *a, const struct ml_snapshot *b, int a_line,
                         int a_end, int b_line, int b_end)
{
    size_t af, at, bf, bt;

    if (a_line == 0 || b_line == 0) {
        return a_line == 0 && b_line == 0;
    }
    af = line_start(a->text, a->text_bytes, a_line);
    at = section_end(a->text, a->text_bytes, a_end);
    bf = line_start(b->text, b->text_bytes, b_line);
    bt = section_end(b->text, b->text_bytes, b_end);
    return at - af == bt - bf && memcmp(a->text + af, b->text + bf, at - af) == 0;
}

int ml_node_merge_push(const struct ml_snapshot *running, const struct ml_snapshot *pushed,
                       char **text_out, size_t *n_out, char *why, size_t cap)
{
    *text_out = NULL;
    *n_out = 0;
    if (cap > 0) {
        why[0] = '\0';
    }
    if (pushed->node.id_line && strcmp(pushed->node.id, running->node.id) != 0) {
        snprintf(why, cap, "push:%d: [node] id: expected this node's id \"%s\", got \"%s\"",
                 pushed->node.id_line, running->node.id, pushed->node.id);
        return -EPERM;
    }
    if (bootstrap_changes(running, pushed, why, cap) > 0) {
        return -EPERM;
    }
    return ml_node_merge_bootstrap(running, pushed, text_out, n_out);
}

int ml_node_merge_bootstrap(const struct ml_snapshot *running, const struct ml_snapshot *pushed,
                            char **text_out, size_t *n_out)
{
    const char *ptext = pushed->text;
    size_t pn = pushed->text_bytes, at = 0;
    struct {
        size_t from, to;
    } cut[2];
    int n_cut = 0;
    struct out o = {0};

    *text_out = NULL;
    *n_out = 0;
    if (!pushed->node.line && !pushed->fleet.present && !running->node.line &&
        !running->fleet.present) {
        return 0; /* no bootstrap on either side: the push runs as it is */
    }
    if (same_section(running, pushed, running->node.line, running->node.end_line,
                     pushed->node.line, pushed->node.end_line) &&
        same_section(running, pushed, running->fleet.present ? running->fleet.line : 0,
                     running->fleet.end_line, pushed->fleet.present ? pushed->fleet.line : 0,
                     pushed->fleet.end_line)) {
        return 0; /* the push carries this node's bootstrap byte for byte: it runs as it is */
    }
    /* The push's [node] and [fleet] (at most one of each), in file order. */
    if (pushed->node.line) {
        cut[n_cut].from = line_start(ptext, pn, pushed->node.line);
        cut[n_cut++].to = section_end(ptext, pn, pushed->node.end_line);
    }
    if (pushed->fleet.present) {
        cut[n_cut].from = line_start(ptext, pn, pushed->fleet.line);
        cut[n_cut++].to = section_end(ptext, pn, pushed->fleet.end_line);
        if (n_cut == 2 && cut[1].from < cut[0].from) {
            size_t f = cut[0].from, t = cut[0].to;
            cut[0] = cut[1];
            cut[1].from = f;
            cut[1].to = t;
        }
    }
    /* A blanked line is at most 1 byte longer (";" added), plus newlines and running's two
     * sections. */
    o.cap = 2 * pn + 4 + running->text_bytes + 2;
    if ((o.buf = ml_malloc(o.cap)) == NULL) {
        return -ENOMEM;
    }
    for (int i = 0; i < n_cut; i++) {
        put(&o, ptext + at, cut[i].from - at);
        put_blanked(&o, ptext, cut[i].from, cut[i].to);
        at = cut[i].to;
    }
    put(&o, ptext + at, pn - at);
    if (o.len > 0 && o.buf[o.len - 1] != '\n') {
        put(&o, "\n", 1);
    }
    if (running->node.line) {
        put_section(&o, running, running->node.line, running->node.end_line);
    }
    if (running->fleet.present) {
        put_section(&o, running, running->fleet.line, running->fleet.end_line);
    }
    o.buf[o.len] = '\0';
    *text_out = o.buf;
    *n_out = o.len;
    return 0;
}
