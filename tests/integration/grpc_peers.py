"""Real gRPC peers for the proxy tests: grpcio servers and clients (Debian's python3-grpcio) with
generic handlers, no generated code. Messages are raw bytes (identity serializers).

Run as a program, it is one backend in a process of its own (for tests that kill a backend):
    /usr/bin/python3 grpc_peers.py NAME   → prints "port N" once serving, then "call METHOD" as
                                           each call comes in; serves until killed
"""

import json
import os
import sys
import threading
import time
from concurrent import futures

import grpc

SERVICE = "meshlet.test.Echo"


def ident(b):
    return b


def method(name):
    return f"/{SERVICE}/{name}"


class Backend:
    """One gRPC server on 127.0.0.1 (a port the kernel picks), named so callers can tell which
    backend answered. Every handler records the peer (meshlet's upstream connection) it saw."""

    def __init__(self, name, workers=16, barrier_parties=0, barrier_action=None, announce=False,
                 creds=None):
        self.name = name
        self.announce = announce  # print "call METHOD" on stdout as each call comes in
        self.lock = threading.Lock()
        self.calls = 0
        self.peers = {}  # peer address → calls seen on it
        self.cancelled = threading.Event()
        self.produced = 0  # messages the Flood handler generated
        self.barrier = (threading.Barrier(barrier_parties, action=barrier_action, timeout=30)
                        if barrier_parties else None)
        handlers = {
            "Say": grpc.unary_unary_rpc_method_handler(self.say, ident, ident),
            "Meta": grpc.unary_unary_rpc_method_handler(self.meta, ident, ident),
            "Fail": grpc.unary_unary_rpc_method_handler(self.fail, ident, ident),
            "Sum": grpc.stream_unary_rpc_method_handler(self.sum, ident, ident),
            "Repeat": grpc.unary_stream_rpc_method_handler(self.repeat, ident, ident),
            "Flood": grpc.unary_stream_rpc_method_handler(self.flood, ident, ident),
            "Hang": grpc.unary_stream_rpc_method_handler(self.hang, ident, ident),
            "Block": grpc.unary_unary_rpc_method_handler(self.block, ident, ident),
            "Chat": grpc.stream_stream_rpc_method_handler(self.chat, ident, ident),
            "Gather": grpc.unary_unary_rpc_method_handler(self.gather, ident, ident),
            "Sleep": grpc.unary_unary_rpc_method_handler(self.sleep, ident, ident),
            "Deadline": grpc.unary_unary_rpc_method_handler(self.deadline, ident, ident),
        }
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                                  options=[("grpc.so_reuseport", 0)])
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, handlers),))
        # creds: grpc.ssl_server_credentials(...) for a TLS backend (test_tls_cluster.py)
        self.port = (self.server.add_secure_port("127.0.0.1:0", creds) if creds is not None
                     else self.server.add_insecure_port("127.0.0.1:0"))
        self.server.start()

    def stop(self):
        self.server.stop(0).wait(timeout=5)

    def _seen(self, context, method):
        with self.lock:
            self.calls += 1
            self.peers[context.peer()] = self.peers.get(context.peer(), 0) + 1
        if self.announce:
            print("call " + method, flush=True)

    # unary: b"NAME:" + request
    def say(self, request, context):
        self._seen(context, "Say")
        return self.name.encode() + b":" + request

    # unary: the request metadata back as JSON (values of -bin keys as hex), with initial
    # metadata and trailers that have a repeated key and a -bin key
    def meta(self, request, context):
        self._seen(context, "Meta")
        got = [[k, v.hex() if k.endswith("-bin") else v] for k, v in context.invocation_metadata()]
        context.send_initial_metadata((("x-initial", "i1"), ("x-initial", "i2")))
        context.set_trailing_metadata((
            ("x-trailer", "t-value"),
            ("x-rep-trailer", "first"),
            ("x-rep-trailer", "second"),
            ("x-trailer-bin", bytes([0, 1, 0x7f, 0x80, 0xfe, 0xff])),
        ))
        return json.dumps(got).encode()

    # unary: fails before any response message: gRPC sends that as a trailers-only response
    def fail(self, request, context):
        self._seen(context, "Fail")
        context.abort(grpc.StatusCode.NOT_FOUND, "no such thing: " + request.decode())

    # client streaming: "COUNT BYTES" of what came
    def sum(self, request_iterator, context):
        self._seen(context, "Sum")
        n = total = 0
        for m in request_iterator:
            n += 1
            total += len(m)
        return f"{n} {total}".encode()

    # server streaming: request "COUNT SIZE" → COUNT messages of SIZE bytes, message k made of
    # the byte k % 251
    def repeat(self, request, context):
        self._seen(context, "Repeat")
        count, size = map(int, request.split())
        for k in range(count):
            yield bytes([k % 251]) * size

    # server streaming as fast as the transport takes it: request "COUNT SIZE"
    def flood(self, request, context):
        self._seen(context, "Flood")
        count, size = map(int, request.split())
        chunk = b"x" * size
        for _ in range(count):
            with self.lock:
                self.produced += 1
            yield chunk

    # server streaming: one message, then nothing until the call is cancelled (bounded)
    def hang(self, request, context):
        self._seen(context, "Hang")
        context.add_callback(self.cancelled.set)
        yield b"started"
        deadline = time.monotonic() + 20
        while context.is_active() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not context.is_active():
            self.cancelled.set()

    # unary: answers nothing until the call is cancelled (bounded)
    def block(self, request, context):
        self._seen(context, "Block")
        deadline = time.monotonic() + 20
        while context.is_active() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not context.is_active():
            self.cancelled.set()
        return b"late"

    # unary: request "SECONDS" → sleeps that long (unless cancelled first), then b"slept"
    def sleep(self, request, context):
        self._seen(context, "Sleep")
        deadline = time.monotonic() + float(request)
        while context.is_active() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not context.is_active():
            self.cancelled.set()
        return b"slept"

    # unary: the seconds left of the call's deadline as the backend got it (grpc-timeout), or
    # b"none"
    def deadline(self, request, context):
        self._seen(context, "Deadline")
        left = context.time_remaining()
        return b"none" if left is None else repr(left).encode()

    # bidi: every message echoed as it comes, prefixed with the backend's name
    def chat(self, request_iterator, context):
        self._seen(context, "Chat")
        for m in request_iterator:
            yield self.name.encode() + b":" + m

    # unary: returns only once barrier_parties calls are inside at the same time
    def gather(self, request, context):
        self._seen(context, "Gather")
        self.barrier.wait()
        return b"gathered"


