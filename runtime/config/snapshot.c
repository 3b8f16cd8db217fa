#include "config/snapshot.h"

#include "config/config_int.h"
#include "config/errors.h"
#include "core/alloc.h"
#include "core/arena.h"
#include "core/file.h"
#include "core/sha256.h"
#include "meshlet_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Arena caps, as multiples of the text: a snapshot holds its text, its strings (each at most as
 * long as the text) and fixed-size section structs (bounded by the Kconfig section limits).
 * The scratch arena holds the raw document, whose worst case is a text of repeatable keys with
 * empty values ("deny=\n": one entry per 6 bytes): per entry a 16-byte value and, as the entry
 * array doubles inside the arena (old copies are not freed), under 4 entries' worth of array,
 * 4 * 24 bytes on a 64-bit target. That is 112 bytes per 6 of text, < 19n; 8n ran out of memory
 * at ~80 KB of such text, so `meshlet check` said "out of memory" for a config it must list the
 * errors of. */
#define SNAPSHOT_ARENA_BYTES(n) (4 * (n) + 1024 * 1024)
#define SCRATCH_ARENA_BYTES(n) (20 * (n) + 1024 * 1024)

/* Offset of the first byte that makes text[0..n) not UTF-8 text, or n when it is. UTF-8 as RFC 3629
 * has it: no overlong forms, no surrogates (U+D800..DFFF), nothing past U+10FFFF; the text goes
 * on to the controller and into error lines, whose readers refuse those. */
static size_t first_non_text(const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        unsigned char lo = 0x80, hi = 0xbf; /* what the second byte may be */
        size_t len;
        if (c == 0) {
            return i;
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            lo = c == 0xe0 ? 0xa0 : 0x80; /* E0 80..9F: overlong */
            hi = c == 0xed ? 0x9f : 0xbf; /* ED A0..BF: surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            lo = c == 0xf0 ? 0x90 : 0x80; /* F0 80..8F: overlong */
            hi = c == 0xf4 ? 0x8f : 0xbf; /* F4 90..: past U+10FFFF */
        } else {
            return i;
        }
        if (i + len > n || s[i + 1] < lo || s[i + 1] > hi) {
            return i;
        }
        for (size_t j = 2; j < len; j++) {
            if ((s[i + j] & 0xc0) != 0x80) {
                return i;
            }
        }
        i += len;
    }
    return n;
}

int ml_config_load_text(const char *text, size_t n, const char *version,
                        struct ml_config_errors *errs, struct ml_snapshot **out)
{
    return ml_config_load_text_from(text, n, version, ML_CONFIG_LOCAL, errs, out);
}

int ml_config_load_text_from(const char *text, size_t n, const char *version,
                             enum ml_config_origin origin, struct ml_config_errors *errs,
                             struct ml_snapshot **out)
{
    struct ml_snapshot *s;
    struct ml_arena scratch;
    struct ml_raw_doc doc;
    size_t bad;
    char *copy;
    int rv;

    *out = NULL;
    if (n > CONFIG_ML_MAX_CONFIG_BYTES) {
        ml_config_errors_add(errs, 0,
                             "expected at most %d bytes (CONFIG_ML_MAX_CONFIG_BYTES), got %zu bytes",
                             CONFIG_ML_MAX_CONFIG_BYTES, n);
        return -EFBIG;
    }
    if ((bad = first_non_text(text, n)) < n) {
        int line = 1;
        for (size_t i = 0; i < bad; i++) {
            line += text[i] == '\n';
        }
        ml_config_errors_add(errs, 0,
                             "expected a text file (UTF-8), got a %s at byte %zu (line %d)",
                             text[bad] == '\0' ? "NUL byte" : "byte that is not UTF-8", bad, line);
        return -EILSEQ;
    }
    if (version != NULL && strlen(version) > ML_CFG_VERSION_MAX) {
        ml_config_errors_add(errs, 0, "expected a version of at most %d bytes, got %zu bytes",
                             ML_CFG_VERSION_MAX, strlen(version));
        return -EINVAL;
    }
    s = ml_calloc(1, sizeof(*s));
    if (s == NULL) {
        return -ENOMEM;
    }
    s->refcount = 1;
    ml_arena_init(&s->arena, SNAPSHOT_ARENA_BYTES(n));
    ml_arena_init(&scratch, SCRATCH_ARENA_BYTES(n));
    if ((copy = ml_arena_strndup(&s->arena, text, n)) == NULL) {
        rv = -ENOMEM;
        goto fail;
    }
    s->text = copy;
    s->text_bytes = (uint32_t)n;
    s->remote = origin == ML_CONFIG_REMOTE;
    if (version != NULL) {
        snprintf(s->version, sizeof(s->version), "%s", version);
    } else {
        char hex[13];
        ml_sha256_hex(text, n, hex, 12);
        snprintf(s->version, sizeof(s->version), "local-%s", hex);
    }
    size_t before = ml_config_errors_count(errs);
    if ((rv = ml_config_parse(&scratch, copy, n, &doc, errs)) < 0) {
        goto fail;
    }
    if ((rv = ml_config_validate(s, &doc, errs)) < 0) {
        goto fail;
    }
    if (ml_config_errors_count(errs) > before) {
        ml_config_errors_sort(errs);
        rv = -EINVAL;
        goto fail;
    }
    ml_arena_deinit(&scratch);
    *out = s;
    return 0;

fail:
    ml_arena_deinit(&scratch);
    ml_snapshot_unref(s);
    return rv;
}

