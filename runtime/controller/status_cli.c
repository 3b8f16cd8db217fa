/* `meshlet fleet status|rollback --controller URL`: the operator's side of the controller's
 * HTTP endpoints (runtime/fleet/README.md, "Seeing the fleet"):
 *
 *   meshlet fleet status   --controller URL [--label K=V] [--state S] [TLS]
 *       GET /fleet/status: one line per node (SYNCED, STALE, NACKED, OFFLINE), then the
 *       rollouts under way or halted
 *   meshlet fleet rollback --controller URL [--token FILE] [TLS]
 *       POST /rollback: every file back to its previous version; --token FILE sends
 *       "Authorization: Bearer TOKEN" (a controller started with --admin-token needs it)
 *
 * URL is http://HOST:PORT, or https://HOST:PORT with --ca FILE (and --cert FILE --key FILE for
 * a controller that requires client certificates): status_tls.c. A short blocking HTTP/1.1
 * exchange (a CLI, not the loop). Exit 0 on a 2xx answer, 1 on another answer (printed), 2 for
 * bad arguments, 3 when the controller cannot be reached. */
#include "controller/controller.h"

#include "controller/status_tls.h"
#include "core/alloc.h"
#include "core/bearer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

enum {
    EXIT_ANSWER_NOT_OK = 1,
    EXIT_BAD_ARGS = 64, /* EX_USAGE, as every usage error of meshlet */
    EXIT_UNREACHABLE = 3,
};

/* The whole answer is read into memory: /fleet/status of a full table is far below this. */
#define ANSWER_MAX_BYTES (8u * 1024 * 1024)
/* Connect, send and each read give up after this long. */
#define IO_TIMEOUT_S 10
/* A query value (?label=, ?state=): a label's bound, with room. */
#define QUERY_MAX 128

static void usage(FILE *out)
{
    fprintf(out, "usage: meshlet fleet status --controller URL [--label KEY=VALUE] "
                 "[--state synced|stale|nacked|offline] [TLS]\n"
                 "       meshlet fleet rollback --controller URL [--token FILE] [TLS]\n"
                 "  URL: http://HOST:PORT, or https://HOST:PORT with TLS: --ca FILE [--cert FILE "
                 "--key FILE]\n");
}

/* http[s]://HOST:PORT[/] → an address, *tls, and the host as written (for the certificate
 * check) in host[INET6_ADDRSTRLEN + 2]. false when it is not one this CLI can reach. */
static bool parse_url(const char *url, struct sockaddr_storage *ss, socklen_t *len, bool *tls,
                      char *host)
{
    const char *p, *colon;
    size_t n;
    long port;
    char *end;

    *tls = strncmp(url, "https://", 8) == 0;
    if (!*tls && strncmp(url, "http://", 7) != 0) {
        return false;
    }
    p = url + (*tls ? 8 : 7);
    if (*p == '[') {
        const char *close = strchr(p, ']');

        if (close == NULL || close[1] != ':') {
            return false;
        }
        n = (size_t)(close - p - 1);
        p++;
        colon = close + 1;
    } else {
        if ((colon = strchr(p, ':')) == NULL) {
            return false;
        }
        n = (size_t)(colon - p);
    }
    if (n == 0 || n >= INET6_ADDRSTRLEN + 2) {
        return false;
    }
    memcpy(host, p, n);
    host[n] = '\0';
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || port < 1 || port > 65535 ||
        (*end != '\0' && strcmp(end, "/") != 0)) {
        return false;
    }
    if (strcmp(host, "localhost") == 0) {
        snprintf(host, INET6_ADDRSTRLEN + 2, "127.0.0.1");
    }
    memset(ss, 0, sizeof(*ss));
    {
        struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

        if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
            in4->sin_family = AF_INET;
            in4->sin_port = htons((uint16_t)port);
            *len = sizeof(*in4);
            return true;
        }
        if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
            in6->sin6_family = AF_INET6;
            in6->sin6_port = htons((uint16_t)port);
            *len = sizeof(*in6);
            return true;
        }
    }
    return false;
}

