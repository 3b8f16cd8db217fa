#!/usr/bin/python3
"""Seeds of tests/fuzz/fleet_client_rx_fuzz.c (its header says the input format): whole messages
(a Push, a Push with a version outside the fleet rule, an unknown kind, a node's kind, garbage)
and fragment sequences (a Push in three pieces, a text frame, pieces that reach the message bound,
a Push answered with a Nack, on_push freeing the client). Encoded by hand; deterministic.

    /usr/bin/python3 tests/fuzz/fleet_client_rx_seeds.py   # writes tests/fuzz/corpus/fleet_client_rx/
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus", "fleet_client_rx")

INI = (b"[listener in]\nbind = 127.0.0.1:15001\n\n"
       b"[route all]\nlistener = in\nprefix = /\nto = c\n\n"
       b"[cluster c]\nendpoint = 127.0.0.1:50052\n")

FIRST, FINAL, TEXT, REPEAT, NACK, FREE = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def push(version, nonce, ini):
    body = field(1, version) + varint(2 << 3 | 0) + varint(nonce) + field(3, ini)
    return field(2, body)


def whole(msg):
    return b"\x00" + msg


def pieces(*recs):
    out = b"\x80"
    for flags, data in recs:
        out += bytes([flags]) + struct.pack("<H", len(data)) + data
    return out


P = push(b"v:1.0_a-b", 7, INI)
SEEDS = {
    "push": whole(P),
    "push-bad-version": whole(push(b"v\x1b[31m", 8, INI)),
    "push-empty-version": whole(push(b"", 9, INI)),
    "push-nul-in-version": whole(push(b"v1\x00x", 10, INI)),
    "unknown-kind": whole(b"\x32\x00"),
    "node-kind-hello": whole(field(1, field(1, b"gw-1"))),
    "garbage": whole(b"\xff" * 40),
    "push-in-three": pieces((FIRST, P[:10]), (0, P[10:50]), (FINAL, P[50:])),
    "text": pieces((FIRST | FINAL | TEXT, b"hello")),
    "over-the-bound": pieces(*[((FIRST if i == 0 else 0) | REPEAT, b"\xff") for i in range(17)],
                             (FIRST | FINAL, P)),
    "push-nacked": pieces((FIRST | FINAL | NACK, P)),
    "push-frees": pieces((FIRST | FINAL | FREE, P), (FIRST | FINAL, P)),
    "two-pushes": pieces((FIRST | FINAL, P), (FIRST | FINAL | NACK, push(b"v2", 8, INI))),
}


def main():
    os.makedirs(CORPUS, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(CORPUS, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
