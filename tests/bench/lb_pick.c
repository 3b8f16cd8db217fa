/* tests/bench/lb_pick.c: the time of one pick of each LB policy over 1 and 16 hosts, in the
 * process, without sockets: what the policy itself costs a call (tests/bench/lb.sh builds and
 * runs it before the end-to-end runs). Keys vary over 64 paths as in lb_bench.py; nothing is
 * tried and every host is usable. A benchmark, not a test. */
#include "balance/balance.h"
#include "balance/balance_int.h"
#include "balance/lb.h"
#include "config/errors.h"
#include "config/snapshot.h"
#include "core/rand.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define N_PICKS 2000000
#define N_KEYS 64

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int one(const char *lb, int n_hosts)
{
    static char keys[N_KEYS][48];
    char text[4096];
    struct ml_config_errors errs;
    struct ml_snapshot *s = NULL;
    struct ml_balance *b;
    struct ml_rand rand;
    uint32_t ids = 0;
    volatile int sink = 0;
    int off, rv;
    double t0;

    off = snprintf(text, sizeof(text),
                   "[listener l]\nbind = 127.0.0.1:15001\n[route r]\nlistener = l\nto = c\n"
                   "[cluster c]\nlb = %s\nhash = path\n",
                   lb);
    for (int i = 0; i < n_hosts; i++) {
        off += snprintf(text + off, sizeof(text) - off, "endpoint = 127.0.0.1:%d\n", 50001 + i);
    }
    for (int k = 0; k < N_KEYS; k++) {
        snprintf(keys[k], sizeof(keys[k]), "/helloworld.Greeter/SayHello?u=%d", k);
    }
    ml_config_errors_init(&errs);
    rv = ml_config_load_text(text, strlen(text), NULL, &errs, &s);
    ml_config_errors_deinit(&errs);
    if (rv != 0 || ml_balance_new(NULL, s, &ids, &b) != 0) {
        fprintf(stderr, "lb_pick: lb = %s: config or balance failed\n", lb);
        return 1;
    }
    ml_rand_seed(&rand, 1);
    t0 = now_s();
    for (int i = 0; i < N_PICKS; i++) {
        const char *key = keys[i % N_KEYS];
        struct ml_lb_pick_ctx ctx = {
            .hash_key = {(const uint8_t *)key, strlen(key)},
            .rand = &rand,
        };
        struct ml_cluster *cl = ml_balance_cluster(b, 0);

        sink += cl->lb.ops->pick(&cl->lb, &ctx);
    }
    printf("| %s | %d | %.0f |\n", lb, n_hosts, (now_s() - t0) / N_PICKS * 1e9);
    ml_balance_free(b);
    ml_snapshot_unref(s);
    return 0;
}

int main(void)
{
    static const char *const lbs[] = {"round_robin", "random", "least_request", "ring_hash",
                                      "maglev"};
    int rv = 0;

    printf("| policy | hosts | ns / pick |\n|---|--:|--:|\n");
    for (size_t i = 0; i < sizeof(lbs) / sizeof(lbs[0]); i++) {
        rv |= one(lbs[i], 1);
        rv |= one(lbs[i], 16);
    }
    return rv;
}
