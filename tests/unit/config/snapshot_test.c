/* config/snapshot.c end to end: INI text → ml_config_load_text() → a snapshot, or the exact
 * error lines of config/README.md. Also the file loader and the allocation-failure torture test. */
#include "config/errors.h"
#include "config/schema.h"
#include "config/snapshot.h"
#include "core/alloc.h"
#include "meshlet_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include "config/features.h"
#if ML_HAVE_DATA_TLS
#include "../tls/test_certs.h"
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/unimplemented.h"

/* Link seam: this file checks how every key is read, also the keys this version refuses because
 * their code does not exist yet (config/unimplemented.c; that refusal is tested by
 * unimplemented_test.c and tests/config). This empty table keeps unimplemented.o out of the
 * link, so the readers stay tested for the day the code lands. */
bool ml_config_unimplemented(int key, const char **off_text)
{
    (void)key;
    (void)off_text;
    return false;
}

bool ml_config_unimplemented_is_off(int key, const void *obj)
{
    (void)key;
    (void)obj;
    return true;
}

bool ml_config_kind_unimplemented(enum ml_config_kind kind)
{
    (void)kind;
    return false;
}

/* ---- helpers -------------------------------------------------------------------------------- */

static int load_n(const char *text, size_t n, struct ml_snapshot **out)
{
    struct ml_config_errors errs;
    int rv;

    ml_config_errors_init(&errs);
    rv = ml_config_load_text(text, n, NULL, &errs, out);
    if (rv == 0 && ml_config_errors_count(&errs) != 0) {
        fail_msg("a usable config with errors: %s", errs.v[0].text);
    }
    if (rv != 0) {
        for (size_t i = 0; i < errs.n; i++) {
            print_error("  %d: %s\n", errs.v[i].line, errs.v[i].text);
        }
    }
    ml_config_errors_deinit(&errs);
    return rv;
}

/* Loads a config that must be usable; the caller unrefs. */
static struct ml_snapshot *load_ok_(const char *text, const char *file, int line)
{
    struct ml_snapshot *s = NULL;
    int rv = load_n(text, strlen(text), &s);

    if (rv != 0) {
        _fail(file, line);
    }
    assert_non_null(s);
    return s;
}
#define load_ok(text) load_ok_((text), __FILE__, __LINE__)

/* "LINE: TEXT\n" for every error, in the order the loader leaves them (line order). */
static char *error_lines(const struct ml_config_errors *errs)
{
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);

    assert_non_null(f);
    for (size_t i = 0; i < errs->n; i++) {
        fprintf(f, "%d: %s\n", errs->v[i].line, errs->v[i].text);
    }
    if (errs->n_dropped) {
        fprintf(f, "... and %zu more\n", errs->n_dropped);
    }
    fclose(f);
    return text;
}

/* Asserts that text is invalid (-EINVAL) with exactly these error lines. */
static void expect_errors_(const char *text, size_t n, const char *want, const char *file, int line)
{
    struct ml_config_errors errs;
    struct ml_snapshot *s = (struct ml_snapshot *)1;
    char *got;
    int rv;

    ml_config_errors_init(&errs);
    rv = ml_config_load_text(text, n, NULL, &errs, &s);
    got = error_lines(&errs);
    ml_config_errors_deinit(&errs);
    if (rv != -EINVAL || s != NULL) {
        print_error("rv %d, errors:\n%s", rv, got);
        free(got);
        _fail(file, line);
    }
    _assert_string_equal(got, want, file, line);
    free(got);
}
#define expect_errors(text, want) expect_errors_((text), strlen(text), (want), __FILE__, __LINE__)

/* A valid skeleton the error tests add one problem to. */
#define SKELETON                                                                                   \
    "[listener ingress]\n"                                                                         \
    "bind = 127.0.0.1:15001\n"                                                                     \
    "[route all]\n"                                                                                \
    "listener = ingress\n"                                                                         \
    "to = greeter\n"                                                                               \
    "[cluster greeter]\n"                                                                          \
    "endpoint = 127.0.0.1:50051\n"

/* Every section kind, most keys, several of each: the torture test's config too. */
/* The rich config's cluster TLS: sni and identity only mean something with tls (refused
 * without), and tls only in a build with ML_TLS. */
#if ML_HAVE_DATA_TLS
#define RICH_CLUSTER_TLS                                                                           \
    "tls = on\n"                                                                                   \
    "ca = /etc/meshlet/greeter-ca.pem\n"                                                           \
    "sni = greeter.internal\n"                                                                     \
    "identity = spiffe://mesh.local/greeter\n"
#else
#define RICH_CLUSTER_TLS ""
#endif

static const char rich[] = "; a rich config\n"
                           "[node]\n"
                           "id = gw-0042\n"
                           "admin = [::1]:15000\n"
                           "admin_remote = off\n"
                           "log = debug\n"
                           "access_log = /var/log/meshlet/access.log\n"
                           "state_dir = /tmp/meshlet-state\n"
                           "drain_timeout = 0\n"
                           "\n"
                           "[fleet]\n"
                           "url = wss://fleet.example.com:9443/fleet/v1\n"
                           "ca = /etc/meshlet/fleet-ca.pem\n"
                           "cert = /etc/meshlet/node.crt\n"
                           "key = /etc/meshlet/node.key\n"
                           "backoff = 1s..1m\n"
                           "report_interval = 30s\n"
                           "insecure = off\n"
                           "\n"
                           "[listener ingress]\n"
                           "bind = 127.0.0.1:15001\n"
                           "max_connections = 32\n"
                           "max_streams = 50\n"
                           "window = 1MiB\n"
                           "idle_timeout = 0\n"
                           "max_connection_age = 1h\n"
                           "\n"
                           "[listener v6]\n"
                           "bind = [2001:db8::20]:15002\n"
                           "\n"
                           "[route canary]\n"
                           "listener = ingress\n"
                           "authority = *.example.com\n"
                           "prefix = /helloworld.Greeter/\n"
                           "header = X-Canary: 1\n"
                           "header = x-debug\n"
                           "to = greeter-v2\n"
                           "\n"
                           "[route greeter]\n"
                           "listener = ingress\n"
                           "path = /helloworld.Greeter/SayHello\n"
                           "to = greeter 90, greeter-v2 10\n"
                           "timeout = 2s\n"
                           "retry_on = unavailable, resource-exhausted, deadline-exceeded\n"
                           "retries = 2\n"
                           "retry_backoff = 10ms..100ms\n"
                           "fault_delay = 5% 100ms\n"
                           "fault_abort = 1.5% unavailable\n"
                           "fault_headers = on\n"
                           "rate_limit = 100/s burst 20\n"
                           "\n"
                           "[route v6-all]\n"
                           "listener = v6\n"
                           "to = by-name\n"
                           "rate_limit = 600/m\n"
                           "\n"
                           "[cluster greeter]\n"
                           "endpoint = 10.0.0.5:50051\n"
                           "endpoint = 10.0.0.6:50051 weight=2\n"
                           "endpoint = [2001:db8::7]:50051 weight=128\n"
                           "lb = ring_hash\n"
                           "hash = header:X-User-Id\n"
                           "connect_timeout = 250ms\n"
                           "keepalive = 0\n"
                           "max_connections = 2\n"
                           "max_streams_per_connection = 2147483647\n"
                           "max_pending = 0\n"
                           "max_requests = 1000000\n"
                           "max_retries = 0\n"
                           "outlier_errors = 0\n"
                           "outlier_ejection = 1h\n"
                           "outlier_max_percent = 12.5\n"
                           "\n"
                           "[cluster greeter-v2]\n"
                           "endpoint = 10.0.0.8:50051\n"
                           "lb = least_request\n"
                           "health_check = grpc\n"
                           "health_service = helloworld.Greeter\n"
                           "health_interval = 100ms\n"
                           "health_timeout = 10ms\n"
                           "healthy_threshold = 1\n"
                           "unhealthy_threshold = 100\n"
                           "outlier_max_percent = 33.3%\n"
                           "\n"
                           "[cluster by-name]\n"
                           "dns = greeter.internal:50051\n"
                           "dns_refresh = 24h\n"
                           "lb = maglev\n"
                           "hash = authority\n" RICH_CLUSTER_TLS "\n"
                           "[authz ingress]\n"
                           "allow = spiffe://mesh.local/frontend -> /helloworld.Greeter/*\n"
                           "deny = * -> /grpc.reflection.*\n"
                           "allow = * -> *\n"
                           "default = allow\n";