/* Reads the answer from fd into a growing buffer (at most ANSWER_MAX_BYTES). NULL: no memory. */
static char *read_plain(int fd, size_t *n_out)
{
    size_t n = 0, cap = 65536;
    char *buf = malloc(cap + 1);

    if (buf == NULL) {
        return NULL;
    }
    for (;;) {
        ssize_t k;

        if (n == cap) {
            char *grown;

            if (cap >= ANSWER_MAX_BYTES || (grown = realloc(buf, cap * 2 + 1)) == NULL) {
                break;
            }
            buf = grown;
            cap *= 2;
        }
        if ((k = recv(fd, buf + n, cap - n, 0)) <= 0) {
            break;
        }
        n += (size_t)k;
    }
    *n_out = n;
    return buf;
}

/* One request, the answer's status and body printed. An exit code. */
static int exchange(const char *url, const struct ml_fleet_tls_opts *o, const char *method,
                    const char *target, const char *token)
{
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    char req[512 + QUERY_MAX * 2 + ML_BEARER_TOKEN_MAX_BYTES], host[INET6_ADDRSTRLEN + 2], why[320];
    struct sockaddr_storage ss;
    socklen_t len;
    size_t n = 0;
    char *buf = NULL, *body;
    int fd, status = 0;
    bool tls;

    if (!parse_url(url, &ss, &len, &tls, host)) {
        fprintf(stderr,
                "meshlet fleet: --controller %s: expected http://IP:PORT or https://IP:PORT (or "
                "localhost, [IPv6])\n",
                url);
        return EXIT_BAD_ARGS;
    }
    if (tls != (o->ca != NULL)) {
        fprintf(stderr, "meshlet fleet: %s\n",
                tls ? "https:// needs --ca FILE (the controller's certificate is checked)"
                    : "--ca, --cert and --key are for an https:// controller");
        return EXIT_BAD_ARGS;
    }
    if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
        fprintf(stderr, "meshlet fleet: socket: %s\n", strerror(errno));
        return EXIT_UNREACHABLE;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
        fprintf(stderr, "meshlet fleet: cannot reach %s: %s\n", url, strerror(errno));
        close(fd);
        return EXIT_UNREACHABLE;
    }
    snprintf(req, sizeof(req),
             "%s %s HTTP/1.1\r\nHost: meshlet-controller\r\nContent-Length: 0\r\n"
             "%s%s%sConnection: close\r\n\r\n",
             method, target, token != NULL ? "Authorization: Bearer " : "",
             token != NULL ? token : "", token != NULL ? "\r\n" : "");
    if (tls) {
        if ((buf = malloc(ANSWER_MAX_BYTES + 1)) != NULL &&
            ml_fleet_tls_exchange(fd, o, host, req, strlen(req), buf, ANSWER_MAX_BYTES, &n, why,
                                  sizeof(why)) < 0) {
            fprintf(stderr, "meshlet fleet: %s: %s\n", url, why);
            free(buf);
            close(fd);
            return EXIT_UNREACHABLE;
        }
    } else if (send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req)) {
        buf = read_plain(fd, &n);
    }
    close(fd);
    if (buf == NULL) {
        fprintf(stderr, "meshlet fleet: %s: cannot send the request\n", url);
        return EXIT_UNREACHABLE;
    }
    buf[n] = '\0';
    body = strstr(buf, "\r\n\r\n");
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || body == NULL) {
        fprintf(stderr, "meshlet fleet: %s: no HTTP answer\n", url);
        free(buf);
        return EXIT_UNREACHABLE;
    }
    fputs(body + 4, status / 100 == 2 ? stdout : stderr);
    free(buf);
    return status / 100 == 2 ? 0 : EXIT_ANSWER_NOT_OK;
}

