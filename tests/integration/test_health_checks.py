"""Active health checks (cluster health_check = grpc | tcp) and meshlet's own grpc.health.v1.

The grpc checks run against a health service no one here wrote: the npm packages
@grpc/grpc-js + grpc-health-check (tests/integration/node/health_backend.js only wires them
up), installed into build/npm by tests/integration/node/setup.sh from this file. Node.js was
chosen over Go's google.golang.org/grpc/health because the npm registry serves both packages
as published upstream and a Node.js peer needs no build step; Debian's Go packages would need
a Go build of the peer inside the test.

No timing thresholds: each state change is waited for (bounded) and then checked exactly (every
call lands where it must); the thresholds are read off the log lines that count them."""

import os
import socket
import subprocess
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from conftest import scaled
from grpc_peers import channel, ident, unary
from test_proxy import CALL_TIMEOUT, proxy  # noqa: F401 (a fixture)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
NODE_MODULES = ROOT / "build" / "npm" / "node_modules"


@pytest.fixture(scope="module")
def node_peers():
    """The npm packages are there (installed once, pinned; a no-op when they are)."""
    r = subprocess.run([str(HERE / "node" / "setup.sh")], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, f"node/setup.sh failed:\n{r.stderr}"


class NodeBackend:
    """tests/integration/node/health_backend.js in a process of its own."""

    def __init__(self, name, *statuses):
        env = dict(os.environ, NODE_PATH=str(NODE_MODULES))
        self.proc = subprocess.Popen(["node", str(HERE / "node" / "health_backend.js"), name,
                                      *statuses], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.lines = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        started = self._wait(lambda: any(x.startswith("port ") for x in self.lines), 20)
        assert started, f"node backend {name} did not start: " + (
            self.proc.stderr.read() if self.proc.poll() is not None else "(still running)")
        self.port = int(next(x for x in self.lines if x.startswith("port ")).split()[1])

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.strip())
                self.cond.notify_all()

    def _wait(self, fn, timeout):
        deadline = time.monotonic() + scaled(timeout)
        with self.cond:
            while not fn():
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return fn()
                self.cond.wait(min(left, 0.1))
            return True

    def set(self, service, status):
        n = self.lines.count("ok")
        self.proc.stdin.write(f"set {service or '-'} {status}\n")
        self.proc.stdin.flush()
        assert self._wait(lambda: self.lines.count("ok") > n, 10)

    def stop(self):
        self.proc.kill()
        self.proc.wait(timeout=5)


@pytest.fixture
def node_backends(node_peers):
    started = []

    def start(name, *statuses):
        b = NodeBackend(name, *statuses)
        started.append(b)
        return b

    yield start
    for b in started:
        b.stop()


def who(ch):
    """The name of the backend that answered one call."""
    return unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT).split(b":")[0].decode()


def until_only(ch, name, timeout=15, run=20):
    """Calls until `run` calls in a row landed on name (bounded); the names seen meanwhile."""
    deadline = time.monotonic() + scaled(timeout)
    seen, streak = [], 0
    while streak < run and time.monotonic() < deadline:
        seen.append(who(ch))
        streak = streak + 1 if seen[-1] == name else 0
    return streak >= run, seen


def until_seen(ch, name, timeout=15):
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        if who(ch) == name:
            return True
    return False


def health_lines(interval="100ms", extra=""):
    return (f"health_check = grpc\nhealth_interval = {interval}\nhealth_timeout = 1s\n"
            f"healthy_threshold = 2\nunhealthy_threshold = 3\n{extra}")


def test_not_serving_takes_an_endpoint_out_and_serving_brings_it_back(node_backends, proxy):  # noqa: F811
    n0, n1 = node_backends("n0"), node_backends("n1")
    m, port = proxy({"echo": ([n0.port, n1.port], health_lines())})
    with channel(port) as ch:
        assert {who(ch) for _ in range(4)} == {"n0", "n1"}  # round robin over both
        n1.set("", "NOT_SERVING")
        ok, seen = until_only(ch, "n0")
        assert ok, seen
        assert m.wait_for_stderr(f"endpoint 127.0.0.1:{n1.port} is unhealthy: status NOT_SERVING "
                                 f"(3 grpc checks failed)", timeout=5), m.stderr[-3000:]
        # out means out: not one call while it stays NOT_SERVING
        assert [who(ch) for _ in range(30)] == ["n0"] * 30
        n1.set("", "SERVING")
        assert until_seen(ch, "n1"), "n1 never came back"
        assert m.wait_for_stderr(f"endpoint 127.0.0.1:{n1.port} is healthy again "
                                 f"(2 grpc checks passed)", timeout=5), m.stderr[-3000:]
        assert {who(ch) for _ in range(4)} == {"n0", "n1"}