def channel(port):
    return grpc.insecure_channel(f"127.0.0.1:{port}")


def unary(ch, name):
    return ch.unary_unary(method(name), request_serializer=ident, response_deserializer=ident)


def client_stream(ch, name):
    return ch.stream_unary(method(name), request_serializer=ident, response_deserializer=ident)


def server_stream(ch, name):
    return ch.unary_stream(method(name), request_serializer=ident, response_deserializer=ident)


def bidi(ch, name):
    return ch.stream_stream(method(name), request_serializer=ident, response_deserializer=ident)


def established(local_port=None, remote_port=None):
    """TCP connections in state ESTABLISHED on this host (/proc/net/tcp and tcp6: grpcio's
    sockets are IPv6 ones with v4-mapped addresses) whose local and/or remote port are the ones
    given."""
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                local, remote, state = fields[1], fields[2], fields[3]
                if state != "01":
                    continue
                if local_port is not None and int(local.rsplit(":", 1)[1], 16) != local_port:
                    continue
                if remote_port is not None and int(remote.rsplit(":", 1)[1], 16) != remote_port:
                    continue
                n += 1
    return n


if __name__ == "__main__":
    b = Backend(sys.argv[1] if len(sys.argv) > 1 else "backend", announce=True)
    print(f"port {b.port}", flush=True)
    b.server.wait_for_termination(timeout=120)
    os._exit(0)
