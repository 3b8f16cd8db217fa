"""Downstream connection limits, end to end: silent TCP connections are closed after the HTTP/2
handshake timeout (CONFIG_ML_H2_HANDSHAKE_TIMEOUT_MS, 5 s by default) instead of holding
max_connections for idle_timeout; at max_connections the connection idle the longest makes room
for a new client (GOAWAY); a listener whose calls are all busy refuses, and says so once. Real
clients: grpcio and a raw HTTP/2 client (h2_raw.py)."""

import socket
import time

import grpc
import pytest

from conftest import scaled
from grpc_peers import SERVICE, channel, unary
from h2_raw import NO_ERROR, RawH2, ended, goaway
from test_admin import admin_port, stats
# The proxy fixture (pytest finds it by name in this module).
from test_proxy import proxy  # noqa: F401

HANDSHAKE_TIMEOUT = 5.0  # CONFIG_ML_H2_HANDSHAKE_TIMEOUT_MS of the host board, in seconds
SAY = f"/{SERVICE}/Say"


def say(port, text, timeout):
    with channel(port) as ch:
        return unary(ch, "Say").with_call(text, timeout=timeout)


def closed_by_peer(sock, timeout):
    """Reads (and drops) what comes until the peer closes: seconds waited, or None."""
    t0 = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - t0 < timeout:
        try:
            if not sock.recv(65536):
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except ConnectionResetError:
            return time.monotonic() - t0
    return None


def test_silent_connections_are_closed_after_the_handshake_timeout_and_clients_get_in(
        backends, proxy):
    b = backends("b1")
    m, port = proxy({"echo": [b.port]})
    admin = admin_port(m)
    t0 = time.monotonic()
    silent = [socket.create_connection(("127.0.0.1", port), timeout=scaled(5)) for _ in range(64)]
    try:
        # The default max_connections (64) is taken: a real client still gets in.
        resp, call = say(port, b"hello", timeout=scaled(HANDSHAKE_TIMEOUT + 5))
        assert call.code() == grpc.StatusCode.OK and resp == b"b1:hello"
        # Those left are closed by meshlet once the handshake timeout is up, not after 5 min.
        waited = [closed_by_peer(s, scaled(HANDSHAKE_TIMEOUT + 10)) for s in silent[1:]]
        assert all(w is not None for w in waited), waited
        elapsed = time.monotonic() - t0
        assert HANDSHAKE_TIMEOUT - 0.5 <= elapsed <= scaled(HANDSHAKE_TIMEOUT + 5), elapsed
    finally:
        for s in silent:
            s.close()
    st = stats(admin)
    # The gRPC client took one silent connection's place (reclaimed); the others timed out.
    assert st["listener.ingress.downstream_cx_handshake_timeout"] + \
        st["listener.ingress.downstream_cx_reclaimed"] == 64, st
    assert st["listener.ingress.downstream_cx_handshake_timeout"] >= 63, st
    assert "no HTTP/2 preface and SETTINGS within 5000 ms" in m.stderr
    resp, call = say(port, b"again", timeout=scaled(10))
    assert call.code() == grpc.StatusCode.OK


def test_a_client_that_completes_the_handshake_is_not_closed_by_the_handshake_timeout(
        backends, proxy):
    b = backends("b1")
    m, port = proxy({"echo": [b.port]})
    c = RawH2(port)
    c.read_frames(lambda fs: False, timeout=HANDSHAKE_TIMEOUT + 1.5)
    assert not c.closed
    c.request(1, SAY, b"late")
    assert ended(1)(c.read_frames(ended(1)))
    c.close()


def test_at_max_connections_the_idle_connection_makes_room_for_a_new_client(backends, proxy):
    b = backends("b1")
    m, port = proxy({"echo": [b.port]}, listener="max_connections = 2")
    admin = admin_port(m)
    idle = RawH2(port)
    idle.request(1, SAY, b"one")
    assert ended(1)(idle.read_frames(ended(1)))  # greeted, served, now idle
    busy = RawH2(port)
    busy.send(busy.headers(1, SAY))  # a call open: its request body is still to come
    busy.read_frames(lambda fs: False, timeout=0.5)
    resp, call = say(port, b"new", timeout=scaled(10))
    assert call.code() == grpc.StatusCode.OK and resp == b"b1:new"
    g = goaway(idle.read_frames(lambda fs: goaway(fs) is not None))
    assert g is not None and g.error_code == NO_ERROR
    assert stats(admin)["listener.ingress.downstream_cx_reclaimed"] == 1
    # The busy connection was left alone: its call completes.
    busy.send(busy.data(1, b"\x00\x00\x00\x00\x04busy", end_stream=True))
    fs = busy.read_frames(ended(1))
    assert ended(1)(fs) and goaway(fs) is None
    idle.close()
    busy.close()


