/* What the hash policies' tests share: a balance of one cluster from config text, and the host
 * a key goes to, by address (so that two balances with different endpoints compare). */
#ifndef ML_TEST_LB_HASH_FIXTURE_H
#define ML_TEST_LB_HASH_FIXTURE_H

#include "balance/balance.h"
#include "balance/balance_int.h"
#include "balance/host.h"
#include "balance/lb.h"
#include "config/errors.h"
#include "config/snapshot.h"
#include "core/rand.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "balance_fixture.h"

#define HEAD                                                                                       \
    "[listener l]\nbind = 127.0.0.1:15001\n"                                                       \
    "[route r]\nlistener = l\nto = c\n"

struct fixture {
    struct ml_snapshot *snap;
    struct ml_balance *b;
    struct ml_cluster *cl;
    struct ml_rand rand;
};

static inline void fixture_setup(struct fixture *f, const char *text)
{
    uint32_t ids = 0;

    f->snap = load(text);
    assert_int_equal(ml_balance_new(NULL, f->snap, &ids, &f->b), 0);
    f->cl = ml_balance_cluster(f->b, 0);
    ml_rand_seed(&f->rand, 17);
}

static inline void fixture_teardown(struct fixture *f)
{
    ml_balance_free(f->b);
    ml_snapshot_unref(f->snap);
}

/* The host key goes to (its index), with tried hosts avoided. */
static inline int fixture_pick(struct fixture *f, const char *key, const struct ml_lb_tried *tried)
{
    struct ml_lb_pick_ctx ctx = {
        .hash_key = {(const uint8_t *)key, strlen(key)},
        .tried = tried,
        .rand = &f->rand,
    };

    return f->cl->lb.ops->pick(&f->cl->lb, &ctx);
}

static inline const char *fixture_addr(struct fixture *f, int host)
{
    return ml_host_addr_text(ml_lb_host(&f->cl->lb, (uint32_t)host));
}

#endif
