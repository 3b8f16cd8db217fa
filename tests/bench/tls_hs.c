/* tls_hs: the TLS client of tests/bench/tls_bench.py (OpenSSL, blocking sockets). Not a test.
 *
 *   tls_hs loop HOST PORT SECONDS full|resume CERT KEY     handshakes one after another
 *   tls_hs hold HOST PORT N CERT|- KEY [PATH]              N connections, held until stdin closes
 *
 * Every connection is what an HTTP/2 client over TLS does first: TLS (1.3 or 1.2, whatever the
 * server picks) with ALPN h2 and the client certificate CERT/KEY (the servers want mTLS), the
 * HTTP/2 preface and an empty SETTINGS, then it reads until the server's first HTTP/2 bytes, so
 * the server has finished its side (and a TLS 1.3 ticket, sent with it, has arrived) before the
 * connection counts. The server certificate is not verified: the handshake cost measured is the
 * server's, and the client does the same work for every server.
 *
 * loop: for SECONDS, handshake, close (close_notify), repeat. `resume` offers the session of the
 * previous connection (the newest ticket), so every handshake but the first is a resumption when
 * the server accepts it. Prints "handshakes N resumed R failed F seconds S" on stdout.
 * hold: opens N such connections one after another (so a server's cap on handshakes in progress
 * is not what is measured), prints "held N" and waits for a line on stdin. With PATH it then makes
 * every held connection active: one gRPC-shaped unary call each (POST PATH, a 5-byte-framed
 * 100-byte message; read until the response's trailers), prints "called N", and waits for stdin
 * to close. RSS per idle connection, then per connection that has carried a call. CERT "-": the
 * same over plaintext h2c (prior knowledge), the baseline without TLS. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* The HTTP/2 client preface and an empty SETTINGS frame (RFC 9113 §3.4). */
static const unsigned char h2_start[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                        "\x00\x00\x00\x04\x00\x00\x00\x00\x00";
#define H2_START_LEN (sizeof(h2_start) - 1)
/* SETTINGS ACK: a held connection must acknowledge the server's SETTINGS, or a server with a
 * SETTINGS timeout (nghttpx: 10 s) closes it. */
static const unsigned char h2_ack[] = "\x00\x00\x00\x04\x01\x00\x00\x00\x00";
#define H2_ACK_LEN (sizeof(h2_ack) - 1)
/* A server that has not answered within this long counts as a failure. */
#define READ_TIMEOUT_S 5

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static SSL_SESSION *last_session;

/* TLS 1.3 tickets come after the handshake: keep the newest for the next connection. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    (void)ssl;
    if (last_session != NULL) {
        SSL_SESSION_free(last_session);
    }
    last_session = sess;
    return 1; /* we keep the reference */
}

static SSL_CTX *make_ctx(const char *cert, const char *key)
{
    static const unsigned char alpn[] = "\x02h2";
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0) {
        ERR_print_errors_fp(stderr);
        exit(2);
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    return ctx;
}

/* A connection: TLS, or plaintext h2c when the context is NULL (the memory baseline). */
struct conn {
    int fd; /* -1: not connected */
    SSL *ssl;
};

static int conn_write(struct conn *c, const void *p, int n)
{
    return c->ssl != NULL ? SSL_write(c->ssl, p, n) : (int)write(c->fd, p, (size_t)n);
}

static int conn_read(struct conn *c, void *p, int n)
{
    return c->ssl != NULL ? SSL_read(c->ssl, p, n) : (int)read(c->fd, p, (size_t)n);
}

static void close_one(struct conn *c)
{
    if (c->ssl != NULL) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    c->fd = -1;
    c->ssl = NULL;
}

