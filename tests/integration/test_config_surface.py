"""Never fail open, never promise what is not there (issue 7). Every key of
runtime/config/schema.def is walked: a key `meshlet check` accepts with a value that asks for
something must be listed in EFFECT_TESTS, which names the test showing what the key does; every
other key must be refused, with its line, for every such value, and accepted with its off value
(the keys whose code does not exist yet, runtime/config/unimplemented.c). A new key fails this
test until it has one or the other. A key or value of a feature this build left out (its Kconfig,
conftest's kconfig fixture) must be refused instead, naming the symbol that is off. Plus the
effect tests of the keys no other file showed."""

import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import grpc
import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from conftest import scaled
from grpc_peers import channel, unary

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "runtime" / "config" / "schema.def"
# ML_SYMBOL_ML_HAVE_X "CONFIG_ML_X": the Kconfig symbol of each FEATURE column of schema.def
FEATURES_H = ROOT / "runtime" / "config" / "features.h"
# admin_token names a file `meshlet check` reads: the walk writes one here first.
TOKEN_FILE = Path("/tmp/meshlet-surface-admin.token")
# listener cert/key/ca name files `meshlet check` reads (tls/cert_check.h): made with openssl first.
L_CA = Path("/tmp/meshlet-surface-ca.pem")
L_CRT = Path("/tmp/meshlet-surface-l.crt")
L_KEY = Path("/tmp/meshlet-surface-l.key")


def make_listener_pems():
    def run(*args):
        subprocess.run(["openssl", *args], cwd=L_CA.parent, check=True, capture_output=True,
                       timeout=scaled(30))

    run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "meshlet-surface-ca.key")
    run("req", "-x509", "-new", "-key", "meshlet-surface-ca.key", "-subj", "/CN=surface-ca",
        "-days", "30", "-out", L_CA.name)
    run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", L_KEY.name)
    run("req", "-new", "-key", L_KEY.name, "-subj", "/CN=localhost", "-out",
        "meshlet-surface-l.csr")
    run("x509", "-req", "-in", "meshlet-surface-l.csr", "-CA", L_CA.name, "-CAkey",
        "meshlet-surface-ca.key", "-CAcreateserial", "-days", "30", "-out", L_CRT.name)

