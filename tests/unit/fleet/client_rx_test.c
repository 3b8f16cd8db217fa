/* fleet/client.c's receive path through its test hook (client_int.h), no socket: messages in
 * fragments reach on_push whole; the largest config with the longest version fits the fleet
 * message bound; one byte over it, undecodable bytes and text frames end the connection as
 * protocol errors; a version outside the fleet rule is nacked and never reaches on_push; an
 * allocation failure while the buffer grows ends the connection cleanly; on_push may free the
 * client. The same path against real controllers: tests/integration/test_fleet_oversize.py. */
#include "fleet/client.h"
#include "fleet/client_int.h"
#include "fleet/envelope.h"
#include "fleet/token.h"

#include "core/alloc.h"
#include "core/loop.h"
#include "core/slice-t.h"
#include "meshlet_config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define PIECE 16384 /* what lws hands over at a time (client.c's rx_buffer_size) */

static const char *const features[] = {"fleet"};
static const struct ml_fleet_identity ident = {"gw-rx", "host", "0.0.0", features, 1, NULL, 0};

/* What the hooks saw. */
static struct {
    int pushes, refused;
    char version[ML_FLEET_VERSION_MAX + 1];
    char refused_version[ML_FLEET_VERSION_MAX + 1];
    char refused_error[512];
    uint64_t nonce;
    size_t n;
    bool ini_ok; /* the INI is the bytes that were pushed */
    const uint8_t *expect;
    struct ml_fleet_client *free_me; /* on_push frees this client */
} seen;

static void on_push(void *user, const char *version, uint64_t nonce, const char *ini, size_t n)
{
    seen.pushes++;
    snprintf(seen.version, sizeof(seen.version), "%s", version);
    seen.nonce = nonce;
    seen.n = n;
    seen.ini_ok = seen.expect != NULL && memcmp(ini, seen.expect, n) == 0;
    if (seen.free_me != NULL) {
        ml_fleet_client_free(seen.free_me);
    }
}

static void fill_report(void *user, struct ml_fleet_report *r)
{
}

static void on_push_refused(void *user, const char *version, uint64_t nonce, const char *error)
{
    seen.refused++;
    snprintf(seen.refused_version, sizeof(seen.refused_version), "%s", version);
    snprintf(seen.refused_error, sizeof(seen.refused_error), "%s", error);
}

static const struct ml_fleet_client_ops ops = {
    .on_push = on_push,
    .fill_report = fill_report,
    .on_push_refused = on_push_refused,
};

static struct ml_loop *loop;

static struct ml_fleet_client *client(void)
{
    struct ml_cfg_fleet f = {0};
    struct ml_fleet_client *c = NULL;
    char why[256];

    f.present = true;
    f.url = "ws://127.0.0.1:9/fleet/v1";
    f.url_host = "127.0.0.1";
    f.url_port = 9;
    f.url_path = "/fleet/v1";
    f.insecure = true;
    f.backoff.from_ms = 100;
    f.backoff.to_ms = 400;
    f.report_interval_ms = 60000;
    assert_int_equal(ml_fleet_client_new(loop, &f, &ident, "", &ops, NULL, why, sizeof(why), &c),
                     0);
    memset(&seen, 0, sizeof(seen));
    return c;
}

/* p[0..n) as one binary message in PIECE-sized fragments; the last feed's result. */
static int feed_message(struct ml_fleet_client *c, const uint8_t *p, size_t n)
{
    size_t off = 0;
    int rv;

    do {
        size_t k = n - off < PIECE ? n - off : PIECE;

        rv = ml_fleet_client_feed(c, p + off, k, off == 0, off + k == n, true);
        off += k;
    } while (rv == 0 && off < n);
    return rv;
}

static uint8_t *encode_push(const char *version, uint64_t nonce, const uint8_t *ini, size_t n,
                            size_t *out_n)
{
    size_t cap = n + 512;
    uint8_t *buf = malloc(cap);

    assert_non_null(buf);
    assert_int_equal(
        ml_fleet_push_encode(version, nonce, (struct ml_slice){ini, n}, buf, cap, out_n), 0);
    return buf;
}

static void test_push_in_fragments_reaches_on_push_whole(void **state)
{
    struct ml_fleet_client *c = client();
    size_t ini_n = 48 * 1024, n; /* several fragments, and over the 16 KiB a buffer is kept at */
    uint8_t *ini = malloc(ini_n), *env;

    for (size_t i = 0; i < ini_n; i++) {
        ini[i] = (uint8_t)('a' + i % 26);
    }
    env = encode_push("v:1.2_3-x", 42, ini, ini_n, &n);
    seen.expect = ini;
    assert_int_equal(feed_message(c, env, n), 0);
    assert_int_equal(seen.pushes, 1);
    assert_string_equal(seen.version, "v:1.2_3-x");
    assert_int_equal(seen.nonce, 42);
    assert_int_equal(seen.n, ini_n);
    assert_true(seen.ini_ok);
    assert_int_equal(ml_fleet_client_ack(c, "v:1.2_3-x", 42), 0);
    assert_int_equal(ml_fleet_client_counters(c)->acks, 1);
    /* and the next message after a big one (its buffer was given back) */
    assert_int_equal(feed_message(c, env, n), 0);
    assert_int_equal(seen.pushes, 2);
    assert_true(seen.ini_ok);
    assert_int_equal(ml_fleet_client_counters(c)->protocol_errors, 0);
    free(env);
    free(ini);
    ml_fleet_client_free(c);
}

