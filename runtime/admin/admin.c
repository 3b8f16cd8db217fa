/* The admin endpoint over libwebsockets' HTTP/1 server role (admin/admin.h). Who owns what: the
 * admin owns its vhost; lws owns each connection and its session record (struct session), whose
 * response body the session owns until it is written or the connection closes. */
#include "admin/admin.h"

#include "config/snapshot-t.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/sock.h"
#include "core/stats.h"
#include "meshlet_config.h"
#include "proxy/obs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Written per WRITEABLE callback. */
#define ADMIN_CHUNK_BYTES 16384
/* First try at a stats rendering; doubled up to ML_ADMIN_MAX_RESPONSE_BYTES. */
#define ADMIN_FIRST_BYTES 16384

struct ml_admin {
    struct ml_loop *loop;
    struct lws_vhost *vh;
    struct ml_proxy *proxy; /* borrowed; NULL: not ready */
};

/* One HTTP connection (lws allocates and zeroes it; per_session_data_size). */
struct session {
    char *body; /* the response body being written (ml_malloc); NULL when none */
    size_t len;
    size_t sent;
    bool close; /* close the connection after this response */
};

struct response {
    unsigned int status;
    const char *content_type;
    char *body; /* ml_malloc'd, handed to the session */
    size_t len;
    char version[ML_CFG_VERSION_MAX + 1]; /* X-Meshlet-Config-Version; "" = none */
};

static void session_drop(struct session *s)
{
    ml_free(s->body);
    s->body = NULL;
    s->len = s->sent = 0;
}

/* A short fixed body. false when out of memory. */
static bool respond_text(struct response *r, unsigned int status, const char *text)
{
    size_t n = strlen(text);

    r->status = status;
    r->content_type = "text/plain; charset=utf-8";
    if ((r->body = ml_malloc(n + 1)) == NULL) {
        return false;
    }
    memcpy(r->body, text, n + 1);
    r->len = n;
    return true;
}

typedef long render_fn(const struct ml_stats *st, char *out, size_t cap);

static bool respond_stats(struct ml_admin *a, struct response *r, render_fn *render,
                          const char *content_type)
{
    const struct ml_stats *st = a->proxy != NULL ? ml_proxy_stats(a->proxy) : NULL;
    size_t cap = ADMIN_FIRST_BYTES;
    long n;

    if (st == NULL) {
        return respond_text(r, 503, "not ready: no configuration is applied\n");
    }
    for (;;) {
        if ((r->body = ml_malloc(cap)) == NULL) {
            return false;
        }
        if ((n = render(st, r->body, cap)) >= 0) {
            break;
        }
        ml_free(r->body);
        r->body = NULL;
        if (cap >= ML_ADMIN_MAX_RESPONSE_BYTES) {
            ML_LOG_WRN("admin: the stats do not fit in %u bytes (ML_ADMIN_MAX_RESPONSE_BYTES)",
                       (unsigned)ML_ADMIN_MAX_RESPONSE_BYTES);
            return respond_text(r, 500, "the stats are larger than ML_ADMIN_MAX_RESPONSE_BYTES\n");
        }
        cap *= 2;
    }
    r->status = 200;
    r->content_type = content_type;
    r->len = (size_t)n;
    return true;
}

static bool respond_config(struct ml_admin *a, struct response *r)
{
    const struct ml_snapshot *snap = a->proxy != NULL ? ml_proxy_snapshot(a->proxy) : NULL;
    size_t head, text_len;

    if (snap == NULL || snap->text == NULL) {
        return respond_text(r, 503, "not ready: no configuration is applied\n");
    }
    text_len = snap->text_bytes;
    head = strlen("# version: \n") + strlen(snap->version);
    if ((r->body = ml_malloc(head + text_len + 1)) == NULL) {
        return false;
    }
    snprintf(r->body, head + 1, "# version: %s\n", snap->version);
    memcpy(r->body + head, snap->text, text_len);
    r->body[head + text_len] = '\0';
    r->len = head + text_len;
    r->status = 200;
    r->content_type = "text/plain; charset=utf-8";
    snprintf(r->version, sizeof(r->version), "%s", snap->version);
    return true;
}

/* The response to GET path. false when out of memory. */
static bool route(struct ml_admin *a, const char *path, struct response *r)
{
    if (strcmp(path, "/healthz") == 0) {
        return respond_text(r, 200, "ok\n");
    }
    if (strcmp(path, "/ready") == 0) {
        if (a->proxy != NULL && ml_proxy_ready(a->proxy)) {
            return respond_text(r, 200, "ready\n");
        }
        return respond_text(r, 503, "not ready\n");
    }
    if (strcmp(path, "/stats") == 0) {
        return respond_stats(a, r, ml_stats_render_text, "text/plain; charset=utf-8");
    }
    if (strcmp(path, "/stats/prometheus") == 0) {
        return respond_stats(a, r, ml_stats_render_prometheus,
                             "text/plain; version=0.0.4; charset=utf-8");
    }
    if (strcmp(path, "/config") == 0) {
        return respond_config(a, r);
    }
    return respond_text(r, 404, "not found\n");
}