# (kind, key) → the test that shows the key's effect: "FILE::TEST", FILE relative to the repo.
# A key whose values come one at a time (lb) is listed per value: (kind, key, value).
EFFECT_TESTS = {
    ("node", "id"): "tests/integration/test_fleet_hostile.py::"
                    "test_hello_says_who_the_node_is_and_status_comes_every_interval",
    ("node", "admin"): "tests/integration/test_admin.py::"
                       "test_admin_off_leaves_nothing_listening_but_the_listeners",
    ("node", "admin_remote"): "tests/unit/config/snapshot_test.c::"
                              "test_admin_off_frees_its_address_and_remote_allows_any",
    ("node", "admin_token"): "tests/integration/test_admin_hardening.py::"
                             "test_token_required_for_stats_config_and_post",
    ("node", "log"): "tests/integration/test_config_surface.py::"
                     "test_log_level_warn_leaves_out_info_lines",
    ("node", "log_target"): "tests/integration/test_device_logs.py::"
                            "test_syslog_target_sends_one_datagram_per_line_with_its_priority",
    ("node", "access_log"): "tests/integration/test_admin.py::"
                            "test_access_log_file_gets_one_logfmt_line_per_call",
    ("node", "access_log_format"): "tests/integration/test_logs.py::"
                                   "test_access_log_has_client_request_id_reason_and_us_durations",
    ("node", "state_dir"): "tests/integration/test_cli.py::test_run_creates_a_missing_state_dir",
    ("node", "workers"): "tests/integration/test_workers.py::"
                         "test_two_workers_spread_connections_and_sum_stats",
    ("node", "drain_timeout"): "tests/integration/test_deadlines_and_drain.py::"
                               "test_sigterm_resets_calls_still_running_at_drain_timeout",
    ("node", "labels"): "tests/integration/test_rollout.py::"
                        "test_labels_travel_in_hello_and_filter_fleet",
    ("fleet", "url"): "tests/integration/test_fleet_node.py::"
                      "test_push_is_acked_and_routes_the_next_call",
    ("fleet", "ca"): "tests/integration/test_fleet_hostile.py::"
                     "test_certificate_from_the_wrong_ca_is_refused_and_retried_within_backoff",
    ("fleet", "cert"): "tests/integration/test_fleet_node.py::"
                       "test_node_and_meshlet_controller_over_mutual_tls",
    ("fleet", "key"): "tests/integration/test_fleet_node.py::"
                      "test_node_and_meshlet_controller_over_mutual_tls",
    ("listener", "tls"): "tests/integration/test_tls_listener.py::"
                         "test_grpcio_all_four_call_kinds_over_tls",
    ("listener", "cert"): "tests/integration/test_tls_listener.py::"
                          "test_grpcio_all_four_call_kinds_over_tls",
    ("listener", "key"): "tests/integration/test_tls_listener.py::"
                         "test_grpcio_all_four_call_kinds_over_tls",
    ("listener", "ca"): "tests/integration/test_tls_listener.py::"
                        "test_mtls_wrong_ca_refused",
    ("cluster", "tls"): "tests/integration/test_tls_cluster.py::"
                        "test_all_four_call_kinds_to_a_tls_backend",
    ("cluster", "ca"): "tests/integration/test_tls_cluster.py::"
                       "test_wrong_ca_fails_the_connect_as_unknown_ca",
    ("cluster", "cert"): "tests/integration/test_tls_cluster.py::"
                         "test_tls_on_both_legs_with_mtls_to_a_backend_that_requires_a_client_cert",
    ("cluster", "key"): "tests/integration/test_tls_cluster.py::"
                        "test_tls_on_both_legs_with_mtls_to_a_backend_that_requires_a_client_cert",
    ("cluster", "sni"): "tests/integration/test_tls_cluster.py::"
                        "test_sni_is_sent_as_configured_else_none_for_an_ip_endpoint",
    ("cluster", "identity"): "tests/integration/test_tls_cluster.py::"
                             "test_wrong_san_for_identity_fails_the_connect",
    ("fleet", "backoff"): "tests/integration/test_fleet_hostile.py::"
                          "test_no_controller_at_all_gets_no_busy_loop",
    ("fleet", "report_interval"): "tests/integration/test_fleet_hostile.py::"
                                  "test_status_reports_are_spaced_by_report_interval",
    ("fleet", "insecure"): "tests/unit/config/snapshot_test.c::test_fleet_transport_rules",
    ("listener", "bind"): "tests/integration/test_proxy.py::"
                          "test_unary_call_is_relayed_with_its_payload",
    ("listener", "max_connections"): "tests/integration/test_config_surface.py::"
                                     "test_listener_max_connections_refuses_the_connection_past_it",
    ("listener", "max_streams"): "tests/integration/test_config_surface.py::"
                                 "test_listener_window_and_max_streams_are_advertised",
    ("listener", "window"): "tests/integration/test_config_surface.py::"
                            "test_listener_window_and_max_streams_are_advertised",
    ("listener", "idle_timeout"): "tests/integration/test_deadlines_and_drain.py::"
                                  "test_idle_timeout_closes_an_idle_downstream_connection",
    ("listener", "max_connection_age"): "tests/integration/test_deadlines_and_drain.py::"
                                        "test_max_connection_age_sends_goaway_and_lets_calls_in_flight_finish",
    ("listener", "stream_stall_timeout"): "tests/integration/test_fair_share.py::"
                                          "test_a_stalled_stream_is_reset_after_stream_stall_timeout",
    ("route", "listener"): "tests/unit/proxy/route_test.c::"
                           "test_routes_of_other_listeners_are_not_considered",
    ("route", "authority"): "tests/unit/proxy/route_test.c::"
                            "test_authority_glob_matches_with_and_without_port",
    ("route", "prefix"): "tests/unit/proxy/route_test.c::test_prefix_matches_paths_starting_with_it",
    ("route", "path"): "tests/unit/proxy/route_test.c::"
                       "test_exact_path_needs_the_whole_path_and_ignores_the_query",
    ("route", "header"): "tests/unit/proxy/route_test.c::"
                         "test_header_name_matches_case_insensitively_value_exactly",
    ("route", "to"): "tests/integration/test_proxy.py::test_weighted_split_sends_calls_to_both_clusters",
    ("route", "timeout"): "tests/integration/test_deadlines_and_drain.py::"
                          "test_route_timeout_applies_to_a_call_without_a_client_deadline",
    ("cluster", "endpoint"): "tests/integration/test_proxy.py::"
                             "test_unary_calls_on_one_channel_are_spread_round_robin_per_call",
    ("cluster", "connect_timeout"): "tests/integration/test_config_surface.py::"
                                    "test_cluster_connect_timeout_bounds_a_connect_that_hangs",
    ("cluster", "keepalive"): "tests/integration/test_deadlines_and_drain.py::"
                              "test_unanswered_keepalive_ping_closes_a_dead_upstream_connection",
    ("cluster", "max_connections"): "tests/integration/test_proxy.py::"
                                    "test_calls_beyond_the_pool_wait_up_to_max_pending_then_get_unavailable",
    ("cluster", "max_streams_per_connection"):
        "tests/integration/test_proxy.py::"
        "test_calls_beyond_the_pool_wait_up_to_max_pending_then_get_unavailable",
    ("cluster", "max_pending"): "tests/integration/test_proxy.py::"
                                "test_calls_beyond_the_pool_wait_up_to_max_pending_then_get_unavailable",
    ("cluster", "max_requests"): "tests/integration/test_proxy.py::"
                                 "test_max_requests_caps_the_active_calls_of_a_cluster",
    ("cluster", "max_share"): "tests/integration/test_fair_share.py::"
                              "test_a_slow_reader_cannot_take_the_stream_slots_other_clients_need",
    ("cluster", "lb", "random"): "tests/unit/balance/lb_random_test.c::"
                                 "test_random_spreads_picks_by_weight_within_binomial_bounds",
    ("route", "retry_on"): "tests/integration/test_retries_faults_limits.py::"
                           "test_a_status_not_in_retry_on_is_relayed_at_once",
    ("route", "retries"): "tests/integration/test_retries_faults_limits.py::"
                          "test_a_backend_killed_under_load_costs_no_unary_call",
    ("route", "retry_backoff"): "tests/integration/test_retries_faults_limits.py::"
                                "test_retry_backoff_gaps_stay_within_bounds_and_grow_with_the_attempt",
    ("cluster", "max_retries"): "tests/integration/test_retries_faults_limits.py::"
                                "test_max_retries_in_flight_stops_retries_and_the_failure_stands",
    ("route", "fault_abort"): "tests/integration/test_retries_faults_limits.py::"
                              "test_fault_abort_20_percent_of_2000_calls_lands_in_the_binomial_interval",
    ("route", "fault_delay"): "tests/integration/test_retries_faults_limits.py::"
                              "test_fault_delay_holds_its_share_of_calls",
    ("route", "fault_headers"): "tests/integration/test_retries_faults_limits.py::"
                                "test_fault_headers_delay_and_abort_one_call",
    ("route", "rate_limit"): "tests/integration/test_retries_faults_limits.py::"
                             "test_rate_limit_burst_then_resource_exhausted_then_it_refills",
    ("cluster", "lb", "least_request"): "tests/integration/test_lb_policies.py::"
                                        "test_least_request_sends_clearly_fewer_calls_to_a_slow_backend",
    ("cluster", "lb", "ring_hash"): "tests/integration/test_lb_policies.py::"
                                    "test_hash_policy_keeps_a_key_on_one_backend_and_moves_about_a_third_when_one_leaves",
    ("cluster", "lb", "maglev"): "tests/integration/test_lb_policies.py::"
                                 "test_hash_policy_keeps_a_key_on_one_backend_and_moves_about_a_third_when_one_leaves",
    ("cluster", "hash"): "tests/integration/test_lb_policies.py::"
                         "test_hash_policy_keeps_a_key_on_one_backend_and_moves_about_a_third_when_one_leaves",
    ("cluster", "health_check"): "tests/integration/test_health_checks.py::"
                                 "test_not_serving_takes_an_endpoint_out_and_serving_brings_it_back",
    ("authz", "allow"): "tests/integration/test_authz.py::test_authz_matrix",
    ("authz", "deny"): "tests/integration/test_authz.py::test_authz_matrix",
    ("authz", "default"): "tests/integration/test_authz.py::test_authz_matrix",
    ("cluster", "health_check", "tcp"): "tests/integration/test_health_checks.py::"
                                        "test_tcp_check_against_a_closed_port_takes_it_out",
    ("cluster", "health_service"): "tests/integration/test_health_checks.py::"
                                   "test_health_service_names_the_service_checked",
    ("cluster", "health_interval"): "tests/integration/test_health_checks.py::"
                                    "test_checks_come_every_health_interval",
    ("cluster", "health_timeout"): "tests/integration/test_health_checks.py::"
                                   "test_a_check_unanswered_within_health_timeout_fails",
    ("cluster", "healthy_threshold"): "tests/integration/test_health_checks.py::"
        "test_not_serving_takes_an_endpoint_out_and_serving_brings_it_back",
    ("cluster", "unhealthy_threshold"): "tests/integration/test_health_checks.py::"
        "test_not_serving_takes_an_endpoint_out_and_serving_brings_it_back",
    ("cluster", "outlier_errors"): "tests/integration/test_outlier_and_breakers.py::"
        "test_a_killed_backend_is_ejected_after_outlier_errors_and_used_again_once_back",
    ("cluster", "outlier_ejection"): "tests/integration/test_outlier_and_breakers.py::"
        "test_a_killed_backend_is_ejected_after_outlier_errors_and_used_again_once_back",
    ("cluster", "outlier_max_percent"): "tests/integration/test_outlier_and_breakers.py::"
                                        "test_outlier_max_percent_keeps_the_last_endpoints_in",
    ("cluster", "dns"): "tests/integration/test_dns_endpoints.py::"
                        "test_calls_are_balanced_over_the_resolved_addresses",
    ("cluster", "dns_refresh"): "tests/integration/test_dns_endpoints.py::"
                                "test_changed_answer_moves_traffic_without_failing_calls",
}