def test_at_max_connections_with_every_call_busy_new_clients_are_refused_and_logged_once(
        backends, proxy):
    b = backends("b1")
    m, port = proxy({"echo": [b.port]}, listener="max_connections = 1")
    admin = admin_port(m)
    busy = RawH2(port)
    busy.send(busy.headers(1, SAY))
    busy.read_frames(lambda fs: False, timeout=0.5)
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
        assert closed_by_peer(s, scaled(5)) is not None
        s.close()
    assert stats(admin)["listener.ingress.downstream_cx_refused"] == 3
    # stderr is collected by a thread: wait for the line before counting it
    assert m.wait_for_stderr("max_connections (1) reached and every connection has calls open")
    assert m.stderr.count("max_connections (1) reached and every connection has calls open") == 1
    busy.send(busy.data(1, b"\x00\x00\x00\x00\x04busy", end_stream=True))
    assert ended(1)(busy.read_frames(ended(1)))
    busy.close()
    assert m.wait_for_stderr("below max_connections (1) again: accepting connections")
    resp, call = say(port, b"after", timeout=scaled(10))
    assert call.code() == grpc.StatusCode.OK


def listeners_taking(total, cap):
    """[listener aN] sections whose max_connections add up to total, none over cap (a board's
    CONFIG_ML_MAX_CONNECTIONS: the host's takes 600 in one listener, qemu-armv7's needs ten)."""
    text, i = "", 0
    while total > 0:
        text += (f"[listener a{i}]\nbind = 127.0.0.1:{15001 + i}\n"
                 f"max_connections = {min(total, cap)}\n\n")
        total -= min(total, cap)
        i += 1
    return text


def test_check_refuses_listeners_whose_max_connections_add_up_over_the_fd_budget(meshlet, workdir,
                                                                                  kconfig):
    cap, most = kconfig["CONFIG_ML_MAX_CONNECTIONS"], kconfig["CONFIG_ML_MAX_LISTENERS"]
    if -(-600 // cap) + 1 > most:
        # qemu-armv7: 8 listeners of at most 64 cannot cross 640; all of them at the cap fit
        assert most * cap <= 640, (most, cap)
        (workdir / "fits.ini").write_text(
            listeners_taking(most * cap, cap) + "[route all]\nlistener = a0\nto = x\n\n"
            "[cluster x]\nendpoint = 127.0.0.1:50051\n")
        r = meshlet("check", "fits.ini")
        assert r.returncode == 0, r.stderr
        pytest.skip(f"this board's limits ({most} listeners of at most {cap} connections) cannot "
                    "add up over the fd budget: the fullest config was checked to fit")
    taken = listeners_taking(600, cap)
    (workdir / "over.ini").write_text(
        taken + "[listener b]\nbind = 127.0.0.1:16000\n\n"  # the default 64 crosses 640
        "[route all]\nlistener = a0\nto = x\n\n"
        "[cluster x]\nendpoint = 127.0.0.1:50051\n")
    r = meshlet("check", "over.ini")
    assert r.returncode == 1 and r.stdout == ""
    line_b = taken.count("\n") + 1
    assert r.stderr.startswith(f"over.ini:{line_b}: [listener b] max_connections: expected at "
                               "most 40 "), r.stderr
    assert "ML_FD_BUDGET_DOWNSTREAM" in r.stderr and "got 64 (the default)" in r.stderr
    (workdir / "fits.ini").write_text(
        listeners_taking(576, cap) + "[listener b]\nbind = 127.0.0.1:16000\n\n"
        "[route all]\nlistener = a0\nto = x\n\n"
        "[cluster x]\nendpoint = 127.0.0.1:50051\n")
    r = meshlet("check", "fits.ini")
    assert r.returncode == 0, r.stderr
