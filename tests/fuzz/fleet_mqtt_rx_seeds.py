#!/usr/bin/python3
"""Seeds of tests/fuzz/fleet_mqtt_rx_fuzz.c (its header says the input format): a Push in 16-byte
pieces, the same Push twice (acked, then acked again without an apply), a Push answered with a
Nack, a Push on another node's topic, one claimed over the bound, an empty (cleared) message,
garbage, a message whose last byte never comes followed by a good one, and on_push freeing the
client. Encoded by hand (the envelope as fleet_client_rx_seeds.py does); deterministic.

    /usr/bin/python3 tests/fuzz/fleet_mqtt_rx_seeds.py   # writes tests/fuzz/corpus/fleet_mqtt_rx/
"""
import os
import struct

from fleet_client_rx_seeds import INI, push

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus", "fleet_mqtt_rx")

OTHER, OVER, NACK, FREE, SHORT = 0x01, 0x02, 0x20, 0x40, 0x80


def piece_bits(n):  # piece size 1 << (4 + n)
    return (n & 7) << 2


def publishes(*recs):
    out = b""
    for flags, data in recs:
        out += bytes([flags]) + struct.pack("<H", len(data)) + data
    return out


def main():
    good = push(b"v1", 7, INI)
    other = push(b"v2", 8, INI)
    seeds = {
        "push-in-16-byte-pieces": publishes((piece_bits(0), good)),
        "push-twice": publishes((piece_bits(7), good), (piece_bits(7), good)),
        "push-nacked": publishes((piece_bits(3) | NACK, good)),
        "push-on-another-topic": publishes((OTHER | piece_bits(7), good)),
        "over-the-bound-then-good": publishes((OVER | piece_bits(2), good), (piece_bits(7), other)),
        "empty-cleared": publishes((0, b""), (piece_bits(7), good)),
        "garbage-then-good": publishes((piece_bits(1), b"\xff\xff\xff\xff not an envelope"),
                                       (piece_bits(7), good)),
        "short-then-good": publishes((SHORT | piece_bits(4), good), (piece_bits(7), other)),
        "freed-in-on-push": publishes((FREE | piece_bits(7), good), (piece_bits(7), other)),
    }
    os.makedirs(CORPUS, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(CORPUS, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