# (kind, key) → values that ask for something (valid syntax), each with the keys it needs beside it
# in its section. Every key of schema.def needs a row: a key without one fails the walk.
ASKS = {
    ("node", "id"): ["gw-7"],
    ("node", "admin"): ["127.0.0.1:15999", "off"],
    ("node", "admin_remote"): [("on", {"admin": "0.0.0.0:15999", "admin_token": str(TOKEN_FILE)})],
    ("node", "admin_token"): [str(TOKEN_FILE)],
    ("node", "log"): ["debug", "warn"],
    ("node", "labels"): ["region=eu", "region=eu, ring=canary"],
    ("node", "log_target"): ["syslog", "stderr"],
    ("node", "access_log"): ["/tmp/meshlet-access.log", "off", "stdout"],
    ("node", "access_log_format"): ["json", "logfmt"],
    ("node", "state_dir"): ["/tmp/meshlet-state"],
    ("node", "drain_timeout"): ["1s"],
    ("node", "workers"): ["2", "1"],
    ("fleet", "url"): ["ws://127.0.0.1:9443/x"],
    # certificate files are read by the check: in a directory this machine lacks they are not
    # (a config checked off its board), test_cert_checks.py checks real ones
    ("fleet", "ca"): ["/no-such-dir/ca.pem"],
    ("fleet", "cert"): [("/no-such-dir/node.crt", {"key": "/no-such-dir/node.key"})],
    ("fleet", "key"): [("/no-such-dir/node.key", {"cert": "/no-such-dir/node.crt"})],
    ("fleet", "backoff"): ["1s..2s"],
    ("fleet", "report_interval"): ["2s"],
    ("fleet", "insecure"): ["on"],
    ("listener", "bind"): ["127.0.0.1:15998"],
    ("listener", "tls"): [("on", {"cert": str(L_CRT), "key": str(L_KEY)}),
                          ("mtls", {"cert": str(L_CRT), "key": str(L_KEY), "ca": str(L_CA)}),
                          ("permissive", {"cert": str(L_CRT), "key": str(L_KEY)})],
    ("listener", "cert"): [(str(L_CRT), {"key": str(L_KEY)})],
    ("listener", "key"): [(str(L_KEY), {"cert": str(L_CRT)})],
    ("listener", "ca"): [str(L_CA)],
    ("listener", "max_connections"): ["2"],
    ("listener", "max_streams"): ["10"],
    ("listener", "window"): ["16KiB"],
    ("listener", "idle_timeout"): ["1m"],
    ("listener", "max_connection_age"): ["1h"],
    ("listener", "stream_stall_timeout"): ["1s"],
    ("route", "listener"): ["l"],
    ("route", "authority"): ["*.example.com"],
    ("route", "prefix"): ["/a.B/"],
    ("route", "path"): ["/a.B/C"],
    ("route", "header"): ["x-canary: 1"],
    ("route", "to"): ["c 1, d 1"],
    ("route", "timeout"): ["2s"],
    ("route", "retry_on"): ["unavailable", "reset, connect-failure"],
    ("route", "retries"): ["1", "3"],
    ("route", "retry_backoff"): ["25ms..250ms", "1ms..1ms"],
    ("route", "fault_delay"): ["5% 100ms", "100% 1ms"],
    ("route", "fault_abort"): ["1% unavailable", "100% 14"],
    ("route", "fault_headers"): ["on"],
    ("route", "rate_limit"): ["100/s burst 20", "1/m"],
    ("cluster", "endpoint"): ["127.0.0.1:50061 weight=2"],
    ("cluster", "dns"): [("greeter.local:50051", {"endpoint": None})],
    ("cluster", "dns_refresh"): ["30s", "1s"],
    ("cluster", "lb"): ["least_request", "random", "ring_hash", "maglev"],
    ("cluster", "hash"): ["header:x-user", "authority", "path"],
    ("cluster", "tls"): [("on", {"ca": str(L_CA)}),
                         ("mtls", {"ca": str(L_CA), "cert": str(L_CRT), "key": str(L_KEY)})],
    ("cluster", "ca"): [(str(L_CA), {"tls": "on"})],
    ("cluster", "cert"): [(str(L_CRT), {"tls": "mtls", "ca": str(L_CA), "key": str(L_KEY)})],
    ("cluster", "key"): [(str(L_KEY), {"tls": "mtls", "ca": str(L_CA), "cert": str(L_CRT)})],
    ("cluster", "sni"): [("greeter.internal", {"tls": "on", "ca": str(L_CA)})],
    ("cluster", "identity"): [("spiffe://mesh.local/greeter", {"tls": "on", "ca": str(L_CA)}),
                              ("spiffe://mesh.local/*", {"tls": "on", "ca": str(L_CA)})],
    ("cluster", "connect_timeout"): ["250ms"],
    ("cluster", "keepalive"): ["10s"],
    ("cluster", "max_connections"): ["2"],
    ("cluster", "max_streams_per_connection"): ["10"],
    ("cluster", "max_pending"): ["8"],
    ("cluster", "max_requests"): ["8"],
    ("cluster", "max_share"): ["50"],
    ("cluster", "max_retries"): ["3", "1"],
    ("cluster", "health_check"): ["tcp", "grpc"],
    ("cluster", "health_service"): ["helloworld.Greeter"],
    ("cluster", "health_interval"): ["5s"],
    ("cluster", "health_timeout"): ["1s"],
    ("cluster", "healthy_threshold"): ["2"],
    ("cluster", "unhealthy_threshold"): ["3"],
    ("cluster", "outlier_errors"): ["5", "1"],
    ("cluster", "outlier_ejection"): ["30s"],
    ("cluster", "outlier_max_percent"): ["50", "100"],
    ("authz", "allow"): ["spiffe://mesh.local/a -> /a.B/*", "- -> /a.B/*"],
    ("authz", "deny"): ["* -> /grpc.reflection.*"],
    ("authz", "default"): ["deny", "allow"],
}

