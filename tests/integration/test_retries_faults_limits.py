"""Retries, fault injection and rate limits (proxy/step_retry.c, step_fault.c,
step_rate_limit.c), end to end with real grpcio peers on both sides. Statistical checks seed
meshlet's random source (MESHLET_RANDOM_SEED), so they are deterministic; times are only checked
against the configured ones, with generous bounds above."""

import math
import signal
import subprocess
import threading
import time
import urllib.request
from concurrent import futures

import grpc
import pytest

from conftest import scaled
from grpc_peers import SERVICE, channel, unary
from test_hot_apply import Node
from test_proxy import CALL_TIMEOUT, backend_process, proxy  # noqa: F401 (fixtures)


def ident(b):
    return b


class Recorder:
    """A grpcio server (in this process) whose unary methods are given as functions
    f(request, context, attempt) → response; every call is recorded as (monotonic time, request,
    attempt), attempt being the grpc-previous-rpc-attempts meshlet sent (0 when absent)."""

    def __init__(self, name, methods, workers=32):
        self.name = name
        self.lock = threading.Lock()
        self.seen = []
        handlers = {m: grpc.unary_unary_rpc_method_handler(self._wrap(f), ident, ident)
                    for m, f in methods.items()}
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                                  options=[("grpc.so_reuseport", 0)])
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def _wrap(self, f):
        def handler(request, context):
            md = dict(context.invocation_metadata())
            attempt = int(md.get("grpc-previous-rpc-attempts", "0"))
            with self.lock:
                self.seen.append((time.monotonic(), request, attempt))
            return f(request, context, attempt)
        return handler

    def stop(self):
        self.server.stop(0).wait(timeout=5)


@pytest.fixture
def recorders():
    started = []

    def start(name, methods):
        r = Recorder(name, methods)
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


def stats(admin_port):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/stats",
                                timeout=CALL_TIMEOUT) as r:
        return dict(line.rsplit(" ", 1) for line in r.read().decode().splitlines() if line)


@pytest.fixture
def start_meshlet(run_meshlet, free_port):
    """start_meshlet(route_extra, cluster_lines) → (meshlet, port, admin_port): admin on a known
    port, one listener, route `r` with route_extra lines to cluster `c` (cluster_lines: its
    endpoints and keys). At teardown each must exit 0 on SIGTERM (under ML_SANITIZE: no leak,
    no memory error)."""
    started = []

    def start(route_extra, cluster_lines):
        port, admin = free_port(), free_port()
        m = run_meshlet(f"[node]\nadmin = 127.0.0.1:{admin}\n\n"
                        f"[listener ingress]\nbind = 127.0.0.1:{port}\n\n"
                        f"[route r]\nlistener = ingress\nto = c\n{route_extra}\n"
                        f"[cluster c]\n{cluster_lines}\n")
        started.append(m)
        assert m.alive(), m.stderr
        assert m.wait_for_stderr("listening on", timeout=5), m.stderr
        return m, port, admin

    yield start
    for m in started:
        if m.alive():
            m.send_signal(signal.SIGTERM)
            rc = m.wait(timeout=10)
            assert rc == 0, f"meshlet exited {rc} on SIGTERM:\n{m.stderr[-4000:]}"


# ---- retries ----------------------------------------------------------------------------------

