/* fleet/client.c without a controller: configs it cannot use are refused with a reason; every
 * allocation failure in ml_fleet_client_new is a clean -ENOMEM; with nothing listening it retries
 * on the backoff (never faster than its lower bound) and counts each failure; answers without
 * the connection that brought the push are dropped; and free is safe at any moment (before the
 * first attempt, while waiting, while connecting), with the loop running on afterwards.
 * The protocol itself is tested against real peers: tests/integration/test_fleet_hostile.py. */
#include "fleet/client.h"

#include "core/alloc.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/timer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <libwebsockets.h>

static const char *const features[] = {"admin", "fleet"};
static const struct ml_fleet_identity ident = {"gw-test", "host", "0.0.0", features, 2, NULL, 0};

static void on_push(void *user, const char *version, uint64_t nonce, const char *ini, size_t n)
{
    fail(); /* no controller here */
}

static void fill_report(void *user, struct ml_fleet_report *r)
{
}

static const struct ml_fleet_client_ops ops = {.on_push = on_push, .fill_report = fill_report};

/* A loopback port nothing listens on: connections to it are refused. */
static uint16_t refused_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static char url[64];

static struct ml_cfg_fleet ws_cfg(uint16_t port)
{
    struct ml_cfg_fleet f = {0};

    snprintf(url, sizeof(url), "ws://127.0.0.1:%u/fleet/v1", (unsigned)port);
    f.present = true;
    f.url = url;
    f.url_tls = false;
    f.url_host = "127.0.0.1";
    f.url_port = port;
    f.url_path = "/fleet/v1";
    f.insecure = true;
    f.backoff.from_ms = 50;
    f.backoff.to_ms = 100;
    f.report_interval_ms = 1000;
    return f;
}

/* Runs the loop for ms. ml_loop_stop() sticks (a stopped loop stays stopped), so this turns
 * lws_service itself, as ml_loop_run does. */
static void run_for(struct ml_loop *loop, uint32_t ms)
{
    uint64_t end = ml_time_now_ms() + ms;

    while (ml_time_now_ms() < end) {
        assert_true(lws_service(ml_loop_lws_context(loop), 0) >= 0);
        ml_loop_run_deferred(loop);
    }
}

static struct ml_loop *loop_new(void)
{
    struct ml_loop *loop = ml_loop_new();

    assert_non_null(loop);
    return loop;
}

static void test_unusable_configs_are_refused_with_a_reason(void **state)
{
    struct ml_loop *loop = loop_new();
    struct ml_fleet_client *c = (void *)1;
    struct ml_cfg_fleet f;
    struct ml_fleet_identity long_id = ident;
    char why[256], node_id[300];

    f = ws_cfg(1);
    f.present = false;
    assert_int_equal(ml_fleet_client_new(loop, &f, &ident, "", &ops, NULL, why, sizeof(why), &c),
                     -EINVAL);
    assert_null(c);
    assert_non_null(strstr(why, "[fleet]"));

    f = ws_cfg(1);
    f.insecure = false; /* ws:// */
    assert_int_equal(ml_fleet_client_new(loop, &f, &ident, "", &ops, NULL, why, sizeof(why), &c),
                     -EINVAL);
    assert_non_null(strstr(why, "insecure"));

    f = ws_cfg(1);
    f.url_tls = true; /* wss:// without ca */
    assert_int_equal(ml_fleet_client_new(loop, &f, &ident, "", &ops, NULL, why, sizeof(why), &c),
                     -EINVAL);
    assert_non_null(strstr(why, "ca"));

    f = ws_cfg(1);
    f.cert = "/x.pem";
    assert_int_equal(ml_fleet_client_new(loop, &f, &ident, "", &ops, NULL, why, sizeof(why), &c),
                     -EINVAL);

    memset(node_id, 'n', sizeof(node_id) - 1);
    node_id[sizeof(node_id) - 1] = '\0';
    long_id.node_id = node_id;
    f = ws_cfg(1);
    assert_int_equal(
        ml_fleet_client_new(loop, &f, &long_id, "", &ops, NULL, why, sizeof(why), &c), -EINVAL);
    assert_non_null(strstr(why, "node id"));
    assert_null(c);

    long_id = ident;
    long_id.board = node_id; /* over the Hello's 128 bytes */
    assert_int_equal(
        ml_fleet_client_new(loop, &f, &long_id, "", &ops, NULL, why, sizeof(why), &c), -EINVAL);
    assert_non_null(strstr(why, "Hello"));
    assert_null(c);

    long_id = ident;
    long_id.node_id = "gw\x1b[31m"; /* a control byte: never in a Hello */
    assert_int_equal(
        ml_fleet_client_new(loop, &f, &long_id, "", &ops, NULL, why, sizeof(why), &c), -EINVAL);
    assert_non_null(strstr(why, "node id"));
    assert_null(c);
    ml_loop_free(loop);
}

