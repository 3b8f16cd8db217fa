"""meshlet's two logs as config/README.md ("Logs") states them: the node's log on stderr, one
line per entry; per-call failures counted in the stats and logged within a budget of lines per
second with an "N more like this" summary; the access log where `access_log` says, with the
client address, the request id, the failure reason and µs durations, as logfmt or JSON
(`access_log_format`). Real processes and real gRPC peers."""

import json
import re
import signal
import time
import urllib.error
import urllib.request

import grpc
import pytest

from conftest import scaled
from grpc_peers import SERVICE, channel, unary

BUDGET = 5  # ML_LOG_LIMIT_LINES per ML_LOG_LIMIT_WINDOW_MS (1 s), runtime/core/log.h
MORE_RE = re.compile(r" \((\d+) more like this in the last \d+\.\d s not logged\)$")
NODE_LINE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z meshlet (error|warn|info|debug): ")


def stats(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=scaled(5)) as r:
        return {name: int(value) for name, value in
                (line.rsplit(" ", 1) for line in r.read().decode().splitlines())}


def node(listen, upstream, admin, extra=""):
    return (f"[node]\nadmin = 127.0.0.1:{admin}\n{extra}\n"
            f"[listener in]\nbind = 127.0.0.1:{listen}\n\n"
            f"[route all]\nlistener = in\nto = c\n\n"
            f"[cluster c]\nendpoint = 127.0.0.1:{upstream}\nconnect_timeout = 1s\n")


def fail_calls(port, n):
    """n unary calls that each fail (the backend is dead); their codes."""
    codes = []
    with channel(port) as ch:
        say = unary(ch, "Say")
        for _ in range(n):
            try:
                say(b"x", timeout=scaled(5))
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as e:
                codes.append(e.code())
    return codes


def call_lines(stderr):
    return [line for line in stderr.splitlines() if re.search(r" call \d+: ", line)]


def connect_lines(stderr):
    # the node log keeps the address before the reason; the reason itself (the client's
    # grpc-message) names no address
    return [line for line in stderr.splitlines()
            if re.search(r": 127\.0\.0\.1:\d+: cluster \S+: connect to an endpoint failed", line)]


def test_a_dead_backend_does_not_write_a_line_per_call(run_meshlet, free_port):
    admin, listen = free_port(), free_port()
    m = run_meshlet(node(listen, free_port(), admin, "access_log = off"))
    assert m.alive(), m.stderr
    t0 = time.monotonic()
    codes = fail_calls(listen, 100)
    elapsed = time.monotonic() - t0
    assert set(codes) == {grpc.StatusCode.UNAVAILABLE}, codes
    windows = int(elapsed) + 2
    time.sleep(0.3)  # the last lines reach the pipe
    calls, connects = call_lines(m.stderr), connect_lines(m.stderr)
    # without the budget: 100 of each (one failed call = one failed connect + one call line)
    assert 1 <= len(calls) <= BUDGET * windows, (elapsed, calls)
    assert 1 <= len(connects) <= BUDGET * windows, (elapsed, connects)
    # the failures are counted all the same
    s = stats(admin)
    assert s["calls.grpc_status.14"] == 100, s
    # (after a failed connect the next ones back off: those calls fail without a connect)
    backoff = sum(v for k, v in s.items() if k.startswith("cluster.c.endpoint.")
                  and k.endswith(".cx_backoff"))
    assert s["cluster.c.upstream_cx_failed"] + backoff >= 100 - len(connects), s


def test_the_next_line_says_how_many_were_not_logged(run_meshlet, free_port):
    admin, listen = free_port(), free_port()
    m = run_meshlet(node(listen, free_port(), admin, "access_log = off"))
    assert m.alive(), m.stderr
    assert fail_calls(listen, 40) == [grpc.StatusCode.UNAVAILABLE] * 40
    time.sleep(1.2)  # a new window
    assert fail_calls(listen, 1) == [grpc.StatusCode.UNAVAILABLE]
    time.sleep(0.3)
    calls = call_lines(m.stderr)
    more = [int(MORE_RE.search(line).group(1)) for line in calls if MORE_RE.search(line)]
    assert more, calls
    # every failed call is either a line or counted in a summary
    assert len(calls) + sum(more) == 41, (len(calls), more)
    for line in m.stderr.splitlines():
        assert NODE_LINE_RE.match(line), line


