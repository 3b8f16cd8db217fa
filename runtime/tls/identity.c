/* A certificate's principal (tls/identity.h). */
#include "tls/identity.h"

#include <errno.h>
#include <mbedtls/oid.h>
#include <mbedtls/x509_crt.h>
#include <stdbool.h>
#include <string.h>

/* A name longer than cap - 1 is none (""): a cut name could match a rule meant for another. */
static size_t copy_name(const unsigned char *p, size_t n, char *out, size_t cap)
{
    size_t i;

    if (cap == 0 || n >= cap) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        out[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
    }
    out[i] = '\0';
    return i;
}

size_t ml_tls_cert_identity(const mbedtls_x509_crt *crt, char *out, size_t cap)
{
    if (cap > 0) {
        out[0] = '\0';
    }
    for (const mbedtls_x509_sequence *s = &crt->subject_alt_names; s != NULL && s->buf.p != NULL;
         s = s->next) {
        mbedtls_x509_subject_alternative_name san;
        size_t n = 0;
        bool uri = false;

        memset(&san, 0, sizeof(san));
        if (mbedtls_x509_parse_subject_alt_name(&s->buf, &san) != 0) {
            continue; /* a kind mbedTLS does not parse */
        }
        if (san.type == MBEDTLS_X509_SAN_UNIFORM_RESOURCE_IDENTIFIER) {
            uri = true;
            n = copy_name(san.san.unstructured_name.p, san.san.unstructured_name.len, out, cap);
        }
        mbedtls_x509_free_subject_alt_name(&san);
        if (uri) {
            return n; /* the first URI SAN names the peer, or (too long) nobody: never its CN */
        }
    }
    for (const mbedtls_x509_name *a = &crt->subject; a != NULL; a = a->next) {
        if (a->oid.p != NULL && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &a->oid) == 0) {
            return copy_name(a->val.p, a->val.len, out, cap);
        }
    }
    return 0;
}

int ml_tls_cert_file_cn(const char *path, char *out, size_t cap)
{
    mbedtls_x509_crt crt;
    size_t n = 0;
    int rv;

    if (cap > 0) {
        out[0] = '\0';
    }
    mbedtls_x509_crt_init(&crt);
    rv = mbedtls_x509_crt_parse_file(&crt, path);
    if (rv == MBEDTLS_ERR_X509_ALLOC_FAILED) {
        rv = -ENOMEM;
    } else if (rv != 0) {
        rv = -EINVAL; /* unreadable or not all parseable: the file checks say which */
    } else {
        for (const mbedtls_x509_name *a = &crt.subject; a != NULL; a = a->next) {
            if (a->oid.p != NULL && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &a->oid) == 0) {
                n = copy_name(a->val.p, a->val.len, out, cap);
                break;
            }
        }
        rv = n > 0 ? 0 : -ENOENT;
    }
    mbedtls_x509_crt_free(&crt);
    return rv;
}