def test_a_backend_killed_under_load_costs_no_unary_call(backend_process, proxy):  # noqa: F811
    bs = [backend_process(f"b{i}") for i in range(3)]
    _, port = proxy({"echo": ([b.port for b in bs], "max_retries = 100\n")},
                    routes=[("all", "retries = 2\nretry_on = unavailable, reset, connect-failure",
                             "echo")])
    n_threads, per_thread = 4, 120
    done = [0]
    lock = threading.Lock()
    failures = []

    def load():
        with channel(port) as ch:
            say = unary(ch, "Say")
            for i in range(per_thread):
                try:
                    say(b"x", timeout=CALL_TIMEOUT)
                except grpc.RpcError as e:
                    failures.append(f"{e.code()}: {e.details()}")
                with lock:
                    done[0] += 1

    threads = [threading.Thread(target=load) for _ in range(n_threads)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + scaled(30)
    while done[0] < n_threads * per_thread // 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    bs[1].kill()  # under load: calls in flight on it, its connection pooled
    for t in threads:
        t.join(timeout=scaled(60))
    assert done[0] == n_threads * per_thread
    assert failures == [], failures[:5]


def test_retry_backoff_gaps_stay_within_bounds_and_grow_with_the_attempt(recorders,
                                                                          start_meshlet):
    # Attempts 0, 1, 2 fail UNAVAILABLE; the fourth (retry 3) answers. Retry k waits uniformly
    # in [100ms, min(800ms, 100ms * 2^k)]: means 150, 250, 450 ms.
    def flaky(request, context, attempt):
        if attempt < 3:
            context.abort(grpc.StatusCode.UNAVAILABLE, "not yet")
        return b"ok:" + request

    b = recorders("b", {"Flaky": flaky})
    _, port, admin = start_meshlet(
        "retries = 3\nretry_on = unavailable\nretry_backoff = 100ms..800ms",
        f"endpoint = 127.0.0.1:{b.port}\nmax_retries = 1000\n")
    n_calls = 40
    with channel(port) as ch:
        call = unary(ch, "Flaky")
        with futures.ThreadPoolExecutor(max_workers=10) as pool:
            results = list(pool.map(lambda i: call(b"%d" % i, timeout=CALL_TIMEOUT),
                                    range(n_calls)))
    assert sorted(results) == sorted(b"ok:%d" % i for i in range(n_calls))
    by_call = {}
    for t, req, attempt in b.seen:
        by_call.setdefault(req, []).append((t, attempt))
    gaps = {1: [], 2: [], 3: []}
    for req, seen in by_call.items():
        seen.sort()
        assert [a for _, a in seen] == [0, 1, 2, 3], (req, seen)
        for k in (1, 2, 3):
            gaps[k].append(seen[k][0] - seen[k - 1][0])
    slack = scaled(0.5)  # scheduling on a loaded machine; never below the configured floor
    for k, cap in ((1, 0.2), (2, 0.4), (3, 0.8)):
        assert min(gaps[k]) >= 0.1 - 0.002, (k, min(gaps[k]))
        assert max(gaps[k]) <= cap + slack, (k, max(gaps[k]))
    means = [sum(gaps[k]) / len(gaps[k]) for k in (1, 2, 3)]
    assert means[0] < means[1] < means[2], means
    assert int(stats(admin)["route.r.rq_retry"]) == 3 * n_calls


def test_a_status_not_in_retry_on_is_relayed_at_once(recorders, start_meshlet):
    def fail(request, context, attempt):
        context.abort(grpc.StatusCode.PERMISSION_DENIED, "no")

    b = recorders("b", {"Fail": fail})
    _, port, _ = start_meshlet("retries = 3\nretry_on = unavailable",
                               f"endpoint = 127.0.0.1:{b.port}\n")
    with channel(port) as ch, pytest.raises(grpc.RpcError) as e:
        unary(ch, "Fail")(b"x", timeout=CALL_TIMEOUT)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert e.value.details() == "no"
    assert len(b.seen) == 1


def test_max_retries_in_flight_stops_retries_and_the_failure_stands(recorders, start_meshlet):
    def fail(request, context, attempt):
        context.abort(grpc.StatusCode.UNAVAILABLE, "down")

    b = recorders("b", {"Fail": fail})
    _, port, admin = start_meshlet("retries = 3\nretry_on = unavailable",
                                   f"endpoint = 127.0.0.1:{b.port}\nmax_retries = 0\n")
    with channel(port) as ch, pytest.raises(grpc.RpcError) as e:
        unary(ch, "Fail")(b"x", timeout=CALL_TIMEOUT)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert e.value.details() == "down"  # the backend's own answer, relayed
    assert len(b.seen) == 1
    s = stats(admin)
    assert s["route.r.rq_retry"] == "0" and s["route.r.rq_retry_overflow"] == "1", s


def test_retries_never_go_past_the_deadline(recorders, start_meshlet):
    def fail(request, context, attempt):
        context.abort(grpc.StatusCode.UNAVAILABLE, "down")

    b = recorders("b", {"Fail": fail})
    # Every backoff (at least 400 ms) ends after the 300 ms deadline: one attempt only.
    _, port, _ = start_meshlet(
        "retries = 3\nretry_on = unavailable\nretry_backoff = 400ms..800ms\ntimeout = 300ms",
        f"endpoint = 127.0.0.1:{b.port}\n")
    with channel(port) as ch, pytest.raises(grpc.RpcError) as e:
        unary(ch, "Fail")(b"x", timeout=CALL_TIMEOUT)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert len(b.seen) == 1


def test_a_client_stream_larger_than_the_retry_buffer_is_not_retried(start_meshlet):
    # Kconfig ML_RETRY_BUFFER_BYTES (64 KiB on the host): a stream that sent more than that
    # upstream cannot be sent again; a small one is.
    attempts = []

    def gather(it, context):
        md = dict(context.invocation_metadata())
        total = sum(len(m) for m in it)
        attempts.append(total)
        if "grpc-previous-rpc-attempts" not in md:
            context.abort(grpc.StatusCode.UNAVAILABLE, "once more")
        return b"%d" % total

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                         options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {
        "Gather": grpc.stream_unary_rpc_method_handler(gather, ident, ident)}),))
    bport = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        _, port, _ = start_meshlet("retries = 1\nretry_on = unavailable",
                                   f"endpoint = 127.0.0.1:{bport}\n")
        with channel(port) as ch:
            call = ch.stream_unary(f"/{SERVICE}/Gather", request_serializer=ident,
                                   response_deserializer=ident)
            assert call(iter([b"s" * 1000] * 4), timeout=CALL_TIMEOUT) == b"4000"
            assert attempts == [4000, 4000]
            del attempts[:]
            with pytest.raises(grpc.RpcError) as e:
                call(iter([b"L" * 4096] * 64), timeout=CALL_TIMEOUT)  # 256 KiB
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE
            assert e.value.details() == "once more"
            assert attempts == [4096 * 64]
    finally:
        server.stop(0).wait(timeout=5)


