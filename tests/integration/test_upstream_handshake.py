"""connect_timeout covers the upstream's HTTP/2 handshake: a backend that accepts TCP and never
sends its SETTINGS fails the call as a connect failure (UNAVAILABLE naming connect_timeout) once
connect_timeout has passed, not at the call's deadline. Real peers: a silent Python TCP server, a
grpcio backend, grpcio clients."""

import time

import grpc
import pytest

from conftest import scaled
from grpc_peers import channel, unary
# Fixtures shared with the other proxy tests (pytest finds them by name in this module).
from test_deadlines_and_drain import silent_peer  # noqa: F401
from test_proxy import proxy  # noqa: F401


def test_a_backend_that_never_sends_settings_fails_the_call_at_connect_timeout(
        silent_peer, proxy):
    _, port = proxy({"echo": ([silent_peer()], "connect_timeout = 300ms")})
    with channel(port) as ch:
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            unary(ch, "Say")(b"hi", timeout=scaled(20))
        elapsed = time.monotonic() - t0
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value
    assert "connect_timeout (300 ms)" in e.value.details(), e.value.details()
    assert "SETTINGS" in e.value.details(), e.value.details()
    assert 0.25 <= elapsed < scaled(2), elapsed


def test_a_backend_that_speaks_http2_is_used_within_connect_timeout(backends, proxy):
    b = backends("b1")
    _, port = proxy({"echo": ([b.port], "connect_timeout = 300ms")})
    with channel(port) as ch:
        for _ in range(3):
            assert unary(ch, "Say")(b"hi", timeout=scaled(10)) == b"b1:hi"
    # the connection outlived the handshake timer: it is still the one in use
    time.sleep(0.5)
    with channel(port) as ch:
        assert unary(ch, "Say")(b"again", timeout=scaled(10)) == b"b1:again"
    assert len(b.peers) == 1, b.peers
