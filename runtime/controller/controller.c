/* `meshlet controller`: arguments, start, the directory poll, stop (controller/controller.h;
 * the parts are listed in controller_int.h). */
#include "controller/controller.h"

#include "controller/controller_int.h"
#include "core/alloc.h"
#include "core/bearer.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/timer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

enum {
    EXIT_BAD_ARGS = EX_USAGE, /* 64, as every usage error of meshlet (config/README.md) */
    EXIT_CANNOT_START = 3,
};

struct args {
    char iface[INET6_ADDRSTRLEN];
    uint16_t port;
    const char *listen; /* as given, for log lines */
    const char *configs;
    const char *cert, *key, *ca;
    const char *state, *stages, *soak, *stale;
    const char *mqtt, *mqtt_ca, *mqtt_cert, *mqtt_key, *mqtt_client_id;
    bool mqtt_insecure;
    const char *admin_token;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: meshlet controller --listen HOST:PORT --configs DIR [--cert FILE --key FILE "
            "[--ca FILE]]\n"
            "                          [--mqtt URL [--mqtt-ca FILE --mqtt-cert FILE --mqtt-key "
            "FILE]]\n"
            "  --listen HOST:PORT  an IPv4 address, [IPv6] or localhost, and a port\n"
            "  --configs DIR       DIR/NODE_ID.ini, else DIR/default.ini, is each node's config\n"
            "  --cert, --key       serve TLS (PEM)\n"
            "  --ca FILE           require client certificates that chain to FILE\n"
            "  --admin-token FILE  POST /rollback needs \"Authorization: Bearer TOKEN\" (the "
            "file's\n"
            "                      one line, 16..256 visible ASCII)\n"
            "  --state DIR         keep rollouts, versions and Nacks here across restarts\n"
            "  --stages LIST       rollout stages, counts or percents (default 100%%: every node\n"
            "                      at once; 1,10%%,100%%: one node, then 10 %%, then all)\n"
            "  --soak DURATION     how long each stage stays healthy before the next (default "
            "60s)\n"
            "  --stale DURATION    a node silent this long halts a rollout (default 60s)\n"
            "  --mqtt URL          reach the nodes through an MQTT broker instead of serving "
            "WebSockets:\n"
            "                      mqtts://HOST[:PORT] (default port 8883), or mqtt://HOST[:PORT] "
            "(1883)\n"
            "                      with --mqtt-insecure; --listen then serves the HTTP endpoints "
            "only\n"
            "  --mqtt-ca FILE      the CA the broker's certificate chains to (mqtts://)\n"
            "  --mqtt-cert, --mqtt-key  the controller's client certificate (CN "
            "meshlet-controller)\n"
            "  --mqtt-client-id ID the MQTT client id (default meshlet-controller)\n"
            "  --mqtt-insecure     allow plain mqtt:// (no TLS)\n"
            "Served on the same port: GET /fleet (JSON; ?label=K=V, ?state=synced|stale|nacked|"
            "offline),\nGET /fleet/status, GET /metrics, GET /stats, POST /rollback.\n"
            "DIR/NODE_ID.ini, else DIR/label=KEY=VALUE.ini (the node's first label that has one), "
            "else\nDIR/default.ini, is each node's config.\n");
}

/* HOST:PORT → a.iface, a.port. false when it is not one. */
static bool parse_listen(const char *text, struct args *a)
{
    const char *colon = strrchr(text, ':');
    char host[INET6_ADDRSTRLEN];
    uint8_t ip[16];
    size_t n;
    char *end;
    long port;

    if (colon == NULL || colon == text) {
        return false;
    }
    n = (size_t)(colon - text);
    if (text[0] == '[') {
        if (n < 3 || text[n - 1] != ']') {
            return false;
        }
        text++;
        n -= 2;
    }
    if (n >= sizeof(host)) {
        return false;
    }
    memcpy(host, text, n);
    host[n] = '\0';
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || end == colon + 1 || port < 1 || port > 65535) {
        return false;
    }
    if (strcmp(host, "localhost") == 0) {
        snprintf(host, sizeof(host), "127.0.0.1");
    }
    if (inet_pton(AF_INET, host, ip) != 1 && inet_pton(AF_INET6, host, ip) != 1) {
        return false;
    }
    snprintf(a->iface, sizeof(a->iface), "%s", host);
    a->port = (uint16_t)port;
    return true;
}

