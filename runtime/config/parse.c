/* INI text → raw document, with inih as the tokenizer.
 *
 * inih is built with the options config/README.md names (firmware/deps/inih.flags). Three things it
 * does not do the way the contract wants, handled in the line reader below, which sees each line
 * before inih does:
 *  - it accepts "key: value" as well as "key = value": such a line is a syntax error here;
 *  - it cuts section names at 50 bytes and over-long lines into two: the reader keeps the whole
 *    header itself and reports a line longer than the buffer as one error;
 *  - a bad line only yields "the first error's line": the reader reports every bad line and
 *    hands inih an empty line instead, so parsing goes on and every error is found. */
#include "config/config_int.h"

#include "config/errors.h"
#include "config/schema.h"
#include "config/value.h"
#include "core/arena.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <string.h>

/* Longest header text kept: "[KIND NAME]" with a NAME of 63 bytes fits; longer is an error. */
#define HEADER_MAX 128

struct parse_ctx {
    struct ml_arena *scratch;
    struct ml_raw_doc *doc;
    struct ml_config_errors *errs;
    /* reader state */
    const char *p, *end;
    int line;
    char header[HEADER_MAX]; /* the current line's "[...]" contents when it is a header */
    bool header_too_long;
    /* handler state */
    int section; /* index into doc->sections of the section keys go to; -1: none or a bad one */
    bool in_section; /* a header was seen (keys before any header are an error) */
    int oom;
};

static const char *skip_space(const char *s)
{
    while (*s && isspace((unsigned char)*s)) {
        s++;
    }
    return s;
}

/* inih's find_chars_or_comment(): the first of chars, or an inline comment prefix that follows
 * white space. */
static const char *find_chars_or_comment(const char *s, const char *chars)
{
    int was_space = 0;

    while (*s && (!chars || !strchr(chars, *s)) && !(was_space && strchr(";#", *s))) {
        was_space = isspace((unsigned char)*s);
        s++;
    }
    return s;
}

/* Checks one line (NUL-terminated, no newline) the way inih will read it. Returns NULL when inih
 * will take it, else the reason it is refused. Fills ctx->header for a header line. */
static const char *check_line(struct parse_ctx *ctx, const char *line)
{
    const char *s = skip_space(line), *end;

    ctx->header[0] = '\0';
    ctx->header_too_long = false;
    if (*s == '\0' || *s == ';' || *s == '#') {
        return NULL;
    }
    if (*s == '[') {
        end = find_chars_or_comment(s + 1, "]");
        if (*end != ']' || (*skip_space(end + 1) != '\0' && !strchr(";#", *skip_space(end + 1)))) {
            /* A broken header still ends the section before it: its keys are not the previous
             * section's (they are skipped, like those of any section reported bad). */
            ctx->section = -1;
            ctx->in_section = true;
            return *end != ']' ? "expected a section header like [cluster NAME]"
                               : "expected nothing after the section header but a comment";
        }
        size_t n = (size_t)(end - (s + 1));
        if (n >= sizeof(ctx->header)) {
            ctx->header_too_long = true;
            n = sizeof(ctx->header) - 1;
            /* The error quotes this start: cut before a character the limit would split, so
             * the error line stays UTF-8 (s[1 + n] is the first byte left out). */
            while (n > 0 && ((unsigned char)s[1 + n] & 0xc0) == 0x80) {
                n--;
            }
        }
        memcpy(ctx->header, s + 1, n);
        ctx->header[n] = '\0';
        return NULL;
    }
    end = find_chars_or_comment(s, "=:");
    if (*end != '=') {
        return "expected \"key = value\", a [section] header or a comment";
    }
    return NULL;
}

