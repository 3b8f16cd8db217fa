"""/stats/prometheus as a Prometheus server reads it: checked by `promtool check metrics` and by
a parser, under real gRPC traffic through meshlet; seconds with sub-millisecond buckets,
grpc_code names, the build, config and process metrics, upstream latency apart from the whole
call's, every series there before its first event, and no size cap (64 clusters of 64
endpoints). The dashboard and alert rules in runtime/admin/ are checked too. Every wait is
bounded."""

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest

import grpc_peers
from conftest import EMULATOR, scaled
from grpc_peers import channel, unary

ROOT = Path(__file__).resolve().parents[2]
ADMIN_DIR = ROOT / "runtime" / "admin"
CALL_TIMEOUT = scaled(10)
# the le values of every duration histogram, as Prometheus' own clients write them
LE = ["5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
      "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
CODES = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
         "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
         "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
         "UNAUTHENTICATED", "none"]


def promtool():
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: firmware/setup-host.sh installs Debian's prometheus")
    return path


def admin_port(m):
    found = re.search(r"^admin\s*=\s*127\.0\.0\.1:(\d+)\s*$", Path(m.config_path).read_text(), re.M)
    return int(found.group(1))


def get(port, path, timeout=10):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}",
                                    timeout=scaled(timeout)) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def post(port, path, text):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=text.encode(),
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=scaled(30)) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse(text):
    """The exposition → {family: {"type", "help", "samples": [(name, {labels}, value)]}}; every
    line is HELP, TYPE or a sample of the family last typed; no name or label set twice."""
    assert text.endswith("\n")
    fams, seen, current = {}, set(), None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            _, _, name, help_ = line.split(" ", 3)
            assert name not in fams, f"{name} twice"
            fams[name] = {"help": help_, "samples": []}
            current = name
            continue
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ")
            assert name == current and "type" not in fams[name], line
            fams[name]["type"] = typ
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample: {line!r}"
        name, labels = m.group(1), {}
        if m.group(3):
            for k, v, _ in LABEL.findall(m.group(3)):
                labels[k] = v
        base = re.sub(r"_(bucket|sum|count)$", "", name) if fams[current]["type"] == "histogram" \
            else name
        assert base == current, f"{name} outside its family {current}"
        key = (name, tuple(sorted(labels.items())))
        assert key not in seen, f"{line} twice"
        seen.add(key)
        fams[current]["samples"].append((name, labels, float(m.group(4))))
    return fams


def histograms(fam):
    """{labels without le: ([(le, cumulative count)], sum, count)} of a histogram family."""
    out = {}
    for name, labels, v in fam["samples"]:
        rest = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
        h = out.setdefault(rest, [[], None, None])
        if name.endswith("_bucket"):
            h[0].append((labels["le"], v))
        elif name.endswith("_sum"):
            h[1] = v
        else:
            h[2] = v
    return out


def check_metrics(text):
    r = subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=scaled(60))
    assert r.returncode == 0, r.stdout + r.stderr
    # promtool lints too (names, HELP): none of its remarks is left
    assert r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr


@pytest.fixture
def node(run_meshlet, free_port, backends):
    """(meshlet, listener port, admin port, backend): one listener, route and cluster."""
    b = backends("b0")
    port = free_port()
    m = run_meshlet(f"[listener ingress]\nbind = 127.0.0.1:{port}\n\n"
                    f"[route echo]\nlistener = ingress\nprefix = /{grpc_peers.SERVICE}/\n"
                    "to = three\n\n"
                    f"[cluster three]\nendpoint = 127.0.0.1:{b.port}\n")
    assert m.alive(), m.stderr
    return m, port, admin_port(m), b


def test_every_series_is_there_at_zero_before_the_first_call(node):
    _, _, admin, b = node
    status, headers, text = get(admin, "/stats/prometheus")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    check_metrics(text)
    fams = parse(text)
    for fam, label in [("meshlet_calls_total", None), ("meshlet_listener_calls_total", "listener"),
                       ("meshlet_route_calls_total", "route"),
                       ("meshlet_cluster_calls_total", "cluster"),
                       ("meshlet_endpoint_calls_total", "endpoint")]:
        got = [s[1]["grpc_code"] for s in fams[fam]["samples"]]
        assert got == CODES, (fam, got)
        assert all(s[2] == 0 for s in fams[fam]["samples"])
    for fam in ["meshlet_call_duration_seconds", "meshlet_upstream_duration_seconds",
                "meshlet_cluster_call_duration_seconds",
                "meshlet_cluster_upstream_duration_seconds"]:
        assert fams[fam]["type"] == "histogram"
        for buckets, total, count in histograms(fams[fam]).values():
            assert [le for le, _ in buckets] == LE
            assert total == 0 and count == 0


