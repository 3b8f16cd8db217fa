"""meshlet's two logs as config/README.md ("Logs") states them: the node's log on stderr, one
line per entry; per-call failures counted in the stats and logged within a budget of lines per
second with an "N more like this" summary; the access log where `access_log` says, with the
client address, the request id, the failure reason and µs durations, as logfmt or JSON
(`access_log_format`). Real processes and real gRPC peers."""

import json
import re
import signal
import time
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
    return [line for line in stderr.splitlines() if ": connect to 127.0.0.1:" in line]


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
    assert s["cluster.c.upstream_cx_failed"] >= 100 - len(connects), s


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