# The value that asks for nothing, of the keys refused otherwise (None: none; leave the key out).
OFF = {
    ("route", "retries"): "0", ("route", "fault_delay"): "0", ("route", "fault_abort"): "0",
    ("route", "fault_headers"): "off", ("route", "rate_limit"): "0",
    ("cluster", "lb"): "round_robin", ("cluster", "max_retries"): "0",
    ("cluster", "health_check"): "off", ("cluster", "health_service"): "",
    ("cluster", "outlier_errors"): "0", ("listener", "tls"): "off", ("cluster", "tls"): "off",
}

# What a try asks of the build beyond its key's FEATURE column in schema.def, each a Kconfig
# symbol with what the refusal says when it is off (the FEATURE column's keys: "(SYMBOL is off").
# A [fleet] section at all (config/validate_node.c refuses it on its header line):
KIND_NEEDS = {"fleet": "CONFIG_ML_FLEET"}
# tls other than off, on listeners and clusters (config/validate_tls.c, "CONFIG_ML_TLS is off"):
TLS_SYMBOL = "CONFIG_ML_TLS"
# A value whose code Kconfig may leave out, refused as not in this version (unimplemented.c):
VALUE_NEEDS = {("cluster", "lb", "ring_hash"): "CONFIG_ML_LB_RING_HASH",
               ("cluster", "lb", "maglev"): "CONFIG_ML_LB_MAGLEV"}