/* 0, or EXIT_BAD_ARGS after saying why (the usage follows). */
static int parse_args(int argc, char **argv, struct args *a)
{
    memset(a, 0, sizeof(*a));
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        const char **slot = NULL;

        if (strcmp(opt, "--listen") == 0) {
            slot = &a->listen;
        } else if (strcmp(opt, "--configs") == 0) {
            slot = &a->configs;
        } else if (strcmp(opt, "--cert") == 0) {
            slot = &a->cert;
        } else if (strcmp(opt, "--key") == 0) {
            slot = &a->key;
        } else if (strcmp(opt, "--ca") == 0) {
            slot = &a->ca;
        } else if (strcmp(opt, "--state") == 0) {
            slot = &a->state;
        } else if (strcmp(opt, "--stages") == 0) {
            slot = &a->stages;
        } else if (strcmp(opt, "--soak") == 0) {
            slot = &a->soak;
        } else if (strcmp(opt, "--stale") == 0) {
            slot = &a->stale;
        } else if (strcmp(opt, "--mqtt") == 0) {
            slot = &a->mqtt;
        } else if (strcmp(opt, "--mqtt-ca") == 0) {
            slot = &a->mqtt_ca;
        } else if (strcmp(opt, "--mqtt-cert") == 0) {
            slot = &a->mqtt_cert;
        } else if (strcmp(opt, "--mqtt-key") == 0) {
            slot = &a->mqtt_key;
        } else if (strcmp(opt, "--mqtt-client-id") == 0) {
            slot = &a->mqtt_client_id;
        } else if (strcmp(opt, "--admin-token") == 0) {
            slot = &a->admin_token;
        } else if (strcmp(opt, "--mqtt-insecure") == 0) {
            a->mqtt_insecure = true; /* a flag: takes no value */
            continue;
        } else {
            fprintf(stderr, "meshlet controller: unknown argument \"%s\"\n", opt);
            return EXIT_BAD_ARGS;
        }
        if (i + 1 >= argc || argv[i + 1][0] == '\0') {
            fprintf(stderr, "meshlet controller: %s needs a value\n", opt);
            return EXIT_BAD_ARGS;
        }
        if (*slot != NULL) {
            fprintf(stderr, "meshlet controller: %s given twice\n", opt);
            return EXIT_BAD_ARGS;
        }
        *slot = argv[++i];
    }
    if (a->listen == NULL || a->configs == NULL) {
        fprintf(stderr, "meshlet controller: --listen and --configs are required\n");
        return EXIT_BAD_ARGS;
    }
    if (!parse_listen(a->listen, a)) {
        fprintf(stderr,
                "meshlet controller: --listen %s: expected IP:PORT, [IPv6]:PORT or "
                "localhost:PORT\n",
                a->listen);
        return EXIT_BAD_ARGS;
    }
    if ((a->cert == NULL) != (a->key == NULL)) {
        fprintf(stderr, "meshlet controller: --cert and --key go together\n");
        return EXIT_BAD_ARGS;
    }
    if (a->mqtt == NULL && (a->mqtt_ca != NULL || a->mqtt_cert != NULL || a->mqtt_key != NULL ||
                            a->mqtt_client_id != NULL || a->mqtt_insecure)) {
        fprintf(stderr, "meshlet controller: --mqtt-* options need --mqtt URL\n");
        return EXIT_BAD_ARGS;
    }
    if (a->mqtt_client_id != NULL &&
        (strlen(a->mqtt_client_id) > ML_CTL_TEXT_MAX || strchr(a->mqtt_client_id, '/') != NULL)) {
        fprintf(stderr, "meshlet controller: --mqtt-client-id: expected 1 to %d bytes, no '/'\n",
                ML_CTL_TEXT_MAX);
        return EXIT_BAD_ARGS;
    }
    if (a->ca != NULL && a->cert == NULL) {
        fprintf(stderr, "meshlet controller: --ca needs --cert and --key (client certificates "
                        "are checked over TLS)\n");
        return EXIT_BAD_ARGS;
    }
    return 0;
}

/* "1,10%,100%": counts or percents, at most ML_CTL_MAX_STAGES, each 1..100000 (percents
 * 1..100). false when it is not one. */
