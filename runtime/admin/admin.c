/* The admin endpoint over libwebsockets' HTTP/1 server role (admin/admin.h). Who owns what: the
 * admin owns its vhost; lws owns each connection and its session record (struct session), whose
 * response body the session owns until it is written or the connection closes. */
#include "admin/admin.h"

#include "admin/admin_int.h"
#include "admin/clusters.h"
#include "admin/guard.h"
#include "admin/info.h"
#include "admin/page.h"
#include "config/snapshot-t.h"
#include "config/snapshot.h"
#include "core/alloc.h"
#include "core/fd_budget.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/sock.h"
#include "core/stats.h"
#include "meshlet_config.h"
#include "proxy/obs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Written per WRITEABLE callback; a streamed rendering is made this much at a time. */
#define ADMIN_CHUNK_BYTES 16384
_Static_assert(ADMIN_CHUNK_BYTES >= ML_STATS_ITEM_MAX_BYTES,
               "a chunk must hold any one piece of a stats rendering");
/* Room for a chunk's size line ("3fff\r\n") before its data and "\r\n" after. */
#define ADMIN_CHUNK_FRAME_BYTES 16
/* The small bodies built whole: /fleet, /server_info. (What follows the streamed stats, the
 * node's and admin's counters and the info and process metrics, goes in one chunk.) */
#define ADMIN_FIRST_BYTES 16384

struct response {
    unsigned int status;
    const char *content_type;
    char *body; /* ml_malloc'd, handed to the session */
    size_t len;
    char version[ML_CFG_VERSION_MAX + 1]; /* X-Meshlet-Config-Version; "" = none */
    bool challenge;                       /* a 401: say WWW-Authenticate: Bearer */
    bool json;                            /* the query asked ?format=json (/clusters) */
    bool stream;                          /* no body: the stats in fmt, streamed (chunked) */
    enum ml_stats_format fmt;
    bool no_store; /* say Cache-Control: no-store (live data) */
};

/* POST /config requests waiting for the node's answer at once; more get 503. */
#define ADMIN_MAX_PENDING_POSTS 4

_Static_assert(CONFIG_ML_ADMIN_MAX_CONNECTIONS <= ML_FD_BUDGET_ADMIN,
               "the admin connection cap must fit the admin's share of the fd budget");

struct ml_admin {
    struct ml_loop *loop;
    struct lws_vhost *vh;
    /* lws closes the vhost's sockets after lws_vhost_destroy returns, and calls us for each:
     * ml_admin_free only marks the admin freed, the last callback (PROTOCOL_DESTROY) frees it */
    bool freed;                   /* ml_admin_free was called: no hooks, no proxy any more */
    bool vhost_gone;              /* lws destroyed the vhost (the context went first) */
    /* lws ran PROTOCOL_INIT for the vhost: only then does it run PROTOCOL_DESTROY. admin_create
     * asks for the init at once, so this is false only when that init failed. */
    bool protocol_inited;
    bool listening;               /* has a listen socket of its own (not ml_admin_new_detached) */
    struct ml_proxy *proxy;       /* borrowed; NULL: not ready */
    char iface[INET6_ADDRSTRLEN]; /* the vhost's address: lws keeps the pointer for its life */
    const struct ml_admin_hooks *hooks; /* NULL: no POST /config, no node counters */
    void *hooks_user;
    struct ml_cfg_addr addr; /* where the vhost listens (text not kept): the Host check */
    unsigned int last_token;
    unsigned int n_conns; /* connections open now, up to CONFIG_ML_ADMIN_MAX_CONNECTIONS */
    uint64_t cx_refused;  /* closed at accept: over CONFIG_ML_ADMIN_MAX_CONNECTIONS */
    uint64_t rq_refused;  /* requests refused by the checks (400, 401, 403, 421) */
    struct {
        unsigned int token; /* 0: a free slot */
        struct lws *wsi;
    } posts[ADMIN_MAX_PENDING_POSTS];
};

/* One HTTP connection (lws allocates and zeroes it; per_session_data_size). */
struct session {
    char *body; /* the response body being written (ml_malloc); NULL when none */
    size_t len;
    size_t sent;
    bool close; /* close the connection after this response */
    /* POST /config */
    char *req;       /* the request body so far (ml_malloc, req_want + 1 bytes) */
    size_t req_want; /* the Content-Length announced: req never holds more */
    size_t req_len;
    bool req_too_big;        /* over CONFIG_ML_MAX_CONFIG_BYTES: answered 413 */
    unsigned int token;      /* waiting for the node's answer; 0: not */
    struct response *answer; /* the node's answer, to send when writeable (ml_malloc) */
    bool head;               /* a HEAD request: the headers of its GET, no body */
    bool finish;             /* the headers are out and there is no body: the request is done */
    /* A streamed stats response, chunked: rendered a piece at a time from st, a reference to
     * the table that was current when it started; a hot apply mid-stream ends it unfinished
     * (the names it renders belong to the snapshot that went). */
    struct ml_stats *st; /* NULL: none */
    struct ml_snapshot *snap; /* the proxy's when st was taken (a reference: st names from it) */
    enum ml_stats_format fmt;
    struct ml_stats_cursor cur;
    bool tail_sent; /* the node's and the admin's lines after the stats */
    uint8_t *chunk; /* LWS_PRE + frame + ADMIN_CHUNK_BYTES (ml_malloc) */
};

