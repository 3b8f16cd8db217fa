"""The HTTP/2 gRPC proxy, end to end with real peers: grpcio clients → meshlet → grpcio servers
(and nghttp2's `nghttp` client where the frames themselves matter). Backends listen on ports the
kernel picks on 127.0.0.1; every call has a deadline; conftest.py kills every meshlet it started
and the fixtures here stop every backend."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest

import grpc_peers
from conftest import scaled
from grpc_peers import bidi, channel, client_stream, server_stream, unary

HERE = Path(__file__).resolve().parent
CALL_TIMEOUT = scaled(10)


# ---- fixtures ---------------------------------------------------------------------------------

class BackendProcess:
    """A backend in a process of its own (grpc_peers.py), so a test can kill it."""

    def __init__(self, name):
        self.proc = subprocess.Popen([sys.executable, str(HERE / "grpc_peers.py"), name],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, text=True)
        self.lines = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        assert self.wait_for("port ", timeout=15), f"backend {name} did not start"
        self.port = int(next(x for x in self.lines if x.startswith("port ")).split()[1])

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.strip())
                self.cond.notify_all()

    def wait_for(self, prefix, timeout=10):
        """True once the backend printed a line starting with prefix (bounded wait)."""
        deadline = time.monotonic() + scaled(timeout)
        with self.cond:
            while not any(x.startswith(prefix) for x in self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return False
                self.cond.wait(min(left, 0.1))
            return True

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


@pytest.fixture
def backend_process():
    """backend_process(name) → a started BackendProcess; killed at teardown."""
    procs = []

    def start(name):
        p = BackendProcess(name)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.kill()


@pytest.fixture
def proxy(run_meshlet, free_port):
    """proxy(clusters, routes=None, listener="") → (meshlet, port): meshlet with one listener
    `ingress` on a free port. clusters: {name: [port, ...] or (ports, extra INI lines)};
    routes: [(name, match lines, to)], default one catch-all route to the first cluster.
    At teardown each is stopped with SIGTERM and must exit 0 (under ML_SANITIZE that also means
    no leak and no memory error, at any point of the test)."""
    started = []

    def start(clusters, routes=None, listener=""):
        port = free_port()
        text = f"[listener ingress]\nbind = 127.0.0.1:{port}\n{listener}\n"
        if routes is None:
            routes = [("all", "", next(iter(clusters)))]
        for name, match, to in routes:
            text += f"[route {name}]\nlistener = ingress\n{match}\nto = {to}\n\n"
        for name, spec in clusters.items():
            ports, extra = spec if isinstance(spec, tuple) else (spec, "")
            text += f"[cluster {name}]\n"
            text += "".join(f"endpoint = 127.0.0.1:{p}\n" for p in ports)
            text += f"{extra}\n"
        m = run_meshlet(text)
        started.append(m)
        assert m.alive(), f"meshlet exited {m.returncode}:\n{m.stderr}"
        assert m.wait_for_stderr("listening on", timeout=5), m.stderr
        return m, port

    yield start
    for m in started:
        if m.alive():
            m.send_signal(signal.SIGTERM)
            rc = m.wait(timeout=10)
            assert rc == 0, f"meshlet exited {rc} on SIGTERM:\n{m.stderr[-4000:]}"


def refused_port():
    """A loopback port nothing listens on (bound once, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nghttp(url, *args, timeout=10):
    """nghttp2's client (a real HTTP/2 peer) with -v: the frames it sent and received, then the
    response body."""
    if shutil.which("nghttp") is None:
        pytest.skip("nghttp (nghttp2-client) is not installed")
    r = subprocess.run(["nghttp", "-v", *args, url], capture_output=True, text=True,
                       timeout=scaled(timeout), stdin=subprocess.DEVNULL)
    return r.stdout + r.stderr


def grpc_request_file(workdir, payload=b"hello"):
    path = workdir / "req.bin"
    path.write_bytes(b"\x00" + len(payload).to_bytes(4, "big") + payload)
    return path


GRPC_HEADERS = ["-H", "content-type: application/grpc", "-H", "te: trailers"]


def recv_frames(out):
    """The frame types nghttp received on stream 13 (its first request), in order, with flags."""
    return re.findall(r"recv (HEADERS|DATA|RST_STREAM) frame <length=\d+, flags=(0x[0-9a-f]+), "
                      r"stream_id=13>", out)


# ---- unary and metadata -------------------------------------------------------------------

def test_unary_call_is_relayed_with_its_payload(backends, proxy):
    b = backends("b1")
    _, port = proxy({"echo": [b.port]})
    with channel(port) as ch:
        resp, call = unary(ch, "Say").with_call(b"hello", timeout=CALL_TIMEOUT)
    assert resp == b"b1:hello"
    assert call.code() == grpc.StatusCode.OK


def test_request_metadata_and_response_trailers_pass_byte_exact(backends, proxy):
    b = backends("b1")
    _, port = proxy({"echo": [b.port]})
    sent = [("x-plain", "value 1"), ("x-rep", "a"), ("x-rep", "b"), ("x-rep", "c"),
            ("x-blob-bin", bytes([0, 1, 2, 0x7f, 0x80, 0xfe, 0xff]))]
    with channel(port) as ch:
        resp, call = unary(ch, "Meta").with_call(b"", metadata=sent, timeout=CALL_TIMEOUT)
    got = [(k, v) for k, v in json.loads(resp) if k.startswith("x-")]
    assert got == [(k, v.hex() if k.endswith("-bin") else v) for k, v in sent]
    assert [(m.key, m.value) for m in call.initial_metadata() if m.key.startswith("x-")] == [
        ("x-initial", "i1"), ("x-initial", "i2")]
    assert [(m.key, m.value) for m in call.trailing_metadata()] == [
        ("x-trailer", "t-value"), ("x-rep-trailer", "first"), ("x-rep-trailer", "second"),
        ("x-trailer-bin", bytes([0, 1, 0x7f, 0x80, 0xfe, 0xff]))]


def test_trailers_only_error_from_upstream_is_relayed_with_status_and_message(
        backends, proxy, workdir):
    b = backends("b1")
    _, port = proxy({"echo": [b.port]})
    with channel(port) as ch:
        with pytest.raises(grpc.RpcError) as e:
            unary(ch, "Fail").with_call(b"widget 7", timeout=CALL_TIMEOUT)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert e.value.details() == "no such thing: widget 7"
    # On the wire it stays trailers-only: one HEADERS frame with END_STREAM (0x05), no DATA.
    out = nghttp(f"http://127.0.0.1:{port}{grpc_peers.method('Fail')}", *GRPC_HEADERS,
                 "-d", str(grpc_request_file(workdir, b"x")))
    assert recv_frames(out) == [("HEADERS", "0x05")], out
    assert "grpc-status: 5" in out, out


# ---- meshlet's own answers ---------------------------------------------------------------------

def test_no_route_answers_unimplemented_naming_the_path(backends, proxy, workdir):
    b = backends("b1")
    _, port = proxy({"echo": [b.port]},
                    routes=[("echo", f"prefix = /{grpc_peers.SERVICE}/", "echo")])
    with channel(port) as ch:
        with pytest.raises(grpc.RpcError) as e:
            ch.unary_unary("/other.Service/Method")(b"x", timeout=CALL_TIMEOUT)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "/other.Service/Method" in e.value.details()
    assert b.calls == 0
    out = nghttp(f"http://127.0.0.1:{port}/other.Service/Method", *GRPC_HEADERS,
                 "-d", str(grpc_request_file(workdir)))
    assert recv_frames(out) == [("HEADERS", "0x05")], out
    assert re.search(r"recv \(stream_id=13\) :status: 200$", out, re.M), out
    assert "grpc-status: 12" in out and "grpc-message: no route for /other.Service/Method" in out


def test_plain_http_request_without_a_route_gets_404(backends, proxy):
    b = backends("b1")
    _, port = proxy({"echo": [b.port]},
                    routes=[("echo", f"prefix = /{grpc_peers.SERVICE}/", "echo")])
    out = nghttp(f"http://127.0.0.1:{port}/index.html")
    assert re.search(r"recv \(stream_id=13\) :status: 404$", out, re.M), out
    assert "no route for /index.html on listener ingress\n" in out, out


def test_cluster_whose_endpoint_refuses_connections_answers_unavailable(proxy):
    dead = refused_port()
    m, port = proxy({"dead": [dead]})
    with channel(port) as ch:
        with pytest.raises(grpc.RpcError) as e:
            unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        # the client hears the condition, the log the address
        assert "connect to an endpoint failed" in e.value.details(), e.value.details()
        assert str(dead) not in e.value.details(), e.value.details()
        assert m.wait_for_stderr(f"127.0.0.1:{dead}: cluster dead: connect to an endpoint failed")
        # and again: the failure is per call, the listener keeps serving
        with pytest.raises(grpc.RpcError) as e:
            unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE


def test_upstream_lost_before_response_headers_answers_unavailable(backend_process, proxy):
    backend = backend_process("doomed")
    _, port = proxy({"echo": [backend.port]})
    with channel(port) as ch:
        call = unary(ch, "Block").future(b"", timeout=CALL_TIMEOUT)
        assert backend.wait_for("call Block"), "the call never reached the backend"
        backend.kill()  # it had answered nothing, not even headers
        with pytest.raises(grpc.RpcError) as e:
            call.result(timeout=CALL_TIMEOUT)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "upstream connection lost" in e.value.details(), e.value.details()


def test_upstream_lost_mid_response_resets_the_downstream_stream(backend_process, proxy):
    backend = backend_process("doomed")
    _, port = proxy({"echo": [backend.port]})
    with channel(port) as ch:
        calls = server_stream(ch, "Hang")(b"", timeout=CALL_TIMEOUT)
        assert next(calls) == b"started"  # response headers and a message went downstream
        backend.kill()
        with pytest.raises(grpc.RpcError) as e:
            list(calls)
        # meshlet cannot answer any more: it resets the stream (CANCEL), and grpc says so
        assert e.value.code() == grpc.StatusCode.CANCELLED, e.value
        assert "RST_STREAM" in e.value.details(), e.value.details()
        # a new call finds no backend: UNAVAILABLE from meshlet itself
        with pytest.raises(grpc.RpcError) as e:
            unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE


def test_bind_failure_exits_3_with_the_reason(run_meshlet, free_port):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        m = run_meshlet(f"[listener ingress]\nbind = 127.0.0.1:{port}\n"
                        f"[route all]\nlistener = ingress\nto = c\n"
                        f"[cluster c]\nendpoint = 127.0.0.1:{free_port()}\n", wait=False)
        assert m.wait(timeout=10) == 3, m.stderr
    # strerror(EADDRINUSE): glibc's words, or musl's (boards/host-musl)
    assert (f"listener ingress: cannot bind 127.0.0.1:{port}: Address already in use" in m.stderr
            or f"listener ingress: cannot bind 127.0.0.1:{port}: Address in use" in m.stderr)


# ---- streaming -------------------------------------------------------------------------------

def test_client_streaming_call_is_relayed(backends, proxy):
    b = backends("b1")
    _, port = proxy({"echo": [b.port]})
    msgs = [bytes([i % 256]) * (1000 + 97 * i) for i in range(200)]  # ~2.1 MB in total
    with channel(port) as ch:
        resp = client_stream(ch, "Sum")(iter(msgs), timeout=CALL_TIMEOUT)
    assert resp == f"{len(msgs)} {sum(map(len, msgs))}".encode()


def test_server_streaming_call_is_relayed_in_order(backends, proxy):
    b = backends("b1")
    _, port = proxy({"echo": [b.port]})
    with channel(port) as ch:
        got = list(server_stream(ch, "Repeat")(b"300 20000", timeout=CALL_TIMEOUT))
    assert len(got) == 300
    assert all(m == bytes([k % 251]) * 20000 for k, m in enumerate(got))


def test_bidi_streaming_call_echoes_each_message_before_the_next_is_sent(backends, proxy):
    b = backends("b1")
    _, port = proxy({"echo": [b.port]})
    outbox = []
    ready = threading.Semaphore(0)

    def requests():
        for i in range(50):
            ready.acquire(timeout=CALL_TIMEOUT)  # the previous echo is back: real ping-pong
            msg = f"ping {i}".encode()
            outbox.append(msg)
            yield msg

    with channel(port) as ch:
        ready.release()
        got = []
        for m in bidi(ch, "Chat")(requests(), timeout=CALL_TIMEOUT):
            got.append(m)
            ready.release()
    assert got == [b"b1:" + m for m in outbox] and len(got) == 50


def test_slow_client_holds_back_the_upstream_instead_of_buffering(backends, proxy):
    b = backends("b1")
    m, port = proxy({"echo": [b.port]})
    size, count = 64 * 1024, 1500  # ~98 MB if nothing pushed back
    with channel(port) as ch:
        stream = server_stream(ch, "Flood")(f"{count} {size}".encode(), timeout=scaled(30))
        assert len(next(stream)) == size
        time.sleep(2)  # the client reads nothing meanwhile
        with b.lock:
            produced = b.produced
        rss_kib = int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{m.proc.pid}/status").read_text())
                      .group(1)) if not os.environ.get("ML_EMULATOR") else 0
        rest = sum(1 for _ in stream)
    assert rest == count - 1
    # What can be in flight: the client's and meshlet's HTTP/2 windows and buffers, and the
    # kernel's socket buffers on both hops: some MB, nowhere near the whole stream.
    assert produced < count // 3, f"backend ran {produced} messages ahead of a stalled client"
    assert rss_kib < 64 * 1024, f"meshlet grew to {rss_kib} KiB holding a stalled stream"