static const struct ml_cfg_cluster *cluster_named(const struct ml_snapshot *s, const char *name)
{
    for (uint32_t i = 0; i < s->n_clusters; i++) {
        if (strcmp(s->clusters[i].name, name) == 0) {
            return &s->clusters[i];
        }
    }
    fail_msg("no cluster %s", name);
    return NULL;
}

static void assert_addr(const struct ml_cfg_addr *a, int family, const char *ip, uint16_t port,
                        const char *text)
{
    uint8_t want[16] = {0};

    assert_true(a->set);
    assert_int_equal(a->family, family);
    assert_int_equal(inet_pton(family, ip, want), 1);
    assert_memory_equal(a->ip, want, family == AF_INET ? 4 : 16);
    assert_int_equal(a->port, port);
    assert_string_equal(a->text, text);
}

/* ---- defaults ------------------------------------------------------------------------------- */

static void test_empty_config_gives_the_documented_node_defaults(void **state)
{
    struct ml_snapshot *s = load_ok("");

    assert_addr(&s->node.admin, AF_INET, "127.0.0.1", 15000, "127.0.0.1:15000");
    assert_false(s->node.admin_remote);
    assert_int_equal(s->node.log_level, 2); /* info */
    assert_int_equal(s->node.access_log, ML_CFG_ACCESS_LOG_STDERR);
    assert_null(s->node.access_log_path);
    assert_string_equal(s->node.state_dir, "/var/lib/meshlet");
    assert_int_equal(s->node.drain_timeout_ms, 5000);
    assert_false(s->fleet.present);
    assert_int_equal(s->n_listeners + s->n_routes + s->n_clusters + s->n_authz, 0);
    ml_snapshot_unref(s);
}

static void test_node_id_defaults_to_the_host_name(void **state)
{
    char host[256] = "", want[64];
    struct ml_snapshot *s = load_ok("[node]\n");
    size_t n;

    assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
    for (n = 0; host[n] && n < 63; n++) {
        char c = host[n];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '-';
        want[n] = ok ? c : '-';
    }
    want[n] = '\0';
    assert_string_equal(s->node.id, n ? want : "meshlet");
    ml_snapshot_unref(s);
}

static void test_sections_with_only_required_keys_get_the_documented_defaults(void **state)
{
    struct ml_snapshot *s = load_ok("[listener l]\nbind = 127.0.0.1:15001\n"
                                    "[route r]\nlistener = l\nto = c\n"
                                    "[cluster c]\nendpoint = 127.0.0.1:50051\n"
                                    "[authz l]\n");
    const struct ml_cfg_listener *l = &s->listeners[0];
    const struct ml_cfg_route *r = &s->routes[0];
    const struct ml_cfg_cluster *c = &s->clusters[0];

    /* config/README.md "Defaults that matter" */
    assert_int_equal(l->tls, ML_CFG_TLS_OFF);
    assert_int_equal(c->tls, ML_CFG_TLS_OFF);
    assert_int_equal(l->max_streams, 100);
    assert_int_equal(l->window_bytes, 64 * 1024);
    assert_int_equal(r->timeout_ms, 0);
    assert_int_equal(r->retries, 0);
    assert_int_equal(c->lb, ML_CFG_LB_ROUND_ROBIN);
    assert_int_equal(c->health_check, ML_CFG_HEALTH_OFF);
    assert_int_equal(c->outlier_errors, 5);
    assert_int_equal(c->max_connections, 1);
    assert_int_equal(c->max_streams_per_connection, 100);
    assert_int_equal(c->max_pending, 128); /* a cold burst of 100 streams waits */
    assert_int_equal(c->max_requests, 256);
    assert_int_equal(c->max_retries, 3); /* retries in flight, whole cluster */

    /* and the rest of schema.def's defaults */
    assert_int_equal(l->max_connections, 64);
    assert_int_equal(l->idle_timeout_ms, 5 * 60 * 1000);
    assert_int_equal(l->max_connection_age_ms, 0);
    assert_null(l->cert);
    assert_string_equal(r->authority, "*");
    assert_null(r->prefix);
    assert_null(r->path);
    assert_int_equal(r->n_headers, 0);
    assert_int_equal(r->retry_on,
                     ML_CFG_RETRY_UNAVAILABLE | ML_CFG_RETRY_RESET | ML_CFG_RETRY_CONNECT_FAILURE);
    assert_int_equal(r->retry_backoff.from_ms, 25);
    assert_int_equal(r->retry_backoff.to_ms, 250);
    assert_int_equal(r->fault_delay_ppm, 0);
    assert_int_equal(r->fault_abort_ppm, 0);
    assert_false(r->fault_headers);
    assert_int_equal(r->rate_per_min, 0);
    assert_int_equal(c->dns_refresh_ms, 30000);
    assert_int_equal(c->hash, ML_CFG_HASH_NONE);
    assert_int_equal(c->connect_timeout_ms, 1000);
    assert_int_equal(c->keepalive_ms, 30000);
    assert_string_equal(c->health_service, "");
    assert_int_equal(c->health_interval_ms, 5000);
    assert_int_equal(c->health_timeout_ms, 1000);
    assert_int_equal(c->healthy_threshold, 2);
    assert_int_equal(c->unhealthy_threshold, 3);
    assert_int_equal(c->outlier_ejection_ms, 30000);
    assert_int_equal(c->outlier_max_ppm, 500000);
    assert_int_equal(s->authz[0].default_allow, 0);
    assert_int_equal(s->authz[0].n_rules, 0);
    ml_snapshot_unref(s);
}

static void test_fleet_defaults(void **state)
{
    struct ml_snapshot *s = load_ok("\n[fleet]\nurl = ws://127.0.0.1:9000\ninsecure = on\n");

    assert_true(s->fleet.present);
    assert_int_equal(s->fleet.line, 2);
    assert_int_equal(s->fleet.backoff.from_ms, 500);
    assert_int_equal(s->fleet.backoff.to_ms, 30000);
    assert_int_equal(s->fleet.report_interval_ms, 10000);
    assert_false(s->fleet.url_tls);
    assert_string_equal(s->fleet.url_host, "127.0.0.1");
    assert_int_equal(s->fleet.url_port, 9000);
    assert_string_equal(s->fleet.url_path, "/");
    assert_null(s->fleet.ca);
    ml_snapshot_unref(s);
}

/* ---- a rich config, field by field ---------------------------------------------------------- */

static void test_rich_config_fills_node_and_fleet(void **state)
{
    struct ml_snapshot *s = load_ok(rich);

    assert_string_equal(s->node.id, "gw-0042");
    assert_addr(&s->node.admin, AF_INET6, "::1", 15000, "[::1]:15000");
    assert_int_equal(s->node.log_level, 3);
    assert_int_equal(s->node.access_log, ML_CFG_ACCESS_LOG_FILE);
    assert_string_equal(s->node.access_log_path, "/var/log/meshlet/access.log");
    assert_string_equal(s->node.state_dir, "/tmp/meshlet-state");
    assert_int_equal(s->node.drain_timeout_ms, 0);
    assert_true(s->fleet.present);
    assert_string_equal(s->fleet.url, "wss://fleet.example.com:9443/fleet/v1");
    assert_true(s->fleet.url_tls);
    assert_string_equal(s->fleet.url_host, "fleet.example.com");
    assert_int_equal(s->fleet.url_port, 9443);
    assert_string_equal(s->fleet.url_path, "/fleet/v1");
    assert_string_equal(s->fleet.ca, "/etc/meshlet/fleet-ca.pem");
    assert_string_equal(s->fleet.cert, "/etc/meshlet/node.crt");
    assert_string_equal(s->fleet.key, "/etc/meshlet/node.key");
    assert_int_equal(s->fleet.backoff.from_ms, 1000);
    assert_int_equal(s->fleet.backoff.to_ms, 60000);
    assert_int_equal(s->fleet.report_interval_ms, 30000);
    ml_snapshot_unref(s);
}

static void test_rich_config_fills_listeners_in_file_order(void **state)
{
    struct ml_snapshot *s = load_ok(rich);

    assert_int_equal(s->n_listeners, 2);
    assert_string_equal(s->listeners[0].name, "ingress");
    assert_int_equal(s->listeners[0].line, 20);
    assert_addr(&s->listeners[0].bind, AF_INET, "127.0.0.1", 15001, "127.0.0.1:15001");
    assert_int_equal(s->listeners[0].max_connections, 32);
    assert_int_equal(s->listeners[0].max_streams, 50);
    assert_int_equal(s->listeners[0].window_bytes, 1024 * 1024);
    assert_int_equal(s->listeners[0].idle_timeout_ms, 0);
    assert_int_equal(s->listeners[0].max_connection_age_ms, 3600000);
    assert_string_equal(s->listeners[1].name, "v6");
    assert_addr(&s->listeners[1].bind, AF_INET6, "2001:db8::20", 15002, "[2001:db8::20]:15002");
    ml_snapshot_unref(s);
}

