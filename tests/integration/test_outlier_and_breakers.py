"""Outlier ejection, connect backoff and circuit breakers end to end, with real gRPC backends
(grpcio) and admin /clusters, /stats and /stats/prometheus. No timing thresholds: what is checked
are counts (calls that failed against ejections made, connects against calls) and states that a
bounded poll waits for."""

import concurrent.futures
import json
import socket
import threading
import time

import grpc
import pytest

from conftest import scaled
from grpc_peers import SERVICE, channel, ident, unary
from test_admin import admin_port, get, stats, wait_until
from test_proxy import CALL_TIMEOUT, proxy, refused_port  # noqa: F401 (a fixture)



@pytest.fixture(autouse=True)
def seeded(monkeypatch):
    """meshlet's random source (the backoff's jitter) the same every run."""
    monkeypatch.setenv("MESHLET_RANDOM_SEED", "8")


class PortBackend:
    """A gRPC backend on a given port (0: the kernel picks), so that it can be stopped and
    started again where meshlet's config points. Say answers NAME:request; Block holds the
    call until release() (the max_requests test)."""

    def __init__(self, name, port=0, sick=False):
        self.name = name
        self.sick = sick  # Say answers UNAVAILABLE
        self.calls = 0
        self.lock = threading.Lock()
        self.gate = threading.Event()
        handlers = {
            "Say": grpc.unary_unary_rpc_method_handler(self.say, ident, ident),
            "Block": grpc.unary_unary_rpc_method_handler(self.block, ident, ident),
        }
        self.server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=16),
                                  options=[("grpc.so_reuseport", 0)])
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.port = self.server.add_insecure_port(f"127.0.0.1:{port}")
        assert self.port != 0, f"cannot bind 127.0.0.1:{port}"
        self.server.start()

    def _seen(self):
        with self.lock:
            self.calls += 1

    def say(self, request, context):
        self._seen()
        if self.sick:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"{self.name} is sick")
        return self.name.encode() + b":" + request

    def block(self, request, context):
        self._seen()
        while not self.gate.wait(0.05) and context.is_active():
            pass
        return b"released"

    def release(self):
        self.gate.set()

    def stop(self):
        self.gate.set()
        self.server.stop(0).wait(timeout=5)


@pytest.fixture
def port_backends():
    started = []

    def start(name, port=0, **kw):
        b = PortBackend(name, port, **kw)
        started.append(b)
        return b

    yield start
    for b in started:
        b.stop()


def clusters_json(admin):
    status, headers, body = get(admin, "/clusters?format=json")
    assert status == 200, body
    assert headers["Content-Type"].startswith("application/json")
    return {c["name"]: c for c in json.loads(body)["clusters"]}


def host(admin, cluster, port):
    return next(h for h in clusters_json(admin)[cluster]["hosts"]
                if h["address"] == f"127.0.0.1:{port}")


def call_all(ch, n, threads=4):
    """n unary Say calls over ch from a few threads at once (load): [(ok, detail), ...]."""
    say = unary(ch, "Say")

    def one(i):
        try:
            return True, say(b"%d" % i, timeout=CALL_TIMEOUT)
        except grpc.RpcError as e:
            return False, (e.code(), e.details())

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(n)))


OUTLIER = ("outlier_errors = 3\noutlier_ejection = 1s\noutlier_max_percent = 50\n"
           "connect_timeout = 1s\n")