static void session_drop(struct session *s)
{
    ml_free(s->body);
    s->body = NULL;
    s->len = s->sent = 0;
    ml_stats_free(s->st);
    s->st = NULL;
    ml_snapshot_unref(s->snap);
    s->snap = NULL;
    ml_free(s->chunk);
    s->chunk = NULL;
    s->finish = false;
}

/* Forgets the POST of s: its request body, and its slot (a later answer is dropped). */
static void session_drop_post(struct ml_admin *a, struct session *s)
{
    ml_free(s->req);
    s->req = NULL;
    s->req_len = 0;
    if (s->answer != NULL) {
        ml_free(s->answer->body);
        ml_free(s->answer);
        s->answer = NULL;
    }
    if (s->token != 0 && a != NULL) {
        for (int i = 0; i < ADMIN_MAX_PENDING_POSTS; i++) {
            if (a->posts[i].token == s->token) {
                a->posts[i].token = 0;
                a->posts[i].wsi = NULL;
            }
        }
    }
    s->token = 0;
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

/* The admin endpoint's own counters, after the proxy's and the node's: the length written, or
 * -ENOBUFS when out[0..cap) is too small. */
static long render_admin(const struct ml_admin *a, bool prometheus, char *out, size_t cap)
{
    int n;

    if (prometheus) {
        n = snprintf(out, cap,
                     "# HELP meshlet_admin_cx_active Admin endpoint connections open now.\n"
                     "# TYPE meshlet_admin_cx_active gauge\n"
                     "meshlet_admin_cx_active %u\n"
                     "# HELP meshlet_admin_cx_refused_total Admin connections closed when "
                     "accepted, over ML_ADMIN_MAX_CONNECTIONS.\n"
                     "# TYPE meshlet_admin_cx_refused_total counter\n"
                     "meshlet_admin_cx_refused_total %llu\n"
                     "# HELP meshlet_admin_rq_refused_total Admin requests refused (bad framing, "
                     "Origin, Host or token).\n"
                     "# TYPE meshlet_admin_rq_refused_total counter\n"
                     "meshlet_admin_rq_refused_total %llu\n",
                     a->n_conns, (unsigned long long)a->cx_refused,
                     (unsigned long long)a->rq_refused);
    } else {
        n = snprintf(out, cap,
                     "admin.downstream_cx_active %u\nadmin.downstream_cx_refused %llu\n"
                     "admin.rq_refused %llu\n",
                     a->n_conns, (unsigned long long)a->cx_refused,
                     (unsigned long long)a->rq_refused);
    }
    return n < 0 || (size_t)n >= cap ? -ENOBUFS : n;
}

/* The stats in fmt: streamed by write_chunk once the headers are out. */
static bool respond_stats(struct ml_admin *a, struct response *r, enum ml_stats_format fmt,
                          const char *content_type)
{
    if (a->proxy == NULL || ml_proxy_stats(a->proxy) == NULL) {
        return respond_text(r, 503, "not ready: no configuration is applied\n");
    }
    r->status = 200;
    r->content_type = content_type;
    r->stream = true;
    r->fmt = fmt;
    r->no_store = true;
    return true;
}

/* What the node says of itself, or what the snapshot knows without a node (tests). */
static void node_info(struct ml_admin *a, struct ml_admin_node_info *ni)
{
    const struct ml_snapshot *snap = a->proxy != NULL ? ml_proxy_snapshot(a->proxy) : NULL;

    memset(ni, 0, sizeof(*ni));
    ni->id = snap != NULL ? snap->node.id : "";
    ni->config_version = snap != NULL ? snap->version : "";
    ni->config_source = "unknown";
    if (a->hooks != NULL && a->hooks->node_info != NULL) {
        a->hooks->node_info(a->hooks_user, ni);
    }
}

static bool respond_server_info(struct ml_admin *a, struct response *r)
{
    struct ml_admin_node_info ni;
    long n;

    node_info(a, &ni);
    if ((r->body = ml_malloc(ADMIN_FIRST_BYTES)) == NULL) {
        return false;
    }
    if ((n = ml_admin_render_server_info(&ni, r->body, ADMIN_FIRST_BYTES)) < 0) {
        ml_free(r->body);
        r->body = NULL;
        return respond_text(r, 500, "the server info does not fit\n");
    }
    r->status = 200;
    r->content_type = "application/json";
    r->len = (size_t)n;
    r->no_store = true;
    return true;
}

static bool respond_page(struct response *r)
{
    size_t n = strlen(ml_admin_page_html);

    if ((r->body = ml_malloc(n + 1)) == NULL) {
        return false;
    }
    memcpy(r->body, ml_admin_page_html, n + 1);
    r->len = n;
    r->status = 200;
    r->content_type = "text/html; charset=utf-8";
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

static bool respond_clusters(struct ml_admin *a, struct response *r)
{
    long n = a->hooks != NULL && a->hooks->clusters != NULL && a->proxy != NULL
                 ? a->hooks->clusters(a->hooks_user, r->json, &r->body)
                 : ml_admin_clusters(a->proxy, r->json, &r->body);

    if (n == -ENOENT) {
        return respond_text(r, 503, "not ready: no configuration is applied\n");
    }
    if (n == -ENOBUFS) {
        return respond_text(r, 500, "/clusters is larger than ML_ADMIN_CLUSTERS_MAX_BYTES\n");
    }
    if (n < 0) {
        return false;
    }
    r->status = 200;
    r->content_type = r->json ? "application/json" : "text/plain; charset=utf-8";
    r->len = (size_t)n;
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
    if (strcmp(path, "/") == 0) {
        return respond_page(r);
    }
    if (strcmp(path, "/server_info") == 0) {
        return respond_server_info(a, r);
    }
    if (strcmp(path, "/stats") == 0) {
        return respond_stats(a, r, ML_STATS_TEXT, "text/plain; charset=utf-8");
    }
    if (strcmp(path, "/stats.json") == 0) {
        return respond_stats(a, r, ML_STATS_JSON, "application/json");
    }
    if (strcmp(path, "/stats/prometheus") == 0) {
        return respond_stats(a, r, ML_STATS_PROMETHEUS, "text/plain; version=0.0.4; charset=utf-8");
    }
    if (strcmp(path, "/config") == 0) {
        return respond_config(a, r);
    }
    if (strcmp(path, "/clusters") == 0) {
        return respond_clusters(a, r);
    }
    if (strcmp(path, "/clusters.json") == 0) { /* as /stats.json */
        r->json = true;
        return respond_clusters(a, r);
    }
    if (strcmp(path, "/fleet") == 0 && a->hooks != NULL && a->hooks->render_fleet != NULL) {
        long n;
        r->status = 200;
        r->content_type = "text/plain; charset=utf-8";
        if ((r->body = ml_malloc(ADMIN_FIRST_BYTES)) == NULL) {
            return false;
        }
        if ((n = a->hooks->render_fleet(a->hooks_user, false, r->body, ADMIN_FIRST_BYTES)) < 0) {
            ml_free(r->body);
            r->body = NULL;
            return respond_text(r, 500, "the fleet state does not fit\n");
        }
        r->len = (size_t)n;
        return true;
    }
    return respond_text(r, 404, "not found\n");
}

/* Sends the headers of r and queues its body on s (none for HEAD: r's body is dropped). 0, or
 * -1 to close the connection. */
static int send_response(struct ml_admin *a, struct lws *wsi, struct session *s, struct response *r)
{
    uint8_t buf[LWS_PRE + 1024];
    uint8_t *start = &buf[LWS_PRE], *p = start, *end = &buf[sizeof(buf) - 1];
    struct ml_stats *st = NULL;

    session_drop(s);
    if (r->stream) {
        /* a reference is what lets the table outlive a hot apply mid-stream; with workers, the
         * table is a new one, every worker's counters summed */
        if (a->proxy != NULL && a->hooks != NULL && a->hooks->stats != NULL) {
            st = a->hooks->stats(a->hooks_user);
        } else if (a->proxy != NULL) {
            st = ml_stats_ref((struct ml_stats *)ml_proxy_stats(a->proxy));
        }
        s->st = st;
        if (st != NULL) {
            s->snap = ml_snapshot_ref((struct ml_snapshot *)ml_proxy_snapshot(a->proxy));
        }
        if (st == NULL || lws_add_http_header_status(wsi, r->status, &p, end) != 0 ||
            lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                         (const unsigned char *)r->content_type,
                                         (int)strlen(r->content_type), &p, end) != 0 ||
            lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING,
                                         (const unsigned char *)"chunked", 7, &p, end) != 0) {
            return -1;
        }
    } else if (lws_add_http_common_headers(wsi, r->status, r->content_type, (lws_filepos_t)r->len,
                                           &p, end) != 0) {
        return -1;
    }
    if (r->version[0] != '\0' &&
        lws_add_http_header_by_name(wsi, (const unsigned char *)"x-meshlet-config-version:",
                                    (const unsigned char *)r->version, (int)strlen(r->version), &p,
                                    end) != 0) {
        return -1;
    }
    if (r->challenge &&
        lws_add_http_header_by_name(wsi, (const unsigned char *)"www-authenticate:",
                                    (const unsigned char *)"Bearer", 6, &p, end) != 0) {
        return -1;
    }
    if (r->no_store &&
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end) != 0) {
        return -1;
    }
    if (lws_finalize_write_http_header(wsi, start, &p, end) != 0) {
        return -1;
    }
    if (s->head) {
        ml_free(r->body);
        r->body = NULL;
        ml_stats_free(s->st); /* no body: nothing streams */
        s->st = NULL;
        ml_snapshot_unref(s->snap);
        s->snap = NULL;
        s->finish = true;
    } else if (r->stream) {
        s->fmt = r->fmt;
        memset(&s->cur, 0, sizeof(s->cur));
        s->tail_sent = false;
        if ((s->chunk = ml_malloc(LWS_PRE + ADMIN_CHUNK_FRAME_BYTES + ADMIN_CHUNK_BYTES)) == NULL) {
            return -1;
        }
    } else {
        s->body = r->body;
        s->len = r->len;
        r->body = NULL;
    }
    lws_callback_on_writable(wsi);
    return 0;
}

