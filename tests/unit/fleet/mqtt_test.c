/* fleet/mqtt.c's receive path through client.c's test hook ml_fleet_client_feed_mqtt (no socket,
 * no broker): a Push on the node's own push topic in pieces reaches on_push whole and is acked;
 * over MQTT a payload over the bound and undecodable bytes are counted as protocol errors and
 * skipped while the connection stays (the broker relayed them: README.md "The fleet over MQTT");
 * another topic and an empty (cleared) message are ignored. The same against mosquitto:
 * tests/integration/test_fleet_mqtt.py. */
#include "fleet/client.h"
#include "fleet/client_int.h"
#include "fleet/envelope.h"

#include "core/loop.h"
#include "core/slice-t.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define PUSH_TOPIC "meshlet/v1/node/gw-mqtt/push"

static const char *const features[] = {"fleet", "fleet-mqtt"};
static const struct ml_fleet_identity ident = {"gw-mqtt", "host", "0.0.0", features, 2, NULL, 0};

static struct {
    int pushes;
    char version[ML_FLEET_VERSION_MAX + 1];
    uint64_t nonce;
    size_t n;
} seen;

static void on_push(void *user, const char *version, uint64_t nonce, const char *ini, size_t n)
{
    (void)user;
    (void)ini;
    seen.pushes++;
    snprintf(seen.version, sizeof(seen.version), "%s", version);
    seen.nonce = nonce;
    seen.n = n;
}

static void fill_report(void *user, struct ml_fleet_report *r)
{
    (void)user;
    (void)r;
}

static const struct ml_fleet_client_ops ops = {.on_push = on_push, .fill_report = fill_report};

static struct ml_loop *loop;

static struct ml_fleet_client *client(const char *url)
{
    struct ml_cfg_fleet f = {0};
    struct ml_fleet_client *c = NULL;
    char why[256];

    f.present = true;
    f.url = url;
    f.url_mqtt = strncmp(url, "mqtt", 4) == 0;
    f.url_host = "127.0.0.1";
    f.url_port = 9;
    f.url_path = "/";
    f.insecure = true;
    f.backoff.from_ms = 100;
    f.backoff.to_ms = 400;
    f.report_interval_ms = 60000;
    assert_int_equal(ml_fleet_client_new(loop, &f, &ident, "", &ops, NULL, why, sizeof(why), &c),
                     0);
    memset(&seen, 0, sizeof(seen));
    return c;
}

/* One PUBLISH of p[0..n) on topic, claiming total payload bytes, in pieces of at most piece. */
static int publish(struct ml_fleet_client *c, const char *topic, const uint8_t *p, size_t n,
                   uint32_t total, size_t piece)
{
    size_t off = 0;
    int rv;

    do {
        size_t k = n - off < piece ? n - off : piece;

        rv = ml_fleet_client_feed_mqtt(c, topic, total, (uint32_t)off, p + off, k);
        off += k;
    } while (rv == 0 && off < n);
    return rv;
}

static uint8_t *encode_push(const char *version, uint64_t nonce, size_t ini_n, size_t *out_n)
{
    uint8_t *ini = malloc(ini_n + 1), *buf = malloc(ini_n + 512);

    assert_non_null(ini);
    assert_non_null(buf);
    memset(ini, 'x', ini_n);
    assert_int_equal(ml_fleet_push_encode(version, nonce, (struct ml_slice){ini, ini_n}, buf,
                                          ini_n + 512, out_n),
                     0);
    free(ini);
    return buf;
}

static void test_push_in_pieces_is_pushed_and_acked(void **state)
{
    struct ml_fleet_client *c = client("mqtt://127.0.0.1:9");
    const struct ml_fleet_client_counters *k = ml_fleet_client_counters(c);
    size_t n;
    uint8_t *env = encode_push("v1", 7, 5000, &n);

    (void)state;
    assert_int_equal(publish(c, PUSH_TOPIC, env, n, (uint32_t)n, 100), 0);
    assert_int_equal(seen.pushes, 1);
    assert_string_equal(seen.version, "v1");
    assert_int_equal(seen.nonce, 7);
    assert_int_equal(seen.n, 5000);
    assert_int_equal(ml_fleet_client_ack(c, "v1", 7), 0);
    assert_int_equal(k->acks, 1);
    assert_int_equal(k->protocol_errors, 0);
    free(env);
    ml_fleet_client_free(c);
}

