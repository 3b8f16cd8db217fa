"""Deadlines, connection lifetimes and the SIGTERM drain, end to end with real peers: grpcio
clients and servers, nghttp2's `nghttp` where meshlet's own answer must be told apart from the
client's, and small Python servers for upstream behaviour grpcio cannot be made to show (a
GOAWAY that refuses a stream, a peer that never answers). Every wait is bounded."""

import signal
import socket
import threading
import time

import grpc
import pytest

import grpc_peers
from conftest import scaled
from h2_peers import H2Server
from grpc_peers import channel, server_stream, unary
# Fixtures shared with the proxy tests (pytest finds them by name in this module).
from test_proxy import GRPC_HEADERS, grpc_request_file, nghttp, proxy  # noqa: F401

CALL_TIMEOUT = scaled(10)
# grpcio's server rounds the deadline it derives from grpc-timeout up a little (its timer
# granularity): a remaining time read there may exceed what meshlet sent by that much.
SLACK = 0.05


def refuses_connections(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def wait_until(pred, timeout):
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


@pytest.fixture
def silent_peer():
    """silent_peer() → the port of a TCP server that accepts connections and then says nothing,
    ever (like a hung backend, or a path whose NAT forgot the connection). Only meshlet can end a
    call sent there."""
    socks, held = [], []

    def start(settings=False):
        # settings=True: it sends an empty SETTINGS first (its HTTP/2 preface), so that meshlet
        # takes the connection as up (connect_timeout covers the wait for SETTINGS), then nothing
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        socks.append(s)

        def accept():
            try:
                while True:
                    conn = s.accept()[0]
                    held.append(conn)
                    if settings:
                        conn.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            except OSError:
                pass

        threading.Thread(target=accept, daemon=True).start()
        return s.getsockname()[1]

    yield start
    for s in socks + held:
        s.close()


# ---- deadlines -----------------------------------------------------------------------------

def test_client_deadline_ends_the_call_with_deadline_exceeded_and_cancels_upstream(
        backends, proxy):
    b = backends("b1")
    _, port = proxy({"echo": [b.port]})
    with channel(port) as ch:
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            unary(ch, "Block")(b"", timeout=0.3)
        elapsed = time.monotonic() - t0
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert elapsed < scaled(2), elapsed
    assert b.cancelled.wait(timeout=scaled(5)), "the backend never saw the call cancelled"


def test_grpc_timeout_is_enforced_by_meshlet_itself(silent_peer, proxy, workdir):
    # Neither nghttp (no deadline of its own) nor the silent upstream ends the call: meshlet must.
    _, port = proxy({"echo": [silent_peer()]})
    t0 = time.monotonic()
    out = nghttp(f"http://127.0.0.1:{port}{grpc_peers.method('Block')}", *GRPC_HEADERS,
                 "-H", "grpc-timeout: 300m", "-d", str(grpc_request_file(workdir)))
    elapsed = time.monotonic() - t0
    assert "grpc-status: 4" in out, out
    assert "grpc-message: deadline exceeded (300 ms)" in out, out
    assert elapsed < scaled(2), elapsed


def test_route_timeout_applies_to_a_call_without_a_client_deadline(silent_peer, proxy):
    _, port = proxy({"echo": [silent_peer()]}, routes=[("all", "timeout = 300ms", "echo")])
    with channel(port) as ch:
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            unary(ch, "Say")(b"")  # no deadline from the client
        elapsed = time.monotonic() - t0
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert e.value.details() == "deadline exceeded (300 ms)", e.value.details()
    assert elapsed < scaled(2), elapsed


def test_route_timeout_cancels_the_upstream_call(backends, proxy):
    # The backend got the remaining budget as grpc-timeout and may give up first itself; either
    # way the client sees DEADLINE_EXCEEDED in time and the backend's call is over.
    b = backends("b1")
    _, port = proxy({"echo": [b.port]}, routes=[("all", "timeout = 300ms", "echo")])
    with channel(port) as ch:
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            unary(ch, "Block")(b"")
        elapsed = time.monotonic() - t0
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert elapsed < scaled(2), elapsed
    assert b.cancelled.wait(timeout=scaled(5)), "the backend never saw the call cancelled"


def test_route_timeout_wins_over_a_longer_client_deadline(backends, proxy):
    b = backends("b1")
    _, port = proxy({"echo": [b.port]}, routes=[("all", "timeout = 300ms", "echo")])
    with channel(port) as ch:
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            unary(ch, "Block")(b"", timeout=5)
        elapsed = time.monotonic() - t0
        left = float(unary(ch, "Deadline")(b"", timeout=5))
    # the client's own deadline is 5 s away: this DEADLINE_EXCEEDED is meshlet's (grpcio puts
    # its own words on a status that matches its deadline, so the message is not compared)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert elapsed < scaled(2), elapsed
    assert 0 < left <= 0.3 + SLACK, left


def test_backend_sees_grpc_timeout_no_larger_than_the_budget(backends, proxy):
    b = backends("b1")
    _, port = proxy({"echo": [b.port]})
    with channel(port) as ch:
        left = float(unary(ch, "Deadline")(b"", timeout=3))
        none = unary(ch, "Deadline")(b"")
    assert 1.5 < left <= 3.0 + SLACK, left
    # no deadline anywhere: none is invented (grpcio says "none" as about 2**63 ns)
    assert none == b"none" or float(none) > 1e9, none


def test_malformed_grpc_timeout_fails_the_call_with_internal(backends, proxy, workdir):
    b = backends("b1")
    _, port = proxy({"echo": [b.port]})
    for bad in ("1x", "123456789m", "-5S", "S"):
        out = nghttp(f"http://127.0.0.1:{port}{grpc_peers.method('Say')}", *GRPC_HEADERS,
                     "-H", f"grpc-timeout: {bad}", "-d", str(grpc_request_file(workdir)))
        assert "grpc-status: 13" in out, (bad, out)
        assert "grpc-message: malformed grpc-timeout" in out, (bad, out)
    assert b.calls == 0


# ---- upstream GOAWAY and keepalive ---------------------------------------------------------

class GoawayServer(H2Server):
    """Answers every request's HEADERS with GOAWAY (NO_ERROR, last stream 0: nothing was
    processed), as a server going down does."""

    conn_timeout = 10

    def on_event(self, c, ev, sock, state):
        if isinstance(ev, self.events.RequestReceived):
            self.requests += 1
            c.close_connection(error_code=0, last_stream_id=0)


def test_call_refused_by_upstream_goaway_is_sent_again_on_another_connection(backends, proxy):
    gone = GoawayServer()
    try:
        b = backends("b1")
        # Round robin: the first call goes to the GOAWAY server, then to b1.
        _, port = proxy({"echo": [gone.port, b.port]})
        with channel(port) as ch:
            resp = unary(ch, "Say")(b"hi", timeout=CALL_TIMEOUT)
        assert resp == b"b1:hi"
        assert gone.requests == 1  # it got the request, and refused it
    finally:
        gone.close()


class StreamThenHangServer(H2Server):
    """Answers each request with response headers and one gRPC message, b"started", then nothing
    more (and, unlike grpcio, keeps no deadline of its own)."""

    def on_event(self, c, ev, sock, state):
        if isinstance(ev, self.events.StreamEnded):
            self.requests += 1
            c.send_headers(ev.stream_id, [(":status", "200"), ("content-type", "application/grpc")])
            c.send_data(ev.stream_id, b"\x00\x00\x00\x00\x07started")
        elif isinstance(ev, self.events.DataReceived):
            c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)