static void quote_into(char *dst, size_t cap, const char *s, size_t n)
{
    /* Error messages quote what they got; keep them one line and short. A cut ends in "..." and
     * never inside a UTF-8 sequence (the text is UTF-8; error lines must stay so). */
    size_t i = 0, j = 0;

    while (i < n && j + 4 < cap) {
        unsigned char c = (unsigned char)s[i++];
        dst[j++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (i < n) {
        if (((unsigned char)s[i] & 0xc0) == 0x80) { /* cut mid-sequence: drop its start */
            while (j > 0 && ((unsigned char)dst[j - 1] & 0xc0) == 0x80) {
                j--;
            }
            j -= j > 0;
        }
        memcpy(dst + j, "...", 3);
        j += 3;
    }
    dst[j] = '\0';
}

static void section_label(const struct ml_raw_section *sec, char *buf, size_t cap);

/* "[SECTION]: " for an error on line s[0..n) when that line is not a header and sits in a
 * well-formed section (config/README.md: an error names its section), else "". */
static const char *line_label(const struct parse_ctx *ctx, const char *s, size_t n, char *buf,
                              size_t cap)
{
    size_t i = 0;

    buf[0] = '\0';
    while (i < n && isspace((unsigned char)s[i])) {
        i++;
    }
    if (ctx->section >= 0 && (i == n || s[i] != '[')) {
        section_label(ctx->doc->sections[ctx->section], buf, cap - 2);
        strcat(buf, ": ");
    }
    return buf;
}

/* inih's line reader (fgets-like) over the in-memory text. */
static char *read_line(char *str, int num, void *stream)
{
    struct parse_ctx *ctx = stream;
    const char *nl;
    size_t n, max = (size_t)num - 2; /* room for '\n' and NUL */
    const char *why;
    char label[HEADER_MAX + 8];

    if (ctx->line == 0 && ctx->end - ctx->p >= 3 && memcmp(ctx->p, "\xef\xbb\xbf", 3) == 0) {
        ctx->p += 3; /* a UTF-8 byte order mark, as some editors write: not part of the text */
    }
    if (ctx->p >= ctx->end) {
        return NULL;
    }
    nl = memchr(ctx->p, '\n', (size_t)(ctx->end - ctx->p));
    n = nl ? (size_t)(nl - ctx->p) : (size_t)(ctx->end - ctx->p);
    ctx->line++;
    if (n > 0 && ctx->p[n - 1] == '\r') { /* CRLF files */
        n--;
    }
    if (n > max) {
        char got[48];
        quote_into(got, sizeof(got), ctx->p, n); /* its start, ending in "..." */
        ml_config_errors_add(ctx->errs, ctx->line,
                             "%sexpected a line of at most %zu bytes, got %zu bytes (\"%s\")",
                             line_label(ctx, ctx->p, n, label, sizeof(label)), max, n, got);
        str[0] = '\n';
        str[1] = '\0';
        ctx->header[0] = '\0';
    } else {
        memcpy(str, ctx->p, n);
        str[n] = '\0';
        if ((why = check_line(ctx, str)) != NULL) {
            char got[80];
            quote_into(got, sizeof(got), str, n);
            ml_config_errors_add(ctx->errs, ctx->line, "%s%s, got \"%s\"",
                                 line_label(ctx, str, n, label, sizeof(label)), why, got);
            str[0] = '\0';
            ctx->header[0] = '\0';
        }
        strcat(str, "\n");
    }
    ctx->p = nl ? nl + 1 : ctx->end;
    return str;
}

static int grow(void **v, uint32_t *cap, size_t elem, struct ml_arena *a)
{
    uint32_t ncap = *cap ? *cap * 2 : 16;
    void *nv = ml_arena_alloc(a, (size_t)ncap * elem);

    if (nv == NULL) {
        return -ENOMEM;
    }
    if (*v != NULL) {
        memcpy(nv, *v, (size_t)*cap * elem);
    }
    *v = nv;
    *cap = ncap;
    return 0;
}

/* A header line: "[KIND]" or "[KIND NAME]". */
static int on_section(struct parse_ctx *ctx, int line)
{
    struct ml_raw_doc *doc = ctx->doc;
    const char *h = ctx->header, *kind_end, *name = NULL, *name_end = NULL;
    struct ml_raw_section *sec;
    char shown[HEADER_MAX + 8], part[HEADER_MAX + 8];
    int kind;

    ctx->section = -1;
    ctx->in_section = true;
    quote_into(shown, sizeof(shown), h, strlen(h));
    if (ctx->header_too_long) {
        ml_config_errors_add(ctx->errs, line,
                             "[%s]: expected a section header of at most %d bytes", shown,
                             HEADER_MAX - 1);
        return 0;
    }
    h = skip_space(h);
    kind_end = h;
    while (*kind_end && !isspace((unsigned char)*kind_end)) {
        kind_end++;
    }
    if (*skip_space(kind_end)) {
        name = skip_space(kind_end);
        name_end = name + strlen(name);
        while (name_end > name && isspace((unsigned char)name_end[-1])) {
            name_end--;
        }
    }
    kind = ml_schema_kind_parse(h, (size_t)(kind_end - h));
    if (kind < 0) {
        quote_into(part, sizeof(part), h, (size_t)(kind_end - h));
        ml_config_errors_add(ctx->errs, line,
                             "[%s]: expected a section kind of node, fleet, listener, route, "
                             "cluster or authz, got \"%s\"",
                             shown, part);
        return 0;
    }
    if (name != NULL) {
        quote_into(part, sizeof(part), name, (size_t)(name_end - name));
    }
    if (!ml_schema_kind_named(kind) && name != NULL) {
        ml_config_errors_add(ctx->errs, line, "[%s]: expected [%s] without a name, got \"%s\"",
                             shown, ml_schema_kind_name(kind), part);
        return 0;
    }
    if (ml_schema_kind_named(kind)) {
        if (name == NULL) {
            ml_config_errors_add(ctx->errs, line, "[%s]: expected a name, as in [%s NAME]", shown,
                                 ml_schema_kind_name(kind));
            return 0;
        }
        if (!ml_value_is_name(name, (size_t)(name_end - name))) {
            ml_config_errors_add(ctx->errs, line,
                                 "[%s]: expected a name of 1..63 characters from A-Z a-z 0-9 _ . "
                                 "-, got \"%s\"",
                                 shown, part);
            return 0;
        }
    }
    for (uint32_t i = 0; i < doc->n_sections; i++) {
        const struct ml_raw_section *o = doc->sections[i];
        if (o->kind == (enum ml_config_kind)kind &&
            (name == NULL || (strlen(o->name) == (size_t)(name_end - name) &&
                              memcmp(o->name, name, (size_t)(name_end - name)) == 0))) {
            ml_config_errors_add(ctx->errs, line,
                                 "[%s]: expected each section once, got it again (first on line "
                                 "%d)",
                                 shown, o->line);
            return 0;
        }
    }
    if (doc->n_kind[kind] >= ml_schema_kind_max(kind)) {
        ml_config_errors_add(ctx->errs, line, "[%s]: expected at most %u [%s] sections (%s)", shown,
                             ml_schema_kind_max(kind), ml_schema_kind_name(kind),
                             ml_schema_kind_max_symbol(kind));
        return 0;
    }
    if (doc->n_sections == doc->cap_sections &&
        grow((void **)&doc->sections, &doc->cap_sections, sizeof(*doc->sections), ctx->scratch) < 0) {
        return -ENOMEM;
    }
    sec = ml_arena_alloc(ctx->scratch, sizeof(*sec));
    if (sec == NULL) {
        return -ENOMEM;
    }
    sec->kind = kind;
    sec->line = line;
    sec->index = doc->n_kind[kind]++;
    if (name != NULL &&
        (sec->name = ml_arena_strndup(ctx->scratch, name, (size_t)(name_end - name))) == NULL) {
        return -ENOMEM;
    }
    ctx->section = (int)doc->n_sections;
    doc->sections[doc->n_sections++] = sec;
    return 0;
}

static void section_label(const struct ml_raw_section *sec, char *buf, size_t cap)
{
    if (sec->name) {
        snprintf(buf, cap, "[%s %s]", ml_schema_kind_name(sec->kind), sec->name);
    } else {
        snprintf(buf, cap, "[%s]", ml_schema_kind_name(sec->kind));
    }
}

static int on_key(struct parse_ctx *ctx, const char *name, const char *value, int line)
{
    struct ml_raw_doc *doc = ctx->doc;
    struct ml_raw_section *sec;
    struct ml_raw_entry *e;
    char label[HEADER_MAX + 8], got[96], name_shown[96];
    const struct ml_key_def *k;
    int key;

    quote_into(got, sizeof(got), value, strlen(value));
    quote_into(name_shown, sizeof(name_shown), name, strlen(name)); /* not a key (yet): quote it */
    if (*name == '\0') {
        ml_config_errors_add(ctx->errs, line, "%sexpected \"key = value\", got \"= %s\"",
                             line_label(ctx, name, 0, label, sizeof(label)), got);
        return 0;
    }
    if (!ctx->in_section) {
        ml_config_errors_add(ctx->errs, line,
                             "%s: expected a [section] header before the first key, got \"%s\"",
                             name_shown, got);
        return 0;
    }
    if (ctx->section < 0) {
        return 0; /* the section's header was already reported */
    }
    sec = doc->sections[ctx->section];
    section_label(sec, label, sizeof(label));
    key = ml_schema_key_find(sec->kind, name);
    if (key < 0) {
        const char *near = ml_schema_key_suggest(sec->kind, name);
        if (near != NULL) {
            ml_config_errors_add(ctx->errs, line,
                                 "%s %s: expected a key of [%s] (did you mean %s?), got \"%s\"",
                                 label, name_shown, ml_schema_kind_name(sec->kind), near, got);
        } else {
            ml_config_errors_add(ctx->errs, line, "%s %s: expected a key of [%s], got \"%s\"",
                                 label, name_shown, ml_schema_kind_name(sec->kind), got);
        }
        return 0;
    }
    k = &ml_schema_keys[key];
    if (!k->available) {
        ml_config_errors_add(ctx->errs, line,
                             "%s %s: expected no %s key: this build of meshlet has no support for "
                             "it (%s is off), got \"%s\"",
                             label, name, name, k->symbol, got);
        return 0;
    }
    if (sec->key_line[key] != 0 && !(k->flags & ML_KF_REPEATABLE)) {
        ml_config_errors_add(ctx->errs, line,
                             "%s %s: expected the key once (first on line %d), got \"%s\" again",
                             label, name, sec->key_line[key], got);
        return 0;
    }
    if (sec->key_line[key] == 0) {
        sec->key_line[key] = line;
    }
    sec->key_count[key]++;
    if (doc->n_entries == doc->cap_entries &&
        grow((void **)&doc->entries, &doc->cap_entries, sizeof(*doc->entries), ctx->scratch) < 0) {
        return -ENOMEM;
    }
    e = &doc->entries[doc->n_entries++];
    e->section = (uint32_t)ctx->section;
    e->key = key;
    e->line = line;
    if ((e->value = ml_arena_strdup(ctx->scratch, value)) == NULL) {
        return -ENOMEM;
    }
    return 0;
}

static int on_ini(void *user, const char *section, const char *name, const char *value, int line)
{
    struct parse_ctx *ctx = user;
    int rv;

    (void)section; /* inih cuts it at 50 bytes; the reader kept the whole header */
    if (ctx->oom) {
        return 0;
    }
    rv = name == NULL ? on_section(ctx, line) : on_key(ctx, name, value, line);
    if (rv < 0) {
        ctx->oom = 1;
    }
    return 1; /* errors are ours to report; never let inih stop or report */
}

int ml_config_parse(struct ml_arena *scratch, const char *text, size_t n, struct ml_raw_doc *doc,
                    struct ml_config_errors *errs)
{
    struct parse_ctx ctx = {
        .scratch = scratch,
        .doc = doc,
        .errs = errs,
        .p = text,
        .end = text + n,
        .section = -1,
    };
    int rv;

    memset(doc, 0, sizeof(*doc));
    rv = ini_parse_stream(read_line, &ctx, on_ini, &ctx);
    if (ctx.oom || rv == -2) {
        return -ENOMEM;
    }
    /* rv > 0 would be a line inih refused that the reader let through; report it rather than
     * accept a config we did not fully read. */
    if (rv > 0) {
        ml_config_errors_add(errs, rv, "expected \"key = value\", a [section] header or a comment");
    }
    return 0;
}
