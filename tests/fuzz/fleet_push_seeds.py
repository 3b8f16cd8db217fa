#!/usr/bin/python3
"""Seeds of tests/fuzz/fleet_push_fuzz.c: Push envelopes whose INI exercises the merge with the
node's [node] id and [fleet] (node/merge.c). Encoded by hand (three fields, no protoc needed);
deterministic.

    /usr/bin/python3 tests/fuzz/fleet_push_seeds.py   # writes tests/fuzz/corpus/fleet_push/
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus", "fleet_push")

BODY = (b"[listener in]\nbind = 127.0.0.1:15001\n\n"
        b"[route all]\nlistener = in\nprefix = /\nto = c\n\n"
        b"[cluster c]\nendpoint = 127.0.0.1:50052\n")


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


SEEDS = {
    "whole": push(b"v1", 1, b"[node]\nid = gw-1\nadmin = off\nstate_dir = /tmp\n\n"
                  b"[fleet]\nurl = ws://127.0.0.1:9/f\ninsecure = on\n\n" + BODY),
    "no-node-no-fleet": push(b"v2", 2, BODY),
    "node-without-id": push(b"v3", 3, b"[node]\nadmin = off\n" + BODY),
    "node-header-last": push(b"v4", 4, BODY + b"[node]"),
    "other-node": push(b"v5", 5, b"[node]\nid = gw-2\n" + BODY),
    "invalid": push(b"v6", 6, b"[listener in]\nbind = nowhere\n"),
    "no-final-newline": push(b"v7", 7, BODY.rstrip(b"\n")),
}

if __name__ == "__main__":
    os.makedirs(CORPUS, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(CORPUS, name), "wb") as f:
            f.write(data)
    print(f"{len(SEEDS)} seeds in {CORPUS}")
