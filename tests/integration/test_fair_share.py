"""Fair sharing of a cluster's upstream stream slots between downstream connections, and
stream_stall_timeout, end to end with real peers: a raw HTTP/2 client (python3-h2) that opens
many streams for large responses and reads them slowly or not at all, a well-behaved grpcio
client, and a grpcio backend. Every wait is bounded."""

import signal
import socket
import threading
import time

import grpc
import pytest

import grpc_peers
from conftest import scaled
from grpc_peers import channel, unary

CALL_TIMEOUT = scaled(5)


def grpc_frame(payload):
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


class SlowReader:
    """One HTTP/2 connection to meshlet that opens streams and takes their response bodies
    slowly: a window of `window` bytes per stream, then `trickle` bytes per stream every 0.5 s
    (0: never a WINDOW_UPDATE, the streams stall). Events are recorded per stream."""

    def __init__(self, port, window=1024, trickle=0):
        self.h2 = pytest.importorskip("h2.connection")
        self.h2config = pytest.importorskip("h2.config")
        self.events = pytest.importorskip("h2.events")
        self.settings = pytest.importorskip("h2.settings")
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
        self.c = self.h2.H2Connection(self.h2config.H2Configuration(client_side=True))
        self.c.local_settings = self.settings.Settings(
            client=True, initial_values={self.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.trickle = trickle
        self.stopped = False
        self.streams = {}  # id → {"headers": t or None, "data": n, "last_data": t,
        #                          "reset": (code, t) or None, "trailers": {..} or None}
        with self.lock:
            self.c.initiate_connection()
            self.sock.sendall(self.c.data_to_send())
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if trickle:
            threading.Thread(target=self._trickle, daemon=True).start()

    def open(self, method, payload):
        with self.lock:
            sid = self.c.get_next_available_stream_id()
            self.streams[sid] = {"headers": None, "data": 0, "last_data": None, "reset": None,
                                 "trailers": None, "ended": False}
            self.c.send_headers(sid, [(":method", "POST"), (":scheme", "http"),
                                      (":path", grpc_peers.method(method)),
                                      (":authority", "localhost"),
                                      ("content-type", "application/grpc"), ("te", "trailers")])
            self.c.send_data(sid, grpc_frame(payload), end_stream=True)
            self.sock.sendall(self.c.data_to_send())
        return sid

    def ack(self, sid, n):
        """Lets stream sid (and the connection) take n more bytes."""
        with self.lock:
            self.c.increment_flow_control_window(n, sid)
            self.c.increment_flow_control_window(n)
            self.sock.sendall(self.c.data_to_send())

    def _read(self):
        E = self.events
        try:
            while not self.stopped:
                try:
                    data = self.sock.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    break
                with self.lock:
                    now = time.monotonic()
                    for ev in self.c.receive_data(data):
                        st = self.streams.get(getattr(ev, "stream_id", None))
                        if isinstance(ev, E.ResponseReceived) and st is not None:
                            st["headers"] = now
                            st["trailers"] = dict((k.decode() if isinstance(k, bytes) else k,
                                                   v.decode() if isinstance(v, bytes) else v)
                                                  for k, v in ev.headers
                                                  if (k if isinstance(k, str) else k.decode())
                                                  .startswith("grpc-")) or None
                        elif isinstance(ev, E.DataReceived) and st is not None:
                            st["data"] += len(ev.data)
                            st["last_data"] = now
                        elif isinstance(ev, E.TrailersReceived) and st is not None:
                            st["trailers"] = dict((k.decode() if isinstance(k, bytes) else k,
                                                   v.decode() if isinstance(v, bytes) else v)
                                                  for k, v in ev.headers)
                        elif isinstance(ev, E.StreamEnded) and st is not None:
                            st["ended"] = True
                        elif isinstance(ev, E.StreamReset) and st is not None:
                            st["reset"] = (ev.error_code, now)
                    out = self.c.data_to_send()
                    if out:
                        self.sock.sendall(out)
                    self.cond.notify_all()
        except OSError:
            pass

    def _trickle(self):
        while not self.stopped:
            time.sleep(0.5)
            with self.lock:
                try:
                    for sid, st in self.streams.items():
                        if st["headers"] is not None and st["reset"] is None and not st["ended"]:
                            self.c.increment_flow_control_window(self.trickle, sid)
                            self.c.increment_flow_control_window(self.trickle)
                    self.sock.sendall(self.c.data_to_send())
                except Exception:  # a stream closed meanwhile, or the socket
                    pass

    def wait(self, pred, timeout):
        """pred(streams) once true (under the lock), bounded; its last value otherwise."""
        deadline = time.monotonic() + scaled(timeout)
        with self.cond:
            while True:
                v = pred(self.streams)
                left = deadline - time.monotonic()
                if v or left <= 0:
                    return v
                self.cond.wait(min(left, 0.05))

    def close(self):
        self.stopped = True
        try:
            self.sock.close()
        except OSError:
            pass


@pytest.fixture
def gateway(run_meshlet, free_port):
    """gateway(backend_port, listener="", cluster="") → (meshlet, listener port, admin port):
    one listener, one catch-all route to cluster `echo`. SIGTERM at teardown, must exit 0."""
    started = []

    def start(backend_port, listener="", cluster=""):
        port, admin = free_port(), free_port()
        text = (f"[node]\nadmin = 127.0.0.1:{admin}\n"
                f"[listener ingress]\nbind = 127.0.0.1:{port}\n{listener}\n"
                "[route all]\nlistener = ingress\nto = echo\n"
                f"[cluster echo]\nendpoint = 127.0.0.1:{backend_port}\n{cluster}\n")
        m = run_meshlet(text)
        started.append(m)
        assert m.alive(), f"meshlet exited {m.returncode}:\n{m.stderr}"
        assert m.wait_for_stderr("listening on", timeout=5), m.stderr
        return m, port, admin

    yield start
    for m in started:
        if m.alive():
            m.send_signal(signal.SIGTERM)
            rc = m.wait(timeout=10)
            assert rc == 0, f"meshlet exited {rc} on SIGTERM:\n{m.stderr[-4000:]}"


@pytest.fixture
def slow_readers():
    made = []

    def start(port, **kw):
        r = SlowReader(port, **kw)
        made.append(r)
        return r

    yield start
    for r in made:
        r.close()


def stats(admin):
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/stats", timeout=scaled(5)) as r:
        return dict(line.rsplit(" ", 1) for line in r.read().decode().splitlines())


def test_a_slow_reader_cannot_take_the_stream_slots_other_clients_need(
        backends, gateway, slow_readers):
    # capacity 8 slots (1 connection x 8 streams): one downstream connection holds at most 4
    b = backends("b1", workers=32)
    _, port, _ = gateway(b.port, listener="stream_stall_timeout = 0",
                         cluster="max_streams_per_connection = 8\nmax_share = 50")
    with channel(port) as ch:  # the upstream connection is up: slots are there at once
        assert unary(ch, "Say")(b"w", timeout=CALL_TIMEOUT) == b"b1:w"
    slow = slow_readers(port, window=1024, trickle=16)
    for _ in range(16):
        slow.open("Flood", b"1000 16384")  # 16 MB each, taken at 32 bytes/s
    # its share is taken: 4 streams have their response going, the others wait
    assert slow.wait(lambda s: sum(1 for v in s.values() if v["headers"]) >= 4, 10)
    time.sleep(0.5)
    assert sum(1 for v in slow.streams.values() if v["headers"]) == 4, slow.streams
    with channel(port) as ch:
        for i in range(10):
            assert unary(ch, "Say")(b"%d" % i, timeout=CALL_TIMEOUT) == b"b1:%d" % i
    # the slow client still holds only its share, none of its calls failed
    assert sum(1 for v in slow.streams.values() if v["headers"]) == 4, slow.streams
    assert not any(v["reset"] for v in slow.streams.values()), slow.streams


def test_a_client_past_its_share_of_max_pending_is_told_so(backends, gateway, slow_readers):
    b = backends("b1", workers=32)
    _, port, _ = gateway(b.port, listener="stream_stall_timeout = 0",
                         cluster="max_streams_per_connection = 8\nmax_pending = 8\n"
                                 "max_share = 50")
    with channel(port) as ch:  # the upstream connection is up: slots are there at once
        assert unary(ch, "Say")(b"w", timeout=CALL_TIMEOUT) == b"b1:w"
    slow = slow_readers(port, window=1024)
    for _ in range(12):
        slow.open("Flood", b"1000 16384")
    # 4 hold slots, 4 wait (half of max_pending), 4 are answered at once
    answered = slow.wait(lambda s: [v for v in s.values()
                                    if v["trailers"] and "grpc-status" in v["trailers"]]
                         if sum(1 for v in s.values() if v["headers"]) >= 8 else None, 10)
    assert answered and len(answered) == 4, slow.streams
    for v in answered:
        assert v["trailers"]["grpc-status"] == "14", v
        assert "fair share" in v["trailers"].get("grpc-message", ""), v
    with channel(port) as ch:
        assert unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT) == b"b1:x"


def test_a_stalled_stream_is_reset_after_stream_stall_timeout(backends, gateway, slow_readers):
    b = backends("b1", workers=8)
    _, port, admin = gateway(b.port, listener="stream_stall_timeout = 1s")
    slow = slow_readers(port, window=1024, trickle=0)
    stalled = slow.open("Flood", b"1000 16384")  # never a WINDOW_UPDATE: stalls at once
    quiet = slow.open("Hang", b"")               # one message, then nothing: quiet, not stalled
    assert slow.wait(lambda s: s[quiet]["data"] > 0, 5), slow.streams
    slow.ack(quiet, slow.streams[quiet]["data"])
    got = slow.wait(lambda s: s[stalled]["reset"], 10)
    assert got, slow.streams
    code, at = got
    assert code == 8, got  # CANCEL: the response headers had gone
    since = at - slow.streams[stalled]["last_data"]
    assert 0.9 <= since < scaled(5), since
    # the quiet stream goes on: nothing of it waits to move
    time.sleep(1.5)
    assert slow.streams[quiet]["reset"] is None, slow.streams
    st = stats(admin)
    assert st["listener.ingress.downstream_rq_stalled"] == "1", st
    # its slot is back: a new call goes through
    with channel(port) as ch:
        assert unary(ch, "Say")(b"y", timeout=CALL_TIMEOUT) == b"b1:y"


def test_a_request_the_upstream_stops_taking_is_answered_unavailable_after_the_stall(
        gateway):
    # A bare HTTP/2 backend that takes the request headers and never a byte more (no
    # WINDOW_UPDATE) nor answers: the request body waits in meshlet; no response headers went,
    # so the client gets a gRPC status naming the stall, not a reset.
    from h2_peers import H2Server

    server = H2Server()  # on_event does nothing: never reads on, never answers
    try:
        _, port, _ = gateway(server.port, listener="stream_stall_timeout = 1s")
        with channel(port) as ch:
            t0 = time.monotonic()
            with pytest.raises(grpc.RpcError) as e:
                unary(ch, "Say")(b"x" * 300000, timeout=scaled(20))
            elapsed = time.monotonic() - t0
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value
        assert "stream stalled" in e.value.details(), e.value.details()
        assert "stream_stall_timeout" in e.value.details(), e.value.details()
        assert 0.9 <= elapsed < scaled(10), elapsed
    finally:
        server.close()