def test_calls_are_counted_in_seconds_by_code_name_with_the_upstream_apart(node):
    _, port, admin, b = node
    with channel(port) as ch:
        for i in range(20):
            assert unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT) == b"b0:x"
        for i in range(3):
            with pytest.raises(grpc.RpcError) as e:
                unary(ch, "Fail")(b"y", timeout=CALL_TIMEOUT)
            assert e.value.code() == grpc.StatusCode.NOT_FOUND
        # sleeps 200 ms upstream: a call whose upstream part is known to be at least that
        assert unary(ch, "Sleep")(b"0.2", timeout=CALL_TIMEOUT) == b"slept"
    deadline = time.monotonic() + scaled(5)
    while True:
        status, _, text = get(admin, "/stats/prometheus")
        fams = parse(text)
        calls = {s[1]["grpc_code"]: s[2] for s in fams["meshlet_calls_total"]["samples"]}
        if calls["OK"] == 21 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    check_metrics(text)
    assert calls["OK"] == 21 and calls["NOT_FOUND"] == 3, calls
    assert sum(calls.values()) == 24
    whole = histograms(fams["meshlet_call_duration_seconds"])[()]
    upstream = histograms(fams["meshlet_upstream_duration_seconds"])[()]
    for buckets, total, count in (whole, upstream):
        assert count == 24 and buckets[-1] == ("+Inf", 24)
        counts = [v for _, v in buckets]
        assert counts == sorted(counts)
        assert total >= 0.2  # the 200 ms call, in seconds (not ms)
        # the 200 ms call is above 0.1 s, and every call within 10 s (generous)
        assert dict(buckets)["0.1"] <= 23 and dict(buckets)["10"] == 24
    # the upstream part of a call is within the call
    assert upstream[1] <= whole[1]
    for (le, u), (_, w) in zip(upstream[0], whole[0]):
        assert u >= w, (le, upstream, whole)  # cumulative: shorter parts fill lower buckets
    per_cluster = histograms(fams["meshlet_cluster_upstream_duration_seconds"])
    assert per_cluster[(("cluster", "three"),)][2] == 24


def test_build_config_and_process_metrics(node, meshlet_board):
    m, _, admin, _ = node
    _, headers, _ = get(admin, "/config")
    version = headers["X-Meshlet-Config-Version"]
    _, _, text = get(admin, "/stats/prometheus")
    fams = parse(text)
    (name, labels, v), = fams["meshlet_build_info"]["samples"]
    assert v == 1 and labels["board"] == meshlet_board and labels["version"]
    assert "admin" in labels["features"].split(",")
    (name, labels, v), = fams["meshlet_config_info"]["samples"]
    assert v == 1 and labels == {"version": version, "source": "file"}
    assert fams["process_cpu_seconds_total"]["type"] == "counter"
    value = {f: fams[f]["samples"][0][2] for f in
             ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
              "process_max_fds", "process_start_time_seconds"]}
    assert 0 <= value["process_cpu_seconds_total"] < 600
    # qemu-user makes /proc/self/stat up: rss, utime and stime are 0 there (a board reads its own)
    least_rss = 0 if EMULATOR else 1 << 20
    assert least_rss <= value["process_resident_memory_bytes"] < 1 << 30
    fds = len(list(Path(f"/proc/{m.proc.pid}/fd").iterdir()))
    assert 3 <= value["process_open_fds"] <= fds + 2
    assert value["process_open_fds"] < value["process_max_fds"]
    assert time.time() - 600 < value["process_start_time_seconds"] <= time.time() + 1


# Clusters of 64 endpoints in one config: as many as the default config bound (60 KiB) holds, and
# megabytes of exposition.
BIG_CLUSTERS = 30


