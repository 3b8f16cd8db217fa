"""meshlet's fleet client against controllers that misbehave (runtime/fleet/README.md "Rules"): garbage,
text frames, an envelope over the size limit, a kind the node does not know, a TLS certificate
from the wrong CA, a controller that accepts and closes at once. In every case the node keeps
serving gRPC calls, says why in its log, counts it in /stats, reconnects with gaps inside the
[fleet] backoff bounds (never a busy loop) and stays near idle. Plus the happy path: what the
Hello says, and a Status every report_interval.

The controllers are written here (python3-websockets, python3-protobuf from fleet.proto via
fleet_peers.py, the ssl module, raw sockets); the certificates are made with openssl per test."""

import os
import re
import signal
import socket
import ssl
import threading
import time
import urllib.request

import pytest

import grpc_peers
from conftest import scaled
from fleet_peers import PyController, fleet_pb2, make_ca, make_leaf
from grpc_peers import Backend, channel, unary

CALL_TIMEOUT = scaled(10)
PREFIX = f"/{grpc_peers.SERVICE}/"

# The backoff under test and the window in which reconnects are counted: delays are drawn from
# [100 ms, min(400 ms, 100 ms * 2^(k+1))], so 4 s hold about 10..40 attempts.
BACKOFF = "100ms..400ms"
LO_S, HI_S = 0.100, 0.400
WINDOW_S = 4.0
# CPU the node may use over the window, as a share of one core (generous: idle is ~0).
CPU_MAX_SHARE = 0.10


# ---- helpers ------------------------------------------------------------------------------------

@pytest.fixture
def backend():
    b = Backend("A")
    yield b
    b.stop()


def data_plane(listen_port, endpoint_port):
    return (f"[listener in]\nbind = 127.0.0.1:{listen_port}\n\n"
            f"[route all]\nlistener = in\nprefix = {PREFIX}\nto = c\n\n"
            f"[cluster c]\nendpoint = 127.0.0.1:{endpoint_port}\n")


def fleet(url, ca=None, report_interval="1s"):
    text = f"[fleet]\nurl = {url}\nbackoff = {BACKOFF}\nreport_interval = {report_interval}\n"
    if url.startswith("ws://"):
        text += "insecure = on\n"
    if ca is not None:
        text += f"ca = {ca}\n"
    return text


def start_node(run_meshlet, free_port, backend, fleet_text, node_id="gw-h"):
    listen = free_port()
    m = run_meshlet(f"[node]\nid = {node_id}\n\n" + fleet_text + "\n" +
                    data_plane(listen, backend.port))
    assert m.alive(), m.stderr
    return m, listen


def admin_port(m):
    text = open(m.config_path).read()
    return int(re.search(r"^admin\s*=\s*127\.0\.0\.1:(\d+)\s*$", text, re.M).group(1))


def stats(m):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port(m)}/stats",
                                timeout=scaled(10)) as r:
        body = r.read().decode()
    return {k: int(v) for k, v in (line.rsplit(" ", 1) for line in body.splitlines()
                                   if line and not line.startswith("#"))}