/* The response is written whole: the next request, or the close. 0, or -1 to close. */
static int response_done(struct lws *wsi, struct session *s)
{
    session_drop(s);
    if (s->close) {
        return -1;
    }
    /* Keep-alive: lws waits for the next request, or says to close. */
    return lws_http_transaction_completed(wsi) != 0 ? -1 : 0;
}

/* What follows the streamed stats: the node's counters, the admin's, and for Prometheus the
 * info and process metrics. The length, 0 when none, or -ENOBUFS. */
static long render_tail(struct ml_admin *a, enum ml_stats_format fmt, char *out, size_t cap)
{
    bool prometheus = fmt == ML_STATS_PROMETHEUS;
    struct ml_admin_node_info ni;
    long n = 0, m;

    if (fmt == ML_STATS_JSON) {
        return 0;
    }
    out[0] = '\0';
    if (a->hooks != NULL && a->hooks->render_stats != NULL &&
        (n = a->hooks->render_stats(a->hooks_user, prometheus, out, cap)) < 0) {
        return n;
    }
    if ((m = render_admin(a, prometheus, out + n, cap - (size_t)n)) < 0) {
        return m;
    }
    n += m;
    if (prometheus) {
        node_info(a, &ni);
        if ((m = ml_admin_render_info_metrics(&ni, out + n, cap - (size_t)n)) < 0) {
            return m;
        }
        n += m;
    }
    return n;
}