def test_deadline_after_the_response_started_ends_it_with_trailers_after_whole_messages(proxy):
    server = StreamThenHangServer()
    try:
        _, port = proxy({"echo": [server.port]}, routes=[("all", "timeout = 500ms", "echo")])
        with channel(port) as ch:
            t0 = time.monotonic()
            stream = server_stream(ch, "Hang")(b"")  # no deadline of the client's
            assert next(stream) == b"started"
            with pytest.raises(grpc.RpcError) as e:
                next(stream)
            elapsed = time.monotonic() - t0
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e.value
        assert e.value.details() == "deadline exceeded (500 ms)", e.value.details()
        assert elapsed < scaled(2), elapsed
    finally:
        server.close()


class DrainingServer(H2Server):
    """The first connection's first request gets a graceful GOAWAY (last stream = that one) and
    no answer: the connection stays up, finishing it. Every later connection answers each
    request with a gRPC OK and the message b"new"."""

    def __init__(self):
        self.n_conns = 0
        super().__init__()

    def on_connect(self):
        self.n_conns += 1
        return {"first": self.n_conns == 1}

    def on_event(self, c, ev, sock, state):
        if isinstance(ev, self.events.RequestReceived):
            self.requests += 1
            if state["first"] and self.requests == 1:
                # GOAWAY(NO_ERROR, last stream = this one) written raw: h2's own
                # close_connection() would stop it reading the rest of the stream
                sock.sendall(c.data_to_send())
                sock.sendall(b"\x00\x00\x08\x07\x00\x00\x00\x00\x00" +
                             ev.stream_id.to_bytes(4, "big") + b"\x00" * 4)
        elif isinstance(ev, self.events.StreamEnded) and not state["first"]:
            c.send_headers(ev.stream_id, [(":status", "200"), ("content-type", "application/grpc")])
            c.send_data(ev.stream_id, b"\x00\x00\x00\x00\x03new")
            c.send_headers(ev.stream_id, [("grpc-status", "0")], end_stream=True)
        elif isinstance(ev, self.events.DataReceived):
            c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)


