"""Frames on closed streams get the answer RFC 9113 asks for (5.1, 5.1.1, 6.1), from a raw
HTTP/2 client (h2_raw.py) through meshlet to a real grpcio backend; other streams and other
clients go on when only a stream is in error."""

import grpc

from conftest import scaled
from grpc_peers import SERVICE, channel, unary
from h2_raw import (CANCEL, PROTOCOL_ERROR, STREAM_CLOSED, RawH2, ended, goaway, grpc_message,
                    rst_on)
# The proxy fixture (pytest finds it by name in this module).
from test_proxy import proxy  # noqa: F401

SAY = f"/{SERVICE}/Say"


def still_served(port):
    with channel(port) as ch:
        resp, call = unary(ch, "Say").with_call(b"other", timeout=scaled(10))
    assert call.code() == grpc.StatusCode.OK and resp.endswith(b"other")


def test_data_after_the_clients_rst_stream_is_answered_with_rst_stream_stream_closed(
        backends, proxy):
    b = backends("b1")
    _, port = proxy({"echo": [b.port]})
    c = RawH2(port)
    c.send(c.headers(1, SAY), c.rst(1, CANCEL))
    c.send(c.data(1, grpc_message(b"late")))
    fs = c.read_frames(lambda fs: rst_on(fs, 1))
    assert rst_on(fs, 1) == [STREAM_CLOSED]
    assert goaway(fs) is None
    # Only that stream: the same connection serves the next one.
    c.request(3, SAY, b"next")
    fs = c.read_frames(ended(3))
    assert ended(3)(fs) and goaway(fs) is None and not rst_on(fs, 3)
    c.close()
    still_served(port)


def test_data_on_a_stream_closed_both_ways_is_goaway_stream_closed(backends, proxy):
    b = backends("b1")
    _, port = proxy({"echo": [b.port]})
    c = RawH2(port)
    c.request(1, SAY, b"one")
    assert ended(1)(c.read_frames(ended(1)))
    c.send(c.data(1, grpc_message(b"after the end")))
    fs = c.read_frames(lambda fs: goaway(fs) is not None)
    g = goaway(fs)
    assert g is not None and g.error_code == STREAM_CLOSED
    c.read_frames(lambda fs: False, timeout=5)
    assert c.closed  # meshlet closed the connection after its GOAWAY
    c.close()
    still_served(port)


def test_headers_on_a_stream_closed_both_ways_is_goaway_stream_closed(backends, proxy):
    b = backends("b1")
    _, port = proxy({"echo": [b.port]})
    c = RawH2(port)
    c.request(1, SAY, b"one")
    assert ended(1)(c.read_frames(ended(1)))
    c.send(c.headers(1, SAY, end_stream=True))
    g = goaway(c.read_frames(lambda fs: goaway(fs) is not None))
    assert g is not None and g.error_code == STREAM_CLOSED
    assert b.calls == 1
    c.close()
    still_served(port)


def test_new_stream_with_a_lower_id_is_goaway_protocol_error(backends, proxy):
    b = backends("b1")
    _, port = proxy({"echo": [b.port]})
    c = RawH2(port)
    c.request(5, SAY, b"five")
    assert ended(5)(c.read_frames(ended(5)))
    c.request(3, SAY, b"three")  # lower than 5, never opened
    g = goaway(c.read_frames(lambda fs: goaway(fs) is not None))
    assert g is not None and g.error_code == PROTOCOL_ERROR and g.last_stream_id == 5
    assert b.calls == 1
    c.close()
    still_served(port)