/* The next chunk of a streamed stats response: a piece of the rendering, then the tail, then
 * the last (empty) chunk. 0, or -1 to close the connection. */
static int write_chunk(struct ml_admin *a, struct lws *wsi, struct session *s)
{
    char *data = (char *)s->chunk + LWS_PRE + ADMIN_CHUNK_FRAME_BYTES;
    char head[ADMIN_CHUNK_FRAME_BYTES];
    long n;
    int h;

    if (!s->cur.done) {
        if (a == NULL || a->proxy == NULL || ml_proxy_snapshot(a->proxy) != s->snap) {
            ML_LOG_DBG("admin: the configuration changed while the stats were sent: cut");
            return -1; /* no last chunk: the client sees the body unfinished */
        }
        /* - 2: room for the chunk's closing CRLF after the data */
        if ((n = ml_stats_render_part(s->st, s->fmt, &s->cur, data, ADMIN_CHUNK_BYTES - 2)) < 0) {
            ML_LOG_WRN("admin: a piece of the stats does not fit in %d bytes", ADMIN_CHUNK_BYTES);
            return -1;
        }
    } else if (!s->tail_sent) {
        s->tail_sent = true;
        if ((n = render_tail(a, s->fmt, data, ADMIN_CHUNK_BYTES - 2)) < 0) {
            ML_LOG_WRN("admin: the node's counters do not fit in %d bytes", ADMIN_CHUNK_BYTES);
            return -1;
        }
    } else {
        static const char last[] = "0\r\n\r\n";

        memcpy(data, last, sizeof(last) - 1);
        if (lws_write(wsi, (unsigned char *)data, sizeof(last) - 1, LWS_WRITE_HTTP_FINAL) <
            (int)sizeof(last) - 1) {
            return -1;
        }
        return response_done(wsi, s);
    }
    if (n > 0) {
        h = snprintf(head, sizeof(head), "%lx\r\n", (unsigned long)n);
        memcpy(data - h, head, (size_t)h);
        memcpy(data + n, "\r\n", 2);
        if (lws_write(wsi, (unsigned char *)data - h, (size_t)(h + n + 2), LWS_WRITE_HTTP) <
            h + n + 2) {
            return -1;
        }
    }
    lws_callback_on_writable(wsi);
    return 0;
}