/* One connection up to the server's first HTTP/2 bytes; 0, or -1 (closed) on failure. */
static int connect_one(struct conn *c, SSL_CTX *ctx, const struct sockaddr_in *sa, int resume,
                       int *reused)
{
    struct timeval tv = {READ_TIMEOUT_S, 0};
    unsigned char buf[4096];
    int one = 1;

    c->ssl = NULL;
    if ((c->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0) {
        return -1;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(c->fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0) {
        close_one(c);
        return -1;
    }
    if (ctx != NULL) {
        c->ssl = SSL_new(ctx);
        SSL_set_fd(c->ssl, c->fd);
        if (resume && last_session != NULL) {
            SSL_set_session(c->ssl, last_session);
        }
        if (SSL_connect(c->ssl) != 1) {
            close_one(c);
            return -1;
        }
    }
    if (conn_write(c, h2_start, (int)H2_START_LEN) != (int)H2_START_LEN ||
        conn_read(c, buf, sizeof(buf)) <= 0) {
        close_one(c);
        return -1;
    }
    conn_write(c, h2_ack, (int)H2_ACK_LEN);
    *reused = c->ssl != NULL && SSL_session_reused(c->ssl);
    return 0;
}

/* HPACK "literal header field without indexing, new name" (RFC 7541 §6.2.2); names and values
 * are short (< 127 bytes), so every length fits the 7-bit prefix. */
static size_t hpack_lit(unsigned char *p, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);

    p[0] = 0x00;
    p[1] = (unsigned char)nl;
    memcpy(p + 2, name, nl);
    p[2 + nl] = (unsigned char)vl;
    memcpy(p + 3 + nl, value, vl);
    return 3 + nl + vl;
}

static void frame_head(unsigned char *p, size_t len, int type, int flags, unsigned stream)
{
    p[0] = (unsigned char)(len >> 16);
    p[1] = (unsigned char)(len >> 8);
    p[2] = (unsigned char)len;
    p[3] = (unsigned char)type;
    p[4] = (unsigned char)flags;
    p[5] = (unsigned char)(stream >> 24);
    p[6] = (unsigned char)(stream >> 16);
    p[7] = (unsigned char)(stream >> 8);
    p[8] = (unsigned char)stream;
}

/* Message size of the call: the same as tests/bench/bench.py's (100 bytes, 5-byte gRPC prefix). */
#define MSG_LEN 100
/* HTTP/2 frame types and flags used here (RFC 9113 §6). */
#define FT_DATA 0
#define FT_HEADERS 1
#define FL_END_STREAM 0x1
#define FL_END_HEADERS 0x4

/* One unary call on stream 1 of an open connection; 0 when the trailers came back. */
static int call_one(struct conn *c, const char *authority, const char *path)
{
    unsigned char out[1024], in[16384];
    size_t hl = 0, have = 0;
    int n;

    hl += hpack_lit(out + 9 + hl, ":method", "POST");
    hl += hpack_lit(out + 9 + hl, ":scheme", c->ssl != NULL ? "https" : "http");
    hl += hpack_lit(out + 9 + hl, ":path", path);
    hl += hpack_lit(out + 9 + hl, ":authority", authority);
    hl += hpack_lit(out + 9 + hl, "content-type", "application/grpc");
    hl += hpack_lit(out + 9 + hl, "te", "trailers");
    frame_head(out, hl, FT_HEADERS, FL_END_HEADERS, 1);
    frame_head(out + 9 + hl, 5 + MSG_LEN, FT_DATA, FL_END_STREAM, 1);
    memset(out + 18 + hl, 0, 5);
    out[18 + hl + 4] = MSG_LEN;
    memset(out + 23 + hl, 'y', MSG_LEN);
    if (conn_write(c, out, (int)(23 + hl + MSG_LEN)) <= 0) {
        return -1;
    }
    /* Frames until HEADERS with END_STREAM on stream 1 (the trailers). */
    for (;;) {
        while (have >= 9) {
            size_t len = ((size_t)in[0] << 16) | ((size_t)in[1] << 8) | in[2];
            unsigned stream = ((unsigned)(in[5] & 0x7f) << 24) | ((unsigned)in[6] << 16) |
                              ((unsigned)in[7] << 8) | in[8];

            if (have < 9 + len) {
                break;
            }
            if (in[3] == FT_HEADERS && stream == 1 && (in[4] & FL_END_STREAM)) {
                return 0;
            }
            memmove(in, in + 9 + len, have - 9 - len);
            have -= 9 + len;
        }
        if (have == sizeof(in) || (n = conn_read(c, in + have, (int)(sizeof(in) - have))) <= 0) {
            return -1;
        }
        have += (size_t)n;
    }
}

int main(int argc, char **argv)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    int hold = (argc == 7 || argc == 8) && strcmp(argv[1], "hold") == 0;
    int loop = argc == 8 && strcmp(argv[1], "loop") == 0;
    SSL_CTX *ctx;

    if ((!hold && !loop) || inet_pton(AF_INET, argv[2], &sa.sin_addr) != 1) {
        fprintf(stderr, "usage: tls_hs loop HOST PORT SECONDS full|resume CERT KEY\n"
                        "       tls_hs hold HOST PORT N CERT KEY [PATH]\n");
        return 2;
    }
    sa.sin_port = htons((unsigned short)atoi(argv[3]));
    /* hold with CERT "-": plaintext h2c, the same connections without TLS */
    ctx = loop                        ? make_ctx(argv[6], argv[7])
          : strcmp(argv[5], "-") == 0 ? NULL
                                      : make_ctx(argv[5], argv[6]);
    if (loop) {
        double secs = atof(argv[4]), t0 = now(), t;
        int resume = strcmp(argv[5], "resume") == 0;
        long hs = 0, resumed = 0, failed = 0;

        while ((t = now()) - t0 < secs) {
            int reused = 0;
            struct conn c;

            if (connect_one(&c, ctx, &sa, resume, &reused) != 0) {
                failed++;
                usleep(1000); /* a refused connection must not spin */
                continue;
            }
            hs++;
            resumed += reused;
            close_one(&c);
        }
        printf("handshakes %ld resumed %ld failed %ld seconds %.3f\n", hs, resumed, failed,
               now() - t0);
        return 0;
    }
    {
        int n = atoi(argv[4]), held = 0, reused;
        struct conn *conns = calloc((size_t)n, sizeof(*conns));
        char c;

        for (int i = 0; i < n; i++) {
            if (connect_one(&conns[i], ctx, &sa, 0, &reused) == 0) {
                held++;
            }
        }
        printf("held %d\n", held);
        fflush(stdout);
        if (argc == 8) {
            char authority[64];
            int called = 0;

            snprintf(authority, sizeof(authority), "%s:%s", argv[2], argv[3]);
            while (read(0, &c, 1) > 0 && c != '\n') {
            }
            for (int i = 0; i < n; i++) {
                called += conns[i].fd >= 0 && call_one(&conns[i], authority, argv[7]) == 0;
            }
            printf("called %d\n", called);
            fflush(stdout);
        }
        while (read(0, &c, 1) > 0) {
        }
        for (int i = 0; i < n; i++) {
            close_one(&conns[i]);
        }
        free(conns);
    }
    return 0;
}
