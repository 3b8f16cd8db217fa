#!/usr/bin/python3
"""A demo gRPC backend for firmware/demo.sh: helloworld.Greeter/SayHello that answers with its own name.

    /usr/bin/python3 tests/bench/demo_backend.py NAME HOST:PORT [--timeout SECONDS]

No generated code (grpcio's generic handler, firmware/TOOLCHAIN.md). The messages are encoded by hand
and are wire-compatible with helloworld.proto (HelloRequest/HelloReply: string field 1), so any gRPC
client of the Greeter (grpcurl, the grpcio examples) can call it. The reply is "hello NAME from BACKEND"
and the trailing metadata carries x-backend: BACKEND. Prints "ready NAME HOST:PORT" on stdout once it
listens; exits on SIGTERM/SIGINT or after --timeout seconds (a bound, so a forgotten one goes away).
"""
import signal
import sys
import threading
from concurrent import futures

# Ctrl-C (demo.sh stopping) ends us quietly, also while grpc is still importing.
signal.signal(signal.SIGINT, signal.SIG_DFL)

import grpc  # noqa: E402


def pb_string_field1(data: bytes) -> str:
    """Field 1 (string) of a protobuf message; '' if absent. Enough for HelloRequest."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        field, wtype = key >> 3, key & 7
        if wtype == 2:
            n, i = _varint(data, i)
            if field == 1:
                return data[i:i + n].decode("utf-8", "replace")
            i += n
        elif wtype == 0:
            _, i = _varint(data, i)
        elif wtype == 1:
            i += 8
        elif wtype == 5:
            i += 4
        else:
            break
    return ""


def _varint(data: bytes, i: int):
    v = shift = 0
    while i < len(data):
        b = data[i]
        i += 1
        v |= (b & 0x7F) << shift
        if not b & 0x80:
            return v, i
        shift += 7
    raise ValueError("truncated varint")


def pb_encode_field1(text: str) -> bytes:
    raw = text.encode()
    n, out = len(raw), bytearray(b"\x0a")
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            break
    return bytes(out) + raw


def main() -> int:
    args = sys.argv[1:]
    timeout = None
    if "--timeout" in args:
        k = args.index("--timeout")
        timeout = float(args[k + 1])
        del args[k:k + 2]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    name, addr = args
    ident = lambda b: b

    def say_hello(req: bytes, ctx) -> bytes:
        ctx.set_trailing_metadata((("x-backend", name),))
        who = pb_string_field1(req) or "world"
        return pb_encode_field1(f"hello {who} from {name}")

    handler = grpc.method_handlers_generic_handler("helloworld.Greeter", {
        "SayHello": grpc.unary_unary_rpc_method_handler(
            say_hello, request_deserializer=ident, response_serializer=ident)})
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    srv.add_generic_rpc_handlers((handler,))
    if srv.add_insecure_port(addr) == 0:
        print(f"demo_backend {name}: cannot listen on {addr}", file=sys.stderr)
        return 1
    srv.start()
    done = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: done.set())
    print(f"ready {name} {addr}", flush=True)
    done.wait(timeout)
    srv.stop(grace=0.2).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
