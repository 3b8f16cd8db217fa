/* fleet/envelope.c: every message round trips; the size limit is exact; garbage, truncation and
 * wrong wire types are -EPROTO; an unknown kind is told apart; and the seeds that Google's
 * protobuf made from the same fleet.proto (tests/fuzz/fleet_envelope_seeds.py) decode. */
#include "fleet/envelope.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static uint8_t buf[ML_FLEET_MAX_MESSAGE_BYTES + 64];
static meshlet_fleet_v1_Envelope env;

static void test_hello_round_trip(void **state)
{
    static const char *const features[] = {"admin", "fleet", "lb.maglev"};
    struct ml_fleet_hello h = {"edge-1", "qemu-aarch64", "0.1.0", "", features, 3, NULL, 0};
    size_t n;

    assert_int_equal(ml_fleet_hello_encode(&h, buf, sizeof(buf), &n), 0);
    assert_int_equal(ml_fleet_envelope_decode(buf, n, &env), 0);
    assert_int_equal(env.which_msg, meshlet_fleet_v1_Envelope_hello_tag);
    assert_string_equal(env.msg.hello.node_id, "edge-1");
    assert_string_equal(env.msg.hello.board, "qemu-aarch64");
    assert_string_equal(env.msg.hello.version, "0.1.0");
    assert_string_equal(env.msg.hello.config_version, "");
    assert_int_equal(env.msg.hello.features_count, 3);
    assert_string_equal(env.msg.hello.features[2], "lb.maglev");
}

static void test_push_round_trip(void **state)
{
    static const char ini[] = "[node]\nid = edge-1\n";
    size_t n;

    assert_int_equal(ml_fleet_push_encode("v7", UINT64_MAX,
                                          (struct ml_slice){(const uint8_t *)ini, strlen(ini)}, buf,
                                          sizeof(buf), &n),
                     0);
    assert_int_equal(ml_fleet_envelope_decode(buf, n, &env), 0);
    assert_int_equal(env.which_msg, meshlet_fleet_v1_Envelope_push_tag);
    assert_string_equal(env.msg.push.version, "v7");
    assert_true(env.msg.push.nonce == UINT64_MAX);
    assert_int_equal(env.msg.push.ini.n, strlen(ini));
    /* Not a copy: the INI is read where it lies in the message. */
    assert_true(env.msg.push.ini.p > buf && env.msg.push.ini.p + env.msg.push.ini.n <= buf + n);
    assert_memory_equal(env.msg.push.ini.p, ini, strlen(ini));

    /* An empty push: no ini at all. */
    assert_int_equal(ml_fleet_push_encode("", 0, (struct ml_slice){NULL, 0}, buf, sizeof(buf), &n),
                     0);
    assert_int_equal(n, 2);
    assert_int_equal(ml_fleet_envelope_decode(buf, n, &env), 0);
    assert_int_equal(env.which_msg, meshlet_fleet_v1_Envelope_push_tag);
    assert_int_equal(env.msg.push.ini.n, 0);
}

static void test_ack_nack_status_round_trip(void **state)
{
    struct ml_fleet_status st = {"v7", 86400, 1000000, 3, 2, 5};
    size_t n;

    assert_int_equal(ml_fleet_ack_encode("v7", 42, buf, sizeof(buf), &n), 0);
    assert_int_equal(ml_fleet_envelope_decode(buf, n, &env), 0);
    assert_int_equal(env.which_msg, meshlet_fleet_v1_Envelope_ack_tag);
    assert_string_equal(env.msg.ack.version, "v7");
    assert_int_equal(env.msg.ack.nonce, 42);

    assert_int_equal(
        ml_fleet_nack_encode("v8", 43, "push:1: bad\npush:2: worse", 25, buf, sizeof(buf), &n), 0);
    assert_int_equal(ml_fleet_envelope_decode(buf, n, &env), 0);
    assert_int_equal(env.which_msg, meshlet_fleet_v1_Envelope_nack_tag);
    assert_string_equal(env.msg.nack.version, "v8");
    assert_int_equal(env.msg.nack.nonce, 43);
    assert_string_equal(env.msg.nack.error, "push:1: bad\npush:2: worse");

    assert_int_equal(ml_fleet_status_encode(&st, buf, sizeof(buf), &n), 0);
    assert_int_equal(ml_fleet_envelope_decode(buf, n, &env), 0);
    assert_int_equal(env.which_msg, meshlet_fleet_v1_Envelope_status_tag);
    assert_string_equal(env.msg.status.config_version, "v7");
    assert_int_equal(env.msg.status.uptime_s, 86400);
    assert_int_equal(env.msg.status.calls_total, 1000000);
    assert_int_equal(env.msg.status.calls_failed, 3);
    assert_int_equal(env.msg.status.endpoints_healthy, 2);
    assert_int_equal(env.msg.status.endpoints_total, 5);
}