def test_downstream_cancel_resets_the_upstream_stream(backends, proxy):
    b = backends("b1")
    _, port = proxy({"echo": [b.port]})
    with channel(port) as ch:
        calls = server_stream(ch, "Hang")(b"", timeout=CALL_TIMEOUT)
        assert next(calls) == b"started"
        calls.cancel()
        assert b.cancelled.wait(timeout=scaled(5)), "the backend never saw the call cancelled"


# ---- many streams, pooling, per-call balancing -------------------------------------------------

def test_200_concurrent_streams_on_one_client_connection(backends, proxy, kconfig):
    seen = {}
    holder = {}
    # 200, or as many as the board lets a listener take (qemu-armv7: 128): still more than one
    # upstream connection's 100
    n = min(200, kconfig["CONFIG_ML_H2_MAX_STREAMS"])
    assert n > 100, "this board's CONFIG_ML_H2_MAX_STREAMS cannot fill two upstream connections"

    def at_peak():  # runs once, when all n calls are inside the backend at the same time
        seen["downstream"] = grpc_peers.established(local_port=holder["port"])
        seen["upstream"] = grpc_peers.established(remote_port=holder["bport"])

    b = backends("b1", workers=256, barrier_parties=n, barrier_action=at_peak)
    holder["bport"] = b.port
    # max_share = 100: one client connection alone may fill the whole pool
    _, port = proxy({"echo": ([b.port], "max_connections = 2\nmax_pending = 256\n"
                              "max_share = 100\n")},
                    listener=f"max_streams = {min(256, kconfig['CONFIG_ML_H2_MAX_STREAMS'])}\n")
    holder["port"] = port
    with channel(port) as ch:
        gather = unary(ch, "Gather")
        calls = [gather.future(b"", timeout=scaled(30)) for _ in range(n)]
        results = [c.result(timeout=scaled(40)) for c in calls]
    assert results == [b"gathered"] * n
    assert seen == {"downstream": 1, "upstream": 2}, seen
    # the pool fills one upstream connection (100 streams) before it opens the next
    assert sorted(b.peers.values()) == sorted([100, n - 100]), b.peers


