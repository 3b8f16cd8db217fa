"""The admin endpoint ([node] admin), the counters behind it and the access log, end to end with
real grpcio peers through meshlet. HTTP requests are made with urllib; every wait is bounded."""

import re
import signal
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest

import grpc_peers
from conftest import scaled
from grpc_peers import channel, unary

CALL_TIMEOUT = scaled(10)
ECHO_PREFIX = f"/{grpc_peers.SERVICE}/"


# ---- fixtures and helpers -----------------------------------------------------------------------

@pytest.fixture
def mesh(run_meshlet, free_port):
    """mesh(ports, node="") → (meshlet, listener port, admin port or None): one listener
    `ingress`, one route `echo` (prefix /meshlet.test.Echo/) to cluster `three` with the given
    endpoints; node: extra [node] lines. Stopped with SIGTERM at teardown, and must exit 0."""
    started = []

    def start(ports, node=""):
        port = free_port()
        text = (f"[node]\n{node}\n"
                f"[listener ingress]\nbind = 127.0.0.1:{port}\n\n"
                f"[route echo]\nlistener = ingress\nprefix = {ECHO_PREFIX}\nto = three\n\n"
                "[cluster three]\n" + "".join(f"endpoint = 127.0.0.1:{p}\n" for p in ports))
        m = run_meshlet(text)
        started.append(m)
        assert m.alive(), f"meshlet exited {m.returncode}:\n{m.stderr}"
        return m, port, admin_port(m)

    yield start
    for m in started:
        if m.alive():
            m.send_signal(signal.SIGTERM)
            rc = m.wait(timeout=10)
            assert rc == 0, f"meshlet exited {rc} on SIGTERM:\n{m.stderr[-4000:]}"


def admin_port(m):
    """The admin port conftest put in meshlet's config (None for admin = off)."""
    found = re.search(r"^admin\s*=\s*127\.0\.0\.1:(\d+)\s*$", Path(m.config_path).read_text(), re.M)
    return int(found.group(1)) if found else None


def get(port, path):
    """(status, headers, body text) of GET http://127.0.0.1:port/path."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=scaled(5)) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def stats(port):
    status, _, body = get(port, "/stats")
    assert status == 200, body
    out = {}
    for line in body.splitlines():
        name, value = line.rsplit(" ", 1)
        assert name not in out, f"{name} twice"
        out[name] = int(value)
    return out


def wait_until(fn, timeout=5):
    """fn()'s value once it is truthy, polling (bounded); the last value otherwise."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.02)


def call_unrouted(ch):
    with pytest.raises(grpc.RpcError) as e:
        ch.unary_unary("/other.Service/Method")(b"x", timeout=CALL_TIMEOUT)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
                    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*)?\})? '
                    r'(-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?|\+Inf|-Inf|NaN)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')


def parse_prometheus(text):
    """A strict reader of the text exposition format 0.0.4: every line is a HELP, a TYPE or a
    sample `name{labels} value`; every sample's family has a TYPE (given before it, once);
    names start with meshlet_ or process_; histograms have _bucket (with le, ending in +Inf, cumulative),
    _sum and _count. → {family: {"type": t, "samples": [(name, {labels}, value)]}}"""
    assert text.endswith("\n")
    families = {}
    for line in text.splitlines():
        assert line, "an empty line"
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert name.startswith(("meshlet_", "process_")), line
            continue
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ")
            assert name.startswith(("meshlet_", "process_")) and name not in families, line
            assert typ in ("counter", "gauge", "histogram", "summary", "untyped"), line
            families[name] = {"type": typ, "samples": []}
            continue
        assert not line.startswith("#"), line
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, labels, value = m.group(1), dict(LABEL.findall(m.group(2) or "")), m.group(3)
        family = name
        if name not in families:
            for suffix in ("_bucket", "_sum", "_count"):
                if name.endswith(suffix) and families.get(name[:-len(suffix)], {}).get(
                        "type") == "histogram":
                    family = name[:-len(suffix)]
        assert family in families, f"sample of a family without TYPE: {line}"
        families[family]["samples"].append((name, labels, float(value)))
    for fam, f in families.items():
        if f["type"] != "histogram":
            continue
        series = {}
        for name, labels, value in f["samples"]:
            key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
            series.setdefault(key, {"buckets": [], "sum": None, "count": None})
            if name == fam + "_bucket":
                series[key]["buckets"].append((labels["le"], value))
            elif name == fam + "_sum":
                series[key]["sum"] = value
            else:
                series[key]["count"] = value
        for key, s in series.items():
            assert s["buckets"] and s["buckets"][-1][0] == "+Inf", (fam, key)
            counts = [v for _, v in s["buckets"]]
            assert counts == sorted(counts), (fam, key, counts)
            assert s["count"] == counts[-1] and s["sum"] is not None, (fam, key)
    return families