def test_other_lines_are_not_held_back_by_a_failing_backend(run_meshlet, free_port):
    """The budget is per kind of event: a flood of failed calls does not hide a SIGHUP reload."""
    admin, listen = free_port(), free_port()
    m = run_meshlet(node(listen, free_port(), admin, "access_log = off"))
    assert fail_calls(listen, 30) == [grpc.StatusCode.UNAVAILABLE] * 30
    m.send_signal(signal.SIGHUP)
    assert m.wait_for_stderr("config", timeout=5), m.stderr


# ---- the access log ---------------------------------------------------------------------------

FIELDS = ["ts", "client", "request_id", "method", "path", "authority", "grpc_status",
          "http_status", "reason", "duration_us", "upstream_us", "upstream", "bytes_in",
          "bytes_out", "listener", "route", "cluster", "principal"]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def logfmt(line):
    out = {}
    for m in re.finditer(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', line):
        v = m.group(2)
        out[m.group(1)] = v[1:-1].replace('\\"', '"').replace("\\\\", "\\") if v[0] == '"' else v
    return out


def wait_lines(path, n, timeout=5):
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= n:
            return lines
        time.sleep(0.02)
    return path.read_text().splitlines() if path.exists() else []


def three_calls(port, backend_alive=True):
    """A call with x-request-id, one with traceparent only, one with neither: their client
    ports."""
    with channel(port) as ch:
        say = unary(ch, "Say")
        for md in ([("x-request-id", 'req "7" \\ 42')], [("traceparent", TRACEPARENT)], []):
            try:
                say(b"x", timeout=scaled(5), metadata=md)
            except grpc.RpcError:
                assert not backend_alive


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
def test_access_log_has_client_request_id_reason_and_us_durations(run_meshlet, free_port,
                                                                 backends, workdir, fmt):
    b = backends("b0")
    listen, admin = free_port(), free_port()
    log = workdir / "access.log"
    m = run_meshlet(node(listen, b.port, admin,
                         f"access_log = {log}\naccess_log_format = {fmt}"))
    assert m.alive(), m.stderr
    three_calls(listen)
    lines = wait_lines(log, 3)
    assert len(lines) == 3, lines
    recs = [json.loads(x) if fmt == "json" else logfmt(x) for x in lines]
    for rec in recs:
        assert list(rec) == FIELDS, rec
        assert re.fullmatch(r"127\.0\.0\.1:\d+", rec["client"]), rec
        assert int(rec["duration_us"]) >= int(rec["upstream_us"]) >= 0, rec
        assert rec["upstream"] == f"127.0.0.1:{b.port}"
        assert str(rec["grpc_status"]) == "0"
    none = None if fmt == "json" else "-"
    assert [r["request_id"] for r in recs] == ['req "7" \\ 42', TRACE_ID, none]
    assert [r["reason"] for r in recs] == [none] * 3
    if fmt == "json":
        assert isinstance(recs[0]["duration_us"], int) and recs[0]["bytes_in"] == 6


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
def test_access_log_says_why_meshlet_failed_a_call(run_meshlet, free_port, workdir, fmt):
    listen, admin, dead = free_port(), free_port(), free_port()
    log = workdir / "access.log"
    m = run_meshlet(node(listen, dead, admin, f"access_log = {log}\naccess_log_format = {fmt}"))
    three_calls(listen, backend_alive=False)
    lines = wait_lines(log, 3)
    recs = [json.loads(x) if fmt == "json" else logfmt(x) for x in lines]
    assert len(recs) == 3, lines
    for rec in recs:
        assert str(rec["grpc_status"]) == "14", rec
        # the client's text: the first call's connect failed, the next ones met its backoff
        assert re.search(r"connect to an endpoint failed|endpoint unreachable", rec["reason"]), rec
        assert str(dead) not in rec["reason"], rec
        assert rec["upstream"] == f"127.0.0.1:{dead}"


def test_access_log_on_stdout_keeps_stderr_for_the_node_log(run_meshlet, free_port, backends):
    b = backends("b0")
    listen, admin = free_port(), free_port()
    m = run_meshlet(node(listen, b.port, admin, "access_log = stdout"))
    three_calls(listen)
    deadline = time.monotonic() + scaled(5)
    while len(m.stdout.splitlines()) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    out = m.stdout.splitlines()
    assert len(out) == 3 and all(line.startswith("ts=") for line in out), out
    for line in m.stderr.splitlines():
        assert NODE_LINE_RE.match(line), line


@pytest.mark.parametrize("fmt,start", [("logfmt", "ts="), ("json", '{"ts":')])
def test_access_log_sharing_stderr_is_told_apart_by_its_first_bytes(run_meshlet, free_port,
                                                                    backends, fmt, start):
    b = backends("b0")
    listen, admin = free_port(), free_port()
    m = run_meshlet(node(listen, b.port, admin, f"access_log = stderr\naccess_log_format = {fmt}"))
    three_calls(listen)
    deadline = time.monotonic() + scaled(5)
    while (sum(line.startswith(start) for line in m.stderr.splitlines()) < 3 and
           time.monotonic() < deadline):
        time.sleep(0.02)
    access = [line for line in m.stderr.splitlines() if line.startswith(start)]
    node_lines = [line for line in m.stderr.splitlines() if NODE_LINE_RE.match(line)]
    assert len(access) == 3, m.stderr
    assert len(access) + len(node_lines) == len(m.stderr.splitlines()), m.stderr
    assert node_lines


def test_access_log_format_rejects_other_values_and_changes_nothing(meshlet, workdir):
    path = workdir / "bad.ini"
    path.write_text("[node]\naccess_log_format = xml\n"
                    "[listener in]\nbind = 127.0.0.1:15001\n"
                    "[route all]\nlistener = in\nto = c\n[cluster c]\nendpoint = 127.0.0.1:1\n")
    r = meshlet("check", path)
    assert r.returncode == 1, r.stderr
    assert r.stderr == (f"{path}:2: [node] access_log_format: expected logfmt or json, "
                        'got "xml"\n')


def test_access_log_format_is_bootstrap_a_post_cannot_change_it(run_meshlet, free_port,
                                                                 backends, workdir):
    b = backends("b0")
    listen, admin = free_port(), free_port()
    log = workdir / "access.log"
    m = run_meshlet(node(listen, b.port, admin, f"access_log = {log}"))
    body = ("[node]\naccess_log_format = json\n"
            f"[listener in]\nbind = 127.0.0.1:{listen}\n"
            "[route all]\nlistener = in\nto = c\n"
            f"[cluster c]\nendpoint = 127.0.0.1:{b.port}\n")
    req = urllib.request.Request(f"http://127.0.0.1:{admin}/config", data=body.encode(),
                                 method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=scaled(10))
    assert e.value.code == 400
    text = e.value.read().decode()
    assert re.search(r'^push:2: \[node\] access_log_format: bootstrap setting, set only in the '
                     r'local file; running "logfmt", got "json"$', text, re.M), text
    three_calls(listen)
    lines = wait_lines(log, 3)
    assert len(lines) == 3 and all(line.startswith("ts=") for line in lines), lines


def test_access_log_format_changed_by_sighup_waits_for_the_next_start(run_meshlet, free_port,
                                                                      backends, workdir):
    b = backends("b0")
    listen, admin = free_port(), free_port()
    log = workdir / "access.log"
    m = run_meshlet(node(listen, b.port, admin, f"access_log = {log}"))
    text = m.config_path.read_text().replace(f"access_log = {log}",
                                             f"access_log = {log}\naccess_log_format = json")
    m.config_path.write_text(text)
    m.send_signal(signal.SIGHUP)
    assert m.wait_for_stderr("access_log or access_log_format changed: it takes effect at the "
                             "next start", timeout=5), m.stderr
    assert m.wait_for_stderr("applied version", timeout=5), m.stderr
    three_calls(listen)
    lines = wait_lines(log, 3)
    assert len(lines) == 3 and all(line.startswith("ts=") for line in lines), lines