static bool parse_stages(const char *text, struct ml_ctl *ctl)
{
    const char *p = text;

    ctl->n_stages = 0;
    while (*p != '\0') {
        struct ml_ctl_stage st = {0};
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(p, &end, 10);
        if (errno != 0 || end == p || v == 0 || ctl->n_stages == ML_CTL_MAX_STAGES) {
            return false;
        }
        if (*end == '%') {
            st.percent = true;
            end++;
        }
        if ((st.percent && v > 100) || v > 100000 || (*end != ',' && *end != '\0')) {
            return false;
        }
        st.value = (unsigned)v;
        ctl->stages[ctl->n_stages++] = st;
        p = *end == ',' ? end + 1 : end;
    }
    return ctl->n_stages > 0;
}

/* "500ms", "30s", "2m": 1 ms .. 1 h. false when it is not one. */
static bool parse_duration(const char *text, uint32_t *ms)
{
    char *end;
    unsigned long v, mul;

    errno = 0;
    v = strtoul(text, &end, 10);
    if (errno != 0 || end == text) {
        return false;
    }
    if (strcmp(end, "ms") == 0) {
        mul = 1;
    } else if (strcmp(end, "s") == 0) {
        mul = 1000;
    } else if (strcmp(end, "m") == 0) {
        mul = 60000;
    } else {
        return false;
    }
    if (v == 0 || v > 3600000 / mul) {
        return false;
    }
    *ms = (uint32_t)(v * mul);
    return true;
}

/* The rollout options into ctl; EXIT_BAD_ARGS after saying why. */
static int rollout_args(const struct args *a, struct ml_ctl *ctl)
{
    ctl->soak_ms = ML_CTL_DEFAULT_SOAK_MS;
    ctl->stale_ms = ML_CTL_DEFAULT_STALE_MS;
    if (!parse_stages(a->stages != NULL ? a->stages : ML_CTL_DEFAULT_STAGES, ctl)) {
        fprintf(stderr,
                "meshlet controller: --stages %s: expected up to %d counts or percents, e.g. "
                "1,10%%,100%%\n",
                a->stages, ML_CTL_MAX_STAGES);
        return EXIT_BAD_ARGS;
    }
    if (a->soak != NULL && !parse_duration(a->soak, &ctl->soak_ms)) {
        fprintf(stderr, "meshlet controller: --soak %s: expected 1ms..1h, e.g. 500ms, 30s, 2m\n",
                a->soak);
        return EXIT_BAD_ARGS;
    }
    if (a->stale != NULL && !parse_duration(a->stale, &ctl->stale_ms)) {
        fprintf(stderr, "meshlet controller: --stale %s: expected 1ms..1h, e.g. 500ms, 30s, 2m\n",
                a->stale);
        return EXIT_BAD_ARGS;
    }
    return 0;
}

/* The directory must exist and be listable: stat and read its files. */
static int check_dir(const char *dir)
{
    struct stat st;

    if (stat(dir, &st) != 0) {
        fprintf(stderr, "meshlet controller: --configs %s: %s\n", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "meshlet controller: --configs %s: not a directory\n", dir);
        return -1;
    }
    if (access(dir, R_OK | X_OK) != 0) {
        fprintf(stderr, "meshlet controller: --configs %s: %s\n", dir, strerror(errno));
        return -1;
    }
    return 0;
}

static void on_poll(void *user)
{
    struct ml_ctl *ctl = user;

    ml_ctl_sync_all(ctl);
    ml_timer_arm(ctl->poll, ML_CTL_POLL_MS);
}

