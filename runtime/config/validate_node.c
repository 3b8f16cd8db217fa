/* [node] and [fleet], the bootstrap sections: their readers (access_log, labels, the fleet url),
 * the admin token file, the checks across their keys, and the default node id. */
#include "config/validate_int.h"

#include "config/errors.h"
#include "config/features.h"
#include "config/snapshot-t.h"
#include "config/value.h"
#include "core/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fleet/token.h" /* [node] id follows the fleet's rule for node ids */

int ml_config_read_access_log(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                              int line, struct ml_cfg_node *n)
{
    if (strcmp(v, "off") == 0) {
        n->access_log = ML_CFG_ACCESS_LOG_OFF;
    } else if (strcmp(v, "stderr") == 0) {
        n->access_log = ML_CFG_ACCESS_LOG_STDERR;
    } else if (strcmp(v, "stdout") == 0) {
        n->access_log = ML_CFG_ACCESS_LOG_STDOUT;
    } else if (strcmp(v, "syslog") == 0) {
        n->access_log = ML_CFG_ACCESS_LOG_SYSLOG;
    } else if (v[0] == '/' && !ml_config_has_space_or_ctl(v)) {
        n->access_log = ML_CFG_ACCESS_LOG_FILE;
        n->access_log_path = ml_config_strdup(c, v, strlen(v));
    } else {
        return ml_config_bad_value(c, line, k, v,
                                   "off, stderr, stdout, syslog or an absolute file path");
    }
    return 0;
}

static bool is_label_part(const char *s, size_t n)
{
    if (n == 0 || n > ML_CFG_LABEL_PART_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];

        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-')) {
            return false;
        }
    }
    return true;
}

/* [node] labels = KEY=VALUE, ...: each pair checked, kept alone and in one canonical text. */
int ml_config_read_labels(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                          int line, struct ml_cfg_node *node)
{
    static const char rule[] = "KEY=VALUE, ... (at most 16 pairs, key and value 1..31 of "
                               "A-Z a-z 0-9 . _ -, each key once)";
    char canon[ML_CFG_LABELS_MAX * (2 * ML_CFG_LABEL_PART_MAX + 2) + 1];
    size_t used = 0;
    const char *p = v;

    node->n_labels = 0;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p), kn;
        const char *item = ml_config_trim(p, &n), *eq;

        eq = memchr(item, '=', n);
        kn = eq != NULL ? (size_t)(eq - item) : 0;
        if (eq == NULL || !is_label_part(item, kn) || !is_label_part(eq + 1, n - kn - 1) ||
            node->n_labels == ML_CFG_LABELS_MAX) {
            return ml_config_bad_value(c, line, k, v, "%s", rule);
        }
        for (uint32_t i = 0; i < node->n_labels; i++) {
            if (strncmp(node->label[i], item, kn + 1) == 0) {
                return ml_config_bad_value(c, line, k, v, "%s", rule);
            }
        }
        if ((node->label[node->n_labels] = ml_config_strdup(c, item, n)) == NULL) {
            return -1;
        }
        node->n_labels++;
        used += (size_t)snprintf(canon + used, sizeof(canon) - used, "%s%.*s", used ? "," : "",
                                 (int)n, item);
        if (comma == NULL) {
            break;
        }
        p = comma + 1;
    }
    if (node->n_labels == 0) {
        return ml_config_bad_value(c, line, k, v, "%s", rule);
    }
    node->labels = ml_config_strdup(c, canon, used);
    return node->labels != NULL ? 0 : -1;
}

/* HOST, HOST:PORT, [V6] or [V6]:PORT → host (without brackets) and port. */
static int split_host_port(const char *hp, size_t n, const char **host, size_t *host_len,
                           uint16_t *port)
{
    char buf[300], probe[320];
    struct ml_cfg_addr a;
    const char *colon;
    uint64_t p;

    if (n == 0 || n >= sizeof(buf)) {
        return -EINVAL;
    }
    memcpy(buf, hp, n);
    buf[n] = '\0';
    if (buf[0] == '[') {
        const char *close = strchr(buf, ']');
        if (close == NULL) {
            return -EINVAL;
        }
        snprintf(probe, sizeof(probe), "%.*s:1", (int)(close - buf + 1), buf);
        if (ml_value_addr(probe, &a) < 0) {
            return -EINVAL;
        }
        *host = hp + 1;
        *host_len = (size_t)(close - buf - 1);
        colon = close[1] == ':' ? close + 1 : NULL;
        if (close[1] != '\0' && colon == NULL) {
            return -EINVAL;
        }
    } else {
        colon = strchr(buf, ':');
        *host = hp;
        *host_len = colon ? (size_t)(colon - buf) : n;
        snprintf(probe, sizeof(probe), "%.*s:1", (int)*host_len, buf);
        if (!ml_value_is_hostname(buf, *host_len) && ml_value_addr(probe, &a) < 0) {
            return -EINVAL;
        }
    }
    if (colon != NULL) {
        if (ml_value_uint(colon + 1, &p) < 0 || p < 1 || p > 65535) {
            return -EINVAL;
        }
        *port = (uint16_t)p;
    }
    return 0;
}