def test_health_service_names_the_service_checked(node_backends, proxy):  # noqa: F811
    # Both serve as a whole and for svc.Up. For svc.Down, n1 is NOT_SERVING; svc.Unknown only
    # n0 knows (n1's Check answers NOT_FOUND). With health_service naming one, only n1 goes out:
    # the service name is what is checked.
    n0 = node_backends("n0", "svc.Up=SERVING", "svc.Down=SERVING", "svc.Unknown=SERVING")
    n1 = node_backends("n1", "svc.Up=SERVING", "svc.Down=NOT_SERVING")
    for service, out in (("svc.Up", False), ("svc.Down", True), ("svc.Unknown", True)):
        m, port = proxy({"echo": ([], f"endpoint = 127.0.0.1:{n0.port}\n"
                                      f"endpoint = 127.0.0.1:{n1.port}\n"
                                      + health_lines(extra=f"health_service = {service}\n"))})
        with channel(port) as ch:
            if out:
                ok, seen = until_only(ch, "n0")
                assert ok, (service, seen)
                why = "status NOT_SERVING" if service == "svc.Down" else "grpc-status 5"
                assert m.wait_for_stderr(f"127.0.0.1:{n1.port} is unhealthy: {why}", timeout=5), \
                    m.stderr[-3000:]
                assert f"127.0.0.1:{n0.port} is unhealthy" not in m.stderr
            else:
                # three checks' worth of intervals and more: still both
                time.sleep(0.8)
                assert {who(ch) for _ in range(6)} == {"n0", "n1"}, service
                assert "is unhealthy" not in m.stderr
        m.send_signal(15)
        assert m.wait(timeout=10) == 0


class HealthCounter:
    """A grpc.health.v1 server of our own (raw bytes) that counts Checks and can hang them: for
    the timing keys, where what matters is when checks come, not who wrote the service."""

    def __init__(self, hang=False):
        self.times = []
        self.hang = hang
        self.release = threading.Event()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "grpc.health.v1.Health",
            {"Check": grpc.unary_unary_rpc_method_handler(self.check, ident, ident)}),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def check(self, request, context):
        self.times.append(time.monotonic())
        if self.hang:
            self.release.wait(timeout=30)
        return b"\x08\x01"  # status: SERVING

    def stop(self):
        self.release.set()
        self.server.stop(0).wait(timeout=5)


def test_checks_come_every_health_interval(proxy):  # noqa: F811
    fast, slow = HealthCounter(), HealthCounter()
    try:
        proxy({"fast": ([fast.port], health_lines("100ms")),
               "slow": ([slow.port], health_lines("1h"))},
              routes=[("all", "", "fast")])
        deadline = time.monotonic() + scaled(10)
        while len(fast.times) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(fast.times) >= 6, fast.times
        # 1h: the first check, at the apply, and no other
        assert len(slow.times) == 1, slow.times
        # the next check starts an interval after the last one ended: on average the checks are
        # no closer than that (a generous bound: only when a handler saw them is measured)
        gaps = [b - a for a, b in zip(fast.times, fast.times[1:])]
        assert sum(gaps) / len(gaps) >= 0.08, gaps
    finally:
        fast.stop()
        slow.stop()


def test_a_check_unanswered_within_health_timeout_fails(node_backends, proxy):  # noqa: F811
    hang = HealthCounter(hang=True)
    b = node_backends("b0")  # answers its checks SERVING
    try:
        # hang's endpoint serves no Echo: once it is out every call goes to b0
        m, port = proxy({"echo": ([b.port, hang.port],
                                  "health_check = grpc\nhealth_interval = 100ms\n"
                                  "health_timeout = 200ms\nunhealthy_threshold = 1\n")})
        # meshlet's timer, or the server keeping to the grpc-timeout meshlet sent: both are
        # health_timeout (the server's answer may come first)
        assert m.wait_for_stderr(f"endpoint 127.0.0.1:{hang.port} is unhealthy: ", timeout=10), \
            m.stderr[-3000:]
        line = next(x for x in m.stderr.splitlines() if f"{hang.port} is unhealthy" in x)
        assert ("no answer within 200 ms (health_timeout)" in line
                or "grpc-status 4 (DEADLINE_EXCEEDED: health_timeout)" in line), line
        with channel(port) as ch:
            assert [who(ch) for _ in range(10)] == ["b0"] * 10
        assert f"127.0.0.1:{b.port} is unhealthy" not in m.stderr
    finally:
        hang.stop()


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # bound once, never listened on: connects are refused
    return port