/* Nonces start at the wall clock in milliseconds, so they keep increasing across restarts. */
static uint64_t first_nonce(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --admin-token FILE into ctl. 0, or -1 after saying why. */
static int load_admin_token(struct ml_ctl *ctl, const char *path)
{
    int rv = ml_bearer_token_read(path, &ctl->admin_token, &ctl->admin_token_n);

    if (rv == -EINVAL || rv == -EFBIG) {
        fprintf(stderr,
                "meshlet controller: --admin-token %s: expected a file holding one token of "
                "%d..%d visible ASCII characters (no spaces)\n",
                path, ML_BEARER_TOKEN_MIN_BYTES, ML_BEARER_TOKEN_MAX_BYTES);
        return -1;
    }
    if (rv < 0) {
        fprintf(stderr, "meshlet controller: --admin-token %s: %s\n", path, strerror(-rv));
        return -1;
    }
    return 0;
}

static void ctl_free(struct ml_ctl *ctl)
{
    ml_ctl_mqtt_free(ctl);
    if (ctl->admin_token != NULL) {
        explicit_bzero(ctl->admin_token, ctl->admin_token_n);
        ml_free(ctl->admin_token);
    }
    ml_ctl_nodes_free(ctl);
    ml_ctl_rollout_free(ctl);
    ml_ctl_state_free(ctl);
    ml_ctl_file_deinit(&ctl->fallback);
    ml_free(ctl);
}

int ml_controller_main(int argc, char **argv)
{
    struct ml_ctl_mqtt_opts mo;
    struct ml_ctl_listen l;
    struct ml_loop *loop;
    struct ml_ctl *ctl;
    struct args a;
    char why[512];
    int rv;

    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (parse_args(argc, argv, &a) != 0) {
        usage(stderr);
        return EXIT_BAD_ARGS;
    }
    if (check_dir(a.configs) < 0) {
        return EXIT_CANNOT_START;
    }
    if ((ctl = ml_calloc(1, sizeof(*ctl))) == NULL) {
        fprintf(stderr, "meshlet controller: out of memory\n");
        return EXIT_CANNOT_START;
    }
    if (rollout_args(&a, ctl) != 0) {
        ml_free(ctl);
        usage(stderr);
        return EXIT_BAD_ARGS;
    }
    snprintf(ctl->dir, sizeof(ctl->dir), "%s", a.configs);
    ctl->next_nonce = first_nonce();
    if (strlen(a.configs) >= sizeof(ctl->dir) ||
        ml_ctl_file_init(&ctl->fallback, ctl->dir, "default.ini") < 0) {
        fprintf(stderr, "meshlet controller: --configs %s: path too long\n", a.configs);
        ml_free(ctl);
        return EXIT_CANNOT_START;
    }
    if (a.admin_token != NULL && load_admin_token(ctl, a.admin_token) < 0) {
        ctl_free(ctl);
        return EXIT_CANNOT_START;
    }
    if (a.state != NULL && ml_ctl_state_open(ctl, a.state, why, sizeof(why)) < 0) {
        fprintf(stderr, "meshlet controller: %s\n", why);
        ctl_free(ctl);
        return EXIT_CANNOT_START;
    }
    ml_ctl_state_restore_file(ctl, &ctl->fallback);
    if ((loop = ml_loop_new()) == NULL) {
        fprintf(stderr, "meshlet controller: cannot create the event loop\n");
        ctl_free(ctl);
        return EXIT_CANNOT_START;
    }
    ctl->loop = loop;
    l = (struct ml_ctl_listen){a.iface, a.port, a.cert, a.key, a.ca};
    mo = (struct ml_ctl_mqtt_opts){a.mqtt,     a.mqtt_ca,        a.mqtt_cert,
                                   a.mqtt_key, a.mqtt_client_id, a.mqtt_insecure};
    if ((rv = ml_ctl_ws_listen(ctl, &l, a.mqtt == NULL, why, sizeof(why))) < 0 ||
        (a.mqtt != NULL && (rv = ml_ctl_mqtt_start(ctl, &mo, why, sizeof(why))) < 0) ||
        (ctl->poll = ml_timer_new(loop, on_poll, ctl)) == NULL) {
        fprintf(stderr, "meshlet controller: %s\n", rv < 0 ? why : "out of memory");
        ml_ctl_mqtt_stop(ctl);
        ml_timer_free(ctl->poll);
        ml_loop_free(loop);
        ctl_free(ctl);
        return rv == -EINVAL ? EXIT_BAD_ARGS : EXIT_CANNOT_START;
    }
    ml_ctl_rollout_tick(ctl, true);
    ml_timer_arm(ctl->poll, ML_CTL_POLL_MS);
    if (a.mqtt != NULL) {
        ML_LOG_INF("controller: running on %s (%s%s, HTTP only), nodes through the MQTT broker "
                   "%s, configs in %s, GET /fleet",
                   a.listen, a.cert != NULL ? "https" : "http",
                   a.ca != NULL ? ", client certificates required" : "", a.mqtt, ctl->dir);
    } else {
        ML_LOG_INF("controller: running on %s (%s%s), configs in %s, GET /fleet", a.listen,
                   a.cert != NULL ? "wss" : "ws",
                   a.ca != NULL ? ", client certificates required" : "", ctl->dir);
    }
    rv = ml_loop_run(loop);
    ml_ctl_state_save(ctl);
    ml_ctl_mqtt_stop(ctl);
    ml_timer_free(ctl->poll);
    /* Closes every connection: their CLOSED callbacks still see ctl. */
    ml_loop_free(loop);
    ctl_free(ctl);
    ML_LOG_INF("controller: stopped");
    return rv < 0 ? EXIT_CANNOT_START : 0;
}
