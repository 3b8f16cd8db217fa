#!/usr/bin/python3
"""The demo client of firmware/demo.sh: N unary SayHello calls on ONE channel (one HTTP/2
connection) through meshlet, and N on one channel straight to one backend; prints who answered.

    /usr/bin/python3 tests/bench/demo_client.py [--calls N] [--via HOST:PORT] [--direct HOST:PORT]
                                                [--backends NAME,NAME,...]

Each answer names its backend (reply "hello ... from NAME", trailer x-backend: NAME). Exits 0 when
every call succeeded and the calls through meshlet reached every backend, 1 otherwise.
"""
import argparse
import collections
import signal
import sys

# Ctrl-C (demo.sh stopping) ends us quietly, also while grpc is still importing.
signal.signal(signal.SIGINT, signal.SIG_DFL)

import grpc  # noqa: E402

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from demo_backend import pb_encode_field1, pb_string_field1  # noqa: E402


def run(target: str, calls: int, who: str):
    """calls unary calls on one channel; returns (Counter of backend names, list of errors)."""
    seen, errors = collections.Counter(), []
    with grpc.insecure_channel(target) as ch:
        grpc.channel_ready_future(ch).result(timeout=5)
        say = ch.unary_unary("/helloworld.Greeter/SayHello",
                             request_serializer=lambda b: b, response_deserializer=lambda b: b)
        for i in range(calls):
            try:
                resp, call = say.with_call(pb_encode_field1(f"{who}#{i + 1}"), timeout=5)
            except grpc.RpcError as e:
                errors.append(f"{e.code().name}: {e.details()}")
                continue
            trailers = dict(call.trailing_metadata() or ())
            name = trailers.get("x-backend") or pb_string_field1(resp).rsplit(" ", 1)[-1]
            seen[name] += 1
    return seen, errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=30)
    ap.add_argument("--via", default="127.0.0.1:15001", help="meshlet's listener")
    ap.add_argument("--direct", default="127.0.0.1:50051", help="one backend's address")
    ap.add_argument("--backends", default="backend-1,backend-2,backend-3")
    a = ap.parse_args()
    names = a.backends.split(",")

    via, via_err = run(a.via, a.calls, "via-meshlet")
    direct, direct_err = run(a.direct, a.calls, "direct")

    names += sorted((set(via) | set(direct)) - set(names))
    col1 = f"through meshlet ({a.via})"
    col2 = f"straight to {a.direct}"
    w0 = max(len("backend"), *(len(n) for n in names))
    w1, w2 = len(col1), len(col2)
    print()
    print(f"{a.calls} unary calls each, every time on ONE gRPC channel (one HTTP/2 connection):")
    print()
    print(f"  {'backend':<{w0}} | {col1:>{w1}} | {col2:>{w2}}")
    print(f"  {'-' * w0}-+-{'-' * w1}-+-{'-' * w2}")
    for n in names:
        print(f"  {n:<{w0}} | {via[n]:>{w1}} | {direct[n]:>{w2}}")
    print(f"  {'failed':<{w0}} | {len(via_err):>{w1}} | {len(direct_err):>{w2}}")
    print()
    print("  Straight: every call rides one long-lived HTTP/2 connection, and a connection is balanced once")
    print("  (L4/TCP, DNS), so one backend takes them all. meshlet ends HTTP/2 and picks a backend per call (stream).")
    print()
    for e in (via_err + direct_err)[:5]:
        print(f"  error: {e}", file=sys.stderr)
    ok = not via_err and not direct_err and all(via[n] > 0 for n in names[:3])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