static void test_largest_config_with_longest_version_fits_the_bound(void **state)
{
    struct ml_fleet_client *c = client();
    size_t n;
    char version[ML_FLEET_VERSION_CHARS_MAX + 1];
    uint8_t *ini = malloc(CONFIG_ML_MAX_CONFIG_BYTES), *env;

    memset(ini, 'x', CONFIG_ML_MAX_CONFIG_BYTES);
    memset(version, 'v', ML_FLEET_VERSION_CHARS_MAX);
    version[ML_FLEET_VERSION_CHARS_MAX] = '\0';
    env = encode_push(version, UINT64_MAX, ini, CONFIG_ML_MAX_CONFIG_BYTES, &n);
    assert_true(n <= CONFIG_ML_MAX_CONFIG_BYTES + ML_FLEET_PUSH_OVERHEAD_BYTES);
    assert_true(n <= ML_FLEET_MAX_MESSAGE_BYTES);
    seen.expect = ini;
    assert_int_equal(feed_message(c, env, n), 0);
    assert_int_equal(seen.pushes, 1);
    assert_int_equal(seen.n, CONFIG_ML_MAX_CONFIG_BYTES);
    assert_true(seen.ini_ok);
    free(env);
    free(ini);
    ml_fleet_client_free(c);
}

static void test_one_byte_over_the_bound_is_a_protocol_error(void **state)
{
    struct ml_fleet_client *c = client();
    size_t n = ML_FLEET_MAX_MESSAGE_BYTES + 1;
    uint8_t *p = calloc(1, n);

    /* never final: the bound ends it before the message is whole */
    for (size_t off = 0, k; off < n; off += k) {
        int rv;

        k = n - off < PIECE ? n - off : PIECE;
        rv = ml_fleet_client_feed(c, p + off, k, off == 0, false, true);
        assert_int_equal(rv, off + k > ML_FLEET_MAX_MESSAGE_BYTES ? -ECONNRESET : 0);
    }
    assert_int_equal(ml_fleet_client_counters(c)->protocol_errors, 1);
    assert_int_equal(ml_fleet_client_counters(c)->disconnects, 1);
    assert_int_equal(seen.pushes, 0);
    /* the next piece comes on a new connection, from a fresh buffer */
    assert_int_equal(ml_fleet_client_feed(c, "\x32\x00", 2, true, true, true), 0);
    assert_int_equal(ml_fleet_client_counters(c)->unknown_kinds, 1);
    assert_int_equal(ml_fleet_client_counters(c)->connects, 2);
    free(p);
    ml_fleet_client_free(c);
}

static void test_undecodable_and_text_end_the_connection(void **state)
{
    struct ml_fleet_client *c = client();
    uint8_t junk[3 * PIECE];

    memset(junk, 0xff, sizeof(junk));
    assert_int_equal(feed_message(c, junk, sizeof(junk)), -ECONNRESET);
    assert_int_equal(ml_fleet_client_feed(c, "hello", 5, true, true, false), -ECONNRESET);
    assert_int_equal(ml_fleet_client_counters(c)->protocol_errors, 2);
    assert_int_equal(seen.pushes, 0);
    ml_fleet_client_free(c);
}

static void test_version_outside_the_rule_is_nacked_and_not_pushed(void **state)
{
    static const char *const bad[] = {"v\x1b[0m", "v 1", "", "caf\xc3\xa9", "a/b"};
    static const char *const shown[] = {"v\\x1b[0m", "v 1", "", "caf\\xc3\\xa9", "a/b"};
    struct ml_fleet_client *c = client();

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n;
        uint8_t *env = encode_push(bad[i], 7 + i, (const uint8_t *)"[node]\n", 7, &n);

        assert_int_equal(feed_message(c, env, n), 0); /* the connection stays */
        assert_int_equal(seen.refused, (int)i + 1);
        assert_string_equal(seen.refused_version, shown[i]);
        assert_non_null(strstr(seen.refused_error, "push: version: expected 1..128 characters "
                                                   "from A-Z a-z 0-9 . _ : -, got \""));
        free(env);
    }
    assert_int_equal(seen.pushes, 0);
    assert_int_equal(ml_fleet_client_counters(c)->nacks, 5);
    assert_int_equal(ml_fleet_client_counters(c)->protocol_errors, 0);
    ml_fleet_client_free(c);
}

static void test_allocation_failure_while_growing_ends_the_connection_cleanly(void **state)
{
    struct ml_fleet_client *c = client();
    uint8_t junk[2 * PIECE] = {0};

    ml_alloc_fail_after(0);
    assert_int_equal(feed_message(c, junk, sizeof(junk)), -ECONNRESET);
    ml_alloc_fail_after(-1);
    assert_int_equal(ml_fleet_client_counters(c)->protocol_errors, 0);
    assert_int_equal(ml_fleet_client_counters(c)->disconnects, 1);
    ml_fleet_client_free(c);
}

static void test_on_push_may_free_the_client(void **state)
{
    struct ml_fleet_client *c = client();
    size_t n;
    uint8_t *env = encode_push("v1", 1, (const uint8_t *)"[node]\n", 7, &n);

    seen.free_me = c;
    assert_int_equal(feed_message(c, env, n), -ECONNRESET);
    assert_int_equal(seen.pushes, 1);
    free(env);
}

static int setup(void **state)
{
    loop = ml_loop_new();
    return loop != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    ml_loop_free(loop);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_in_fragments_reaches_on_push_whole),
        cmocka_unit_test(test_largest_config_with_longest_version_fits_the_bound),
        cmocka_unit_test(test_one_byte_over_the_bound_is_a_protocol_error),
        cmocka_unit_test(test_undecodable_and_text_end_the_connection),
        cmocka_unit_test(test_version_outside_the_rule_is_nacked_and_not_pushed),
        cmocka_unit_test(test_allocation_failure_while_growing_ends_the_connection_cleanly),
        cmocka_unit_test(test_on_push_may_free_the_client),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