def big_config(port):
    text = (f"[listener ingress]\nbind = 127.0.0.1:{port}\n\n"
            "[route all]\nlistener = ingress\nto = c0\n\n")
    for c in range(BIG_CLUSTERS):
        text += f"[cluster c{c}]\n" + "".join(
            f"endpoint = 127.0.{c}.{e + 1}:{40000 + e}\n" for e in range(64))
    return text


def test_clusters_of_64_endpoints_are_served_whole(run_meshlet, free_port):
    """Kconfig allows 64 × 64 endpoints; this once answered 500 (a 1 MiB cap). Nothing listens
    on the endpoints: no call is made, the counters are all there at zero."""
    port = free_port()
    m = run_meshlet(big_config(port))
    assert m.alive(), m.stderr
    admin = admin_port(m)
    status, headers, prom = get(admin, "/stats/prometheus", timeout=30)
    assert status == 200, prom[:300]
    assert headers["Transfer-Encoding"] == "chunked"
    assert len(prom) > 1 << 20
    check_metrics(prom)
    fams = parse(prom)
    eps = {(s[1]["cluster"], s[1]["endpoint"]) for s in
           fams["meshlet_upstream_cx_failed_total"]["samples"]}
    last = BIG_CLUSTERS - 1
    assert len(eps) == BIG_CLUSTERS * 64 and (f"c{last}", f"127.0.{last}.64:40063") in eps
    assert len(fams["meshlet_endpoint_calls_total"]["samples"]) == BIG_CLUSTERS * 64 * len(CODES)
    assert "meshlet_admin_rq_refused_total" in fams and "process_open_fds" in fams
    status, _, body = get(admin, "/stats", timeout=30)
    assert status == 200 and f"cluster.c{last}.endpoint.127.0.{last}.64:40063.rq_total 0\n" in body
    assert body.endswith("admin.rq_refused 0\n")
    status, _, body = get(admin, "/stats.json", timeout=30)
    assert status == 200
    st = json.loads(body)
    assert len(st["endpoints"]) == BIG_CLUSTERS * 64 and len(st["clusters"]) == BIG_CLUSTERS


def test_the_dashboard_and_alert_rules_are_valid_and_use_metrics_meshlet_has(node):
    _, _, admin, _ = node
    _, _, text = get(admin, "/stats/prometheus")
    families = set(parse(text))
    rules = ADMIN_DIR / "alerts.yml"
    r = subprocess.run([promtool(), "check", "rules", str(rules)], capture_output=True, text=True,
                       timeout=scaled(60))
    assert r.returncode == 0, r.stdout + r.stderr
    dash = json.loads((ADMIN_DIR / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 8
    used = set()
    for e in exprs + [rules.read_text()]:
        for name in re.findall(r"\b((?:meshlet|process)_[a-z_]+)", e):
            used.add(re.sub(r"_(bucket|sum|count)$", "", name))
    missing = used - families
    assert not missing, f"names the exposition does not have: {missing}"


def test_a_hot_apply_while_the_stats_stream_cuts_them_unfinished(run_meshlet, free_port):
    """The rendering names entities of the snapshot it started on: when a hot apply replaces it
    mid-stream, the response ends without its last chunk (the client sees it unfinished), and
    the next request is served whole."""
    port = free_port()
    m = run_meshlet(big_config(port))
    admin = admin_port(m)
    s = socket.socket()
    # a small window: meshlet can put only part of the page into the socket before we read
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(scaled(10))
    s.connect(("127.0.0.1", admin))
    s.sendall(f"GET /stats/prometheus HTTP/1.1\r\nHost: 127.0.0.1:{admin}\r\n\r\n".encode())
    got = s.recv(1024)
    assert got.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in got.lower()
    status, _, body = post(admin, "/config", Path(m.config_path).read_text() + "; changed\n")
    assert status == 200, body
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
    s.close()
    assert not got.endswith(b"\r\n0\r\n\r\n"), "the stream went on after the apply"
    status, _, whole = get(admin, "/stats/prometheus", timeout=30)
    assert status == 200 and whole.endswith("\n") and "process_start_time_seconds" in whole
    assert len(got) < len(whole), "the whole page came before the apply: nothing was cut"
