/* [fleet] url = mqtts:// / mqtt:// (config/validate_node.c, runtime/fleet/README.md "The fleet over
 * MQTT"): the schemes and their default ports, the empty path, the insecure and ca rules, and the
 * refusal naming CONFIG_ML_FLEET_MQTT in a build without it. */
#include "config/errors.h"
#include "config/features.h"
#include "config/snapshot.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* "LINE: TEXT\n" for every error of text, and the loader's return value in *rv. */
static char *load(const char *text, int *rv, struct ml_snapshot **out)
{
    struct ml_config_errors errs;
    char *lines = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&lines, &n);

    assert_non_null(f);
    ml_config_errors_init(&errs);
    *rv = ml_config_load_text(text, strlen(text), NULL, &errs, out);
    for (size_t i = 0; i < errs.n; i++) {
        fprintf(f, "%d: %s\n", errs.v[i].line, errs.v[i].text);
    }
    ml_config_errors_deinit(&errs);
    fclose(f);
    return lines;
}

static void expect_errors_(const char *text, const char *want, const char *file, int line)
{
    struct ml_snapshot *s = NULL;
    int rv;
    char *got = load(text, &rv, &s);

    if (rv != -EINVAL || s != NULL) {
        print_error("rv %d, errors:\n%s", rv, got);
        free(got);
        _fail(file, line);
    }
    _assert_string_equal(got, want, file, line);
    free(got);
}
#define expect_errors(text, want) expect_errors_((text), (want), __FILE__, __LINE__)

static struct ml_snapshot *load_ok_(const char *text, const char *file, int line)
{
    struct ml_snapshot *s = NULL;
    int rv;
    char *got = load(text, &rv, &s);

    if (rv != 0 || s == NULL) {
        print_error("rv %d, errors:\n%s", rv, got);
        free(got);
        _fail(file, line);
    }
    free(got);
    return s;
}
#define load_ok(text) load_ok_((text), __FILE__, __LINE__)

#if ML_HAVE_FLEET_MQTT

static void test_mqtt_schemes_and_default_ports(void **state)
{
    struct ml_snapshot *s = load_ok("[fleet]\nurl = mqtts://broker.example\nca = /no-such/ca\n");

    (void)state;
    assert_true(s->fleet.url_mqtt && s->fleet.url_tls);
    assert_string_equal(s->fleet.url_host, "broker.example");
    assert_int_equal(s->fleet.url_port, 8883);
    ml_snapshot_unref(s);

    s = load_ok("[fleet]\nurl = mqtt://[::1]\ninsecure = on\n");
    assert_true(s->fleet.url_mqtt && !s->fleet.url_tls);
    assert_string_equal(s->fleet.url_host, "::1");
    assert_int_equal(s->fleet.url_port, 1883);
    ml_snapshot_unref(s);

    s = load_ok("[fleet]\nurl = mqtts://10.0.0.1:18883\nca = /no-such/ca\n");
    assert_int_equal(s->fleet.url_port, 18883);
    ml_snapshot_unref(s);

    /* the WebSocket is still what it was */
    s = load_ok("[fleet]\nurl = wss://c.example/fleet\nca = /no-such/ca\n");
    assert_false(s->fleet.url_mqtt);
    assert_int_equal(s->fleet.url_port, 443);
    ml_snapshot_unref(s);
}

static void test_mqtt_url_refusals_name_the_line(void **state)
{
    (void)state;
    expect_errors(
        "[fleet]\nurl = mqtts://b.example:8883/fleet\nca = /no-such/ca\n",
        "2: [fleet] url: expected mqtts://HOST[:PORT] with nothing after the port "
        "(MQTT has no path; the topics are fixed), got \"mqtts://b.example:8883/fleet\"\n");
    expect_errors("[fleet]\nurl = mqtt://b.example/\ninsecure = on\n",
                  "2: [fleet] url: expected mqtt://HOST[:PORT] with nothing after the port "
                  "(MQTT has no path; the topics are fixed), got \"mqtt://b.example/\"\n");
    expect_errors("[fleet]\nurl = mqtt://b.example\n",
                  "2: [fleet] url: expected mqtts:// (mqtt:// only with insecure = on), got "
                  "\"mqtt://b.example\"\n");
    expect_errors("[fleet]\nurl = mqtts://b.example\n",
                  "1: [fleet] ca: expected this key with an mqtts:// url (the broker's "
                  "certificate is checked against it), got nothing\n");
    expect_errors("[fleet]\nurl = mqtts://b.example:0\nca = /no-such/ca\n",
                  "2: [fleet] url: expected wss://HOST[:PORT][/PATH] or mqtts://HOST[:PORT] "
                  "(ws:// and mqtt:// only with insecure = on), got \"mqtts://b.example:0\"\n");
    expect_errors("[fleet]\nurl = mqtts://\nca = /no-such/ca\n",
                  "2: [fleet] url: expected wss://HOST[:PORT][/PATH] or mqtts://HOST[:PORT] "
                  "(ws:// and mqtt:// only with insecure = on), got \"mqtts://\"\n");
    expect_errors("[fleet]\nurl = mqtts+ws://b.example\nca = /no-such/ca\n",
                  "2: [fleet] url: expected wss://HOST[:PORT][/PATH] or mqtts://HOST[:PORT] "
                  "(ws:// and mqtt:// only with insecure = on), got \"mqtts+ws://b.example\"\n");
}

#else

static void test_mqtt_url_is_refused_naming_the_symbol(void **state)
{
    (void)state;
    expect_errors("[fleet]\nurl = mqtts://b.example\nca = /no-such/ca\n",
                  "2: [fleet] url: expected wss://HOST[:PORT][/PATH]: this build of meshlet has "
                  "no fleet over MQTT (CONFIG_ML_FLEET_MQTT is off), got \"mqtts://b.example\"\n");
}

#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
#if ML_HAVE_FLEET_MQTT
        cmocka_unit_test(test_mqtt_schemes_and_default_ports),
        cmocka_unit_test(test_mqtt_url_refusals_name_the_line),
#else
        cmocka_unit_test(test_mqtt_url_is_refused_naming_the_symbol),
#endif
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