NOT_IN_THIS_VERSION = "not implemented in this version"

# A config every key is tried in: each section kind once, the [fleet] only when the key is one of
# it (a [fleet] asks for a controller).
BASE = {
    "node": {},
    "listener l": {"bind": "127.0.0.1:15997"},
    "route r": {"listener": "l", "to": "c"},
    "cluster c": {"endpoint": "127.0.0.1:50051"},
    "cluster d": {"endpoint": "127.0.0.1:50052"},
}
SECTION = {"node": "node", "fleet": "fleet", "listener": "listener l", "route": "route r",
           "cluster": "cluster c", "authz": "authz l"}


def schema_keys():
    text = SCHEMA.read_text()
    return re.findall(r"^ML_KEY\((\w+), (\w+),", text, re.M)


def macro_args(text, start):
    """The arguments of the macro call whose "(" is at text[start], split on the commas outside
    strings and parentheses."""
    args, cur, depth, i = [], "", 0, start + 1
    while True:
        ch = text[i]
        if ch == '"':
            end = i + 1
            while text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            cur += text[i:end + 1]
            i = end + 1
            continue
        if ch == "(":
            depth += 1
        elif ch == ")" and depth == 0:
            return [a.strip() for a in args + [cur]]
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            args.append(cur)
            cur = ""
            i += 1
            continue
        cur += ch
        i += 1