def test_a_killed_backend_is_ejected_after_outlier_errors_and_used_again_once_back(
        port_backends, proxy):  # noqa: F811
    bs = [port_backends(f"b{i}") for i in range(3)]
    dead_port = bs[0].port
    m, port = proxy({"echo": ([b.port for b in bs], OUTLIER)})
    admin = admin_port(m)
    with channel(port) as ch:
        assert all(ok for ok, _ in call_all(ch, 30))
        assert [b.calls for b in bs] == [10, 10, 10]  # round robin, before anything fails

        # killed under load (4 calls in flight at a time, no retries), which goes on until the
        # endpoint is ejected (bounded)
        results, stop = [], threading.Event()

        def load():
            while not stop.is_set() and len(results) < 5000:
                results.extend(call_all(ch, 40))

        loader = threading.Thread(target=load)
        loader.start()
        bs[0].stop()
        wait_until(lambda: host(admin, "echo", dead_port)["ejections"] > 0, timeout=30)
        results.extend(call_all(ch, 60))  # and more while it is out
        stop.set()
        loader.join()
        failed = [detail for ok, detail in results if not ok]
        h = host(admin, "echo", dead_port)
        ejections = h["ejections"]
        assert ejections >= 1, (h, failed[:5])
        # each ejection takes outlier_errors (3) failures in a row; besides those only calls
        # already on their way to it (at most the 4 in flight) fail: round robin without
        # ejection would fail a third of them
        assert len(failed) <= 3 * ejections + 4, (len(failed), h, failed[:5])
        assert len(failed) < len(results) / 3, (len(failed), len(results), h)
        # the calls the backend had when it stopped end CANCELLED (its reset), the others
        # UNAVAILABLE
        cancelled = [d for d in failed if d[0] == grpc.StatusCode.CANCELLED]
        assert len(cancelled) <= 4, failed
        for code, details in failed:
            assert code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED), details
            assert f"127.0.0.1:{dead_port}" not in details, details  # the log keeps addresses
        assert h["calls"] >= h["failures"] >= 3, h

        # counted in /stats and Prometheus
        st = stats(admin)
        assert st[f"cluster.echo.endpoint.127.0.0.1:{dead_port}.ejections"] == ejections, st
        _, _, prom = get(admin, "/stats/prometheus")
        assert "meshlet_endpoint_ejections_total{" in prom, prom[-2000:]
        assert "meshlet_endpoint_ejected{" in prom and "meshlet_cluster_cb_max_requests_total{" \
            in prom, prom[-2000:]
        status, _, text = get(admin, "/clusters")
        assert status == 200 and f"127.0.0.1:{dead_port} weight 1 health healthy" in text, text

        # restarted on the same port: once its ejection is over it takes calls again
        back = port_backends("b0-again", dead_port)
        got = wait_until(lambda: (call_all(ch, 6, threads=1), back.calls > 0)[1],
                         timeout=30)
        assert got, (host(admin, "echo", dead_port), m.stderr[-3000:])
        assert not host(admin, "echo", dead_port)["ejected"]
        results = call_all(ch, 30, threads=1)
        assert all(ok for ok, _ in results), results
        assert back.calls >= 10, back.calls  # its third of round robin, and more
    assert "ejected for 1000 ms after 3 failures in a row" in m.stderr, m.stderr[-3000:]


def test_outlier_max_percent_keeps_the_last_endpoints_in(port_backends, proxy):  # noqa: F811
    sick = [port_backends(f"sick{i}", sick=True) for i in range(2)]
    live = port_backends("live")
    m, port = proxy({"echo": ([*(b.port for b in sick), live.port], OUTLIER)})
    admin = admin_port(m)
    with channel(port) as ch:
        results = call_all(ch, 30, threads=1)
    hosts = clusters_json(admin)["echo"]["hosts"]
    # 3 endpoints at 50 %: one may be out at a time, never two: the first sick one to fail 3
    # times in a row is ejected, the other stays in and keeps failing
    assert [h["ejected"] for h in hosts] == [True, False, False], hosts
    assert hosts[1]["consecutive_failures"] > 3 and hosts[1]["ejections"] == 0, hosts
    assert sum(1 for ok, _ in results if not ok) == 3 + hosts[1]["failures"], hosts
    assert "outlier_max_percent (50%) of the endpoints are ejected already" in m.stderr


def test_connects_to_a_refusing_endpoint_back_off(port_backends, proxy):  # noqa: F811
    live = port_backends("live")
    dead = refused_port()
    m, port = proxy({"echo": ([dead, live.port], "outlier_errors = 0\n")})  # no ejection
    admin = admin_port(m)
    with channel(port) as ch:
        results = call_all(ch, 100, threads=1)
    failed = [detail for ok, detail in results if not ok]
    for code, details in failed:
        assert code == grpc.StatusCode.UNAVAILABLE, details
        assert str(dead) not in details, details
    st = stats(admin)
    ep = f"cluster.echo.endpoint.127.0.0.1:{dead}."
    # round robin would send it every other call (50); while its connects back off its picks go
    # to the live endpoint instead: a call fails only with a connect that failed, one per backoff
    # period, not one per call
    assert len(failed) == st[ep + "cx_failed"] == st[ep + "cx_opened"], (len(failed), st)
    assert st[ep + "cx_backoff"] == 50 - len(failed), st
    assert len(failed) < 25, len(failed)
    assert live.calls == 100 - len(failed)
    assert host(admin, "echo", dead)["connect_failures"] == len(failed)