static void test_bad_payloads_are_counted_and_the_connection_stays(void **state)
{
    struct ml_fleet_client *c = client("mqtt://127.0.0.1:9");
    const struct ml_fleet_client_counters *k = ml_fleet_client_counters(c);
    static const uint8_t garbage[] = "\xff\xff\xff\xff not an envelope";
    uint8_t piece[1024];
    size_t n;
    uint8_t *env = encode_push("v2", 8, 100, &n);

    (void)state;
    memset(piece, 0x0a, sizeof(piece));
    /* the first piece says the whole is over the bound: nothing of it is buffered */
    assert_int_equal(ml_fleet_client_feed_mqtt(c, PUSH_TOPIC, ML_FLEET_MAX_MESSAGE_BYTES + 1u, 0,
                                               piece, sizeof(piece)),
                     0);
    assert_int_equal(ml_fleet_client_feed_mqtt(c, PUSH_TOPIC, ML_FLEET_MAX_MESSAGE_BYTES + 1u,
                                               sizeof(piece), piece, sizeof(piece)),
                     0);
    assert_int_equal(k->protocol_errors, 1);
    assert_int_equal(
        publish(c, PUSH_TOPIC, garbage, sizeof(garbage) - 1, (uint32_t)sizeof(garbage) - 1, 8), 0);
    assert_int_equal(k->protocol_errors, 2);
    assert_true(k->connected);
    assert_int_equal(k->disconnects, 0);
    assert_int_equal(seen.pushes, 0);
    /* and the next good one goes through on the same connection */
    assert_int_equal(publish(c, PUSH_TOPIC, env, n, (uint32_t)n, 64), 0);
    assert_int_equal(seen.pushes, 1);
    assert_int_equal(ml_fleet_client_ack(c, "v2", 8), 0);
    free(env);
    ml_fleet_client_free(c);
}

static void test_other_topics_and_empty_messages_are_ignored(void **state)
{
    struct ml_fleet_client *c = client("mqtt://127.0.0.1:9");
    const struct ml_fleet_client_counters *k = ml_fleet_client_counters(c);
    size_t n;
    uint8_t *env = encode_push("v3", 9, 100, &n);

    (void)state;
    assert_int_equal(publish(c, "meshlet/v1/node/gw-other/push", env, n, (uint32_t)n, 4096), 0);
    assert_int_equal(publish(c, "meshlet/v1/node/gw-mqtt/push/x", env, n, (uint32_t)n, 4096), 0);
    assert_int_equal(publish(c, "meshlet/v1/node/gw-mqtt/pus", env, n, (uint32_t)n, 4096), 0);
    assert_int_equal(ml_fleet_client_feed_mqtt(c, PUSH_TOPIC, 0, 0, NULL, 0), 0);
    assert_int_equal(seen.pushes, 0);
    assert_int_equal(k->protocol_errors, 0);
    assert_int_equal(k->pushes, 0);
    free(env);
    ml_fleet_client_free(c);
}

static void test_a_websocket_client_has_no_mqtt_path(void **state)
{
    struct ml_fleet_client *c = client("ws://127.0.0.1:9/fleet/v1");

    (void)state;
    assert_int_equal(ml_fleet_client_feed_mqtt(c, PUSH_TOPIC, 1, 0, "x", 1), -EINVAL);
    ml_fleet_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_in_pieces_is_pushed_and_acked),
        cmocka_unit_test(test_bad_payloads_are_counted_and_the_connection_stays),
        cmocka_unit_test(test_other_topics_and_empty_messages_are_ignored),
        cmocka_unit_test(test_a_websocket_client_has_no_mqtt_path),
    };
    int rv;

    loop = ml_loop_new();
    assert_non_null(loop);
    rv = cmocka_run_group_tests(tests, NULL, NULL);
    ml_loop_free(loop);
    return rv;
}