/* Writes the next piece of the body. 0, or -1 to close the connection. */
static int write_body(struct ml_admin *a, struct lws *wsi, struct session *s)
{
    uint8_t buf[LWS_PRE + ADMIN_CHUNK_BYTES];
    size_t n = s->len - s->sent;
    bool last;

    if (s->st != NULL) {
        return write_chunk(a, wsi, s);
    }
    if (s->body == NULL) {
        return s->finish ? response_done(wsi, s) : 0;
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
    return response_done(wsi, s);
}

/* POST /config whose body announces want bytes (request_check read it; has_length false: no
 * Content-Length): reserves a slot and a buffer of exactly that size for the body. 0, or -1 to
 * close the connection. A refusal is answered at once (r filled, *answered set). */
static int post_begin(struct ml_admin *a, struct lws *wsi, struct session *s, struct response *r,
                      bool has_length, unsigned long long want, bool *answered)
{
    int slot = -1;

    *answered = true;
    s->close = true; /* a refused body would have to be read first: close instead */
    if (!has_length) {
        return respond_text(r, 411, "POST /config needs a Content-Length\n") ? 0 : -1;
    }
    if (want == 0) {
        return respond_text(r, 400, "push: expected an INI text, got an empty body\n") ? 0 : -1;
    }
    if (want > CONFIG_ML_MAX_CONFIG_BYTES) {
        char text[160];
        snprintf(text, sizeof(text),
                 "push: expected at most %d bytes (CONFIG_ML_MAX_CONFIG_BYTES), got %llu "
                 "bytes\n",
                 CONFIG_ML_MAX_CONFIG_BYTES, want);
        return respond_text(r, 413, text) ? 0 : -1;
    }
    for (int i = 0; i < ADMIN_MAX_PENDING_POSTS; i++) {
        if (a->posts[i].token == 0) {
            slot = i;
            break;
        }
    }
    if (slot < 0) {
        return respond_text(r, 503, "busy: other POST /config requests wait\n") ? 0 : -1;
    }
    if ((s->req = ml_malloc((size_t)want + 1)) == NULL) {
        return respond_text(r, 503, "out of memory\n") ? 0 : -1;
    }
    s->req_len = 0;
    s->req_want = (size_t)want;
    if (++a->last_token == 0) {
        a->last_token = 1;
    }
    s->token = a->last_token;
    s->close = false;
    a->posts[slot].token = s->token;
    a->posts[slot].wsi = wsi;
    *answered = false;
    return 0;
}

/* A header's value into buf: 1 copied, 0 absent, -1 longer than buf (a refusal, not a cut). */
static int header(struct lws *wsi, enum lws_token_indexes h, char *buf, size_t cap)
{
    if (lws_hdr_total_length(wsi, h) <= 0) {
        buf[0] = '\0';
        return 0;
    }
    return lws_hdr_copy(wsi, buf, (int)cap, h) < 0 ? -1 : 1;
}

/* A refusal by the checks: counted, answered, and the connection closes after it (a body we
 * do not read may follow). false when out of memory. */
static bool refuse(struct ml_admin *a, struct session *s, struct response *r, unsigned int status,
                   const char *text)
{
    a->rq_refused++;
    s->close = true;
    return respond_text(r, status, text);
}

/* The checks every request passes before it is served (admin/guard.h): the body's framing,
 * Origin, Host, then the token unless path is /healthz or /ready. 1: go on (*has_length and
 * *length say what Content-Length announced); 0: refused, r holds the answer; -1: no memory. */
static int request_check(struct ml_admin *a, struct lws *wsi, struct session *s, const char *path,
                         struct response *r, bool *has_length, uint64_t *length)
{
    char value[ML_CFG_ADMIN_TOKEN_MAX_BYTES + 32];
    const struct ml_snapshot *snap = a->proxy != NULL ? ml_proxy_snapshot(a->proxy) : NULL;
    int got;

    *has_length = false;
    *length = 0;
    /* lws reads a body by neither chunked coding nor a bounded Content-Length of its own: one
     * framing only, ours, or a request could smuggle a second one past us. */
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
        return refuse(a, s, r, 400, "Transfer-Encoding is not accepted: send a Content-Length\n")
                   ? 0
                   : -1;
    }
    if ((got = header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, value, sizeof(value))) != 0) {
        if (got < 0 || ml_admin_content_length(value, length) < 0) {
            return refuse(a, s, r, 400, "expected one Content-Length of digits\n") ? 0 : -1;
        }
        *has_length = true;
    }
    /* A browser sends Origin with every POST and with cross-origin requests; nothing that
     * manages a node does: a web page on the board must not reach the admin (CSRF). */
    if (lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) > 0) {
        return refuse(a, s, r, 403, "requests from a web page (with Origin) are refused\n") ? 0
                                                                                            : -1;
    }
    if ((got = header(wsi, WSI_TOKEN_HOST, value, sizeof(value))) == 0) {
        /* HTTP/1.1 requires Host (RFC 9112 3.2); an HTTP/1.0 probe may leave it out, and a
         * request that names no host cannot carry a rebound name either */
        char version[16];
        if (header(wsi, WSI_TOKEN_HTTP, version, sizeof(version)) <= 0 ||
            strcmp(version, "HTTP/1.0") != 0) {
            return refuse(a, s, r, 400, "expected a Host header\n") ? 0 : -1;
        }
    } else if (got < 0 || !ml_admin_host_allowed(&a->addr, value)) {
        return refuse(a, s, r, 421, "Host is not this admin endpoint's address\n") ? 0 : -1;
    }
    if (strcmp(path, "/healthz") == 0 || strcmp(path, "/ready") == 0) {
        return 1; /* probes carry no secret */
    }
    if (strcmp(path, "/") == 0) {
        /* the page is the same in every build and holds no data: a browser opens it without a
         * token, and the page asks for the token before it reads anything */
        return 1;
    }
    if (snap == NULL) {
        /* no snapshot: whether a token is required is unknown; fail closed */
        s->close = true;
        return respond_text(r, 503, "not ready: no configuration is applied\n") ? 0 : -1;
    }
    if (snap->node.admin_token_value != NULL) {
        if (header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, value, sizeof(value)) <= 0 ||
            !ml_admin_bearer_matches(value, snap->node.admin_token_value,
                                     snap->node.admin_token_bytes)) {
            r->challenge = true;
            return refuse(a, s, r, 401, "expected Authorization: Bearer with the admin token\n")
                       ? 0
                       : -1;
        }
    }
    return 1;
}