int ml_config_load_file(const char *path, struct ml_config_errors *errs, struct ml_snapshot **out)
{
    char *buf;
    size_t n;
    int rv;

    *out = NULL;
    rv = ml_file_read_all(path, CONFIG_ML_MAX_CONFIG_BYTES, &buf, &n);
    if (rv == -EFBIG) {
        ml_config_errors_add(errs, 0,
                             "expected at most %d bytes (CONFIG_ML_MAX_CONFIG_BYTES), got %zu bytes",
                             CONFIG_ML_MAX_CONFIG_BYTES, n);
        return rv;
    }
    if (rv == -EINVAL) {
        ml_config_errors_add(errs, 0, "cannot read: not a regular file");
        return -ENODEV; /* keep -EINVAL for "invalid config" */
    }
    if (rv < 0) {
        ml_config_errors_add(errs, 0, "cannot read: %s", strerror(-rv));
        return rv;
    }
    rv = ml_config_load_text(buf, n, NULL, errs, out);
    ml_free(buf);
    return rv;
}

struct ml_snapshot *ml_snapshot_ref(struct ml_snapshot *s)
{
    /* relaxed: taking a reference needs no ordering, the holder already sees the snapshot */
    __atomic_fetch_add(&s->refcount, 1, __ATOMIC_RELAXED);
    return s;
}

void ml_snapshot_unref(struct ml_snapshot *s)
{
    /* Atomic: with [node] workers > 1 every loop's calls hold the one snapshot. acq_rel: the
     * last holder sees every other holder's reads done before it frees. */
    if (s == NULL || __atomic_sub_fetch(&s->refcount, 1, __ATOMIC_ACQ_REL) > 0) {
        return;
    }
    ml_arena_deinit(&s->arena);
    ml_free(s);
}

void ml_snapshot_summary(const struct ml_snapshot *s, char *buf, size_t cap)
{
    uint32_t n_endpoints = 0;

    for (uint32_t i = 0; i < s->n_clusters; i++) {
        n_endpoints += s->clusters[i].n_endpoints;
    }
    snprintf(buf, cap, "%u listener%s, %u route%s, %u cluster%s, %u endpoint%s%s", s->n_listeners,
             s->n_listeners == 1 ? "" : "s", s->n_routes, s->n_routes == 1 ? "" : "s",
             s->n_clusters, s->n_clusters == 1 ? "" : "s", n_endpoints,
             n_endpoints == 1 ? "" : "s", s->fleet.present ? ", fleet-managed" : "");
}

int ml_config_load_file_print(const char *path, FILE *err, struct ml_snapshot **out)
{
    struct ml_config_errors errs;
    int rv;

    ml_config_errors_init(&errs);
    rv = ml_config_load_file(path, &errs, out);
    if (rv < 0) {
        ml_config_errors_print(&errs, path, err);
        if (rv == -ENOMEM && ml_config_errors_count(&errs) == 0) {
            fprintf(err, "%s: out of memory while checking\n", path);
        }
    }
    ml_config_errors_deinit(&errs);
    return rv;
}
