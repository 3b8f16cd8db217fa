/* A peer certificate's names against a node id (tls/peer_id.h). libwebsockets hands over the
 * peer's DER (lws_tls_peer_cert_info: DER_RAW), mbedTLS's x509 parses it; lws's own COMMON_NAME
 * answer is not used because its mbedTLS backend joins every attribute of the subject, not only
 * the CN. */
#include "tls/peer_id.h"

#include "core/alloc.h"

#include <errno.h>
#include <libwebsockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/x509_crt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* buf[len] into out[cap] after "what ": printable ASCII as it is, other bytes as \xHH. */
static void describe(const char *what, const unsigned char *buf, size_t len, char *out, size_t cap)
{
    size_t o;

    if (cap == 0) {
        return;
    }
    snprintf(out, cap, "%s ", what);
    o = strlen(out);
    for (size_t i = 0; i < len && o + 5 < cap; i++) {
        if (buf[i] >= 0x20 && buf[i] < 0x7f && buf[i] != '\\') {
            out[o++] = (char)buf[i];
        } else {
            snprintf(out + o, cap - o, "\\x%02x", buf[i]);
            o += 4;
        }
    }
    out[o] = '\0';
}

static bool same(const mbedtls_x509_buf *b, const char *id)
{
    size_t n = strlen(id);

    return b->len == n && memcmp(b->p, id, n) == 0;
}

/* The URI SANs of crt against id: 0 (one matches), -EACCES (some, none matches; seen = the
 * first), -ENOENT (none). */
static int check_uri_sans(const mbedtls_x509_crt *crt, const char *id, char *seen, size_t cap)
{
    int rv = -ENOENT;

    for (const mbedtls_x509_sequence *s = &crt->subject_alt_names; s != NULL && s->buf.p != NULL;
         s = s->next) {
        mbedtls_x509_subject_alternative_name san;

        memset(&san, 0, sizeof(san));
        if (mbedtls_x509_parse_subject_alt_name(&s->buf, &san) != 0) {
            continue; /* a kind mbedTLS does not parse (e.g. otherName of an unknown type) */
        }
        if (san.type == MBEDTLS_X509_SAN_UNIFORM_RESOURCE_IDENTIFIER) {
            const mbedtls_x509_buf *u = &san.san.unstructured_name;

            if (same(u, id)) {
                mbedtls_x509_free_subject_alt_name(&san);
                return 0;
            }
            if (rv == -ENOENT) {
                describe("URI SAN", u->p, u->len, seen, cap);
            }
            rv = -EACCES;
        }
        mbedtls_x509_free_subject_alt_name(&san);
    }
    return rv;
}

static int check_cn(const mbedtls_x509_crt *crt, const char *id, char *seen, size_t cap)
{
    for (const mbedtls_x509_name *a = &crt->subject; a != NULL; a = a->next) {
        if (a->oid.p != NULL && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &a->oid) == 0) {
            describe("CN", a->val.p, a->val.len, seen, cap);
            return same(&a->val, id) ? 0 : -EACCES;
        }
    }
    snprintf(seen, cap, "no URI SAN and no CN");
    return -EACCES;
}

int ml_tls_cert_id_check(const unsigned char *der, size_t n, const char *id, char *seen, size_t cap)
{
    mbedtls_x509_crt crt;
    int rv;

    mbedtls_x509_crt_init(&crt);
    if (mbedtls_x509_crt_parse_der(&crt, der, n) != 0) {
        snprintf(seen, cap, "a peer certificate mbedTLS cannot parse");
        rv = -EPROTO;
        goto out;
    }
    if ((rv = check_uri_sans(&crt, id, seen, cap)) == -ENOENT) {
        rv = check_cn(&crt, id, seen, cap);
    }
out:
    mbedtls_x509_crt_free(&crt);
    return rv;
}

int ml_tls_peer_id_check(struct lws *wsi, const char *id, char *seen, size_t cap)
{
    union lws_tls_cert_info_results *r;
    /* The union ends with a name[64] that stands for a buffer of any length (lws-x509.h). */
    size_t size = sizeof(*r) - sizeof(r->ns.name) + ML_TLS_PEER_CERT_MAX_BYTES;
    int rv;

    if ((r = ml_malloc(size)) == NULL) {
        snprintf(seen, cap, "out of memory");
        return -ENOMEM;
    }
    r->ns.len = 0;
    if (lws_tls_peer_cert_info(wsi, LWS_TLS_CERT_INFO_DER_RAW, r, ML_TLS_PEER_CERT_MAX_BYTES) !=
        0) {
        if (r->ns.len > ML_TLS_PEER_CERT_MAX_BYTES) {
            snprintf(seen, cap, "a peer certificate of %d bytes, over %d", r->ns.len,
                     ML_TLS_PEER_CERT_MAX_BYTES);
            rv = -EPROTO;
        } else {
            snprintf(seen, cap, "no peer certificate");
            rv = -ENOENT;
        }
        goto out;
    }
    rv = ml_tls_cert_id_check((const unsigned char *)r->ns.name, (size_t)r->ns.len, id, seen, cap);
out:
    ml_free(r);
    return rv;
}