static int admin_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                          size_t len)
{
    struct ml_admin *a = lws_get_vhost_user(lws_get_vhost(wsi));
    struct session *s = user;
    struct response r;

    switch (reason) {
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        /* Before lws makes a connection of the accepted socket: over the cap it is closed at
         * once, so idle admin connections cannot hold the fds the data plane needs. */
        if (a != NULL && a->n_conns >= CONFIG_ML_ADMIN_MAX_CONNECTIONS) {
            a->cx_refused++;
            return -1;
        }
        return 0;
    case LWS_CALLBACK_WSI_CREATE:
        if (a != NULL) {
            a->n_conns++;
        }
        break;
    case LWS_CALLBACK_WSI_DESTROY:
        /* also said of the listening socket when the vhost goes, which was never counted */
        if (a != NULL && a->n_conns > 0) {
            a->n_conns--;
        }
        break;
    case LWS_CALLBACK_PROTOCOL_INIT:
        if (a != NULL) {
            a->protocol_inited = true;
        }
        return 0;
    case LWS_CALLBACK_PROTOCOL_DESTROY:
        /* the vhost is gone, every connection of it closed before: nothing calls back after */
        if (a != NULL && a->freed) {
            ml_free(a);
        } else if (a != NULL) {
            a->vhost_gone = true;
        }
        return 0;
    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
        /* lws gives a connection that never sends a request head no timeout of its own; it
         * clears this one when the head is complete, and sets keepalive_timeout after each
         * answer */
        lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_KEEPALIVE_IDLE, CONFIG_ML_ADMIN_IDLE_TIMEOUT_S);
        break;
    case LWS_CALLBACK_HTTP: {
        const char *path = in != NULL ? (const char *)in : "";
        bool has_length;
        uint64_t length;
        int ok;

        if (a == NULL || s == NULL) {
            return -1;
        }
        memset(&r, 0, sizeof(r));
        {
            /* lws copies the whole "format=json" fragment here before trimming the name */
            char format[32];

            r.json = lws_get_urlarg_by_name_safe(wsi, "format", format, sizeof(format)) == 4 &&
                     strcmp(format, "json") == 0;
        }
        /* HEAD gets GET's answer without its body (RFC 9110 9.3.2), refusals included */
        s->head = lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;
        if ((ok = request_check(a, wsi, s, path, &r, &has_length, &length)) < 0) {
            return -1;
        }
        if (ok == 0) {
            ML_LOG_DBG("admin: %s refused: %u", path, r.status);
        } else if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0 &&
                   strcmp(path, "/config") == 0 && a->hooks != NULL && a->hooks->apply != NULL) {
            bool answered;
            if (post_begin(a, wsi, s, &r, has_length, length, &answered) < 0) {
                return -1;
            }
            if (!answered) {
                return 0; /* the body comes next */
            }
        } else if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0 &&
                   lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) <= 0) {
            s->close = true; /* a body we do not read may follow */
            if (!respond_text(&r, 405, "only GET and HEAD are served here, and POST /config\n")) {
                return -1;
            }
        } else if (has_length && length > 0) {
            s->close = true; /* a GET with a body: we do not read it, so no next request */
            if (!route(a, path, &r)) {
                ML_LOG_WRN("admin: out of memory for a response: connection closed");
                return -1;
            }
        } else if (!route(a, path, &r)) {
            ML_LOG_WRN("admin: out of memory for a response: connection closed");
            return -1;
        }
        if (send_response(a, wsi, s, &r) < 0) {
            ml_free(r.body);
            return -1;
        }
        return 0;
    }
    case LWS_CALLBACK_HTTP_BODY:
        if (s != NULL && s->req != NULL && a != NULL) {
            /* req holds req_want bytes, what Content-Length announced. lws 4.3's HTTP/1 server
             * does not stop the body there (it passes on whatever was read): more than announced
             * is a client that lies about its framing, answered 400 and closed. */
            if (len > s->req_want - s->req_len) {
                memset(&r, 0, sizeof(r));
                ML_LOG_WRN("admin: POST /config body longer than its Content-Length %zu: 400, "
                           "connection closed",
                           s->req_want);
                session_drop_post(a, s);
                if (!refuse(a, s, &r, 400,
                            "expected a body of the length Content-Length announced, got more\n") ||
                    send_response(a, wsi, s, &r) < 0) {
                    ml_free(r.body);
                    return -1;
                }
                return 0;
            }
            memcpy(s->req + s->req_len, in, len);
            s->req_len += len;
        }
        return 0; /* otherwise a refused POST's body: the connection closes after the answer */
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (s != NULL && s->req != NULL && a != NULL && a->hooks != NULL) {
            char *text = s->req;
            size_t n = s->req_len;
            s->req = NULL;
            text[n] = '\0';
            /* may answer at once (ml_admin_apply_done), or later */
            a->hooks->apply(a->hooks_user, text, n, s->token);
            ml_free(text);
        }
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (s == NULL) {
            return -1;
        }
        if (s->answer != NULL) {
            struct response *ans = s->answer;
            s->answer = NULL;
            if (send_response(a, wsi, s, ans) < 0) {
                ml_free(ans->body);
                ml_free(ans);
                return -1;
            }
            ml_free(ans);
            return 0;
        }
        return write_body(a, wsi, s);
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (s != NULL) {
            session_drop(s);
            session_drop_post(a, s);
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

/* ml_admin_new, and with listen false ml_admin_new_detached (admin_int.h). */
static int admin_create(struct ml_loop *loop, struct ml_proxy *proxy, bool listen, char *why,
                        size_t cap, struct ml_admin **out)
{
    const struct ml_snapshot *snap = ml_proxy_snapshot(proxy);
    const struct ml_cfg_addr *addr = &snap->node.admin;
    struct lws_context_creation_info info;
    struct ml_sock_addr sa;
    struct ml_admin *a;
    int rv;

    *out = NULL; /* without CONFIG_ML_ADMIN this file is not compiled: admin_off.c */
    if (!addr->set) {
        ML_LOG_INF("admin: off");
        return 0;
    }
    if ((a = ml_calloc(1, sizeof(*a))) == NULL) {
        snprintf(why, cap, "admin: out of memory");
        return -ENOMEM;
    }
    if (inet_ntop(addr->family, addr->ip, a->iface, sizeof(a->iface)) == NULL) {
        snprintf(why, cap, "admin: bad address %s", addr->text);
        ml_free(a);
        return -EINVAL;
    }
    a->loop = loop;
    a->proxy = proxy;
    a->addr = *addr;
    a->addr.text = NULL; /* the snapshot's: it may go before the admin */
    a->listening = listen;
    memset(&info, 0, sizeof(info));
    info.vhost_name = "ml-admin";
    info.iface = a->iface;
    /* detached: a server vhost without a socket of its own, fed by ml_admin_adopt */
    info.port = listen ? addr->port : CONTEXT_PORT_NO_LISTEN_SERVER;
    info.protocols = admin_protocols;
    info.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
    info.keepalive_timeout = CONFIG_ML_ADMIN_IDLE_TIMEOUT_S;
    info.timeout_secs = 10;
    info.user = a;
    a->vh = lws_create_vhost(ml_loop_lws_context(loop), &info);
    if (a->vh != NULL) {
        /* lws inits a vhost's protocols on its first service pass, not at creation. A SIGTERM
         * before that pass (right after READY=1) would free the admin while the listen socket's
         * close, still to come, calls back with it. Init now: PROTOCOL_DESTROY is then always
         * the last callback, and frees it. */
        (void)lws_protocol_init(ml_loop_lws_context(loop));
    }
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
    if (listen) {
        ML_LOG_INF("admin: listening on %s", addr->text);
    }
    *out = a;
    return 0;
}

int ml_admin_new(struct ml_loop *loop, struct ml_proxy *proxy, char *why, size_t cap,
                 struct ml_admin **out)
{
    return admin_create(loop, proxy, true, why, cap, out);
}

int ml_admin_new_detached(struct ml_loop *loop, struct ml_proxy *proxy, char *why, size_t cap,
                          struct ml_admin **out)
{
    return admin_create(loop, proxy, false, why, cap, out);
}

int ml_admin_adopt(struct ml_admin *a, int fd)
{
    if (lws_adopt_socket_vhost(a->vh, fd) != NULL) {
        return 0;
    }
    /* lws closes fd when it fails after making the connection, not before: close it then */
    if (fcntl(fd, F_GETFD) != -1) {
        close(fd);
    }
    return -EIO;
}

unsigned int ml_admin_connections(const struct ml_admin *a)
{
    return a != NULL ? a->n_conns : 0;
}

void ml_admin_free(struct ml_admin *a)
{
    if (a == NULL) {
        return;
    }
    if (a->vhost_gone) {
        ml_free(a);
        return;
    }
    /* A POST still waiting for its apply (SIGTERM mid-save): lws closes its connection later,
     * with the context, when a is gone; its session must not look a up then. */
    for (int i = 0; i < ADMIN_MAX_PENDING_POSTS; i++) {
        struct session *s = a->posts[i].wsi != NULL ? lws_wsi_user(a->posts[i].wsi) : NULL;

        if (s != NULL) {
            s->token = 0;
        }
    }
    /* the node and its proxy go now; the connections lws still closes must not reach them */
    a->freed = true;
    a->hooks = NULL;
    a->proxy = NULL;
    if (!a->protocol_inited) {
        /* lws_protocol_init failed in admin_create: lws will not call PROTOCOL_DESTROY (vhost.c
         * runs it only for protocols it initialised), but a listen socket's close still calls
         * back with a later. A detached vhost has none: a goes now. A listening one keeps a
         * (once per process, on a path that only a failed init reaches) rather than risk a
         * use after free. */
        bool listening = a->listening;

        lws_vhost_destroy(a->vh);
        if (!listening) {
            ml_free(a);
        }
        return;
    }
    lws_vhost_destroy(a->vh); /* ends in LWS_CALLBACK_PROTOCOL_DESTROY, which frees a */
}

void ml_admin_set_hooks(struct ml_admin *a, const struct ml_admin_hooks *hooks, void *user)
{
    if (a != NULL) {
        a->hooks = hooks;
        a->hooks_user = user;
    }
}

void ml_admin_apply_done(struct ml_admin *a, unsigned int token, unsigned int status,
                         const char *body)
{
    struct session *s;
    struct response *ans;
    struct lws *wsi = NULL;

    if (a == NULL || token == 0) {
        return;
    }
    for (int i = 0; i < ADMIN_MAX_PENDING_POSTS; i++) {
        if (a->posts[i].token == token) {
            wsi = a->posts[i].wsi;
            a->posts[i].token = 0;
            a->posts[i].wsi = NULL;
        }
    }
    if (wsi == NULL || (s = lws_wsi_user(wsi)) == NULL) {
        return; /* the client went away */
    }
    s->token = 0;
    if ((ans = ml_calloc(1, sizeof(*ans))) == NULL) {
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return;
    }
    if (!respond_text(ans, status, body)) {
        ml_free(ans);
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return;
    }
    if (ans->len > 0 && ans->body[ans->len - 1] != '\n' && status != 200) {
        /* error lines end with a newline like every other body here */
        char *b = ml_realloc(ans->body, ans->len + 2);
        if (b != NULL) {
            b[ans->len++] = '\n';
            b[ans->len] = '\0';
            ans->body = b;
        }
    }
    s->answer = ans;
    lws_callback_on_writable(wsi);
}

void ml_admin_set_proxy(struct ml_admin *a, struct ml_proxy *proxy)
{
    if (a != NULL) {
        a->proxy = proxy;
    }
}