/* A Push envelope of exactly `total` bytes, built by adjusting the INI's length. */
static size_t push_of_size(size_t total, uint8_t *ini, size_t *ini_len)
{
    size_t len = total - 16, n = 0;

    for (int i = 0; i < 8; i++) {
        assert_int_equal(
            ml_fleet_push_encode("v", 1, (struct ml_slice){ini, len}, buf, sizeof(buf), &n), 0);
        if (n == total) {
            break;
        }
        len = len + total - n;
    }
    assert_int_equal(n, total);
    *ini_len = len;
    return n;
}

static void test_push_at_the_limit(void **state)
{
    uint8_t *ini = malloc(ML_FLEET_MAX_MESSAGE_BYTES);
    size_t len, n;

    assert_non_null(ini);
    memset(ini, 'x', ML_FLEET_MAX_MESSAGE_BYTES);
    n = push_of_size(ML_FLEET_MAX_MESSAGE_BYTES, ini, &len);
    assert_int_equal(ml_fleet_envelope_decode(buf, n, &env), 0);
    assert_int_equal(env.which_msg, meshlet_fleet_v1_Envelope_push_tag);
    assert_int_equal(env.msg.push.ini.n, len);

    n = push_of_size(ML_FLEET_MAX_MESSAGE_BYTES + 1, ini, &len);
    assert_int_equal(ml_fleet_envelope_decode(buf, n, &env), -EMSGSIZE);
    assert_int_equal(env.which_msg, 0);
    free(ini);
}

static void expect(const char *bytes, size_t n, int rv)
{
    memcpy(buf, bytes, n);
    assert_int_equal(ml_fleet_envelope_decode(buf, n, &env), rv);
    if (rv != 0) {
        assert_int_equal(env.which_msg, 0);
    }
}