/* Whether s is safe in a query as it is (labels and states follow [A-Za-z0-9._=-]). */
static bool query_safe(const char *s)
{
    return strlen(s) < QUERY_MAX &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._=-") ==
               strlen(s);
}

int ml_fleet_cli_main(int argc, char **argv)
{
    const char *controller = NULL, *label = NULL, *state = NULL, *token_file = NULL;
    struct ml_fleet_tls_opts tls = {0};
    char target[64 + 2 * QUERY_MAX];
    bool status;

    /* mbedTLS writes with send() without MSG_NOSIGNAL: a controller that closes the socket
     * during the handshake (no client certificate) must be an error message, not SIGPIPE */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_BAD_ARGS : 0;
    }
    if (strcmp(argv[1], "status") != 0 && strcmp(argv[1], "rollback") != 0) {
        fprintf(stderr, "meshlet fleet: unknown command \"%s\"\n", argv[1]);
        usage(stderr);
        return EXIT_BAD_ARGS;
    }
    status = strcmp(argv[1], "status") == 0;
    for (int i = 2; i < argc; i++) {
        const char **slot = NULL;

        if (strcmp(argv[i], "--controller") == 0) {
            slot = &controller;
        } else if (status && strcmp(argv[i], "--label") == 0) {
            slot = &label;
        } else if (status && strcmp(argv[i], "--state") == 0) {
            slot = &state;
        } else if (!status && strcmp(argv[i], "--token") == 0) {
            slot = &token_file;
        } else if (strcmp(argv[i], "--ca") == 0) {
            slot = &tls.ca;
        } else if (strcmp(argv[i], "--cert") == 0) {
            slot = &tls.cert;
        } else if (strcmp(argv[i], "--key") == 0) {
            slot = &tls.key;
        }
        if (slot == NULL || i + 1 >= argc || *slot != NULL) {
            fprintf(stderr, "meshlet fleet %s: unexpected \"%s\"\n", argv[1], argv[i]);
            usage(stderr);
            return EXIT_BAD_ARGS;
        }
        *slot = argv[++i];
    }
    if (controller == NULL) {
        fprintf(stderr, "meshlet fleet %s: --controller is required\n", argv[1]);
        usage(stderr);
        return EXIT_BAD_ARGS;
    }
    if ((label != NULL && !query_safe(label)) || (state != NULL && !query_safe(state))) {
        fprintf(stderr, "meshlet fleet status: --label KEY=VALUE and --state take "
                        "[A-Za-z0-9._=-] only\n");
        return EXIT_BAD_ARGS;
    }
    if ((tls.cert == NULL) != (tls.key == NULL) || (tls.cert != NULL && tls.ca == NULL)) {
        fprintf(stderr, "meshlet fleet %s: --cert and --key go together, with --ca\n", argv[1]);
        return EXIT_BAD_ARGS;
    }
    if (!status) {
        char *token = NULL;
        size_t token_n = 0;
        int rv;

        if (token_file != NULL && (rv = ml_bearer_token_read(token_file, &token, &token_n)) < 0) {
            fprintf(stderr, "meshlet fleet rollback: --token %s: %s\n", token_file,
                    rv == -EINVAL || rv == -EFBIG
                        ? "expected one token of 16..256 visible ASCII characters"
                        : strerror(-rv));
            return EXIT_BAD_ARGS;
        }
        rv = exchange(controller, &tls, "POST", "/rollback", token);
        if (token != NULL) {
            explicit_bzero(token, token_n);
            ml_free(token);
        }
        return rv;
    }
    snprintf(target, sizeof(target), "/fleet/status%s%s%s%s%s", label || state ? "?" : "",
             label ? "label=" : "", label ? label : "", label && state ? "&" : "",
             state ? "state=" : "");
    if (state != NULL) {
        strncat(target, state, sizeof(target) - strlen(target) - 1);
    }
    return exchange(controller, &tls, "GET", target, NULL);
}