/* Sends the headers of r and queues its body on s. 0, or -1 to close the connection. */
static int send_response(struct lws *wsi, struct session *s, struct response *r)
{
    uint8_t buf[LWS_PRE + 1024];
    uint8_t *start = &buf[LWS_PRE], *p = start, *end = &buf[sizeof(buf) - 1];

    session_drop(s);
    s->body = r->body;
    s->len = r->len;
    r->body = NULL;
    if (lws_add_http_common_headers(wsi, r->status, r->content_type, (lws_filepos_t)s->len, &p,
                                    end) != 0) {
        return -1;
    }
    if (r->version[0] != '\0' &&
        lws_add_http_header_by_name(wsi, (const unsigned char *)"x-meshlet-config-version:",
                                    (const unsigned char *)r->version, (int)strlen(r->version), &p,
                                    end) != 0) {
        return -1;
    }
    if (lws_finalize_write_http_header(wsi, start, &p, end) != 0) {
        return -1;
    }
    lws_callback_on_writable(wsi);
    return 0;
}

/* Writes the next piece of the body. 0, or -1 to close the connection. */
static int write_body(struct lws *wsi, struct session *s)
{
    uint8_t buf[LWS_PRE + ADMIN_CHUNK_BYTES];
    size_t n = s->len - s->sent;
    bool last;

    if (s->body == NULL) {
        return 0;
    }
    if (n > ADMIN_CHUNK_BYTES) {
        n = ADMIN_CHUNK_BYTES;
    }
    last = s->sent + n == s->len;
    memcpy(&buf[LWS_PRE], s->body + s->sent, n);
    if (lws_write(wsi, &buf[LWS_PRE], n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)n) {
        return -1;
    }
    s->sent += n;
    if (!last) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    session_drop(s);
    if (s->close) {
        return -1;
    }
    /* Keep-alive: lws waits for the next request, or says to close. */
    return lws_http_transaction_completed(wsi) != 0 ? -1 : 0;
}

static int admin_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                          size_t len)
{
    struct ml_admin *a = lws_get_vhost_user(lws_get_vhost(wsi));
    struct session *s = user;
    struct response r;

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        if (a == NULL || s == NULL) {
            return -1;
        }
        memset(&r, 0, sizeof(r));
        if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) {
            s->close = true; /* a body we do not read may follow */
            if (!respond_text(&r, 405, "only GET is served here\n")) {
                return -1;
            }
        } else if (!route(a, in != NULL ? (const char *)in : "", &r)) {
            ML_LOG_WRN("admin: out of memory for a response: connection closed");
            return -1;
        }
        if (send_response(wsi, s, &r) < 0) {
            ml_free(r.body);
            return -1;
        }
        return 0;
    case LWS_CALLBACK_HTTP_BODY:
        return 0; /* a POST's body: answered 405 above, the connection closes after */
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (s == NULL) {
            return -1;
        }
        return write_body(wsi, s);
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (s != NULL) {
            session_drop(s);
        }
        break;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols admin_protocols[] = {
    {
        .name = "ml-admin",
        .callback = admin_callback,
        .per_session_data_size = sizeof(struct session),
    },
    LWS_PROTOCOL_LIST_TERM,
};

int ml_admin_new(struct ml_loop *loop, struct ml_proxy *proxy, char *why, size_t cap,
                 struct ml_admin **out)
{
    const struct ml_snapshot *snap = ml_proxy_snapshot(proxy);
    const struct ml_cfg_addr *addr = &snap->node.admin;
    struct lws_context_creation_info info;
    struct ml_sock_addr sa;
    char iface[INET6_ADDRSTRLEN];
    struct ml_admin *a;
    int rv;

    *out = NULL;
#if !CONFIG_ML_ADMIN
    if (addr->set) {
        ML_LOG_WRN("admin: not in this build (CONFIG_ML_ADMIN): %s is not served", addr->text);
    }
    return 0;
#endif
    if (!addr->set) {
        ML_LOG_INF("admin: off");
        return 0;
    }
    if (inet_ntop(addr->family, addr->ip, iface, sizeof(iface)) == NULL) {
        snprintf(why, cap, "admin: bad address %s", addr->text);
        return -EINVAL;
    }
    if ((a = ml_calloc(1, sizeof(*a))) == NULL) {
        snprintf(why, cap, "admin: out of memory");
        return -ENOMEM;
    }
    a->loop = loop;
    a->proxy = proxy;
    memset(&info, 0, sizeof(info));
    info.vhost_name = "ml-admin";
    info.iface = iface;
    info.port = addr->port;
    info.protocols = admin_protocols;
    info.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
    info.keepalive_timeout = 5;
    info.timeout_secs = 10;
    info.user = a;
    a->vh = lws_create_vhost(ml_loop_lws_context(loop), &info);
    if (a->vh == NULL) {
        sa.family = addr->family;
        sa.port = addr->port;
        memcpy(sa.ip, addr->ip, sizeof(sa.ip));
        rv = ml_sock_bind_errno(&sa);
        rv = rv < 0 ? rv : -EIO;
        snprintf(why, cap, "admin: cannot bind %s: %s", addr->text, strerror(-rv));
        ml_free(a);
        return rv;
    }
    ML_LOG_INF("admin: listening on %s", addr->text);
    *out = a;
    return 0;
}

void ml_admin_free(struct ml_admin *a)
{
    if (a == NULL) {
        return;
    }
    lws_vhost_destroy(a->vh);
    ml_free(a);
}

void ml_admin_set_proxy(struct ml_admin *a, struct ml_proxy *proxy)
{
    if (a != NULL) {
        a->proxy = proxy;
    }
}