static void test_rich_config_fills_routes_and_resolves_references(void **state)
{
    struct ml_snapshot *s = load_ok(rich);
    const struct ml_cfg_route *canary = &s->routes[0], *g = &s->routes[1], *v6 = &s->routes[2];

    assert_int_equal(s->n_routes, 3);
    assert_string_equal(canary->name, "canary");
    assert_int_equal(canary->listener, 0);
    assert_string_equal(canary->authority, "*.example.com");
    assert_string_equal(canary->prefix, "/helloworld.Greeter/");
    assert_null(canary->path);
    assert_int_equal(canary->n_headers, 2);
    assert_string_equal(canary->headers[0].name, "x-canary"); /* names lower-cased */
    assert_string_equal(canary->headers[0].value, "1");
    assert_string_equal(canary->headers[1].name, "x-debug");
    assert_null(canary->headers[1].value); /* present is enough */
    assert_int_equal(canary->n_split, 1);
    assert_string_equal(canary->split[0].cluster_name, "greeter-v2");
    assert_int_equal(canary->split[0].cluster, 1);
    assert_int_equal(canary->split[0].weight, 1);

    assert_string_equal(g->path, "/helloworld.Greeter/SayHello");
    assert_int_equal(g->n_split, 2);
    assert_int_equal(g->split[0].cluster, 0);
    assert_int_equal(g->split[0].weight, 90);
    assert_int_equal(g->split[1].cluster, 1);
    assert_int_equal(g->split[1].weight, 10);
    assert_int_equal(g->timeout_ms, 2000);
    assert_int_equal(g->retry_on, ML_CFG_RETRY_UNAVAILABLE | ML_CFG_RETRY_RESOURCE_EXHAUSTED |
                                      ML_CFG_RETRY_DEADLINE_EXCEEDED);
    assert_int_equal(g->retries, 2);
    assert_int_equal(g->retry_backoff.from_ms, 10);
    assert_int_equal(g->retry_backoff.to_ms, 100);
    assert_int_equal(g->fault_delay_ppm, 50000);
    assert_int_equal(g->fault_delay_ms, 100);
    assert_int_equal(g->fault_abort_ppm, 15000);
    assert_int_equal(g->fault_abort_status, 14);
    assert_true(g->fault_headers);
    assert_int_equal(g->rate_per_min, 6000);
    assert_int_equal(g->rate_burst, 20);

    assert_int_equal(v6->listener, 1);
    assert_int_equal(v6->split[0].cluster, 2);
    assert_int_equal(v6->rate_per_min, 600);
    assert_int_equal(v6->rate_burst, 10); /* one second's worth */
    ml_snapshot_unref(s);
}

static void test_rich_config_fills_clusters(void **state)
{
    struct ml_snapshot *s = load_ok(rich);
    const struct ml_cfg_cluster *g = cluster_named(s, "greeter");
    const struct ml_cfg_cluster *v2 = cluster_named(s, "greeter-v2");
    const struct ml_cfg_cluster *dns = cluster_named(s, "by-name");

    assert_int_equal(g->n_endpoints, 3);
    assert_addr(&g->endpoints[0].addr, AF_INET, "10.0.0.5", 50051, "10.0.0.5:50051");
    assert_int_equal(g->endpoints[0].weight, 1);
    assert_addr(&g->endpoints[1].addr, AF_INET, "10.0.0.6", 50051, "10.0.0.6:50051");
    assert_int_equal(g->endpoints[1].weight, 2);
    assert_addr(&g->endpoints[2].addr, AF_INET6, "2001:db8::7", 50051, "[2001:db8::7]:50051");
    assert_int_equal(g->endpoints[2].weight, 128);
    assert_int_equal(g->lb, ML_CFG_LB_RING_HASH);
    assert_int_equal(g->hash, ML_CFG_HASH_HEADER);
    assert_string_equal(g->hash_header, "x-user-id");
    assert_int_equal(g->connect_timeout_ms, 250);
    assert_int_equal(g->keepalive_ms, 0);
    assert_int_equal(g->max_connections, 2);
    assert_int_equal(g->max_streams_per_connection, 2147483647);
    assert_int_equal(g->max_pending, 0);
    assert_int_equal(g->max_requests, 1000000);
    assert_int_equal(g->max_retries, 0);
    assert_int_equal(g->outlier_errors, 0);
    assert_int_equal(g->outlier_ejection_ms, 3600000);
    assert_int_equal(g->outlier_max_ppm, 125000);
    assert_null(g->dns_host);

    assert_int_equal(v2->lb, ML_CFG_LB_LEAST_REQUEST);
    assert_int_equal(v2->health_check, ML_CFG_HEALTH_GRPC);
    assert_string_equal(v2->health_service, "helloworld.Greeter");
    assert_int_equal(v2->health_interval_ms, 100);
    assert_int_equal(v2->health_timeout_ms, 10);
    assert_int_equal(v2->healthy_threshold, 1);
    assert_int_equal(v2->unhealthy_threshold, 100);
    assert_int_equal(v2->outlier_max_ppm, 333000);

    assert_int_equal(dns->n_endpoints, 0);
    assert_string_equal(dns->dns_host, "greeter.internal");
    assert_int_equal(dns->dns_port, 50051);
    assert_int_equal(dns->dns_refresh_ms, 24 * 3600000);
    assert_int_equal(dns->lb, ML_CFG_LB_MAGLEV);
    assert_int_equal(dns->hash, ML_CFG_HASH_AUTHORITY);
#if ML_HAVE_DATA_TLS
    assert_int_equal(dns->tls, ML_CFG_TLS_ON);
    assert_string_equal(dns->ca, "/etc/meshlet/greeter-ca.pem");
    assert_string_equal(dns->sni, "greeter.internal");
    assert_string_equal(dns->identity, "spiffe://mesh.local/greeter");
#endif
    ml_snapshot_unref(s);
}

static void test_rich_config_keeps_authz_rules_in_file_order(void **state)
{
    struct ml_snapshot *s = load_ok(rich);
    const struct ml_cfg_authz *az = &s->authz[0];

    assert_int_equal(s->n_authz, 1);
    assert_int_equal(az->listener, 0);
    assert_int_equal(az->default_allow, 1);
    assert_int_equal(az->n_rules, 3);
    assert_true(az->rules[0].allow);
    assert_string_equal(az->rules[0].principal, "spiffe://mesh.local/frontend");
    assert_string_equal(az->rules[0].path, "/helloworld.Greeter/*");
    assert_false(az->rules[1].allow);
    assert_string_equal(az->rules[1].principal, "*");
    assert_string_equal(az->rules[1].path, "/grpc.reflection.*");
    assert_true(az->rules[2].allow);
    assert_string_equal(az->rules[2].path, "*");
    ml_snapshot_unref(s);
}

static void test_summary_counts_sections_and_endpoints(void **state)
{
    struct ml_snapshot *s = load_ok(rich);
    char buf[160];

    ml_snapshot_summary(s, buf, sizeof(buf));
    assert_string_equal(buf, "2 listeners, 3 routes, 3 clusters, 4 endpoints, fleet-managed");
    ml_snapshot_unref(s);
    s = load_ok(SKELETON);
    ml_snapshot_summary(s, buf, sizeof(buf));
    assert_string_equal(buf, "1 listener, 1 route, 1 cluster, 1 endpoint");
    ml_snapshot_unref(s);
}

/* ---- the snapshot object -------------------------------------------------------------------- */

static void test_local_version_is_the_text_sha256_prefix(void **state)
{
    struct ml_snapshot *s = load_ok("");

    assert_string_equal(s->version, "local-e3b0c44298fc"); /* SHA-256("") */
    ml_snapshot_unref(s);
}

static void test_pushed_version_is_kept_and_bounded(void **state)
{
    struct ml_config_errors errs;
    struct ml_snapshot *s;
    char big[ML_CFG_VERSION_MAX + 2];

    ml_config_errors_init(&errs);
    assert_int_equal(ml_config_load_text("", 0, "v42-abc", &errs, &s), 0);
    assert_string_equal(s->version, "v42-abc");
    ml_snapshot_unref(s);
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(ml_config_load_text("", 0, big, &errs, &s), -EINVAL);
    assert_null(s);
    assert_int_equal(ml_config_errors_count(&errs), 1);
    ml_config_errors_deinit(&errs);
}

