"""Messages larger than any buffer or window on the way: meshlet relays a 16 MiB gRPC message in
both directions, re-framed into HTTP/2 DATA frames as the windows allow, byte-exact."""

import hashlib
from concurrent import futures

import grpc
import pytest

from conftest import scaled
from test_proxy import proxy  # noqa: F401  (the fixture)

MIB = 1024 * 1024
BIG = 16 * MIB
# grpcio refuses messages over 4 MiB by default, on both sides: raise the limits so the only
# thing under test is meshlet.
LIMITS = [("grpc.max_receive_message_length", 64 * MIB), ("grpc.max_send_message_length", 64 * MIB)]
SERVICE = "meshlet.test.Big"


def ident(b):
    return b


class BigBackend:
    """Echo: answers a unary call with the SHA-256 of the request then the request itself;
    Twice streams the request back two times."""

    def __init__(self):
        handlers = {
            "Echo": grpc.unary_unary_rpc_method_handler(self.echo, ident, ident),
            "Twice": grpc.unary_stream_rpc_method_handler(self.twice, ident, ident),
        }
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=LIMITS)
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def echo(self, request, context):
        return hashlib.sha256(request).digest() + request

    def twice(self, request, context):
        yield request
        yield request


@pytest.fixture
def big_backend():
    b = BigBackend()
    yield b
    b.server.stop(0).wait(timeout=5)


def payload(n):
    # Not compressible, not repetitive at any frame size: a hash chain.
    out = bytearray()
    block = b"meshlet"
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:n])


def test_16_mib_message_is_relayed_both_ways_byte_exact(big_backend, proxy):  # noqa: F811
    _, port = proxy({"big": [big_backend.port]})
    data = payload(BIG)
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=LIMITS) as ch:
        echo = ch.unary_unary(f"/{SERVICE}/Echo", request_serializer=ident,
                              response_deserializer=ident)
        answer = echo(data, timeout=scaled(60))
    assert answer[:32] == hashlib.sha256(data).digest(), "the backend got other bytes than sent"
    assert len(answer) == 32 + BIG
    assert answer[32:] == data, "the response came back altered"


def test_two_16_mib_messages_stream_back_in_order(big_backend, proxy):  # noqa: F811
    _, port = proxy({"big": [big_backend.port]})
    data = payload(BIG)
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=LIMITS) as ch:
        twice = ch.unary_stream(f"/{SERVICE}/Twice", request_serializer=ident,
                                response_deserializer=ident)
        got = list(twice(data, timeout=scaled(60)))
    assert [len(m) for m in got] == [BIG, BIG]
    assert got[0] == data and got[1] == data
