/* dns = HOST:PORT: a cluster whose endpoints are the addresses a name resolves to. The lookup
 * (getaddrinfo: /etc/hosts, then the resolvers of /etc/resolv.conf, as nsswitch.conf says) runs
 * on a helper thread, one at a time per cluster, because it blocks for as long as a resolver
 * takes to answer; the answer comes back to the loop with ml_loop_post. Every dns_refresh the
 * name is resolved again; a failed or empty lookup keeps the last good set of hosts. */
#include "balance/balance.h"
#include "balance/balance_int.h"
#include "balance/host.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/sock.h"
#include "core/stats.h"
#include "core/timer.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* Longest name a lookup takes (RFC 1035: 253 characters, with the NUL). */
#define ML_DNS_NAME_MAX 254
/* A port as getaddrinfo's service text: "65535" and the NUL. */
#define ML_DNS_PORT_TEXT_MAX 6

/* One lookup in progress: owned by the helper thread until it posts, then by the loop. */
struct ml_dns_job {
    struct ml_loop_post post;
    pthread_t thread;
    struct ml_dns *dns; /* read on the loop only: a hot apply may hand it to another cluster */
    struct ml_loop *loop;
    uint16_t port_number; /* the addresses' port (dns = HOST:PORT) */
    char name[ML_DNS_NAME_MAX];
    char port[ML_DNS_PORT_TEXT_MAX];
    int rv;     /* 0, or getaddrinfo's EAI_* code */
    uint32_t n; /* addresses found, at most ML_LB_HOSTS_MAX */
    struct ml_sock_addr addrs[ML_LB_HOSTS_MAX];
};

struct ml_dns {
    struct ml_cluster *cl;
    struct ml_loop *loop;
    struct ml_timer *refresh;
    struct ml_dns_job *job; /* the lookup in progress; NULL when none */
    bool running;
};

static bool same_addr(const struct ml_sock_addr *a, const struct ml_sock_addr *b)
{
    return a->family == b->family && a->port == b->port && memcmp(a->ip, b->ip, sizeof(a->ip)) == 0;
}

/* Adds ai's address to job unless it is there already (getaddrinfo answers one address per
 * socket type unless hints narrow it, and /etc/hosts may list an address twice). */