def test_hot_apply_removing_an_endpoint_while_its_calls_are_replayed(recorders, run_meshlet,
                                                                    workdir, free_port):
    # Every first attempt is held until release, then fails UNAVAILABLE; retries answer. While
    # calls are held on a, b and c, an apply removes a: from its Ack on, no call reaches a (the
    # retries of the calls held on b go to c, those held on a to b or c).
    release = threading.Event()

    def hold(request, context, attempt):
        if attempt == 0:
            release.wait(timeout=scaled(30))
            context.abort(grpc.StatusCode.UNAVAILABLE, "going")
        return b"ok"

    rs = {n: recorders(n, {"Hold": hold}) for n in "abc"}
    port = free_port()
    node = Node(run_meshlet, workdir, free_port())

    def config(names):
        return (f"[listener ingress]\nbind = 127.0.0.1:{port}\n\n"
                "[route all]\nlistener = ingress\nto = c\nretries = 2\nretry_on = unavailable\n\n"
                "[cluster c]\nmax_retries = 100\n"
                + "".join(f"endpoint = 127.0.0.1:{rs[n].port}\n" for n in names))

    try:
        node.start(config("abc"))
        n_calls = 12
        with channel(port) as ch:
            call = unary(ch, "Hold")
            pool = futures.ThreadPoolExecutor(max_workers=n_calls)
            pending = [pool.submit(call, b"x", timeout=CALL_TIMEOUT) for _ in range(n_calls)]
            deadline = time.monotonic() + scaled(10)
            while (sum(len(r.seen) for r in rs.values()) < n_calls
                   and time.monotonic() < deadline):
                time.sleep(0.01)
            assert all(len(r.seen) == n_calls // 3 for r in rs.values()), \
                {n: len(r.seen) for n, r in rs.items()}
            node.apply(config("bc"))
            acked = time.monotonic()
            release.set()
            assert [f.result(timeout=CALL_TIMEOUT) for f in pending] == [b"ok"] * n_calls
            for _ in range(20):  # new calls too
                assert call(b"y", timeout=CALL_TIMEOUT) == b"ok"
            pool.shutdown()
        after = [t for t, _, _ in rs["a"].seen if t > acked]
        assert after == [], after
        # the retries of b's calls all went to c
        assert sum(1 for _, _, a in rs["c"].seen if a == 1) >= n_calls // 3
    finally:
        release.set()
        node.stop()


# ---- fault injection --------------------------------------------------------------------------

def test_fault_abort_20_percent_of_2000_calls_lands_in_the_binomial_interval(
        recorders, start_meshlet, monkeypatch):
    monkeypatch.setenv("MESHLET_RANDOM_SEED", "20261207")
    b = recorders("b", {"Say": lambda req, ctx, a: b"ok"})
    _, port, admin = start_meshlet("fault_abort = 20% unavailable",
                                   f"endpoint = 127.0.0.1:{b.port}\n")
    n, aborted = 2000, 0
    with channel(port) as ch:
        say = unary(ch, "Say")
        for _ in range(n):
            try:
                say(b"x", timeout=CALL_TIMEOUT)
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNAVAILABLE, e
                assert "fault injected" in e.details(), e.details()
                aborted += 1
    mean, sd = n * 0.2, math.sqrt(n * 0.2 * 0.8)
    z = 3.29  # two-sided 99.9 %
    assert mean - z * sd <= aborted <= mean + z * sd, aborted
    assert len(b.seen) == n - aborted  # an aborted call costs no backend
    assert int(stats(admin)["route.r.rq_fault_aborted"]) == aborted


def test_fault_delay_holds_its_share_of_calls(recorders, start_meshlet):
    b = recorders("b", {"Say": lambda req, ctx, a: b"ok"})
    _, port, admin = start_meshlet("fault_delay = 100% 200ms",
                                   f"endpoint = 127.0.0.1:{b.port}\n")
    with channel(port) as ch:
        say = unary(ch, "Say")
        for _ in range(5):
            t0 = time.monotonic()
            assert say(b"x", timeout=CALL_TIMEOUT) == b"ok"
            assert time.monotonic() - t0 >= 0.2
            # the backend saw it after the delay
            assert b.seen[-1][0] - t0 >= 0.2
    assert stats(admin)["route.r.rq_fault_delayed"] == "5"


def test_fault_headers_delay_and_abort_one_call(recorders, start_meshlet):
    b = recorders("b", {"Say": lambda req, ctx, a: b"ok"})
    _, port, admin = start_meshlet("fault_headers = on",
                                   f"endpoint = 127.0.0.1:{b.port}\n")
    with channel(port) as ch:
        say = unary(ch, "Say")
        t0 = time.monotonic()
        assert say(b"x", timeout=CALL_TIMEOUT,
                   metadata=[("x-meshlet-fault-delay", "300")]) == b"ok"
        assert time.monotonic() - t0 >= 0.3
        with pytest.raises(grpc.RpcError) as e:
            say(b"x", timeout=CALL_TIMEOUT, metadata=[("x-meshlet-fault-abort", "8")])
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        with pytest.raises(grpc.RpcError) as e:  # by name, as fault_abort takes it
            say(b"x", timeout=CALL_TIMEOUT, metadata=[("x-meshlet-fault-abort", "not-found")])
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as e:  # bad input: a clear error, nothing injected
            say(b"x", timeout=CALL_TIMEOUT, metadata=[("x-meshlet-fault-abort", "ok")])
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "x-meshlet-fault-abort" in e.value.details()
        # the delay ends at the deadline, not after
        with pytest.raises(grpc.RpcError) as e:
            say(b"x", timeout=0.5, metadata=[("x-meshlet-fault-delay", "60000")])
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert len(b.seen) == 1
    s = stats(admin)
    assert s["route.r.rq_fault_delayed"] == "2" and s["route.r.rq_fault_aborted"] == "2", s


def test_fault_headers_off_ignores_the_headers(recorders, start_meshlet):
    b = recorders("b", {"Say": lambda req, ctx, a: b"ok"})
    _, port, _ = start_meshlet("",
                               f"endpoint = 127.0.0.1:{b.port}\n")
    with channel(port) as ch:
        assert unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT,
                                metadata=[("x-meshlet-fault-abort", "14")]) == b"ok"