/* The [fleet] url schemes: which transport (fleet/client.c's table picks it by the same
 * prefixes), TLS or not, the default port. */
struct url_scheme {
    const char *prefix;
    bool tls, mqtt;
    uint16_t port;
};

static const struct url_scheme url_schemes[] = {
    {"wss://", true, false, 443},
    {"ws://", false, false, 80},
    {"mqtts://", true, true, 8883},
    {"mqtt://", false, true, 1883},
};

int ml_config_read_url(struct ml_config_vctx *c, const struct ml_key_def *k, const char *v,
                       int line, struct ml_cfg_fleet *f)
{
    static const char what[] = "wss://HOST[:PORT][/PATH] or mqtts://HOST[:PORT] (ws:// and "
                               "mqtt:// only with insecure = on)";
    const struct url_scheme *s = NULL;
    const char *rest, *slash, *host;
    size_t host_len;
    uint16_t port;

    for (size_t i = 0; i < sizeof(url_schemes) / sizeof(url_schemes[0]) && s == NULL; i++) {
        if (strncmp(v, url_schemes[i].prefix, strlen(url_schemes[i].prefix)) == 0) {
            s = &url_schemes[i];
        }
    }
    if (s == NULL) {
        return ml_config_bad_value(c, line, k, v, "%s", what);
    }
    if (s->mqtt && !ML_HAVE_FLEET_MQTT) {
        return ml_config_bad_value(c, line, k, v,
                                   "wss://HOST[:PORT][/PATH]: this build of meshlet has no fleet "
                                   "over MQTT (%s is off)",
                                   ML_SYMBOL_ML_HAVE_FLEET_MQTT);
    }
    f->url_tls = s->tls;
    f->url_mqtt = s->mqtt;
    rest = v + strlen(s->prefix);
    port = s->port;
    slash = strchr(rest, '/');
    if (ml_config_has_space_or_ctl(rest) ||
        split_host_port(rest, slash ? (size_t)(slash - rest) : strlen(rest), &host, &host_len,
                        &port) < 0) {
        return ml_config_bad_value(c, line, k, v, "%s", what);
    }
    if (s->mqtt && slash != NULL) {
        /* MQTT has no path: the topics say where messages go (runtime/fleet/README.md). A
         * trailing "/" is refused too, so that no two spellings name the same broker. */
        return ml_config_bad_value(c, line, k, v,
                                   "%sHOST[:PORT] with nothing after the port (MQTT has no "
                                   "path; the topics are fixed)",
                                   s->prefix);
    }
    f->url = ml_config_strdup(c, v, strlen(v));
    f->url_host = ml_config_strdup(c, host, host_len);
    f->url_port = port;
    f->url_path = ml_config_strdup(c, slash ? slash : "/", strlen(slash ? slash : "/"));
    return 0;
}

/* Reads [node] admin_token's file into the snapshot: every check of the config reads it again,
 * so an apply takes the file as it is then. The content is never shown in an error. */
static void read_admin_token(struct ml_config_vctx *c, const struct ml_raw_section *sec)
{
    struct ml_cfg_node *n = &c->snap->node;
    int line = sec->key_line[ML_K_node_admin_token];
    char got[GOT_MAX], *buf = NULL;
    size_t len = 0;
    int rv;

    /* room for a trailing "\r\n" after the longest token */
    rv = ml_file_read_all(n->admin_token, ML_CFG_ADMIN_TOKEN_MAX_BYTES + 2, &buf, &len);
    if (rv == -ENOMEM) {
        c->oom = 1;
        return;
    }
    if (rv < 0) {
        if (rv == -EFBIG) {
            ml_config_key_error(
                c, sec, line, "admin_token",
                "expected a file holding one token of %d..%d visible ASCII characters, "
                "got a larger file \"%s\"",
                ML_CFG_ADMIN_TOKEN_MIN_BYTES, ML_CFG_ADMIN_TOKEN_MAX_BYTES,
                ml_config_shown(n->admin_token, got, sizeof(got)));
        } else {
            ml_config_key_error(c, sec, line, "admin_token",
                                "expected a readable file holding the admin token, got \"%s\" (%s)",
                                ml_config_shown(n->admin_token, got, sizeof(got)), strerror(-rv));
        }
        return;
    }
    if (len > 0 && buf[len - 1] == '\n') {
        len--;
        if (len > 0 && buf[len - 1] == '\r') {
            len--;
        }
    }
    rv = 0;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)buf[i] <= 0x20 || (unsigned char)buf[i] >= 0x7f) {
            rv = -EINVAL; /* it goes in a header: one line of visible ASCII */
        }
    }
    if (len < ML_CFG_ADMIN_TOKEN_MIN_BYTES || len > ML_CFG_ADMIN_TOKEN_MAX_BYTES || rv < 0) {
        ml_config_key_error(
            c, sec, line, "admin_token",
            "expected a file holding one token of %d..%d visible ASCII characters (no "
            "spaces), got %zu bytes%s in \"%s\"",
            ML_CFG_ADMIN_TOKEN_MIN_BYTES, ML_CFG_ADMIN_TOKEN_MAX_BYTES, len,
            rv < 0 ? " with a space or control character" : "",
            ml_config_shown(n->admin_token, got, sizeof(got)));
    } else {
        n->admin_token_value = ml_config_strdup(c, buf, len);
        n->admin_token_bytes = len;
    }
    explicit_bzero(buf, len);
    free(buf);
}