def test_max_requests_refuses_the_next_call_without_reaching_a_backend(
        port_backends, proxy):  # noqa: F811
    b = port_backends("b")
    n = 4
    m, port = proxy({"echo": ([b.port], f"max_requests = {n}\n")})
    admin = admin_port(m)
    with channel(port) as ch:
        block = unary(ch, "Block")
        held = [block.future(b"", timeout=CALL_TIMEOUT) for _ in range(n)]
        assert wait_until(lambda: b.calls == n), b.calls
        with pytest.raises(grpc.RpcError) as e:
            unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "max_requests (4)" in e.value.details(), e.value.details()
        assert b.calls == n  # call N+1 never reached the backend
        assert clusters_json(admin)["echo"]["active"] == n
        b.release()
        assert [f.result() for f in held] == [b"released"] * n
        assert unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT) == b"b:x"
    assert stats(admin)["cluster.echo.upstream_cb_max_requests"] == 1


class SlowRelay:
    """A TCP relay to a backend that waits `delay` seconds after each accept before it connects
    through: meshlet's first upstream connection stays in the making for that long, so a burst
    of calls finds the pool cold however fast the machine is."""

    def __init__(self, target_port, delay):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.target_port, self.delay = target_port, delay
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        time.sleep(self.delay)
        u = socket.create_connection(("127.0.0.1", self.target_port))
        self.conns += [c, u]
        threading.Thread(target=self._pipe, args=(u, c), daemon=True).start()
        self._pipe(c, u)

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def test_a_burst_of_100_streams_on_a_cold_pool_all_succeed(port_backends, proxy):  # noqa: F811
    b = port_backends("b")
    relay = SlowRelay(b.port, delay=1.0)
    # the default max_pending and max_connections (one connection, in the making for a second)
    m, port = proxy({"echo": ([relay.port], "connect_timeout = 10s\n")})
    admin = admin_port(m)
    with channel(port) as ch:
        # the downstream connection is up before the burst; the upstream one is not
        grpc.channel_ready_future(ch).result(timeout=scaled(5))
        say = unary(ch, "Say")
        futures = [say.future(b"%d" % i, timeout=CALL_TIMEOUT) for i in range(100)]
        answers = [f.result() for f in futures]
    assert answers == [b"b:%d" % i for i in range(100)]
    assert b.calls == 100
    assert stats(admin)["cluster.echo.upstream_rq_pending_overflow"] == 0
    relay.close()


def test_clusters_page_shows_every_host_in_text_and_json(port_backends, proxy):  # noqa: F811
    bs = [port_backends(f"b{i}") for i in range(2)]
    m, port = proxy({"echo": ([bs[0].port], "endpoint = 127.0.0.1:%d weight=3\n" % bs[1].port)})
    admin = admin_port(m)
    with channel(port) as ch:
        call_all(ch, 8, threads=1)
    c = clusters_json(admin)["echo"]
    assert [h["address"] for h in c["hosts"]] == [f"127.0.0.1:{b.port}" for b in bs]
    assert [h["weight"] for h in c["hosts"]] == [1, 3]
    assert sum(h["calls"] for h in c["hosts"]) == 8
    for h in c["hosts"]:
        assert h["health"] == "healthy" and h["usable"] and not h["ejected"], h
        assert h["failures"] == 0 and h["active"] == 0 and h["pending"] == 0, h
    status, headers, text = get(admin, "/clusters")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert text.startswith("cluster echo: active 0 pending 0\n"), text
    assert f"  127.0.0.1:{bs[1].port} weight 3 health healthy ejected no" in text, text