# ---- rate limits ------------------------------------------------------------------------------

def test_rate_limit_burst_then_resource_exhausted_then_it_refills(recorders, start_meshlet):
    b = recorders("b", {"Say": lambda req, ctx, a: b"ok"})
    # 20 per minute: one token every 3 s; a burst of 3.
    _, port, admin = start_meshlet("rate_limit = 20/m burst 3",
                                   f"endpoint = 127.0.0.1:{b.port}\n")
    with channel(port) as ch:
        say = unary(ch, "Say")
        for _ in range(3):
            assert say(b"x", timeout=CALL_TIMEOUT) == b"ok"
        with pytest.raises(grpc.RpcError) as e:
            say(b"x", timeout=CALL_TIMEOUT)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "rate limited" in e.value.details()
        time.sleep(3.2)  # one token back
        assert say(b"x", timeout=CALL_TIMEOUT) == b"ok"
        with pytest.raises(grpc.RpcError) as e:
            say(b"x", timeout=CALL_TIMEOUT)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert len(b.seen) == 4
    assert stats(admin)["route.r.rq_rate_limited"] == "2"


def test_rate_limit_answers_plain_http_429(recorders, start_meshlet):
    b = recorders("b", {"Say": lambda req, ctx, a: b"ok"})
    _, port, _ = start_meshlet("rate_limit = 1/m burst 1",
                               f"endpoint = 127.0.0.1:{b.port}\n")
    with channel(port) as ch:
        assert unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT) == b"ok"
    r = subprocess.run(["nghttp", "-v", f"http://127.0.0.1:{port}/x"], capture_output=True,
                       text=True, timeout=scaled(10), stdin=subprocess.DEVNULL)
    assert ":status: 429" in r.stdout, r.stdout + r.stderr