static void job_add(struct ml_dns_job *job, const struct addrinfo *ai, uint16_t port)
{
    struct ml_sock_addr a = {.port = port};

    if (ai->ai_family == AF_INET) {
        a.family = AF_INET;
        memcpy(a.ip, &((const struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
    } else if (ai->ai_family == AF_INET6) {
        a.family = AF_INET6;
        memcpy(a.ip, &((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
    } else {
        return;
    }
    for (uint32_t i = 0; i < job->n; i++) {
        if (same_addr(&job->addrs[i], &a)) {
            return;
        }
    }
    if (job->n < ML_LB_HOSTS_MAX) {
        job->addrs[job->n++] = a;
    }
}

static void *lookup_thread(void *arg)
{
    struct ml_dns_job *job = arg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;

    job->rv = getaddrinfo(job->name, job->port, &hints, &res);
    for (const struct addrinfo *ai = res; job->rv == 0 && ai != NULL; ai = ai->ai_next) {
        job_add(job, ai, job->port_number);
    }
    if (res != NULL) {
        freeaddrinfo(res);
    }
    ml_loop_post(job->loop, &job->post);
    return NULL;
}

static void job_free(struct ml_dns_job *job)
{
    pthread_join(job->thread, NULL);
    ml_free(job);
}

/* On the loop: the lookup is done. */
static void on_answer(void *user)
{
    struct ml_dns_job *job = user;
    struct ml_dns *d = job->dns;
    struct ml_cluster *cl = d->cl;
    uint32_t hosts;

    d->job = NULL;
    cl->dns_stats.resolutions++;
    if (job->rv != 0 || job->n == 0) {
        cl->dns_stats.failures++;
        ML_LOG_WRN("cluster %s: dns %s: %s: keeping the %u hosts of the last answer", cl->cfg->name,
                   job->name, job->rv != 0 ? gai_strerror(job->rv) : "no address",
                   cl->dns_stats.hosts);
    } else {
        hosts = ml_cluster_dns_answer(cl, job->addrs, job->n);
        cl->dns_stats.hosts = hosts;
        ML_LOG_DBG("cluster %s: dns %s: %u addresses, %u hosts", cl->cfg->name, job->name, job->n,
                   hosts);
    }
    ml_stats_dns(cl->balance->stats, ml_cluster_index(cl), job->rv != 0 || job->n == 0,
                 cl->dns_stats.hosts);
    job_free(job);
    ml_timer_arm(d->refresh, cl->cfg->dns_refresh_ms);
}

/* The refresh timer: one lookup, unless one is still in progress. */
static void on_refresh(void *user)
{
    struct ml_dns *d = user;
    struct ml_dns_job *job;
    sigset_t all, old;
    const char *name;
    size_t len;
    int rv;

    if (d->job != NULL) {
        return; /* its answer re-arms the timer */
    }
    if ((job = ml_calloc(1, sizeof(*job))) == NULL) {
        ML_LOG_WRN("cluster %s: dns: out of memory for a lookup", d->cl->cfg->name);
        ml_timer_arm(d->refresh, d->cl->cfg->dns_refresh_ms);
        return;
    }
    job->dns = d;
    job->loop = d->loop;
    job->port_number = d->cl->cfg->dns_port;
    job->post.fn = on_answer;
    job->post.user = job;
    name = d->cl->cfg->dns_host; /* the config bounds it to 253 characters */
    len = strlen(name);
    if (len >= 2 && name[0] == '[' && name[len - 1] == ']') {
        name++; /* an IPv6 literal: getaddrinfo takes it without the brackets */
        len -= 2;
    }
    snprintf(job->name, sizeof(job->name), "%.*s", (int)len, name);
    snprintf(job->port, sizeof(job->port), "%u", (unsigned)d->cl->cfg->dns_port);
    /* The thread blocks every signal (it inherits the mask): SIGHUP, SIGTERM and the rest must
     * reach the loop's thread, whose poll() they interrupt. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rv = pthread_create(&job->thread, NULL, lookup_thread, job);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rv != 0) {
        ML_LOG_WRN("cluster %s: dns: cannot start a lookup: %s", d->cl->cfg->name, strerror(rv));
        ml_free(job);
        ml_timer_arm(d->refresh, d->cl->cfg->dns_refresh_ms);
        return;
    }
    d->job = job;
}

int ml_dns_new(struct ml_cluster *cl)
{
    struct ml_dns *d = ml_calloc(1, sizeof(*d));

    if (d == NULL) {
        return -ENOMEM;
    }
    d->cl = cl;
    d->loop = cl->balance->loop;
    /* A balance without a loop (the balance's unit tests) has no timers: it resolves nothing,
     * its hosts come from ml_cluster_dns_answer alone. */
    if (d->loop != NULL && (d->refresh = ml_timer_new(d->loop, on_refresh, d)) == NULL) {
        ml_free(d);
        return -ENOMEM;
    }
    cl->dns = d;
    return 0;
}

void ml_dns_start(struct ml_dns *d)
{
    if (d == NULL || d->running || d->refresh == NULL) {
        return;
    }
    d->running = true;
    ml_timer_arm(d->refresh, 0);
}

void ml_dns_free(struct ml_dns *d)
{
    if (d == NULL) {
        return;
    }
    ml_timer_free(d->refresh);
    if (d->job != NULL) {
        /* The answer would be for a cluster that is going: wait for the thread, drop it. */
        ml_loop_post_cancel(d->loop, &d->job->post);
        job_free(d->job);
    }
    d->cl->dns = NULL;
    ml_free(d);
}

void ml_dns_move(struct ml_cluster *from, struct ml_cluster *to)
{
    if (from->dns == NULL || to->dns == NULL || from->dns->running == false) {
        return;
    }
    ml_dns_free(to->dns);
    to->dns = from->dns;
    from->dns = NULL;
    to->dns->cl = to;
    to->dns_stats = from->dns_stats;
}