def cpu_seconds(pid):
    """utime + stime of pid, in seconds (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve_calls_for(listen, seconds):
    """gRPC calls through meshlet, one every 0.25 s for `seconds`: all must succeed."""
    end = time.monotonic() + seconds
    n = 0
    with channel(listen) as ch:
        say = unary(ch, "Say")
        while time.monotonic() < end:
            assert say(b"x", timeout=CALL_TIMEOUT).startswith(b"A:")
            n += 1
            time.sleep(0.25)
    return n


def watch_window(m, listen, times, first_timeout=10):
    """Waits for the first connection attempt in `times` (a list the controller appends
    time.monotonic() to), then runs gRPC calls through the node for WINDOW_S and measures its
    CPU. Returns (attempt times inside the window, CPU share of one core, calls made)."""
    deadline = time.monotonic() + scaled(first_timeout)
    while not times and time.monotonic() < deadline:
        time.sleep(0.02)
    assert times, f"the node never reached the controller:\n{m.stderr}"
    t0 = times[0]
    cpu0 = cpu_seconds(m.proc.pid)
    start = time.monotonic()
    calls = serve_calls_for(listen, WINDOW_S)
    wall = time.monotonic() - start
    share = (cpu_seconds(m.proc.pid) - cpu0) / wall
    assert m.alive(), m.stderr
    return [t for t in list(times) if t0 <= t < t0 + WINDOW_S], share, calls


def assert_backoff(attempts, share, what):
    """Attempts inside WINDOW_S spaced as [fleet] backoff = BACKOFF allows, CPU near idle."""
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    n = len(attempts)
    print(f"{what}: {n} attempts in {WINDOW_S}s, gaps {min(gaps):.3f}..{max(gaps):.3f}s, "
          f"CPU {share:.2%}")
    # at most one attempt per lower bound (+1 for the first), at least one per upper bound
    # (+ generous room for connection setup and a loaded machine)
    assert n <= WINDOW_S / LO_S + 1, f"{what}: {n} attempts in {WINDOW_S}s: a busy loop ({gaps})"
    assert n >= WINDOW_S / (HI_S + 0.25) - 1, f"{what}: only {n} attempts in {WINDOW_S}s ({gaps})"
    assert min(gaps) >= LO_S * 0.9, f"{what}: a gap under the backoff's lower bound: {gaps}"
    assert max(gaps) <= scaled(HI_S + 0.6), f"{what}: a gap far over the upper bound: {gaps}"
    # the window grows past 2 x the lower bound: short-lived connections never reset it (with
    # ~15 draws from [100, 400] ms, all under 230 ms has a chance of about 2e-5)
    assert max(gaps) > 0.23, f"{what}: the backoff does not grow: {gaps}"
    assert share < CPU_MAX_SHARE * max(1.0, scaled(1)), \
        f"{what}: the node used {share:.1%} of a core while reconnecting"


class AcceptCounter:
    """A TCP listener on 127.0.0.1:port that notes the time of every accept, then either runs a
    TLS handshake with ssl_context (which the node is expected to refuse) or closes at once."""

    def __init__(self, port, ssl_context=None):
        self.ssl_context = ssl_context
        self.times = []
        self.handshake_errors = []
        self._sock = socket.create_server(("127.0.0.1", port))
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.times.append(time.monotonic())
            try:
                if self.ssl_context is not None:
                    conn.settimeout(scaled(2))
                    with self.ssl_context.wrap_socket(conn, server_side=True) as s:
                        s.recv(1)  # the node must not get this far
            except (ssl.SSLError, OSError) as e:
                self.handshake_errors.append(str(e))
            finally:
                conn.close()

    def stop(self):
        self._stop.set()
        self._thread.join(scaled(5))
        self._sock.close()


@pytest.fixture
def accept_counter(free_port):
    started = []

    def start(**kw):
        c = AcceptCounter(free_port(), **kw)
        c.port = c._sock.getsockname()[1]
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()


@pytest.fixture
def py_controller(free_port):
    started = []

    def start(**kw):
        c = PyController(free_port(), **kw)
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """Two CAs (the node trusts "ca"; "evil" it does not) and a server certificate for
    127.0.0.1 from each, made with openssl."""
    d = tmp_path_factory.mktemp("pki")
    for ca in ("ca", "evil"):
        make_ca(d, ca)
        make_leaf(d, f"srv-{ca}", ca, "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                  "basicConstraints=CA:FALSE", cn="127.0.0.1")
    # from the trusted CA, but for another host name
    make_leaf(d, "srv-othername", "ca", "subjectAltName=DNS:other.example\n"
              "basicConstraints=CA:FALSE", cn="other.example")
    return d


def server_context(pki, name):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki / f"srv-{name}.crt", pki / f"srv-{name}.key")
    return ctx


def envelope_bytes(**kw):
    env = fleet_pb2().Envelope()
    for k, v in kw.items():
        getattr(env, k).CopyFrom(v)
    return env.SerializeToString()


# ---- the happy path -----------------------------------------------------------------------------

def test_hello_says_who_the_node_is_and_status_comes_every_interval(run_meshlet, free_port,
                                                                     backend, py_controller,
                                                                     meshlet):
    ctl = py_controller()
    m, listen = start_node(run_meshlet, free_port, backend,
                           fleet(f"ws://127.0.0.1:{ctl.port}/fleet/v1"), node_id="gw-hello")
    hello = ctl.wait_hello()
    assert hello, m.stderr
    version = meshlet("version").stdout
    assert hello.node_id == "gw-hello"
    assert hello.board == re.search(r"^board: (\S+)$", version, re.M).group(1)
    assert f"meshlet {hello.version}\n" in version
    assert list(hello.features) == re.search(r"^features: (.*)$", version, re.M).group(1).split()
    assert hello.config_version == ""  # the local file runs
    assert "INSECURE" in m.stderr  # ws:// is said loudly

    # report_interval = 1s: Statuses a second apart, counting the calls made meanwhile
    n0 = len(ctl.statuses)
    serve_calls_for(listen, 0.5)
    assert ctl.wait_for(lambda: len(ctl.statuses) >= n0 + 3, timeout=6), ctl.statuses
    with ctl._cond:
        last = ctl.statuses[-1]
    assert last.calls_total >= 2 and last.endpoints_total == 1, last
    assert last.config_version.startswith("local-"), last
    assert last.uptime_s <= 60
    st = stats(m)
    assert st["fleet_connected"] == 1 and st["fleet_connects_total"] == 1
    assert st["fleet_connect_attempts_total"] == 1 and st["fleet_protocol_errors_total"] == 0


def test_status_reports_are_spaced_by_report_interval(run_meshlet, free_port, backend,
                                                      py_controller):
    arrivals = []  # when each Status was seen (polled every 10 ms)
    ctl = py_controller()
    m, _ = start_node(run_meshlet, free_port, backend,
                      fleet(f"ws://127.0.0.1:{ctl.port}/fleet/v1"))
    assert ctl.wait_hello(), m.stderr
    seen, deadline = 0, time.monotonic() + scaled(5)
    while time.monotonic() < deadline:
        with ctl._cond:
            n = len(ctl.statuses)
        if n > seen:
            arrivals.extend([time.monotonic()] * (n - seen))
            seen = n
        time.sleep(0.01)
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    # the window is scaled(5) s (ML_TIMEOUT_SCALE: sanitizer builds, emulators), so the bound too
    assert 3 <= len(arrivals) <= int(scaled(5)) + 1, arrivals
    assert all(0.8 <= g <= scaled(1.3) for g in gaps), gaps


# ---- hostile controllers ------------------------------------------------------------------------

def oversized():
    """A well-formed Push whose envelope is over 300 KiB (the Kconfig default limit is 64 KiB)."""
    pb = fleet_pb2()
    return envelope_bytes(push=pb.Push(version="v-big", nonce=1, ini=b"x" * (300 * 1024)))


@pytest.mark.parametrize("what,payload,log,counter", [
    ("garbage", b"\xff\xfe\x00garbage\x07", "undecodable envelope", "fleet_protocol_errors_total"),
    ("text frame", "hello, I am text", "text frame", "fleet_protocol_errors_total"),
    ("oversized", None, "message over", "fleet_protocol_errors_total"),
])
def test_bad_message_closes_logs_counts_and_reconnects_within_backoff(
        run_meshlet, free_port, backend, py_controller, what, payload, log, counter):
    payload = oversized() if payload is None else payload

    async def hostile(ctl, ws):
        await ws.send(payload)
        try:
            await ws.wait_closed()
        except Exception:
            pass
        return False

    ctl = py_controller(on_connect=hostile)
    m, listen = start_node(run_meshlet, free_port, backend,
                           fleet(f"ws://127.0.0.1:{ctl.port}/fleet/v1"))
    attempts, share, calls = watch_window(m, listen, ctl.connect_times)
    assert calls >= 8
    assert_backoff(attempts, share, what)
    assert m.wait_for_stderr(log), m.stderr
    assert re.search(r"fleet: c\d+: connection to ws://\S+ ended after \d+ ms: .*next attempt in "
                     r"\d+ ms", m.stderr), m.stderr
    st = stats(m)
    assert st[counter] >= len(attempts) - 1, st
    assert st["fleet_unknown_kinds_total"] == 0 and st["fleet_pushes_total"] == 0, st


def test_unknown_kind_is_ignored_counted_and_the_connection_stays(run_meshlet, free_port,
                                                                   backend, py_controller):
    ctl = py_controller()
    m, listen = start_node(run_meshlet, free_port, backend,
                           fleet(f"ws://127.0.0.1:{ctl.port}/fleet/v1"))
    assert ctl.wait_hello(), m.stderr
    # field 6 (length-delimited, empty): a message kind a newer controller might send; then an
    # envelope with nothing set at all
    ctl.send_raw(b"\x32\x00")
    ctl.send_raw(b"")
    ctl.send_raw(b"\x32\x03\x08\x96\x01")
    assert m.wait_for_stderr("kind this node does not know"), m.stderr
    # still the same connection, still answering: a push on it gets its answer
    answer = ctl.push("[route r]\nbogus = 1\n", version="v-x", timeout=10)
    assert answer.WhichOneof("msg") == "nack" and answer.nack.version == "v-x", answer
    assert ctl.connections == 1
    assert serve_calls_for(listen, 0.5) >= 1
    st = stats(m)
    assert st["fleet_unknown_kinds_total"] == 3, st
    assert st["fleet_protocol_errors_total"] == 0 and st["fleet_disconnects_total"] == 0, st
    assert st["fleet_connected"] == 1


def test_certificate_from_the_wrong_ca_is_refused_and_retried_within_backoff(
        run_meshlet, free_port, backend, accept_counter, pki):
    srv = accept_counter(ssl_context=server_context(pki, "evil"))
    m, listen = start_node(run_meshlet, free_port, backend,
                           fleet(f"wss://127.0.0.1:{srv.port}/fleet/v1", ca=pki / "ca.crt"))
    attempts, share, calls = watch_window(m, listen, srv.times)
    assert calls >= 8
    assert_backoff(attempts, share, "wrong CA")
    assert m.wait_for_stderr("certificate was refused"), m.stderr
    assert re.search(r"fleet: c\d+: cannot connect to wss://\S+: TLS.*next attempt in \d+ ms",
                     m.stderr), m.stderr
    st = stats(m)
    assert st["fleet_connects_total"] == 0 and st["fleet_connected"] == 0, st
    assert st["fleet_connect_failures_total"] >= len(attempts) - 1, st
    # the node hung up during the handshake: it never sent a byte of WebSocket
    assert srv.handshake_errors, "the TLS handshake went through"


def test_certificate_for_another_host_name_is_refused(run_meshlet, free_port, backend,
                                                      accept_counter, pki):
    srv = accept_counter(ssl_context=server_context(pki, "othername"))
    m, listen = start_node(run_meshlet, free_port, backend,
                           fleet(f"wss://127.0.0.1:{srv.port}/fleet/v1", ca=pki / "ca.crt"))
    assert m.wait_for_stderr("certificate was refused"), m.stderr
    assert re.search(r"hostname|Hostname", m.stderr), m.stderr
    assert serve_calls_for(listen, 0.5) >= 1
    st = stats(m)
    assert st["fleet_connects_total"] == 0 and st["fleet_connect_failures_total"] >= 1, st


def test_right_ca_connects_over_tls(run_meshlet, free_port, backend, py_controller, pki):
    ctl = py_controller(ssl_context=server_context(pki, "ca"))
    m, _ = start_node(run_meshlet, free_port, backend,
                      fleet(f"wss://127.0.0.1:{ctl.port}/fleet/v1", ca=pki / "ca.crt"))
    assert ctl.wait_hello(), m.stderr
    assert "INSECURE" not in m.stderr


def test_controller_that_accepts_and_closes_at_once_gets_no_busy_loop(run_meshlet, free_port,
                                                                       backend, py_controller):
    async def close_at_once(ctl, ws):
        return False  # the upgrade completed; the handler ends: websockets closes (1000)

    ctl = py_controller(on_connect=close_at_once)
    m, listen = start_node(run_meshlet, free_port, backend,
                           fleet(f"ws://127.0.0.1:{ctl.port}/fleet/v1"))
    attempts, share, calls = watch_window(m, listen, ctl.connect_times)
    assert calls >= 8
    # each connection lives far shorter than the backoff's upper bound: the backoff must not
    # reset, so the gaps stay inside the bounds however fast the controller hangs up
    assert_backoff(attempts, share, "accept and close")
    assert m.wait_for_stderr("closed by the controller"), m.stderr
    st = stats(m)
    assert st["fleet_disconnects_total"] >= len(attempts) - 1, st
    assert st["fleet_protocol_errors_total"] == 0, st


def test_tcp_accept_and_close_before_the_upgrade_gets_no_busy_loop(run_meshlet, free_port,
                                                                    backend, accept_counter):
    srv = accept_counter()
    m, listen = start_node(run_meshlet, free_port, backend,
                           fleet(f"ws://127.0.0.1:{srv.port}/fleet/v1"))
    attempts, share, calls = watch_window(m, listen, srv.times)
    assert calls >= 8
    assert_backoff(attempts, share, "TCP accept and close")
    assert m.wait_for_stderr("cannot connect to ws://"), m.stderr
    st = stats(m)
    assert st["fleet_connects_total"] == 0, st


def test_no_controller_at_all_gets_no_busy_loop(run_meshlet, free_port, backend):
    port = free_port()  # nothing listens: connection refused, over and over
    m, listen = start_node(run_meshlet, free_port, backend,
                           fleet(f"ws://127.0.0.1:{port}/fleet/v1"))
    assert m.wait_for_stderr("Connection refused"), m.stderr
    a0 = stats(m)["fleet_connect_attempts_total"]
    cpu0, t0 = cpu_seconds(m.proc.pid), time.monotonic()
    serve_calls_for(listen, WINDOW_S)
    wall = time.monotonic() - t0
    n = stats(m)["fleet_connect_attempts_total"] - a0
    share = (cpu_seconds(m.proc.pid) - cpu0) / wall
    assert wall / (HI_S + 0.25) - 1 <= n <= wall / LO_S + 1, n
    assert share < CPU_MAX_SHARE * max(1.0, scaled(1)), share


def test_changed_fleet_applies_at_the_next_reconnect(run_meshlet, free_port, backend,
                                                     py_controller):
    first, second = py_controller(), py_controller()
    m, listen = start_node(run_meshlet, free_port, backend,
                           fleet(f"ws://127.0.0.1:{first.port}/fleet/v1"))
    assert first.wait_hello(), m.stderr
    # [fleet] is bootstrap: changed in the local file, applied by SIGHUP (a push or POST /config
    # that changes it is refused, test_bootstrap_local_only.py)
    text = open(m.config_path).read().replace(f":{first.port}/", f":{second.port}/")
    with open(m.config_path, "w") as f:
        f.write(text)
    m.send_signal(signal.SIGHUP)
    assert m.wait_for_stderr("(SIGHUP)", timeout=scaled(10)), m.stderr
    assert "refused" not in m.stderr, m.stderr
    # the connection in place stays: no drop for a changed [fleet]
    time.sleep(1.0)
    assert first.connections == 1 and second.connections == 0
    assert stats(m)["fleet_disconnects_total"] == 0
    # once it ends, the next attempt goes to the new url
    first.close_node()
    assert second.wait_hello(), m.stderr
    assert first.connections == 1
    assert second.hellos[0].node_id == "gw-h"
    assert serve_calls_for(listen, 0.5) >= 1