static void test_text_is_copied_and_need_not_be_nul_terminated(void **state)
{
    char buf[64];
    struct ml_snapshot *s = NULL;

    memcpy(buf, "[node]\nlog = warn\nGARBAGE", 25);
    assert_int_equal(load_n(buf, 17, &s), 0);
    memset(buf, 0, sizeof(buf));
    assert_string_equal(s->text, "[node]\nlog = warn");
    assert_int_equal(s->text_bytes, 17);
    assert_int_equal(s->node.log_level, 1);
    ml_snapshot_unref(s);
}

static void test_refcount_keeps_the_snapshot_until_the_last_unref(void **state)
{
    struct ml_snapshot *s = load_ok(SKELETON);

    assert_int_equal(s->refcount, 1);
    assert_ptr_equal(ml_snapshot_ref(s), s);
    assert_int_equal(s->refcount, 2);
    ml_snapshot_unref(s);
    assert_string_equal(s->clusters[0].name, "greeter"); /* still alive */
    ml_snapshot_unref(s);
    ml_snapshot_unref(NULL);
}

/* ---- value kinds through whole configs ------------------------------------------------------ */

static void test_zero_means_off_where_the_key_says_so(void **state)
{
    struct ml_snapshot *s = load_ok("[node]\ndrain_timeout = 0\n"
                                    "[listener l]\nbind = 127.0.0.1:1\nidle_timeout = 0\n"
                                    "max_connection_age = 0\n"
                                    "[route r]\nlistener = l\nto = c\ntimeout = 0\n"
                                    "fault_delay = off\nfault_abort = 0\nrate_limit = off\n"
                                    "[cluster c]\nendpoint = 127.0.0.1:2\nkeepalive = 0\n");

    assert_int_equal(s->node.drain_timeout_ms, 0);
    assert_int_equal(s->listeners[0].idle_timeout_ms, 0);
    assert_int_equal(s->routes[0].timeout_ms, 0);
    assert_int_equal(s->routes[0].rate_per_min, 0);
    assert_int_equal(s->clusters[0].keepalive_ms, 0);
    ml_snapshot_unref(s);
    expect_errors("[cluster c]\nendpoint = 127.0.0.1:2\nconnect_timeout = 0\n"
                  "outlier_ejection = 0\ndns_refresh = 0\n",
                  "3: [cluster c] connect_timeout: expected a duration (ms, s, m, h) in 1ms..1m, "
                  "got \"0\"\n"
                  "4: [cluster c] outlier_ejection: expected a duration (ms, s, m, h) in 1s..1h, "
                  "got \"0\"\n"
                  "5: [cluster c] dns_refresh: expected a duration (ms, s, m, h) in 1s..24h, "
                  "got \"0\"\n");
}

static void test_bare_numbers_are_not_durations(void **state)
{
    expect_errors("[node]\ndrain_timeout = 5\n[listener l]\nbind = 127.0.0.1:1\n"
                  "idle_timeout = 300\n",
                  "2: [node] drain_timeout: expected 0 (off) or a duration (ms, s, m, h) in "
                  "1ms..1h, got \"5\"\n"
                  "5: [listener l] idle_timeout: expected 0 (off) or a duration (ms, s, m, h) in "
                  "1s..720h, got \"300\"\n");
}

static void test_durations_are_checked_against_the_key_bounds(void **state)
{
    struct ml_snapshot *s = load_ok("[listener l]\nbind = 127.0.0.1:1\nidle_timeout = 1s\n"
                                    "max_connection_age = 720h\n");

    assert_int_equal(s->listeners[0].idle_timeout_ms, 1000);
    assert_int_equal(s->listeners[0].max_connection_age_ms, 720u * 3600000u);
    ml_snapshot_unref(s);
    expect_errors("[listener l]\nbind = 127.0.0.1:1\nidle_timeout = 999ms\n"
                  "max_connection_age = 721h\n",
                  "3: [listener l] idle_timeout: expected 0 (off) or a duration in 1s..720h, got "
                  "\"999ms\"\n"
                  "4: [listener l] max_connection_age: expected 0 (off) or a duration in "
                  "1s..720h, got \"721h\"\n");
}

static void test_duration_overflow_is_an_error_not_a_wrap(void **state)
{
    expect_errors("[cluster c]\nendpoint = 127.0.0.1:2\n"
                  "connect_timeout = 18446744073709551617ms\nkeepalive = 4294968s\n",
                  "3: [cluster c] connect_timeout: expected a duration (ms, s, m, h) in 1ms..1m, "
                  "got \"18446744073709551617ms\"\n"
                  "4: [cluster c] keepalive: expected 0 (off) or a duration in 1s..1h, got "
                  "\"4294968s\"\n");
}

static void test_sizes_in_bytes_and_binary_units(void **state)
{
    struct ml_snapshot *s = load_ok("[listener a]\nbind = 127.0.0.1:1\nwindow = 1024\n"
                                    "[listener b]\nbind = 127.0.0.1:2\nwindow = 2147483647\n"
                                    "[listener c]\nbind = 127.0.0.1:3\nwindow = 1GiB\n");

    assert_int_equal(s->listeners[0].window_bytes, 1024);
    assert_int_equal(s->listeners[1].window_bytes, 2147483647);
    assert_int_equal(s->listeners[2].window_bytes, 1073741824);
    ml_snapshot_unref(s);
    expect_errors("[listener a]\nbind = 127.0.0.1:1\nwindow = 1023\n"
                  "[listener b]\nbind = 127.0.0.1:2\nwindow = 2GiB\n"
                  "[listener c]\nbind = 127.0.0.1:3\nwindow = 64kb\n",
                  "3: [listener a] window: expected a size in bytes, KiB, MiB or GiB, "
                  "1KiB..2147483647, got \"1023\"\n"
                  "6: [listener b] window: expected a size in bytes, KiB, MiB or GiB, "
                  "1KiB..2147483647, got \"2GiB\"\n"
                  "9: [listener c] window: expected a size in bytes, KiB, MiB or GiB, "
                  "1KiB..2147483647, got \"64kb\"\n");
}

static void test_percents_take_decimals_with_or_without_the_sign(void **state)
{
    struct ml_snapshot *s = load_ok("[cluster a]\nendpoint = 127.0.0.1:1\n"
                                    "outlier_max_percent = 0.0001\n"
                                    "[cluster b]\nendpoint = 127.0.0.1:1\n"
                                    "outlier_max_percent = 100%\n"
                                    "[listener l]\nbind = 127.0.0.1:9\n"
                                    "[route r]\nlistener = l\nto = a\nfault_delay = 0.5% 1ms\n");

    assert_int_equal(s->clusters[0].outlier_max_ppm, 1);
    assert_int_equal(s->clusters[1].outlier_max_ppm, 1000000);
    assert_int_equal(s->routes[0].fault_delay_ppm, 5000);
    ml_snapshot_unref(s);
    expect_errors("[cluster a]\nendpoint = 127.0.0.1:1\noutlier_max_percent = 100.5\n"
                  "[cluster b]\nendpoint = 127.0.0.1:1\noutlier_max_percent = 0.00001\n",
                  "3: [cluster a] outlier_max_percent: expected 0..100, with or without %, got "
                  "\"100.5\"\n"
                  "6: [cluster b] outlier_max_percent: expected 0..100, with or without %, got "
                  "\"0.00001\"\n");
}

static void test_ranges_need_from_not_above_to(void **state)
{
    struct ml_snapshot *s = load_ok("[fleet]\nurl = ws://h\ninsecure = on\nbackoff = 1s..1s\n");

    assert_int_equal(s->fleet.backoff.from_ms, 1000);
    assert_int_equal(s->fleet.backoff.to_ms, 1000);
    ml_snapshot_unref(s);
    expect_errors("[fleet]\nurl = ws://h\ninsecure = on\nbackoff = 30s..500ms\n",
                  "4: [fleet] backoff: expected a range of durations FROM..TO (FROM <= TO) within "
                  "1ms..1h, got \"30s..500ms\"\n");
    expect_errors("[fleet]\nurl = ws://h\ninsecure = on\nbackoff = 0..1s\n",
                  "4: [fleet] backoff: expected a range of durations FROM..TO (FROM <= TO) within "
                  "1ms..1h, got \"0..1s\"\n");
}