def logfmt(line):
    return {k: (v[1:-1].replace('\\"', '"').replace("\\\\", "\\") if v.startswith('"') else v)
            for k, v in re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)', line)}


# ---- health and readiness -----------------------------------------------------------------------

def test_healthz_and_ready_answer_200_once_running(backends, mesh):
    b = backends("b0")
    m, _, admin = mesh([b.port])
    assert m.wait_for_stderr(f"admin: listening on 127.0.0.1:{admin}"), m.stderr
    assert get(admin, "/healthz")[::2] == (200, "ok\n")
    assert get(admin, "/ready")[0] == 200
    assert get(admin, "/no/such/page")[0] == 404


def test_admin_off_leaves_nothing_listening_but_the_listeners(backends, mesh):
    b = backends("b0")
    m, port, admin = mesh([b.port], node="admin = off")
    assert admin is None
    assert m.wait_for_stderr("admin: off"), m.stderr
    inodes = set()
    for fd in Path(f"/proc/{m.proc.pid}/fd").iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:  # LISTEN
                listening.add(int(f[1].rsplit(":", 1)[1], 16))
    assert listening == {port}


def test_admin_bind_failure_exits_3_with_the_reason(run_meshlet, free_port):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = taken.getsockname()[1]
        m = run_meshlet(f"[node]\nadmin = 127.0.0.1:{busy}\n"
                        f"[listener ingress]\nbind = 127.0.0.1:{free_port()}\n"
                        f"[route all]\nlistener = ingress\nto = c\n"
                        f"[cluster c]\nendpoint = 127.0.0.1:{free_port()}\n", wait=False)
        assert m.wait(timeout=10) == 3, m.stderr
    # strerror(EADDRINUSE): glibc says "Address already in use", musl "Address in use"
    assert (f"admin: cannot bind 127.0.0.1:{busy}: Address already in use" in m.stderr
            or f"admin: cannot bind 127.0.0.1:{busy}: Address in use" in m.stderr), m.stderr


# ---- counters -----------------------------------------------------------------------------------

def run_30_calls_and_one_unrouted(bs, port):
    ch = channel(port)
    say = unary(ch, "Say")
    for _ in range(30):
        say(b"x", timeout=CALL_TIMEOUT)
    call_unrouted(ch)
    return ch


def test_stats_count_calls_per_cluster_endpoint_and_grpc_status(backends, mesh):
    bs = [backends(f"b{i}") for i in range(3)]
    _, port, admin = mesh([b.port for b in bs])
    with run_30_calls_and_one_unrouted(bs, port):
        s = wait_until(lambda: (lambda s: s if s["calls.rq_total"] == 31 else None)(stats(admin)))
        assert s, stats(admin)
        assert s["listener.ingress.downstream_cx_active"] == 1
        assert s["listener.ingress.downstream_cx_accepted"] == 1
    assert s["calls.grpc_status.0"] == 30
    assert s["calls.grpc_status.12"] == 1
    assert s["calls.rq_active"] == 0
    assert s["listener.ingress.downstream_rq_total"] == 31
    assert s["listener.ingress.grpc_status.12"] == 1
    assert s["route.echo.rq_total"] == 30
    assert s["cluster.three.upstream_rq_total"] == 30
    assert s["cluster.three.grpc_status.0"] == 30
    assert s["cluster.three.upstream_cx_opened"] == 3
    assert s["cluster.three.upstream_cx_active"] == 3
    assert s["cluster.three.upstream_cx_failed"] == 0
    for b in bs:
        ep = f"cluster.three.endpoint.127.0.0.1:{b.port}."
        assert s[ep + "rq_total"] == 10, (ep, s)
        assert s[ep + "grpc_status.0"] == 10
        assert s[ep + "cx_active"] == 1
    # each request is one 6-byte gRPC message (the unrouted one may be answered before it came)
    assert 30 * 6 <= s["calls.bytes_in"] <= 31 * 6
    assert s["calls.bytes_out"] == 30 * 9  # b"bN:x" in a 5-byte frame
    assert s["calls.duration_us.count"] == 31 and s["calls.duration_us.le_inf"] == 31
    buckets = [v for k, v in s.items() if k.startswith("calls.duration_us.le_")]
    assert buckets == sorted(buckets)
    # the channel is closed: its connection is no longer active
    assert wait_until(lambda: stats(admin)["listener.ingress.downstream_cx_active"] == 0)


