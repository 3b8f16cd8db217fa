/* node/merge.h: a push made whole with our [node] id and [fleet]. */
#include "node/merge.h"

#include "core/alloc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

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

/* The end of the section whose header is at line: the start of the next line that opens a
 * section ('[' after optional blanks), or n. Same reading as inih's. */
static size_t section_end(const char *text, size_t n, int line)
{
    size_t i = line_start(text, n, line);

    /* skip the header line itself */
    while (i < n && text[i] != '\n') {
        i++;
    }
    while (i < n) {
        size_t start = ++i, j = start;
        if (start >= n) {
            return n;
        }
        while (j < n && (text[j] == ' ' || text[j] == '\t')) {
            j++;
        }
        if (j < n && text[j] == '[') {
            return start;
        }
        while (i < n && text[i] != '\n') {
            i++;
        }
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

static void put_str(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

int ml_node_merge_push(const struct ml_snapshot *running, const struct ml_snapshot *pushed,
                       char **text_out, size_t *n_out, char *why, size_t cap)
{
    const char *ptext = pushed->text, *rtext = running->text;
    size_t pn = pushed->text_bytes, rn = running->text_bytes;
    bool add_id = !pushed->node.id_line, add_fleet = !pushed->fleet.present && running->fleet.present;
    size_t fleet_from = 0, fleet_to = 0, id_at = pn;
    struct out o = {0};

    *text_out = NULL;
    *n_out = 0;
    if (pushed->node.id_line && strcmp(pushed->node.id, running->node.id) != 0) {
        snprintf(why, cap, "push:%d: [node] id: expected this node's id \"%s\", got \"%s\"",
                 pushed->node.id_line, running->node.id, pushed->node.id);
        return -EPERM;
    }
    if (!add_id && !add_fleet) {
        return 0;
    }
    if (add_fleet) {
        fleet_from = line_start(rtext, rn, running->fleet.line);
        fleet_to = section_end(rtext, rn, running->fleet.line);
    }
    if (add_id && pushed->node.line) {
        /* right after the [node] header line */
        id_at = line_start(ptext, pn, pushed->node.line + 1);
    }
    o.cap = pn + 64 + (add_id ? strlen(running->node.id) : 0) + (fleet_to - fleet_from) + 1;
    if ((o.buf = ml_malloc(o.cap)) == NULL) {
        return -ENOMEM;
    }
    put(&o, ptext, id_at);
    if (add_id && id_at > 0 && ptext[id_at - 1] != '\n') {
        put_str(&o, "\n"); /* the [node] header was the last line, without a newline */
    }
    if (add_id && pushed->node.line) {
        put_str(&o, "id = ");
        put_str(&o, running->node.id);
        put_str(&o, "\n");
    }
    put(&o, ptext + id_at, pn - id_at);
    if (o.len > 0 && o.buf[o.len - 1] != '\n') {
        put_str(&o, "\n");
    }
    if (add_id && !pushed->node.line) {
        put_str(&o, "[node]\nid = ");
        put_str(&o, running->node.id);
        put_str(&o, "\n");
    }
    if (add_fleet) {
        put(&o, rtext + fleet_from, fleet_to - fleet_from);
        if (o.buf[o.len - 1] != '\n') {
            put_str(&o, "\n");
        }
    }
    o.buf[o.len] = '\0';
    *text_out = o.buf;
    *n_out = o.len;
    return 0;
}