static void test_addresses_v4_v6_and_ports(void **state)
{
    struct ml_snapshot *s = load_ok("[node]\nadmin = 127.0.0.2:15000\n"
                                    "[listener a]\nbind = [::]:15001\n"
                                    "[listener b]\nbind = 0.0.0.0:65535\n");

    assert_addr(&s->node.admin, AF_INET, "127.0.0.2", 15000, "127.0.0.2:15000");
    assert_addr(&s->listeners[0].bind, AF_INET6, "::", 15001, "[::]:15001");
    assert_addr(&s->listeners[1].bind, AF_INET, "0.0.0.0", 65535, "0.0.0.0:65535");
    ml_snapshot_unref(s);
    expect_errors("[listener a]\nbind = ::1:15001\n[listener b]\nbind = 127.0.0.1:0\n"
                  "[listener c]\nbind = localhost:1\n",
                  "2: [listener a] bind: expected IP:PORT with an IP literal ([::1]:PORT for "
                  "IPv6) and a port 1..65535, got \"::1:15001\"\n"
                  "4: [listener b] bind: expected IP:PORT with an IP literal ([::1]:PORT for "
                  "IPv6) and a port 1..65535, got \"127.0.0.1:0\"\n"
                  "6: [listener c] bind: expected IP:PORT with an IP literal ([::1]:PORT for "
                  "IPv6) and a port 1..65535, got \"localhost:1\"\n");
}

static void test_host_names_in_dns_sni_and_fleet_url(void **state)
{
#if ML_HAVE_DATA_TLS /* sni needs tls */
    struct ml_snapshot *s = load_ok("[cluster c]\ndns = a-b.example:1\nsni = x.y\ntls = on\n"
                                    "ca = /no-such-dir/ca\n"
                                    "[fleet]\nurl = wss://[::1]:9443/f\nca = /no-such-dir/ca\n");
#else
    struct ml_snapshot *s = load_ok("[cluster c]\ndns = a-b.example:1\n"
                                    "[fleet]\nurl = wss://[::1]:9443/f\nca = /no-such-dir/ca\n");
#endif

    assert_string_equal(s->clusters[0].dns_host, "a-b.example");
    assert_int_equal(s->clusters[0].dns_port, 1);
    assert_string_equal(s->fleet.url_host, "::1");
    assert_int_equal(s->fleet.url_port, 9443);
    ml_snapshot_unref(s);
    expect_errors("[cluster c]\ndns = a_b.example:1\nsni = -x.y\n"
                  "[fleet]\nurl = wss://a..b/f\nca = /no-such-dir/ca\n",
                  "2: [cluster c] dns: expected HOST:PORT (a host name and a port 1..65535), got "
                  "\"a_b.example:1\"\n"
                  "3: [cluster c] sni: expected a host name, got \"-x.y\"\n"
                  "5: [fleet] url: expected wss://HOST[:PORT][/PATH] or mqtts://HOST[:PORT] "
                  "(ws:// and mqtt:// only with insecure = on), got \"wss://a..b/f\"\n");
}

static void test_counts_are_checked_against_their_range(void **state)
{
    char text[512], want[512];

    snprintf(text, sizeof(text),
             "[listener l]\nbind = 127.0.0.1:1\nmax_streams = %d\nmax_connections = %d\n",
             CONFIG_ML_H2_MAX_STREAMS + 1, CONFIG_ML_MAX_CONNECTIONS);
    snprintf(want, sizeof(want), "3: [listener l] max_streams: expected 1..%d, got \"%d\"\n",
             CONFIG_ML_H2_MAX_STREAMS, CONFIG_ML_H2_MAX_STREAMS + 1);
    expect_errors(text, want);
    expect_errors("[cluster c]\nendpoint = 127.0.0.1:1\nmax_streams_per_connection = "
                  "99999999999999999999999\nmax_requests = +5\n",
                  "3: [cluster c] max_streams_per_connection: expected 1..2147483647, got "
                  "\"99999999999999999999999\"\n"
                  "4: [cluster c] max_requests: expected 1..1000000, got \"+5\"\n");
}

static void test_split_rate_and_fault_forms(void **state)
{
    struct ml_snapshot *s = load_ok("[listener l]\nbind = 127.0.0.1:1\n"
                                    "[route a]\nlistener = l\nto = c 0, d 3\nrate_limit = 1/m\n"
                                    "fault_abort = 100% 16\n"
                                    "[route b]\nlistener = l\nto = c 7\nrate_limit = 1000000/s\n"
                                    "[cluster c]\nendpoint = 127.0.0.1:2\n"
                                    "[cluster d]\nendpoint = 127.0.0.1:3\n");

    assert_int_equal(s->routes[0].split[0].weight, 0); /* a weight may be 0, not all */
    assert_int_equal(s->routes[0].split[1].weight, 3);
    assert_int_equal(s->routes[0].rate_per_min, 1);
    assert_int_equal(s->routes[0].rate_burst, 1);
    assert_int_equal(s->routes[0].fault_abort_ppm, 1000000);
    assert_int_equal(s->routes[0].fault_abort_status, 16);
    assert_int_equal(s->routes[1].split[0].weight, 7);
    assert_int_equal(s->routes[1].rate_per_min, 60000000);
    assert_int_equal(s->routes[1].rate_burst, 1000000);
    ml_snapshot_unref(s);
}

/* ---- references and duplicates -------------------------------------------------------------- */

static void test_dangling_references_name_the_key_line(void **state)
{
    expect_errors("[listener ingress]\nbind = 127.0.0.1:1\n"
                  "[route r]\nlistener = egress\nto = a 1, b 1\n"
                  "[cluster a]\nendpoint = 127.0.0.1:2\n"
                  "[authz nowhere]\n",
                  "4: [route r] listener: expected the name of a [listener] section, got "
                  "\"egress\"\n"
                  "5: [route r] to: expected the name of a [cluster] section, got \"b\"\n"
                  "8: [authz nowhere]: expected the name of a [listener] section after authz, "
                  "got \"nowhere\"\n");
}

static void test_references_may_point_forward(void **state)
{
    struct ml_snapshot *s = load_ok("[authz l]\n[route r]\nlistener = l\nto = c\n"
                                    "[cluster c]\nendpoint = 127.0.0.1:2\n"
                                    "[listener l]\nbind = 127.0.0.1:1\n");

    assert_int_equal(s->routes[0].listener, 0);
    assert_int_equal(s->routes[0].split[0].cluster, 0);
    assert_int_equal(s->authz[0].listener, 0);
    ml_snapshot_unref(s);
}

static void test_duplicate_sections_and_keys(void **state)
{
    expect_errors("[node]\n[cluster c]\nendpoint = 127.0.0.1:2\nlb = random\nlb = random\n"
                  "[cluster c]\nendpoint = 127.0.0.1:3\n[node]\n",
                  "5: [cluster c] lb: expected the key once (first on line 4), got \"random\" "
                  "again\n"
                  "6: [cluster c]: expected each section once, got it again (first on line 2)\n"
                  "8: [node]: expected each section once, got it again (first on line 1)\n");
}

static void test_duplicate_endpoints_and_binds(void **state)
{
    expect_errors("[listener a]\nbind = [::1]:1\n[listener b]\nbind = [0::1]:1\n"
                  "[listener c]\nbind = 127.0.0.1:15000\n"
                  "[cluster c]\nendpoint = 127.0.0.1:2\nendpoint = 127.0.0.1:02 weight=3\n",
                  "4: [listener b] bind: expected an address no other listener binds ([listener "
                  "a] on line 1), got \"[0::1]:1\"\n"
                  "6: [listener c] bind: expected an address other than the admin endpoint's "
                  "([node] admin), got \"127.0.0.1:15000\"\n"
                  "9: [cluster c] endpoint: expected each endpoint once in a cluster, got "
                  "\"127.0.0.1:02 weight=3\"\n");
}

static void test_admin_off_frees_its_address_and_remote_allows_any(void **state)
{
    struct ml_snapshot *s = load_ok("[node]\nadmin = off\n[listener l]\nbind = 127.0.0.1:15000\n");

    assert_false(s->node.admin.set);
    ml_snapshot_unref(s);
    /* admin_remote needs admin_token (issue 7): anyone who reaches the address could apply */
    expect_errors("[node]\nadmin = 0.0.0.0:15000\nadmin_remote = on\n",
                  "3: [node] admin_remote: expected admin_token with admin_remote = on (anyone "
                  "who reaches 0.0.0.0:15000 could apply a config), got \"on\" without it\n");
    expect_errors("[node]\nadmin = [2001:db8::1]:15000\n",
                  "2: [node] admin: expected a loopback address (127.0.0.0/8 or [::1]) unless "
                  "admin_remote = on, got \"[2001:db8::1]:15000\"\n");
}