def key_symbols():
    """(kind, key) → the Kconfig symbol the key needs (schema.def's FEATURE column), or None."""
    names = dict(re.findall(r'^#define ML_SYMBOL_(ML_HAVE_\w+) "(CONFIG_\w+)"',
                            FEATURES_H.read_text(), re.M))
    text = SCHEMA.read_text()
    symbols = {}
    for m in re.finditer(r"^ML_KEY(\()", text, re.M):
        args = macro_args(text, m.start(1))
        feature = args[8]
        assert feature == "1" or feature in names, f"{args[:2]}: FEATURE {feature} not in features.h"
        symbols[(args[0], args[1])] = names.get(feature)
    return symbols


def needs(symbols, kind, key, value, extra):
    """[(symbol, what its refusal says)] this try needs compiled in."""
    out = []
    for k, v in [(key, value), *extra.items()]:
        if v is not None and symbols.get((kind, k)):
            out.append((symbols[(kind, k)], f"({symbols[(kind, k)]} is off"))
        if k == "tls" and v not in (None, "off"):
            out.append((TLS_SYMBOL, f"({TLS_SYMBOL} is off"))
    if kind in KIND_NEEDS:
        out.append((KIND_NEEDS[kind], f"({KIND_NEEDS[kind]} is off"))
    if (kind, key, value) in VALUE_NEEDS:
        out.append((VALUE_NEEDS[(kind, key, value)], NOT_IN_THIS_VERSION))
    return out


def config_with(kind, key, value, extra):
    sections = {name: dict(keys) for name, keys in BASE.items()}
    if kind == "fleet":
        sections["fleet"] = {"url": "ws://127.0.0.1:9443/x", "insecure": "on"}
    section = sections.setdefault(SECTION[kind], {})
    section[key] = value
    for k, v in extra.items():
        if v is None:
            section.pop(k, None)
        else:
            section[k] = v
    lines, key_line = [], None
    for name, keys in sections.items():
        lines.append(f"[{name}]")
        for k, v in keys.items():
            lines.append(f"{k} = {v}")
            if name == SECTION[kind] and k == key:
                key_line = len(lines)
        lines.append("")
    return "\n".join(lines) + "\n", key_line


def check(meshlet, workdir, text):
    path = workdir / "surface.ini"
    path.write_text(text)
    return meshlet("check", path), path