def test_tcp_check_against_a_closed_port_takes_it_out(backends, proxy):  # noqa: F811
    b = backends("b0")
    dead = closed_port()
    m, port = proxy({"echo": ([b.port, dead],
                              "health_check = tcp\nhealth_interval = 100ms\n"
                              "unhealthy_threshold = 1\n")})
    assert m.wait_for_stderr(f"endpoint 127.0.0.1:{dead} is unhealthy: connect", timeout=10), \
        m.stderr[-3000:]
    with channel(port) as ch:
        # without the check, round robin would send every other call to the closed port
        assert [who(ch) for _ in range(20)] == ["b0"] * 20
    # the live endpoint passes its tcp checks: never taken out
    assert f"127.0.0.1:{b.port} is unhealthy" not in m.stderr


def test_meshlet_answers_health_check_for_itself_without_a_backend(proxy, free_port):  # noqa: F811
    # the only endpoint is a closed port: an answer cannot have come from a backend
    m, port = proxy({"echo": [closed_port()]})
    with channel(port) as ch:
        check = ch.unary_unary("/grpc.health.v1.Health/Check", request_serializer=ident,
                               response_deserializer=ident)
        assert check(b"", timeout=CALL_TIMEOUT) == b"\x08\x01"  # SERVING
        assert check(b"\x0a\x03foo", timeout=CALL_TIMEOUT) == b"\x08\x01"  # any service name
        watch = ch.unary_stream("/grpc.health.v1.Health/Watch", request_serializer=ident,
                                response_deserializer=ident)
        with pytest.raises(grpc.RpcError) as e:
            list(watch(b"", timeout=CALL_TIMEOUT))
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
        # other calls still go to the route (and fail there: nothing listens)
        with pytest.raises(grpc.RpcError) as e:
            unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_health_service_over_128_bytes_is_refused_on_its_line(meshlet, workdir):
    base = ("[listener l]\nbind = 127.0.0.1:15997\n[route r]\nlistener = l\nto = c\n"
            "[cluster c]\nendpoint = 127.0.0.1:50051\nhealth_check = grpc\n")
    path = workdir / "svc.ini"
    path.write_text(base + f"health_service = {'s' * 128}\n")
    assert meshlet("check", path).returncode == 0
    path.write_text(base + f"health_service = {'s' * 129}\n")
    r = meshlet("check", path)
    assert r.returncode == 1
    assert (f"{path}:9: [cluster c] health_service: expected a service name of at most 128 "
            f"bytes, got 129 bytes") in r.stderr, r.stderr


def test_hot_apply_keeps_an_unhealthy_endpoint_out_and_health_check_off_brings_it_back(
        node_backends, run_meshlet, workdir, free_port):
    from test_hot_apply import Node
    n0, n1 = node_backends("n0"), node_backends("n1", "-=NOT_SERVING")
    port = free_port()
    body = (f"[listener ingress]\nbind = 127.0.0.1:{port}\n"
            f"[route all]\nlistener = ingress\nto = echo\n"
            f"[cluster echo]\nendpoint = 127.0.0.1:{n0.port}\nendpoint = 127.0.0.1:{n1.port}\n")
    node = Node(run_meshlet, workdir, free_port())
    m = node.start(body + health_lines())
    assert m.wait_for_stderr(f"127.0.0.1:{n1.port} is unhealthy", timeout=10), m.stderr[-3000:]
    # another timeout, the same check: the host's state carries over; n1 stays out at once
    node.apply(body + health_lines(extra="max_pending = 32\n"))
    with channel(port) as ch:
        assert [who(ch) for _ in range(10)] == ["n0"] * 10
        node.apply(body)  # health_check = off: every endpoint is healthy again
        assert {who(ch) for _ in range(4)} == {"n0", "n1"}


def test_fleet_status_counts_the_endpoints_health_checks_took_out(backends, run_meshlet,
                                                                  free_port):
    from fleet_peers import PyController
    from test_fleet_hostile import fleet
    b = backends("b0")
    dead = closed_port()
    ctl = PyController(free_port())
    try:
        listen = free_port()
        m = run_meshlet("[node]\nid = gw-health\n\n" +
                        fleet(f"ws://127.0.0.1:{ctl.port}/fleet/v1") +
                        f"\n[listener in]\nbind = 127.0.0.1:{listen}\n"
                        f"[route all]\nlistener = in\nto = c\n"
                        f"[cluster c]\nendpoint = 127.0.0.1:{b.port}\n"
                        f"endpoint = 127.0.0.1:{dead}\nhealth_check = tcp\n"
                        f"health_interval = 100ms\nunhealthy_threshold = 1\n")
        assert m.wait_for_stderr(f"127.0.0.1:{dead} is unhealthy", timeout=10), m.stderr[-3000:]
        # a Status filled before the check failed may still be on its way: wait for a later one
        assert ctl.wait_for(lambda: any((s.endpoints_healthy, s.endpoints_total) == (1, 2)
                                        for s in ctl.statuses), timeout=6), ctl.statuses
    finally:
        ctl.stop()