void ml_config_check_node(struct ml_config_vctx *c, const struct ml_raw_section *sec)
{
    struct ml_cfg_node *n = &c->snap->node;
    char got[GOT_MAX];

    n->workers_line = sec->key_line[ML_K_node_workers]; /* for `meshlet check`'s warning */
    if (n->admin_token != NULL && !c->snap->remote) {
        /* a remote text's [node] is refused unless it repeats ours, whose file is read when
         * the merged text is loaded: reading the remote's path would answer whether it exists */
        read_admin_token(c, sec);
    }
    if (n->admin.set && n->admin_remote && n->admin_token == NULL) {
        ml_config_key_error(
            c, sec, sec->key_line[ML_K_node_admin_remote], "admin_remote",
            "expected admin_token with admin_remote = on (anyone who reaches %s could "
            "apply a config), got \"on\" without it",
            ml_config_shown(n->admin.text, got, sizeof(got)));
    }
    if (n->admin.set && !n->admin_remote && !ml_value_addr_is_loopback(&n->admin)) {
        ml_config_key_error(
            c, sec, sec->key_line[ML_K_node_admin], "admin",
            "expected a loopback address (127.0.0.0/8 or [::1]) unless admin_remote = on, "
            "got \"%s\"",
            ml_config_shown(n->admin.text, got, sizeof(got)));
    }
}

void ml_config_check_fleet(struct ml_config_vctx *c, const struct ml_raw_section *sec)
{
    struct ml_cfg_fleet *f = &c->snap->fleet;
    char got[GOT_MAX];

    if (!ML_HAVE_FLEET) {
        ml_config_key_error(
            c, sec, sec->line, NULL,
            "expected no [fleet] section: this build of meshlet has no fleet client "
            "(CONFIG_ML_FLEET is off)");
        return;
    }
    if (f->url != NULL && !f->url_tls && !f->insecure) {
        ml_config_key_error(c, sec, sec->key_line[ML_K_fleet_url], "url",
                            f->url_mqtt
                                ? "expected mqtts:// (mqtt:// only with insecure = on), got \"%s\""
                                : "expected wss:// (ws:// only with insecure = on), got \"%s\"",
                            ml_config_shown(f->url, got, sizeof(got)));
    }
    if (f->url != NULL && f->url_tls && f->ca == NULL) {
        ml_config_key_error(c, sec, sec->line, "ca",
                            f->url_mqtt ? "expected this key with an mqtts:// url (the broker's "
                                          "certificate is checked against it), got nothing"
                                        : "expected this key with a wss:// url (the controller's "
                                          "certificate is checked against it), got nothing");
    }
    /* cert and key come together: the one missing is a missing key (header line, config/README.md).
     * A key given but unreadable was reported where it stands. */
    if (sec->key_line[ML_K_fleet_cert] != 0 && sec->key_line[ML_K_fleet_key] == 0) {
        ml_config_key_error(c, sec, sec->line, "key",
                            "expected this key with cert (the private key of the node's client "
                            "certificate), got nothing");
    } else if (sec->key_line[ML_K_fleet_key] != 0 && sec->key_line[ML_K_fleet_cert] == 0) {
        ml_config_key_error(
            c, sec, sec->line, "cert",
            "expected this key with key (the node's client certificate), got nothing");
    }
}

void ml_config_default_node_id(struct ml_config_vctx *c)
{
    char host[256] = "", got[GOT_MAX];
    size_t n;

    if (c->snap->node.id != NULL) {
        return;
    }
    if (gethostname(host, sizeof(host) - 1) < 0 || host[0] == '\0') {
        strcpy(host, "meshlet");
    }
    n = strlen(host);
    if (c->snap->fleet.present && !ml_fleet_node_id_valid(host, n)) {
        /* The controller would know this node by a name nobody gave it: say so, do not guess. */
        ml_config_errors_add(c->errs, c->snap->node.line,
                             "[node] id: the default is the host name, and it is not a node id "
                             "(expected %s, got \"%s\"): set [node] id",
                             ML_FLEET_NODE_ID_RULE, ml_config_shown(host, got, sizeof(got)));
        return;
    }
    /* Without [fleet] the id only labels log lines: map what a node id may not hold. */
    for (n = 0; host[n] && n < ML_FLEET_ID_CHARS_MAX; n++) {
        if (!ml_fleet_token_char(host[n])) {
            host[n] = '-';
        }
    }
    host[n] = '\0';
    c->snap->node.id = ml_config_strdup(c, host, n);
}