def test_a_goaway_connection_finishing_its_calls_leaves_room_for_a_new_one(proxy):
    # max_connections = 1 (the default): the connection that said GOAWAY still carries a call,
    # yet new calls get a new connection at once instead of waiting for it to close.
    server = DrainingServer()
    try:
        _, port = proxy({"echo": [server.port]})
        with channel(port) as ch:
            held = unary(ch, "Say").future(b"a", timeout=CALL_TIMEOUT)
            assert wait_until(lambda: server.requests == 1, 5)
            time.sleep(0.3)  # the GOAWAY reaches meshlet
            t0 = time.monotonic()
            assert unary(ch, "Say")(b"b", timeout=scaled(3)) == b"new"
            assert time.monotonic() - t0 < scaled(2)
            assert server.n_conns == 2
            held.cancel()
    finally:
        server.close()


def test_unanswered_keepalive_ping_closes_a_dead_upstream_connection(silent_peer, proxy):
    _, port = proxy({"echo": ([silent_peer(settings=True)], "keepalive = 1s\n")})
    with channel(port) as ch:
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT)
        elapsed = time.monotonic() - t0
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "upstream connection lost" in e.value.details(), e.value.details()
    assert 1.5 <= elapsed < scaled(5), elapsed  # keepalive 1 s, then 1 s for the ACK


def test_keepalive_leaves_a_connection_that_answers_pings(backends, proxy):
    b = backends("b1")
    _, port = proxy({"echo": ([b.port], "keepalive = 1s\n")})
    with channel(port) as ch:
        # 3 s without a byte from the backend: PINGs go, ACKs come, the call survives
        assert unary(ch, "Sleep")(b"3", timeout=CALL_TIMEOUT) == b"slept"
        assert unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT) == b"b1:x"
    assert len(b.peers) == 1, b.peers  # one upstream connection all along


# ---- downstream connection lifetimes -----------------------------------------------------

def test_idle_timeout_closes_an_idle_downstream_connection(backends, proxy):
    b = backends("b1")
    _, port = proxy({"echo": [b.port]}, listener="idle_timeout = 1s\n")
    with channel(port) as ch:
        say = unary(ch, "Say")
        assert say(b"x", timeout=CALL_TIMEOUT) == b"b1:x"
        assert grpc_peers.established(local_port=port) == 1
        # idle from now on: meshlet says GOAWAY after 1 s and the connection goes
        assert wait_until(lambda: grpc_peers.established(local_port=port) == 0, 4)
        # the client connects again for the next call
        assert say(b"y", timeout=CALL_TIMEOUT) == b"b1:y"


def test_idle_timeout_leaves_a_connection_with_a_call_in_flight(backends, proxy):
    b = backends("b1")
    _, port = proxy({"echo": [b.port]}, listener="idle_timeout = 1s\n")
    with channel(port) as ch:
        assert unary(ch, "Sleep")(b"2", timeout=CALL_TIMEOUT) == b"slept"