def test_unary_calls_on_one_channel_are_spread_round_robin_per_call(backends, proxy):
    bs = [backends(f"b{i}") for i in range(3)]
    _, port = proxy({"three": [b.port for b in bs]})
    with channel(port) as ch:
        say = unary(ch, "Say")
        answers = [say(b"x", timeout=CALL_TIMEOUT) for _ in range(30)]
    counts = {b.name: sum(1 for a in answers if a == f"{b.name}:x".encode()) for b in bs}
    assert counts == {"b0": 10, "b1": 10, "b2": 10}, counts
    assert [b.calls for b in bs] == [10, 10, 10]
    # one pooled connection per backend carried all of its calls
    assert all(len(b.peers) == 1 for b in bs), [b.peers for b in bs]


def test_weighted_split_sends_calls_to_both_clusters(backends, proxy):
    a, b = backends("a"), backends("b")
    _, port = proxy({"ca": [a.port], "cb": [b.port]}, routes=[("split", "", "ca 1, cb 1")])
    with channel(port) as ch:
        say = unary(ch, "Say")
        for _ in range(60):
            say(b"x", timeout=CALL_TIMEOUT)
    assert a.calls + b.calls == 60
    assert a.calls >= 10 and b.calls >= 10, (a.calls, b.calls)


def test_calls_beyond_the_pool_wait_up_to_max_pending_then_get_unavailable(backends, proxy):
    b = backends("b1")
    _, port = proxy({"echo": ([b.port], "max_connections = 1\nmax_streams_per_connection = 2\n"
                              "max_pending = 3\nmax_share = 100\n")})
    with channel(port) as ch:
        block = unary(ch, "Block")
        active = [block.future(b"", timeout=CALL_TIMEOUT) for _ in range(2)]
        deadline = time.monotonic() + scaled(5)
        while b.calls < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert b.calls == 2
        waiting = [block.future(b"", timeout=CALL_TIMEOUT) for _ in range(3)]
        time.sleep(0.3)
        assert b.calls == 2, "a call went past a full pool"
        with pytest.raises(grpc.RpcError) as e:
            unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "max_pending (3)" in e.value.details(), e.value.details()
        # a slot frees up: the oldest waiting call gets it
        active[0].cancel()
        deadline = time.monotonic() + scaled(5)
        while b.calls < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert b.calls == 3
        for f in active + waiting:
            f.cancel()