def test_every_schema_key_is_refused_unless_its_effect_is_tested(meshlet, workdir, kconfig):
    keys = schema_keys()
    assert len(keys) > 50, keys
    symbols = key_symbols()
    assert set(symbols) == set(keys), "schema.def read two ways differs"
    TOKEN_FILE.write_text("surface-walk-token-0123456789\n")
    TOKEN_FILE.chmod(0o600)
    make_listener_pems()
    problems = []
    for kind, key in keys:
        asks = ASKS.get((kind, key))
        if not asks:
            problems.append(f"[{kind}] {key}: no value in ASKS to try it with")
            continue
        for ask in asks:
            value, extra = ask if isinstance(ask, tuple) else (ask, {})
            text, line = config_with(kind, key, value, extra)
            r, path = check(meshlet, workdir, text)
            off = [(sym, says) for sym, says in needs(symbols, kind, key, value, extra)
                   if kconfig.get(sym) != "y"]
            if off:
                # compiled out: refused, saying so (the line is the key's, its section's or
                # its tls key's)
                for sym, says in off:
                    if r.returncode == 0 or not re.search(
                            rf"^{re.escape(str(path))}:\d+: .*{re.escape(says)}", r.stderr, re.M):
                        problems.append(f"[{kind}] {key} = {value}: {sym} is off in this build, "
                                        f"but not refused with \"{says}\": {r.stderr.strip()}")
                continue
            if (kind, key) in EFFECT_TESTS or (kind, key, value) in EFFECT_TESTS:
                if r.returncode != 0:
                    problems.append(f"[{kind}] {key} = {value}: in EFFECT_TESTS but refused: "
                                    f"{r.stderr.strip()}")
                continue
            if r.returncode == 0:
                problems.append(f"[{kind}] {key} = {value}: accepted, and no test shows its "
                                f"effect (add one to EFFECT_TESTS, or refuse it)")
                continue
            # refused where it stands: on the key's line, or on the [authz] header
            where = 1 + text.splitlines().index(f"[{SECTION[kind]}]") if kind == "authz" else line
            label = f"[{SECTION[kind]}]" + ("" if kind == "authz" else f" {key}")
            if not re.search(rf"^{re.escape(str(path))}:{where}: {re.escape(label)}: expected "
                             r".*(not implemented in this version|no data-plane TLS \(CONFIG_ML_TLS is off)",
                             r.stderr, re.M):
                problems.append(f"[{kind}] {key} = {value}: refused without saying it is not "
                                f"implemented on line {where}: {r.stderr.strip()}")
        # a key compiled out is refused whatever its value, as its asks showed
        compiled_in = symbols[(kind, key)] is None or kconfig.get(symbols[(kind, key)]) == "y"
        if (kind, key) in OFF and compiled_in:
            text, _ = config_with(kind, key, OFF[(kind, key)], {})
            r, _ = check(meshlet, workdir, text)
            if r.returncode != 0:
                problems.append(f"[{kind}] {key} = {OFF[(kind, key)]!r} (off) refused: "
                                f"{r.stderr.strip()}")
    assert not problems, "\n".join(problems)


def test_every_effect_test_named_exists():
    missing = []
    for (kind, key, *_), where in EFFECT_TESTS.items():
        file, name = where.split("::")
        src = (ROOT / file).read_text() if (ROOT / file).exists() else ""
        if not re.search(rf"\b(def|void) {re.escape(name)}\(", src):
            missing.append(f"[{kind}] {key}: {where} not found")
    assert not missing, "\n".join(missing)


# The features `meshlet version` lists, each present exactly when its Kconfig symbol is on.
FEATURE_SYMBOLS = {
    "admin": "CONFIG_ML_ADMIN", "fleet": "CONFIG_ML_FLEET", "controller": "CONFIG_ML_CONTROLLER",
    "dns": "CONFIG_ML_DNS", "health_check": "CONFIG_ML_HEALTH_CHECK", "fault": "CONFIG_ML_FAULT",
    "rate_limit": "CONFIG_ML_RATE_LIMIT", "tls": "CONFIG_ML_TLS",
    "lb.ring_hash": "CONFIG_ML_LB_RING_HASH", "lb.maglev": "CONFIG_ML_LB_MAGLEV",
}


def test_version_and_defaults_promise_only_what_works(meshlet, kconfig):
    # the fleet Hello sends the same list (test_fleet_hostile.py::
    # test_hello_says_who_the_node_is_and_status_comes_every_interval compares them)
    r = meshlet("version")
    features = next(line for line in r.stdout.splitlines() if line.startswith("features:"))
    for present in ("authz", "outlier", "lb.round_robin", "lb.random", "lb.least_request"):
        assert present in features.split(), features
    for name, symbol in FEATURE_SYMBOLS.items():
        assert (name in features.split()) == (kconfig.get(symbol) == "y"), (symbol, features)
    defaults = meshlet("check", "--defaults").stdout.splitlines()
    assert "outlier_errors = 5" in defaults and "max_retries = 3" in defaults
    assert "retries = 0" in defaults and "lb = round_robin" in defaults
    # cluster sni works now (TLS to upstreams): printed as a key not set, not as refused
    assert any(re.match(r"^;sni = +; not set$", line) for line in defaults), defaults


# ---- effects no other test showed ---------------------------------------------------------------

def admin_ready(port, timeout=10):
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.05)
    return False


def data_plane(listen, upstream, listener="", cluster=""):
    return (f"[listener in]\nbind = 127.0.0.1:{listen}\n{listener}\n"
            f"[route all]\nlistener = in\nto = c\n\n"
            f"[cluster c]\nendpoint = 127.0.0.1:{upstream}\n{cluster}\n")