def test_connect_failures_are_counted_per_endpoint(mesh):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    _, port, admin = mesh([dead])
    with channel(port) as ch:
        with pytest.raises(grpc.RpcError) as e:
            unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    st = wait_until(lambda: (lambda s: s if s["calls.rq_total"] == 1 else None)(stats(admin)))
    assert st[f"cluster.three.endpoint.127.0.0.1:{dead}.cx_failed"] == 1
    assert st["cluster.three.upstream_cx_active"] == 0
    assert st["cluster.three.grpc_status.14"] == 1


def test_prometheus_exposition_parses_and_has_calls_by_code(backends, mesh):
    bs = [backends(f"b{i}") for i in range(3)]
    _, port, admin = mesh([b.port for b in bs])
    with run_30_calls_and_one_unrouted(bs, port):
        wait_until(lambda: stats(admin)["calls.rq_total"] == 31)
        status, headers, body = get(admin, "/stats/prometheus")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    fams = parse_prometheus(body)
    calls = {s[1]["grpc_code"]: s[2] for s in fams["meshlet_calls_total"]["samples"]}
    assert fams["meshlet_calls_total"]["type"] == "counter"
    assert calls["OK"] == 30 and calls["UNIMPLEMENTED"] == 1
    per_endpoint = {(s[1]["endpoint"], s[1]["grpc_code"]): s[2]
                    for s in fams["meshlet_endpoint_calls_total"]["samples"] if s[2] > 0}
    assert per_endpoint == {(f"127.0.0.1:{b.port}", "OK"): 10 for b in bs}
    assert {s[1]["cluster"] for s in fams["meshlet_cluster_calls_total"]["samples"]} == {"three"}
    assert {s[1]["route"] for s in fams["meshlet_route_calls_total"]["samples"]} == {"echo"}
    assert fams["meshlet_call_duration_seconds"]["type"] == "histogram"
    count = [s for s in fams["meshlet_call_duration_seconds"]["samples"]
             if s[0].endswith("_count")]
    assert count == [("meshlet_call_duration_seconds_count", {}, 31.0)]
    active = {s[1]["listener"]: s[2] for s in fams["meshlet_downstream_cx_active"]["samples"]}
    assert active == {"ingress": 1.0}


# ---- config ---------------------------------------------------------------------------------------

def test_config_returns_the_running_ini_exactly_with_its_version(backends, mesh, meshlet):
    b = backends("b0")
    m, _, admin = mesh([b.port])
    status, headers, body = get(admin, "/config")
    assert status == 200
    first, rest = body.split("\n", 1)
    assert rest == Path(m.config_path).read_text()
    version = headers["X-Meshlet-Config-Version"]
    assert first == f"# version: {version}"
    check = meshlet("check", m.config_path)
    assert f"version {version}:" in check.stdout, check.stdout


# ---- access log --------------------------------------------------------------------------------

