/* What the balance tests share: a snapshot from config text (its errors printed when it does
 * not load), and waiter callbacks for picks that must neither wait nor fail. */
#ifndef ML_TEST_BALANCE_FIXTURE_H
#define ML_TEST_BALANCE_FIXTURE_H

#include "balance/balance.h"
#include "config/errors.h"
#include "config/snapshot.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

/* The snapshot of text, which must load (the caller unrefs it). */
static inline struct ml_snapshot *load(const char *text)
{
    struct ml_config_errors errs;
    struct ml_snapshot *s = NULL;
    int rv;

    ml_config_errors_init(&errs);
    rv = ml_config_load_text(text, strlen(text), NULL, &errs, &s);
    for (size_t i = 0; i < errs.n; i++) {
        print_error("  %d: %s\n", errs.v[i].line, errs.v[i].text);
    }
    ml_config_errors_deinit(&errs);
    assert_int_equal(rv, 0);
    return s;
}

static inline void no_ready(struct ml_balance_waiter *w, struct ml_h2_conn *conn)
{
    fail_msg("on_ready ran");
}

static inline void no_fail(struct ml_balance_waiter *w, int reason, const char *why)
{
    fail_msg("on_fail ran: %s", why);
}

#endif