def test_max_requests_caps_the_active_calls_of_a_cluster(backends, proxy):
    b = backends("b1")
    _, port = proxy({"echo": ([b.port], "max_requests = 2\n")})
    with channel(port) as ch:
        block = unary(ch, "Block")
        active = [block.future(b"", timeout=CALL_TIMEOUT) for _ in range(2)]
        deadline = time.monotonic() + scaled(5)
        while b.calls < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(grpc.RpcError) as e:
            unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "max_requests (2)" in e.value.details(), e.value.details()
        for f in active:
            f.cancel()
        # once they are gone, calls pass again
        deadline = time.monotonic() + scaled(5)
        while True:
            try:
                assert unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT) == b"b1:x"
                break
            except grpc.RpcError as e:
                assert "max_requests" in e.details() and time.monotonic() < deadline
                time.sleep(0.05)


def test_sigterm_with_calls_in_flight_stops_cleanly(backends, proxy):
    b = backends("b1")
    m, port = proxy({"echo": [b.port]})
    with channel(port) as ch:
        calls = [unary(ch, "Block").future(b"", timeout=CALL_TIMEOUT) for _ in range(5)]
        streams = server_stream(ch, "Hang")(b"", timeout=CALL_TIMEOUT)
        assert next(streams) == b"started"
        deadline = time.monotonic() + scaled(5)
        while b.calls < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        m.send_signal(signal.SIGTERM)
        assert m.wait(timeout=10) == 0, m.stderr[-4000:]
        for c in calls:
            with pytest.raises(grpc.RpcError):
                c.result(timeout=CALL_TIMEOUT)
    assert b.cancelled.wait(timeout=scaled(5)), "the upstream stream was left open"