static void test_required_keys_and_section_level_problems_use_the_header_line(void **state)
{
    expect_errors("\n[listener l]\n\n[route r]\nprefix = /\n[cluster c]\nlb = random\n"
                  "[fleet]\ninsecure = on\n",
                  "2: [listener l] bind: expected this key (required), got nothing\n"
                  "4: [route r] listener: expected this key (required), got nothing\n"
                  "4: [route r] to: expected this key (required), got nothing\n"
                  "6: [cluster c]: expected endpoint = IP:PORT (repeatable) or dns = HOST:PORT, "
                  "got no endpoints\n"
                  "8: [fleet] url: expected this key (required), got nothing\n");
}

static void test_exclusive_keys(void **state)
{
    expect_errors("[listener l]\nbind = 127.0.0.1:1\n"
                  "[route r]\nlistener = l\nto = c\nprefix = /a/\npath = /a/b\n"
                  "[cluster c]\nendpoint = 127.0.0.1:2\ndns = c.local:2\n",
                  "7: [route r] path: expected either prefix or path, not both, got \"/a/b\"\n"
                  "10: [cluster c] dns: expected either endpoint or dns, not both, got "
                  "\"c.local:2\"\n");
}

/* Listener and cluster TLS exist with ML_TLS (listeners: cert and key needed, ca for mtls;
 * clusters: ca needed); without it tls is refused, never served in plaintext. */
static void test_tls_on_is_refused_until_data_plane_tls_exists(void **state)
{
#if ML_HAVE_DATA_TLS
    expect_errors("[listener l]\nbind = 127.0.0.1:1\ntls = mtls\n"
                  "[cluster c]\nendpoint = 127.0.0.1:2\ntls = on\n",
                  "3: [listener l] tls: expected cert = PATH and key = PATH with tls = "
                  "on|mtls|permissive, got no cert\n"
                  "3: [listener l] tls: expected ca = PATH with tls = mtls (client certificates "
                  "chain to it), got no ca\n"
                  "6: [cluster c] tls: expected ca = PATH with tls = on|mtls (the endpoints' "
                  "certificates chain to it), got no ca\n");
#else
    expect_errors("[listener l]\nbind = 127.0.0.1:1\ntls = mtls\n"
                  "[cluster c]\nendpoint = 127.0.0.1:2\ntls = on\n",
                  "3: [listener l] tls: expected off: this build of meshlet has no data-plane TLS "
                  "(CONFIG_ML_TLS is off; never served in plaintext), got \"mtls\"\n"
                  "6: [cluster c] tls: expected off: this build of meshlet has no data-plane TLS "
                  "(CONFIG_ML_TLS is off; never served in plaintext), got \"on\"\n");
#endif
}