def test_access_log_file_gets_one_logfmt_line_per_call(backends, mesh, workdir):
    bs = [backends(f"b{i}") for i in range(3)]
    log = workdir / "access.log"
    _, port, _ = mesh([b.port for b in bs], node=f"access_log = {log}")
    with channel(port) as ch:
        say = unary(ch, "Say")
        for _ in range(3):
            say(b"x", timeout=CALL_TIMEOUT)
        call_unrouted(ch)
    lines = wait_until(lambda: (lambda ls: ls if len(ls) >= 4 else None)(
        log.read_text().splitlines()))
    assert lines and len(lines) == 4, log.read_text()
    recs = [logfmt(x) for x in lines]
    for rec, b in zip(recs[:3], bs):
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", rec["ts"]), rec
        assert rec["method"] == "POST" and rec["path"] == f"{ECHO_PREFIX}Say"
        assert rec["authority"] == f"127.0.0.1:{port}"
        assert rec["grpc_status"] == "0" and rec["http_status"] == "200"
        assert int(rec["duration_us"]) >= int(rec["upstream_us"]) >= 0
        assert rec["upstream"] == f"127.0.0.1:{b.port}"
        assert rec["bytes_in"] == "6" and rec["bytes_out"] == "9"
        assert (rec["listener"], rec["route"], rec["cluster"]) == ("ingress", "echo", "three")
    last = recs[3]
    assert last["path"] == "/other.Service/Method" and last["grpc_status"] == "12"
    assert last["http_status"] == "200" and last["upstream"] == "-" and last["route"] == "-"
    assert list(recs[0]) == ["ts", "client", "request_id", "method", "path", "authority",
                             "grpc_status", "http_status", "reason", "duration_us", "upstream_us",
                             "upstream", "bytes_in", "bytes_out", "listener", "route", "cluster",
                             "principal"]


def test_sigusr1_after_rename_writes_new_lines_to_a_new_file(backends, mesh, workdir):
    b = backends("b0")
    log = workdir / "access.log"
    m, port, _ = mesh([b.port], node=f"access_log = {log}")
    with channel(port) as ch:
        say = unary(ch, "Say")
        for _ in range(2):
            say(b"x", timeout=CALL_TIMEOUT)
        assert wait_until(lambda: len(log.read_text().splitlines()) == 2)
        rotated = workdir / "access.log.1"
        log.rename(rotated)  # what logrotate does, then it signals
        m.send_signal(signal.SIGUSR1)
        assert m.wait_for_stderr(f"access_log {log}: reopened"), m.stderr
        for _ in range(3):
            say(b"y", timeout=CALL_TIMEOUT)
        assert wait_until(lambda: log.exists() and len(log.read_text().splitlines()) == 3)
    assert len(rotated.read_text().splitlines()) == 2
    assert all(logfmt(x)["grpc_status"] == "0" for x in log.read_text().splitlines())
    assert m.alive()


def test_ready_turns_503_while_draining_and_healthz_stays_200(backends, mesh):
    b = backends("b0")
    m, port, admin = mesh([b.port], node="drain_timeout = 10s")
    with channel(port) as ch:
        call = unary(ch, "Block").future(b"", timeout=CALL_TIMEOUT)
        assert wait_until(lambda: b.calls == 1)
        assert get(admin, "/ready")[0] == 200
        m.send_signal(signal.SIGTERM)
        assert m.wait_for_stderr("draining"), m.stderr
        assert get(admin, "/ready")[0] == 503
        assert get(admin, "/healthz")[0] == 200
        st = stats(admin)
        assert st["calls.rq_active"] == 1 and st["cluster.three.upstream_rq_active"] == 1
        call.cancel()
    assert m.wait(timeout=10) == 0, m.stderr[-4000:]


def test_access_log_file_that_cannot_be_opened_exits_3(run_meshlet, free_port, workdir):
    path = workdir / "no-such-dir" / "access.log"
    m = run_meshlet(f"[node]\naccess_log = {path}\n"
                    f"[listener ingress]\nbind = 127.0.0.1:{free_port()}\n"
                    f"[route all]\nlistener = ingress\nto = c\n"
                    f"[cluster c]\nendpoint = 127.0.0.1:{free_port()}\n", wait=False)
    assert m.wait(timeout=10) == 3, m.stderr
    assert f"access_log {path}: cannot open it: No such file or directory" in m.stderr
