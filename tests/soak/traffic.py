"""The soak's well-behaved side (tests/soak/soak.py drives it): gRPC clients whose every answer is
checked byte for byte, and the config pusher. Each function loops until `stop` is set and counts
into a Stats; an error or a wrong answer is a failed call."""

import random
import threading
import time
import urllib.error
import urllib.request

import grpc  # Debian's python3-grpcio

from grpc_peers import bidi, channel, server_stream, unary

CALL_TIMEOUT = 10.0


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.errors = []

    def add(self, key, n=1):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n

    def fail(self, kind, err):
        with self.lock:
            self.counts[kind + "_failed"] = self.counts.get(kind + "_failed", 0) + 1
            if len(self.errors) < 20:
                self.errors.append(f"{time.strftime('%H:%M:%S')} {kind}: {err!r:.300}")


def unary_client(port, names, stop, st, idx):
    rnd = random.Random(idx)
    with channel(port) as ch:
        say = unary(ch, "Say")
        while not stop.is_set():
            payload = rnd.randbytes(rnd.choice((1, 100, 1000, 16000)))
            try:
                got = say(payload, timeout=CALL_TIMEOUT)
                name, _, rest = got.partition(b":")
                if name.decode() not in names or rest != payload:
                    st.fail("unary", f"wrong answer {got[:40]!r}")
                else:
                    st.add("unary_ok")
            except grpc.RpcError as e:
                st.fail("unary", f"{e.code()} {e.details()}")


def stream_client(port, names, stop, st):
    rnd = random.Random(99)
    with channel(port) as ch:
        repeat = server_stream(ch, "Repeat")
        chat = bidi(ch, "Chat")
        while not stop.is_set():
            count, size = rnd.randint(1, 40), rnd.choice((1, 64, 4096))
            try:
                got = list(repeat(f"{count} {size}".encode(), timeout=CALL_TIMEOUT))
                if got != [bytes([k % 251]) * size for k in range(count)]:
                    st.fail("stream", f"Repeat {count} {size}: {len(got)} messages, wrong")
                else:
                    st.add("stream_ok")
                msgs = [rnd.randbytes(rnd.randint(1, 2000)) for _ in range(rnd.randint(1, 10))]
                got = list(chat(iter(msgs), timeout=CALL_TIMEOUT))
                if [g.partition(b":")[2] for g in got] != msgs or \
                        any(g.partition(b":")[0].decode() not in names for g in got):
                    st.fail("stream", f"Chat: {len(got)} of {len(msgs)} messages, wrong")
                else:
                    st.add("stream_ok")
            except grpc.RpcError as e:
                st.fail("stream", f"{e.code()} {e.details()}")


# A push the admin closes at accept (its CONFIG_ML_ADMIN_MAX_CONNECTIONS are held by the hostile
# side's silent clients: the cap doing its job) is tried again, as an operator's script would;
# only a push that fails PUSH_TRIES times in a row, or gets an answer other than 200, fails.
PUSH_TRIES = 5
PUSH_RETRY_S = 0.5


def pusher(admin_port, configs, stop, st, every):
    k = 0
    while not stop.wait(every):
        k += 1
        body = configs[k % 2].encode()
        for attempt in range(PUSH_TRIES):
            req = urllib.request.Request(f"http://127.0.0.1:{admin_port}/config", data=body,
                                         method="POST")
            try:
                with urllib.request.urlopen(req, timeout=CALL_TIMEOUT) as r:
                    text = r.read().decode()
                    if r.status == 200 and text.startswith("version:"):
                        st.add("push_ok")
                    else:
                        st.fail("push", f"{r.status} {text[:200]}")
                break
            except urllib.error.HTTPError as e:
                st.fail("push", f"{e.code} {e.read()[:200]!r}")
                break
            except (urllib.error.URLError, OSError) as e:
                if attempt + 1 == PUSH_TRIES or stop.is_set():
                    st.fail("push", e)
                    break
                st.add("push_retried")  # closed at accept: the admin was full
                time.sleep(PUSH_RETRY_S)