#if ML_HAVE_DATA_TLS
/* Writes pem to a new file under /tmp; its path into path[64]. */
static void write_pem(char *path, const char *pem)
{
    int fd;

    snprintf(path, 64, "/tmp/ml-snapshot-test-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, pem, strlen(pem)), (ssize_t)strlen(pem));
    close(fd);
}
#endif

static void test_listener_tls_with_cert_key_ca_is_accepted(void **state)
{
#if ML_HAVE_DATA_TLS
    char crt[64], key[64], ca[64], text[1024];
    struct ml_snapshot *s;

    /* `meshlet check` reads the files (tls/cert_check.h): real ones */
    write_pem(crt, TEST_SERVER_PEM);
    write_pem(key, TEST_SERVER_KEY);
    write_pem(ca, TEST_CA_PEM);
    snprintf(text, sizeof(text),
             "[listener l]\nbind = 127.0.0.1:1\ntls = mtls\ncert = %s\nkey = %s\nca = %s\n"
             "[listener p]\nbind = 127.0.0.1:3\ntls = permissive\ncert = %s\nkey = %s\n"
             "[route r]\nlistener = l\nto = c\n[cluster c]\nendpoint = 127.0.0.1:2\n",
             crt, key, ca, crt, key);
    s = load_ok(text);
    assert_int_equal(s->listeners[0].tls, ML_CFG_TLS_MTLS);
    assert_string_equal(s->listeners[0].ca, ca);
    assert_int_equal(s->listeners[1].tls, ML_CFG_TLS_PERMISSIVE);
    ml_snapshot_unref(s);
    unlink(crt);
    unlink(key);
    unlink(ca);
#endif
    (void)state;
}

static void test_fleet_transport_rules(void **state)
{
    expect_errors("[fleet]\nurl = ws://h/f\n",
                  "2: [fleet] url: expected wss:// (ws:// only with insecure = on), got "
                  "\"ws://h/f\"\n");
    expect_errors("[fleet]\nurl = wss://h/f\n",
                  "1: [fleet] ca: expected this key with a wss:// url (the controller's "
                  "certificate is checked against it), got nothing\n");
    expect_errors("[fleet]\nurl = wss://h/f\nca = /no-such-dir/ca\ncert = /no-such-dir/c\n",
                  "1: [fleet] key: expected this key with cert (the private key of the node's "
                  "client certificate), got nothing\n");
    expect_errors("[fleet]\nurl = wss://h/f\nca = /no-such-dir/ca\nkey = /no-such-dir/k\n",
                  "1: [fleet] cert: expected this key with key (the node's client certificate), "
                  "got nothing\n");
}

/* ---- syntax --------------------------------------------------------------------------------- */

static void test_syntax_errors_name_their_section(void **state)
{
    expect_errors("log = info\n[node]\nlog: debug\n= x\n[route unterminated\nbind = x\n"
                  "[node] trailing\n",
                  "1: log: expected a [section] header before the first key, got \"info\"\n"
                  "3: [node]: expected \"key = value\", a [section] header or a comment, got "
                  "\"log: debug\"\n"
                  "4: [node]: expected \"key = value\", got \"= x\"\n"
                  "5: expected a section header like [cluster NAME], got \"[route "
                  "unterminated\"\n"
                  "7: expected nothing after the section header but a comment, got \"[node] "
                  "trailing\"\n");
}

static void test_unknown_kinds_and_keys(void **state)
{
    expect_errors("[service s]\nx = 1\n[node]\nadmn = off\nwhatever = 1\n",
                  "1: [service s]: expected a section kind of node, fleet, listener, route, "
                  "cluster or authz, got \"service\"\n"
                  "4: [node] admn: expected a key of [node] (did you mean admin?), got \"off\"\n"
                  "5: [node] whatever: expected a key of [node], got \"1\"\n");
}

static void test_section_name_of_63_is_fine_64_is_not(void **state)
{
    char text[256], want[512], name[65];
    struct ml_snapshot *s;

    memset(name, 'n', 64);
    name[63] = '\0';
    snprintf(text, sizeof(text), "[cluster %s]\nendpoint = 127.0.0.1:1\n", name);
    s = load_ok(text);
    assert_int_equal(strlen(s->clusters[0].name), 63);
    ml_snapshot_unref(s);

    name[63] = 'n';
    name[64] = '\0';
    snprintf(text, sizeof(text), "[cluster %s]\nendpoint = 127.0.0.1:1\n", name);
    snprintf(want, sizeof(want),
             "1: [cluster %s]: expected a name of 1..63 characters from A-Z a-z 0-9 _ . -, got "
             "\"%s\"\n",
             name, name);
    expect_errors(text, want);
}

static void test_crlf_file_reads_like_lf(void **state)
{
    struct ml_snapshot *s = load_ok("[node]\r\nlog = warn\r\n[listener l]\r\nbind = 127.0.0.1:1\r\n"
                                    "[route r]\r\nlistener = l\r\nto = c\r\nheader = x-a: b\r\n"
                                    "[cluster c]\r\nendpoint = 127.0.0.1:2 weight=3\r\n");

    assert_int_equal(s->node.log_level, 1);
    assert_string_equal(s->routes[0].headers[0].value, "b");
    assert_int_equal(s->clusters[0].endpoints[0].weight, 3);
    ml_snapshot_unref(s);
    expect_errors("[node]\r\n\r\nlog = loud\r\n", "3: [node] log: expected error, warn, info or "
                                                  "debug, got \"loud\"\n");
}

static void test_utf8_bom_at_the_start_is_ignored(void **state)
{
    struct ml_snapshot *s = load_ok("\xef\xbb\xbf[node]\nlog = error\n");

    assert_int_equal(s->node.log_level, 0);
    ml_snapshot_unref(s);
    expect_errors("\xef\xbb\xbf[nodes]\n", "1: [nodes]: expected a section kind of node, fleet, "
                                           "listener, route, cluster or authz, got \"nodes\"\n");
    /* only at the start: elsewhere it is not a key */
    expect_errors("[node]\n\xef\xbb\xbflog = info\n",
                  "2: [node] \xef\xbb\xbflog: expected a key of [node], got \"info\"\n");
}

static void test_line_of_1022_bytes_is_read_1023_is_refused(void **state)
{
    char text[1200], want[512];
    const char *head = "[node]\nstate_dir = /";
    size_t h = strlen(head), key = strlen("state_dir = ");
    struct ml_snapshot *s;

    /* a line of 1022 bytes: "state_dir = /" and 1009 more */
    memcpy(text, head, h);
    memset(text + h, 'd', 1022 - (key + 1));
    strcpy(text + h + 1022 - (key + 1), "\n");
    s = load_ok(text);
    assert_int_equal(strlen(s->node.state_dir), 1022 - key);
    ml_snapshot_unref(s);

    memset(text + h, 'd', 1023 - (key + 1));
    strcpy(text + h + 1023 - (key + 1), "\nlog = loud\n");
    snprintf(want, sizeof(want),
             "2: [node]: expected a line of at most 1022 bytes, got 1023 bytes (\"state_dir = "
             "/ddddddddddddddddddddddddddddddd...\")\n"
             "3: [node] log: expected error, warn, info or debug, got \"loud\"\n");
    expect_errors(text, want); /* and the line after it is read as a line of its own */
}

static void test_limits_per_route_cluster_and_config(void **state)
{
    char *text = malloc(64 * 1024), want[512];
    size_t n = 0;

    assert_non_null(text);
    n += (size_t)sprintf(text + n, "[listener l]\nbind = 127.0.0.1:1\n[route r]\nlistener = l\n"
                                   "to = c\n");
    for (int i = 0; i <= CONFIG_ML_MAX_ROUTE_HEADERS; i++) {
        n += (size_t)sprintf(text + n, "header = x-h%d\n", i);
    }
    n += (size_t)sprintf(text + n, "[cluster c]\nendpoint = 127.0.0.1:1\n");
    snprintf(want, sizeof(want),
             "%d: [route r] header: expected at most %d header keys per route "
             "(CONFIG_ML_MAX_ROUTE_HEADERS), got \"x-h%d\"\n",
             6 + CONFIG_ML_MAX_ROUTE_HEADERS, CONFIG_ML_MAX_ROUTE_HEADERS,
             CONFIG_ML_MAX_ROUTE_HEADERS);
    expect_errors(text, want);

    n = 0;
    for (int i = 0; i <= CONFIG_ML_MAX_LISTENERS; i++) {
        n += (size_t)sprintf(text + n, "[listener l%d]\nbind = 127.0.0.1:%d\n", i, 1000 + i);
    }
    snprintf(want, sizeof(want),
             "%d: [listener l%d]: expected at most %d [listener] sections "
             "(CONFIG_ML_MAX_LISTENERS)\n",
             2 * CONFIG_ML_MAX_LISTENERS + 1, CONFIG_ML_MAX_LISTENERS, CONFIG_ML_MAX_LISTENERS);
    expect_errors(text, want);

    n = (size_t)sprintf(text, "[cluster c]\n");
    for (int i = 0; i <= CONFIG_ML_MAX_ENDPOINTS; i++) {
        n += (size_t)sprintf(text + n, "endpoint = 127.0.0.1:%d\n", 1000 + i);
    }
    snprintf(want, sizeof(want),
             "%d: [cluster c] endpoint: expected at most %d endpoints per cluster "
             "(CONFIG_ML_MAX_ENDPOINTS), got \"127.0.0.1:%d\"\n",
             CONFIG_ML_MAX_ENDPOINTS + 2, CONFIG_ML_MAX_ENDPOINTS, 1000 + CONFIG_ML_MAX_ENDPOINTS);
    expect_errors(text, want);
    free(text);
}

/* ---- whole-text problems -------------------------------------------------------------------- */

static void test_text_that_is_not_utf8_is_refused_as_unreadable(void **state)
{
    struct ml_config_errors errs;
    struct ml_snapshot *s;

    ml_config_errors_init(&errs);
    assert_int_equal(ml_config_load_text("[node]\n\0log = x\n", 16, NULL, &errs, &s), -EILSEQ);
    assert_null(s);
    assert_int_equal(errs.n, 1);
    assert_int_equal(errs.v[0].line, 0);
    assert_string_equal(errs.v[0].text,
                        "expected a text file (UTF-8), got a NUL byte at byte 7 (line 2)");
    ml_config_errors_clear(&errs);
    assert_int_equal(ml_config_load_text("[node]\nid = caf\xe9\n", 16, NULL, &errs, &s), -EILSEQ);
    assert_string_equal(errs.v[0].text,
                        "expected a text file (UTF-8), got a byte that is not UTF-8 at byte 15 "
                        "(line 2)");
    assert_true(ml_config_load_unreadable(-EILSEQ));
    assert_false(ml_config_load_unreadable(-EINVAL));
    ml_config_errors_deinit(&errs);
}

static void test_text_larger_than_kconfig_maximum_is_refused(void **state)
{
    size_t n = CONFIG_ML_MAX_CONFIG_BYTES + 1;
    char *big = malloc(n), want[128];
    struct ml_config_errors errs;
    struct ml_snapshot *s;

    assert_non_null(big);
    memset(big, '\n', n);
    ml_config_errors_init(&errs);
    assert_int_equal(ml_config_load_text(big, n, NULL, &errs, &s), -EFBIG);
    snprintf(want, sizeof(want),
             "expected at most %d bytes (CONFIG_ML_MAX_CONFIG_BYTES), got %zu bytes",
             CONFIG_ML_MAX_CONFIG_BYTES, n);
    assert_string_equal(errs.v[0].text, want);
    ml_config_errors_clear(&errs);
    assert_int_equal(ml_config_load_text(big, n - 1, NULL, &errs, &s), 0); /* at the cap: fine */
    ml_snapshot_unref(s);
    ml_config_errors_deinit(&errs);
    free(big);
}

static void test_many_errors_join_into_4_KiB_with_and_N_more(void **state)
{
    char *text = malloc(32 * 1024), buf[ML_CONFIG_ERRORS_TEXT_MAX], want[64];
    struct ml_config_errors errs;
    struct ml_snapshot *s;
    size_t n = 0, kept = 1;

    assert_non_null(text);
    n += (size_t)sprintf(text, "[node]\n");
    for (int i = 0; i < 300; i++) {
        n += (size_t)sprintf(text + n, "bad%d = x\n", i);
    }
    ml_config_errors_init(&errs);
    assert_int_equal(ml_config_load_text(text, n, NULL, &errs, &s), -EINVAL);
    assert_int_equal(ml_config_errors_count(&errs), 300);
    assert_true(ml_config_errors_join(&errs, "push", buf, sizeof(buf)) < sizeof(buf));
    assert_memory_equal(buf, "push:2: [node] bad0: expected a key of [node], got \"x\"\n", 55);
    for (const char *p = buf; (p = strchr(p, '\n')) != NULL; p++) {
        kept++;
    }
    snprintf(want, sizeof(want), "... and %zu more", 300 - (kept - 1));
    assert_string_equal(strrchr(buf, '\n') + 1, want);
    ml_config_errors_deinit(&errs);
    free(text);
}

static void test_errors_past_the_maximum_are_counted(void **state)
{
    size_t cap = 16 * (CONFIG_ML_CONFIG_MAX_ERRORS + 10) + 64, n;
    char *text = malloc(cap);
    struct ml_config_errors errs;
    struct ml_snapshot *s;

    assert_non_null(text);
    n = (size_t)sprintf(text, "[node]\n");
    for (int i = 0; i < CONFIG_ML_CONFIG_MAX_ERRORS + 10; i++) {
        n += (size_t)sprintf(text + n, "log = x\n");
    }
    ml_config_errors_init(&errs);
    assert_int_equal(ml_config_load_text(text, n, NULL, &errs, &s), -EINVAL);
    assert_int_equal(ml_config_errors_count(&errs), CONFIG_ML_CONFIG_MAX_ERRORS + 10);
    assert_int_equal(errs.n, CONFIG_ML_CONFIG_MAX_ERRORS);
    assert_int_equal(errs.n_dropped, 10);
    ml_config_errors_deinit(&errs);
    free(text);
}

/* ---- files ---------------------------------------------------------------------------------- */

static void test_load_file_reports_unreadable_files_in_one_line(void **state)
{
    char dir[] = "/tmp/ml-snapshot-test-XXXXXX", path[128];
    struct ml_config_errors errs;
    struct ml_snapshot *s;
    FILE *f;

    assert_non_null(mkdtemp(dir));
    ml_config_errors_init(&errs);

    snprintf(path, sizeof(path), "%s/missing.ini", dir);
    assert_int_equal(ml_config_load_file(path, &errs, &s), -ENOENT);
    assert_null(s);
    assert_int_equal(errs.n, 1);
    assert_int_equal(errs.v[0].line, 0);
    assert_memory_equal(errs.v[0].text, "cannot read: ", 13);
    ml_config_errors_clear(&errs);

    assert_int_equal(ml_config_load_file(dir, &errs, &s), -EISDIR);
    assert_int_equal(errs.n, 1);
    ml_config_errors_clear(&errs);

    snprintf(path, sizeof(path), "%s/fifo.ini", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_true(ml_config_load_unreadable(ml_config_load_file(path, &errs, &s)));
    assert_string_equal(errs.v[0].text, "cannot read: not a regular file");
    unlink(path);
    ml_config_errors_clear(&errs);

    snprintf(path, sizeof(path), "%s/ok.ini", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(SKELETON, f);
    fclose(f);
    assert_int_equal(ml_config_load_file(path, &errs, &s), 0);
    assert_int_equal(s->n_clusters, 1);
    ml_snapshot_unref(s);

    f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i <= CONFIG_ML_MAX_CONFIG_BYTES / 8; i++) {
        fputs(";;;;;;;\n", f);
    }
    fclose(f);
    assert_int_equal(ml_config_load_file(path, &errs, &s), -EFBIG);
    assert_int_equal(errs.n, 1);
    unlink(path);
    rmdir(dir);
    ml_config_errors_deinit(&errs);
}

/* ---- allocation failures -------------------------------------------------------------------- */

/* Fails the 1st, 2nd, ... allocation of a load in turn: every run ends in 0 or -ENOMEM with no
 * half-built snapshot, and once enough allocations succeed, the load does. Run under valgrind to
 * see that nothing leaks. */
static void torture(const char *text, int ok_rv)
{
    long n;

    for (n = 0; n < 100000; n++) {
        struct ml_config_errors errs;
        struct ml_snapshot *s = (struct ml_snapshot *)1;
        int rv;

        ml_config_errors_init(&errs);
        ml_alloc_fail_after(n);
        rv = ml_config_load_text(text, strlen(text), NULL, &errs, &s);
        ml_alloc_fail_after(-1);
        if (rv == ok_rv) {
            if (rv == 0) {
                assert_non_null(s);
                assert_int_equal(ml_config_errors_count(&errs), 0);
                ml_snapshot_unref(s);
            } else {
                assert_null(s);
            }
            ml_config_errors_deinit(&errs);
            break;
        }
        if (rv != -ENOMEM) {
            fail_msg("allocation %ld failed: got %d, expected %d or -ENOMEM", n + 1, rv, ok_rv);
        }
        assert_null(s);
        ml_config_errors_deinit(&errs);
    }
    assert_true(n > 0 && n < 100000);
}

static void test_each_allocation_failing_in_turn_gives_enomem_or_success(void **state)
{
    torture(rich, 0);
    torture(SKELETON, 0);
    torture("", 0);
}

static void test_each_allocation_failing_in_turn_on_an_invalid_config(void **state)
{
    torture("[node]\nlog = loud\n[route r]\nlistener = x\nto = a 1, b 1\n[cluster a]\n", -EINVAL);
}

/* CONFIG: "a number 0..16 is accepted too" wherever a gRPC status is: retry_on's statuses by
 * their codes; a code that is not one of its conditions is refused like an unknown name. */
static void test_retry_on_takes_the_statuses_by_their_codes(void **state)
{
    struct ml_snapshot *s = load_ok("[listener ingress]\nbind = 127.0.0.1:15001\n"
                                    "[route all]\nlistener = ingress\nto = greeter\n"
                                    "retry_on = 14, 8, 1, 4, reset\n"
                                    "[cluster greeter]\nendpoint = 127.0.0.1:50051\n");

    (void)state;
    assert_int_equal(s->routes[0].retry_on,
                     ML_CFG_RETRY_UNAVAILABLE | ML_CFG_RETRY_RESOURCE_EXHAUSTED |
                         ML_CFG_RETRY_CANCELLED | ML_CFG_RETRY_DEADLINE_EXCEEDED |
                         ML_CFG_RETRY_RESET);
    ml_snapshot_unref(s);
    expect_errors(SKELETON "[route r]\nlistener = ingress\nto = greeter\nretry_on = 14, 13\n",
                  "11: [route r] retry_on: expected a comma-separated list of unavailable, reset, "
                  "connect-failure, resource-exhausted, cancelled, deadline-exceeded (or the codes "
                  "14, 8, 1, 4), got \"14, 13\"\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_on_takes_the_statuses_by_their_codes),
        cmocka_unit_test(test_empty_config_gives_the_documented_node_defaults),
        cmocka_unit_test(test_node_id_defaults_to_the_host_name),
        cmocka_unit_test(test_sections_with_only_required_keys_get_the_documented_defaults),
        cmocka_unit_test(test_fleet_defaults),
        cmocka_unit_test(test_rich_config_fills_node_and_fleet),
        cmocka_unit_test(test_rich_config_fills_listeners_in_file_order),
        cmocka_unit_test(test_rich_config_fills_routes_and_resolves_references),
        cmocka_unit_test(test_rich_config_fills_clusters),
        cmocka_unit_test(test_rich_config_keeps_authz_rules_in_file_order),
        cmocka_unit_test(test_summary_counts_sections_and_endpoints),
        cmocka_unit_test(test_local_version_is_the_text_sha256_prefix),
        cmocka_unit_test(test_pushed_version_is_kept_and_bounded),
        cmocka_unit_test(test_text_is_copied_and_need_not_be_nul_terminated),
        cmocka_unit_test(test_refcount_keeps_the_snapshot_until_the_last_unref),
        cmocka_unit_test(test_zero_means_off_where_the_key_says_so),
        cmocka_unit_test(test_bare_numbers_are_not_durations),
        cmocka_unit_test(test_durations_are_checked_against_the_key_bounds),
        cmocka_unit_test(test_duration_overflow_is_an_error_not_a_wrap),
        cmocka_unit_test(test_sizes_in_bytes_and_binary_units),
        cmocka_unit_test(test_percents_take_decimals_with_or_without_the_sign),
        cmocka_unit_test(test_ranges_need_from_not_above_to),
        cmocka_unit_test(test_addresses_v4_v6_and_ports),
        cmocka_unit_test(test_host_names_in_dns_sni_and_fleet_url),
        cmocka_unit_test(test_counts_are_checked_against_their_range),
        cmocka_unit_test(test_split_rate_and_fault_forms),
        cmocka_unit_test(test_dangling_references_name_the_key_line),
        cmocka_unit_test(test_references_may_point_forward),
        cmocka_unit_test(test_duplicate_sections_and_keys),
        cmocka_unit_test(test_duplicate_endpoints_and_binds),
        cmocka_unit_test(test_admin_off_frees_its_address_and_remote_allows_any),
        cmocka_unit_test(test_required_keys_and_section_level_problems_use_the_header_line),
        cmocka_unit_test(test_exclusive_keys),
        cmocka_unit_test(test_tls_on_is_refused_until_data_plane_tls_exists),
        cmocka_unit_test(test_listener_tls_with_cert_key_ca_is_accepted),
        cmocka_unit_test(test_fleet_transport_rules),
        cmocka_unit_test(test_syntax_errors_name_their_section),
        cmocka_unit_test(test_unknown_kinds_and_keys),
        cmocka_unit_test(test_section_name_of_63_is_fine_64_is_not),
        cmocka_unit_test(test_crlf_file_reads_like_lf),
        cmocka_unit_test(test_utf8_bom_at_the_start_is_ignored),
        cmocka_unit_test(test_line_of_1022_bytes_is_read_1023_is_refused),
        cmocka_unit_test(test_limits_per_route_cluster_and_config),
        cmocka_unit_test(test_text_that_is_not_utf8_is_refused_as_unreadable),
        cmocka_unit_test(test_text_larger_than_kconfig_maximum_is_refused),
        cmocka_unit_test(test_many_errors_join_into_4_KiB_with_and_N_more),
        cmocka_unit_test(test_errors_past_the_maximum_are_counted),
        cmocka_unit_test(test_load_file_reports_unreadable_files_in_one_line),
        cmocka_unit_test(test_each_allocation_failing_in_turn_gives_enomem_or_success),
        cmocka_unit_test(test_each_allocation_failing_in_turn_on_an_invalid_config),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