def test_max_connection_age_sends_goaway_and_lets_calls_in_flight_finish(backends, proxy):
    b = backends("b1")
    _, port = proxy({"echo": [b.port]}, listener="max_connection_age = 1s\n")
    with channel(port) as ch:
        t0 = time.monotonic()
        # the connection turns 1 s old during this 2 s call: GOAWAY, and the call goes on
        assert unary(ch, "Sleep")(b"2", timeout=CALL_TIMEOUT) == b"slept"
        assert time.monotonic() - t0 >= 1.9
        # then the old connection closes; new calls go on a new one
        assert wait_until(lambda: grpc_peers.established(local_port=port) == 0, 3)
        assert unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT) == b"b1:x"


# ---- SIGTERM drain ---------------------------------------------------------------------------

def test_sigterm_lets_a_call_in_flight_finish_then_exits_0(backends, proxy):
    b = backends("b1")
    m, port = proxy({"echo": [b.port]})
    with channel(port) as ch:
        call = unary(ch, "Sleep").future(b"1", timeout=CALL_TIMEOUT)
        assert wait_until(lambda: b.calls == 1, 5)
        t0 = time.monotonic()
        m.send_signal(signal.SIGTERM)
        assert call.result(timeout=CALL_TIMEOUT) == b"slept"
        assert m.wait(timeout=5) == 0, m.stderr[-4000:]
        assert time.monotonic() - t0 < scaled(3)
    assert "draining" in m.stderr


def test_sigterm_stops_accepting_new_connections(backends, proxy):
    b = backends("b1")
    m, port = proxy({"echo": [b.port]})
    with channel(port) as ch:
        call = unary(ch, "Sleep").future(b"1", timeout=CALL_TIMEOUT)
        assert wait_until(lambda: b.calls == 1, 5)
        m.send_signal(signal.SIGTERM)
        assert m.wait_for_stderr("draining", timeout=5)
        # lws closes the listening socket at its next turn: poll for it, bounded.
        assert wait_until(lambda: refuses_connections(port), 5), "still accepting after SIGTERM"
        assert call.result(timeout=CALL_TIMEOUT) == b"slept"
    assert m.wait(timeout=5) == 0


def test_sigterm_resets_calls_still_running_at_drain_timeout(backends, run_meshlet, free_port):
    b = backends("b1")
    port = free_port()
    m = run_meshlet(f"[node]\ndrain_timeout = 300ms\n"
                    f"[listener ingress]\nbind = 127.0.0.1:{port}\n"
                    f"[route all]\nlistener = ingress\nto = echo\n"
                    f"[cluster echo]\nendpoint = 127.0.0.1:{b.port}\n")
    assert m.wait_for_stderr("listening on", timeout=5), m.stderr
    with channel(port) as ch:
        call = unary(ch, "Sleep").future(b"5", timeout=CALL_TIMEOUT)
        assert wait_until(lambda: b.calls == 1, 5)
        t0 = time.monotonic()
        m.send_signal(signal.SIGTERM)
        assert m.wait(timeout=5) == 0, m.stderr[-4000:]
        assert time.monotonic() - t0 < scaled(2)
        with pytest.raises(grpc.RpcError):
            call.result(timeout=CALL_TIMEOUT)
    assert b.cancelled.wait(timeout=scaled(5)), "the upstream call was left running"
    assert "drain_timeout reached with 1 calls in flight" in m.stderr


def test_a_second_sigterm_during_the_drain_stops_at_once(backends, proxy):
    b = backends("b1")
    m, port = proxy({"echo": [b.port]})  # drain_timeout: the default 5 s
    with channel(port) as ch:
        call = unary(ch, "Sleep").future(b"5", timeout=CALL_TIMEOUT)
        assert wait_until(lambda: b.calls == 1, 5)
        m.send_signal(signal.SIGTERM)
        assert m.wait_for_stderr("draining", timeout=5)
        t0 = time.monotonic()
        m.send_signal(signal.SIGTERM)
        assert m.wait(timeout=5) == 0, m.stderr[-4000:]
        assert time.monotonic() - t0 < scaled(2)
        with pytest.raises(grpc.RpcError):
            call.result(timeout=CALL_TIMEOUT)