static void test_garbage(void **state)
{
    expect("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11, -EPROTO);
    expect("\x07", 1, -EPROTO);             /* wire type 7 does not exist */
    expect("\x00\x01", 2, -EPROTO);         /* field number 0 */
    expect("\x12\x05\x0a\x01", 4, -EPROTO); /* length past the end */
    expect("\x12\x02\x18\x01", 4, -EPROTO); /* Push.ini as a varint */
    expect("\x12\x02\x1d\x00", 4, -EPROTO); /* Push.ini as fixed32, cut */
    expect("\x1a\x02\x0a\x05", 4, -EPROTO); /* Ack.version past the Ack */
    expect("GET / HTTP/1.1\r\n", 16, -EPROTO);
}

static void test_truncated_varints(void **state)
{
    expect("\x80", 1, -EPROTO);                      /* the tag */
    expect("\x12", 1, -EPROTO);                      /* the length is missing */
    expect("\x12\x80", 2, -EPROTO);                  /* the length */
    expect("\x1a\x05\x0a\x01v\x10\xac", 7, -EPROTO); /* Ack.nonce */
    expect("\x1a\x02\x10\xff", 4, -EPROTO);
    /* 11 bytes of varint: longer than any uint64 */
    expect("\x1a\x0c\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 14, -EPROTO);
}

static void test_unknown_kind(void **state)
{
    expect("", 0, ML_FLEET_UNKNOWN_KIND);
    expect("\x32\x00", 2, ML_FLEET_UNKNOWN_KIND);          /* field 6, empty message */
    expect("\x4a\x03\x0a\x01x", 5, ML_FLEET_UNKNOWN_KIND); /* field 9 with content */
    expect("\x30\x01", 2, ML_FLEET_UNKNOWN_KIND);          /* field 6 as a varint */
    /* A known kind next to an unknown field is that kind. */
    expect("\x1a\x03\x0a\x01v\x32\x00", 7, 0);
    assert_int_equal(env.which_msg, meshlet_fleet_v1_Envelope_ack_tag);
}

/* An Ack whose version is `len` bytes of 'a' (len < 16384: two-byte lengths), into msg. */
static size_t ack_with_version_of(uint8_t *msg, size_t len)
{
    size_t inner = 1 + (len < 128 ? 1 : 2) + len, k = 0;

    msg[k++] = 0x1a;
    if (inner < 128) {
        msg[k++] = (uint8_t)inner;
    } else {
        msg[k++] = (uint8_t)(0x80 | (inner & 0x7f));
        msg[k++] = (uint8_t)(inner >> 7);
    }
    msg[k++] = 0x0a;
    if (len < 128) {
        msg[k++] = (uint8_t)len;
    } else {
        msg[k++] = (uint8_t)(0x80 | (len & 0x7f));
        msg[k++] = (uint8_t)(len >> 7);
    }
    memset(msg + k, 'a', len);
    return k + len;
}

static void test_string_over_bound(void **state)
{
    char v[ML_FLEET_VERSION_MAX + 2];
    uint8_t msg[300];
    size_t n;

    memset(v, 'a', sizeof(v) - 1);
    v[sizeof(v) - 1] = '\0';
    /* Encoders refuse, decoders fail: never a cut version. */
    assert_int_equal(ml_fleet_ack_encode(v, 1, buf, sizeof(buf), &(size_t){0}), -EINVAL);
    n = ack_with_version_of(msg, ML_FLEET_VERSION_MAX + 1);
    expect((const char *)msg, n, -EPROTO);
    n = ack_with_version_of(msg, ML_FLEET_VERSION_MAX);
    expect((const char *)msg, n, 0);
    assert_int_equal(strlen(env.msg.ack.version), ML_FLEET_VERSION_MAX);
}

static void test_encoders_refuse(void **state)
{
    const char *many[ML_FLEET_FEATURES_MAX + 1];
    struct ml_fleet_hello h = {"n", "b", "v", "", many, ML_FLEET_FEATURES_MAX + 1, NULL, 0};
    struct ml_fleet_status st = {"v7", 1, 2, 3, 4, 5};
    size_t n = 0, full;

    for (size_t i = 0; i <= ML_FLEET_FEATURES_MAX; i++) {
        many[i] = "f";
    }
    assert_int_equal(ml_fleet_hello_encode(&h, buf, sizeof(buf), &n), -EINVAL);
    h.n_features = ML_FLEET_FEATURES_MAX;
    assert_int_equal(ml_fleet_hello_encode(&h, buf, sizeof(buf), &n), 0);
    many[0] = "a-feature-name-of-thirty-two-chr";
    assert_int_equal(ml_fleet_hello_encode(&h, buf, sizeof(buf), &n), -EINVAL);

    /* Every buffer one byte short of the message: -ENOBUFS. */
    assert_int_equal(ml_fleet_status_encode(&st, buf, sizeof(buf), &full), 0);
    for (size_t cap = 0; cap < full; cap++) {
        assert_int_equal(ml_fleet_status_encode(&st, buf, cap, &n), -ENOBUFS);
    }
    assert_int_equal(ml_fleet_ack_encode("v", 1, buf, 3, &n), -ENOBUFS);
    assert_int_equal(ml_fleet_nack_encode("v", 1, "e", 1, buf, 5, &n), -ENOBUFS);
    assert_int_equal(
        ml_fleet_push_encode("v", 1, (struct ml_slice){(const uint8_t *)"x", 1}, buf, 7, &n),
        -ENOBUFS);
}

static void test_nack_error_cut(void **state)
{
    size_t cap = 3 * ML_FLEET_ERROR_MAX, n, k = 0;
    char *e = malloc(cap);

    assert_non_null(e);
    /* Lines of 100 bytes: cut after the last whole line that fits in 4 KiB. */
    while (k + 100 <= cap) {
        memset(e + k, 'x', 99);
        e[k + 99] = '\n';
        k += 100;
    }
    assert_int_equal(ml_fleet_error_cut(e, k), 3900 + 99); /* 40 lines, the last '\n' dropped */
    assert_int_equal(ml_fleet_nack_encode("v", 1, e, k, buf, sizeof(buf), &n), 0);
    assert_int_equal(ml_fleet_envelope_decode(buf, n, &env), 0);
    assert_int_equal(strlen(env.msg.nack.error), 3999);

    /* One long line of 2-byte characters, the bound in the middle of one: cut before it. */
    for (k = 0; k + 2 <= cap; k += 2) {
        e[k] = (char)0xc3;
        e[k + 1] = (char)0xa9; /* é */
    }
    assert_int_equal(ml_fleet_error_cut(e + 1, k - 1), ML_FLEET_ERROR_MAX - 1);
    assert_int_equal(ml_fleet_error_cut(e, k), ML_FLEET_ERROR_MAX);
    /* Short texts pass whole, exactly the bound too. */
    assert_int_equal(ml_fleet_error_cut(e, ML_FLEET_ERROR_MAX), ML_FLEET_ERROR_MAX);
    assert_int_equal(ml_fleet_nack_encode("v", 1, e, ML_FLEET_ERROR_MAX, buf, sizeof(buf), &n), 0);
    assert_int_equal(ml_fleet_envelope_decode(buf, n, &env), 0);
    assert_int_equal(strlen(env.msg.nack.error), ML_FLEET_ERROR_MAX);
    free(e);
}

/* The seeds Google's protobuf wrote from fleet.proto: ok-* decode, unknown-* are an unknown kind,
 * bad-* are -EPROTO; and a few values are checked. Listed, not read with readdir(): a 32-bit
 * build under qemu-user gets EOVERFLOW from readdir() on hosts with 64-bit inode numbers. */
static const char *const seed_names[] = {
    "ok-ack",
    "ok-hello",
    "ok-nack",
    "ok-push",
    "ok-push-empty",
    "ok-push-extra-field",
    "ok-status",
    "unknown-empty",
    "unknown-kind9",
    "bad-ini-as-varint",
    "bad-truncated-length",
    "bad-truncated-tag",
    "bad-truncated-varint",
};

static void test_seeds_from_python(void **state)
{
    const char *root = getenv("ML_TEST_SOURCE_DIR");
    char path[4400];

    if (root == NULL) {
        skip();
    }
    for (size_t i = 0; i < sizeof(seed_names) / sizeof(seed_names[0]); i++) {
        const char *name = seed_names[i];
        FILE *f;
        size_t n;
        int rv;

        snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/fleet_envelope/%s", root, name);
        f = fopen(path, "rb");
        assert_non_null(f);
        n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        rv = ml_fleet_envelope_decode(buf, n, &env);
        if (strncmp(name, "ok-", 3) == 0) {
            assert_int_equal(rv, 0);
        } else if (strncmp(name, "unknown-", 8) == 0) {
            assert_int_equal(rv, ML_FLEET_UNKNOWN_KIND);
        } else {
            assert_int_equal(rv, -EPROTO);
        }
        if (strcmp(name, "ok-hello") == 0) {
            assert_string_equal(env.msg.hello.node_id, "edge-1");
            assert_int_equal(env.msg.hello.features_count, 4);
            assert_string_equal(env.msg.hello.features[3], "lb.maglev");
        } else if (strcmp(name, "ok-nack") == 0) {
            assert_true(env.msg.nack.nonce == UINT64_MAX);
        } else if (strcmp(name, "ok-push") == 0) {
            assert_int_equal(env.msg.push.nonce, 7);
            assert_true(env.msg.push.ini.n > 100);
            assert_memory_equal(env.msg.push.ini.p, "[node]\nid = edge-1\n", 19);
        } else if (strcmp(name, "ok-push-extra-field") == 0) {
            assert_int_equal(env.msg.push.ini.n, 7);
        } else if (strcmp(name, "ok-status") == 0) {
            assert_int_equal(env.msg.status.calls_total, 123456789);
            assert_int_equal(env.msg.status.endpoints_total, 3);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_round_trip),
        cmocka_unit_test(test_push_round_trip),
        cmocka_unit_test(test_ack_nack_status_round_trip),
        cmocka_unit_test(test_push_at_the_limit),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_truncated_varints),
        cmocka_unit_test(test_unknown_kind),
        cmocka_unit_test(test_string_over_bound),
        cmocka_unit_test(test_encoders_refuse),
        cmocka_unit_test(test_nack_error_cut),
        cmocka_unit_test(test_seeds_from_python),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