static void test_each_allocation_failure_is_clean(void **state)
{
    struct ml_loop *loop = loop_new();
    struct ml_cfg_fleet f = ws_cfg(refused_port());
    struct ml_fleet_client *c;
    char why[256];
    int rv;

    for (long i = 0;; i++) {
        ml_alloc_fail_after(i);
        rv = ml_fleet_client_new(loop, &f, &ident, "", &ops, NULL, why, sizeof(why), &c);
        ml_alloc_fail_after(-1);
        if (rv == 0) {
            assert_true(i > 3);
            break;
        }
        assert_int_equal(rv, -ENOMEM);
        assert_null(c);
        assert_non_null(strstr(why, "memory"));
    }
    ml_fleet_client_free(c);
    run_for(loop, 20);
    ml_loop_free(loop);
}

static void test_refused_controller_is_retried_on_the_backoff(void **state)
{
    struct ml_loop *loop = loop_new();
    struct ml_cfg_fleet f = ws_cfg(refused_port());
    const struct ml_fleet_client_counters *k;
    struct ml_fleet_client *c;
    char why[256];

    assert_int_equal(
        ml_fleet_client_new(loop, &f, &ident, "", &ops, NULL, why, sizeof(why), &c), 0);
    run_for(loop, 1000);
    k = ml_fleet_client_counters(c);
    /* delays of 50..100 ms: 1 s holds about 10..20 attempts, never more than 1000/50 + 1 */
    assert_in_range(k->connect_attempts, 5, 21);
    assert_in_range(k->connect_failures, k->connect_attempts - 1, k->connect_attempts);
    assert_int_equal(k->connects, 0);
    assert_int_equal(k->disconnects, 0);
    assert_false(k->connected);
    ml_fleet_client_free(c); /* waiting or connecting: either way nothing fires afterwards */
    run_for(loop, 200);
    ml_loop_free(loop);
}

static void test_free_before_the_first_attempt(void **state)
{
    struct ml_loop *loop = loop_new();
    struct ml_cfg_fleet f = ws_cfg(refused_port());
    struct ml_fleet_client *c;
    char why[256];

    assert_int_equal(
        ml_fleet_client_new(loop, &f, &ident, "", &ops, NULL, why, sizeof(why), &c), 0);
    assert_int_equal(ml_fleet_client_counters(c)->connect_attempts, 0);
    ml_fleet_client_free(c);
    ml_fleet_client_free(NULL);
    run_for(loop, 100);
    ml_loop_free(loop);
}

static void test_answers_without_their_connection_are_dropped(void **state)
{
    struct ml_loop *loop = loop_new();
    struct ml_cfg_fleet f = ws_cfg(refused_port());
    struct ml_fleet_client *c;
    char why[256];

    assert_int_equal(
        ml_fleet_client_new(loop, &f, &ident, "", &ops, NULL, why, sizeof(why), &c), 0);
    assert_int_equal(ml_fleet_client_ack(c, "v1", 1), -ENOTCONN);
    assert_int_equal(ml_fleet_client_nack(c, "v1", 1, "push:1: no", 10), -ENOTCONN);
    run_for(loop, 100);
    assert_int_equal(ml_fleet_client_ack(c, "v1", 1), -ENOTCONN);
    assert_int_equal(ml_fleet_client_counters(c)->acks, 0);
    assert_int_equal(ml_fleet_client_counters(c)->nacks, 0);
    ml_fleet_client_free(c);
    ml_loop_free(loop);
}

static void test_update_is_taken_at_the_next_attempt(void **state)
{
    struct ml_loop *loop = loop_new();
    struct ml_cfg_fleet f = ws_cfg(refused_port()), g, off = {0};
    struct ml_fleet_client *c;
    char why[256];
    uint64_t before;

    assert_int_equal(
        ml_fleet_client_new(loop, &f, &ident, "", &ops, NULL, why, sizeof(why), &c), 0);
    run_for(loop, 150);
    g = ws_cfg(refused_port());
    g.backoff.from_ms = 400; /* slower: the attempts after the update thin out */
    g.backoff.to_ms = 400;
    ml_fleet_client_update(c, &g, "v2");
    ml_fleet_client_update(c, &off, "v3"); /* no [fleet]: not used, the client keeps going */
    ml_fleet_client_update(c, NULL, "v4");
    run_for(loop, 450); /* the attempt in the queue still comes on the old backoff */
    before = ml_fleet_client_counters(c)->connect_attempts;
    run_for(loop, 900);
    assert_in_range(ml_fleet_client_counters(c)->connect_attempts - before, 1, 3);
    ml_fleet_client_free(c);
    ml_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unusable_configs_are_refused_with_a_reason),
        cmocka_unit_test(test_each_allocation_failure_is_clean),
        cmocka_unit_test(test_refused_controller_is_retried_on_the_backoff),
        cmocka_unit_test(test_free_before_the_first_attempt),
        cmocka_unit_test(test_answers_without_their_connection_are_dropped),
        cmocka_unit_test(test_update_is_taken_at_the_next_attempt),
    };

    ml_log_level = ML_LOG_LEVEL_ERR; /* the retries' warnings would drown the report */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