def test_log_level_warn_leaves_out_info_lines(run_meshlet, free_port):
    admin, listen = free_port(), free_port()
    quiet = run_meshlet(f"[node]\nlog = warn\nadmin = 127.0.0.1:{admin}\n" +
                        data_plane(listen, free_port()), wait=False)
    assert admin_ready(admin), quiet.stderr
    assert " info: " not in quiet.stderr, quiet.stderr
    admin2, listen2 = free_port(), free_port()
    loud = run_meshlet(f"[node]\nlog = info\nadmin = 127.0.0.1:{admin2}\n" +
                       data_plane(listen2, free_port()))
    assert " info: " in loud.stderr, loud.stderr


def read_server_settings(port):
    """The SETTINGS meshlet sends on a new connection: {setting: value}."""
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    with socket.create_connection(("127.0.0.1", port), timeout=scaled(5)) as s:
        s.sendall(conn.data_to_send())
        deadline = time.monotonic() + scaled(5)
        while time.monotonic() < deadline:
            data = s.recv(65535)
            assert data, "meshlet closed the connection"
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RemoteSettingsChanged):
                    return {k: v.new_value for k, v in ev.changed_settings.items()}
    raise AssertionError("no SETTINGS from meshlet")


def test_listener_window_and_max_streams_are_advertised(run_meshlet, free_port):
    listen = free_port()
    run_meshlet(data_plane(listen, free_port(), listener="window = 16KiB\nmax_streams = 7\n"))
    settings = read_server_settings(listen)
    assert settings[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] == 16384, settings
    assert settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] == 7, settings


def test_listener_max_connections_refuses_the_connection_past_it(run_meshlet, free_port):
    """At max_connections one connection is served at a time: the newcomer takes the place of the
    idle one (closed with GOAWAY), never a second place (test_connection_limits.py shows the
    refusal when every connection is busy)."""
    listen = free_port()
    m = run_meshlet(data_plane(listen, free_port(), listener="max_connections = 1\n"))
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000")
    first = socket.create_connection(("127.0.0.1", listen), timeout=scaled(5))
    try:
        first.sendall(preface)
        assert first.recv(9), "the first connection gets meshlet's SETTINGS"
        second = socket.create_connection(("127.0.0.1", listen), timeout=scaled(5))
        try:
            second.sendall(preface)
            assert second.recv(9), "the newcomer is served"
            seen, deadline = b"", time.monotonic() + scaled(5)
            while time.monotonic() < deadline:
                try:
                    chunk = first.recv(65535)
                except (ConnectionResetError, socket.timeout):
                    break
                if not chunk:
                    break
                seen += chunk
            # an empty GOAWAY frame header: length 8, type 7, no flags, stream 0
            assert b"\x00\x00\x08\x07\x00\x00\x00\x00\x00" in seen, \
                f"the idle connection was not closed with GOAWAY: {seen!r}"
        finally:
            second.close()
    finally:
        first.close()


@pytest.mark.timeout(120)
def test_cluster_connect_timeout_bounds_a_connect_that_hangs(run_meshlet, free_port):
    # An upstream whose accept queue is full: the kernel drops further SYNs, so a connect hangs.
    black = socket.socket()
    black.bind(("127.0.0.1", 0))
    black.listen(0)
    port = black.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            f = socket.socket()
            f.setblocking(False)
            f.connect_ex(("127.0.0.1", port))
            fillers.append(f)
        time.sleep(0.3)
        probe = socket.socket()
        probe.settimeout(1.5)
        with pytest.raises(OSError):  # the premise: a connect to it hangs (then times out)
            probe.connect(("127.0.0.1", port))
        probe.close()

        listen = free_port()
        run_meshlet(data_plane(listen, port, cluster="connect_timeout = 300ms\n"))
        with channel(listen) as ch:
            t0 = time.monotonic()
            with pytest.raises(grpc.RpcError) as err:
                unary(ch, "Say")(b"x", timeout=scaled(30))
            took = time.monotonic() - t0
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value
        assert took < scaled(10), took  # 300ms (and a retry or two), not the 30s deadline

        listen2 = free_port()
        run_meshlet(data_plane(listen2, port, cluster="connect_timeout = 1m\n"))
        with channel(listen2) as ch:
            with pytest.raises(grpc.RpcError) as err:
                unary(ch, "Say")(b"x", timeout=3)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, err.value  # still waiting
    finally:
        for f in fillers:
            f.close()
        black.close()
