#!/usr/bin/python3
"""meshlet soak driver (tests/soak/run.sh runs it; not in CI).

One meshlet, three grpcio backends on 127.0.0.1, and for SOAK_SECONDS, all at once:
  - well-behaved clients: unary calls (Say), server streaming (Repeat) and bidi (Chat), every
    answer checked byte for byte; any error or wrong answer is a failed call;
  - config pushes: POST /config every PUSH_EVERY seconds, alternating the cluster's endpoints
    between two sets (calls in flight finish on the config they started with);
  - hostile clients on the gRPC listener and the admin port: silent TCP connections held open,
    garbage bytes, half an HTTP/2 preface, rapid resets (HEADERS then RST_STREAM, repeated), PING
    floods and endless CONTINUATION sequences.
Every SAMPLE_EVERY seconds it samples meshlet's RSS (VmRSS) and open fds (/proc/PID/fd).

At the end the traffic stops, every client socket is closed, and after a settle time one more
sample is taken. It passes when:
  - zero well-behaved calls failed;
  - fds did not grow: the settled count at the end is at most the settled count after warm-up
    (same idle state: no client connection, the pooled upstream connections) + FD_SLACK;
  - RSS stayed flat: the mean of the last quarter of samples is at most the mean of the second
    quarter (after warm-up) * (1 + RSS_TOLERANCE) + RSS_SLACK_KB (default +5% + 512 KiB: for
    a node of ~3 MiB RSS a leak of 16 bytes per call, at ~1500 calls/s, crosses it in under a
    minute);
  - meshlet is still running, and exits 0 on SIGTERM.
Prints the figures, one "soak: " line each; exit status 0 on a pass, 1 on a fail, 2 on setup.
"""

import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import grpc  # noqa: E402  (Debian's python3-grpcio)
import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.exceptions  # noqa: E402

from grpc_peers import Backend, bidi, channel, server_stream, unary  # noqa: E402

SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
SAMPLE_EVERY = float(os.environ.get("SOAK_SAMPLE_EVERY", "5"))
PUSH_EVERY = float(os.environ.get("SOAK_PUSH_EVERY", "3"))
# Tolerances (why these): glibc's allocator keeps freed chunks and arenas, so RSS settles a few
# hundred KiB above its warm-up level and wobbles; a leak of one allocation per call (tens of
# thousands of calls here) grows it by MiBs.
RSS_TOLERANCE = float(os.environ.get("SOAK_RSS_TOLERANCE", "0.05"))
RSS_SLACK_KB = int(os.environ.get("SOAK_RSS_SLACK_KB", "512"))
# A connection the admin endpoint or a pool is closing at the moment of the sample.
FD_SLACK = int(os.environ.get("SOAK_FD_SLACK", "2"))
SETTLE_SECONDS = 3.0
CALL_TIMEOUT = 10.0
# Bounds on the hostile side: at most this many silent connections held at a time, each held
# this long; rapid-reset bursts of this many streams.
MAX_SILENT = 16
SILENT_HOLD = 20.0
RESET_BURST = 50
UNARY_THREADS = 3
GRPC_PATH = "/meshlet.test.Echo/Say"


def log(msg):
    print(f"soak: {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def node_config(state_dir, admin_port, listen_port, ports):
    eps = "".join(f"endpoint = 127.0.0.1:{p}\n" for p in ports)
    # No access log: at thousands of calls a second it would be the biggest thing on disk.
    return (f"[node]\nstate_dir = {state_dir}\nadmin = 127.0.0.1:{admin_port}\n"
            f"access_log = off\n\n"
            f"[listener ingress]\nbind = 127.0.0.1:{listen_port}\n\n"
            f"[route all]\nlistener = ingress\nto = echo\n\n"
            f"[cluster echo]\n{eps}\n")


def proc_sample(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


# ---- well-behaved clients ----------------------------------------------------------------------

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


def pusher(admin_port, configs, stop, st):
    k = 0
    while not stop.wait(PUSH_EVERY):
        k += 1
        body = configs[k % 2].encode()
        req = urllib.request.Request(f"http://127.0.0.1:{admin_port}/config", data=body,
                                     method="POST")
        try:
            with urllib.request.urlopen(req, timeout=CALL_TIMEOUT) as r:
                text = r.read().decode()
                if r.status == 200 and text.startswith("version:"):
                    st.add("push_ok")
                else:
                    st.fail("push", f"{r.status} {text[:200]}")
        except (urllib.error.URLError, OSError) as e:
            st.fail("push", e)


# ---- hostile clients ---------------------------------------------------------------------------

def rapid_reset(port):
    """HTTP/2: a burst of gRPC requests, each cancelled at once with RST_STREAM."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        c.initiate_connection()
        s.sendall(c.data_to_send())
        headers = [(":method", "POST"), (":scheme", "http"), (":path", GRPC_PATH),
                   (":authority", f"127.0.0.1:{port}"), ("content-type", "application/grpc"),
                   ("te", "trailers")]
        try:
            for _ in range(RESET_BURST):
                sid = c.get_next_available_stream_id()
                c.send_headers(sid, headers)
                c.reset_stream(sid, error_code=8)  # CANCEL
                s.sendall(c.data_to_send())
            s.settimeout(0.2)
            while s.recv(65536):  # whatever meshlet answers (GOAWAY is fine)
                pass
        except (OSError, h2.exceptions.ProtocolError):
            pass


def frame(ftype, flags, stream, payload):
    return (len(payload).to_bytes(3, "big") + bytes([ftype, flags]) +
            stream.to_bytes(4, "big") + payload)


def control_flood(port, rnd):
    """HTTP/2 with raw frames: a PING flood, or HEADERS without END_HEADERS followed by many
    CONTINUATION frames of garbage (never ending the block)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"")
        if rnd.random() < 0.5:
            out += b"".join(frame(6, 0, 0, k.to_bytes(8, "big")) for k in range(500))
        else:
            out += frame(1, 0, 1, rnd.randbytes(100))  # HEADERS, no END_HEADERS
            out += b"".join(frame(9, 0, 1, rnd.randbytes(1000)) for _ in range(200))
        try:
            s.sendall(out)
            s.settimeout(0.2)
            while s.recv(65536):
                pass
        except OSError:
            pass


def hostile(listen_port, admin_port, stop, st):
    rnd = random.Random(7)
    silent = []  # (socket, opened at)
    try:
        while not stop.wait(0.1):
            now = time.monotonic()
            while silent and (len(silent) >= MAX_SILENT or now - silent[0][1] > SILENT_HOLD):
                silent.pop(0)[0].close()
            port = rnd.choice((listen_port, listen_port, admin_port))
            kind = rnd.choice(("silent", "garbage", "half-preface", "reset", "reset", "flood"))
            try:
                if kind == "silent":
                    silent.append((socket.create_connection(("127.0.0.1", port), timeout=5), now))
                elif kind == "garbage":
                    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                        s.sendall(rnd.randbytes(rnd.randint(1, 4096)))
                        if rnd.random() < 0.5:  # abortive close (RST) half the time
                            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                         b"\x01\x00\x00\x00\x00\x00\x00\x00")
                elif kind == "half-preface":
                    s = socket.create_connection(("127.0.0.1", port), timeout=5)
                    s.sendall(b"PRI * HTTP/2.0\r\n\r\nS")
                    silent.append((s, now))
                elif kind == "flood":
                    control_flood(listen_port, rnd)
                else:
                    rapid_reset(listen_port)
                st.add("hostile_" + kind)
            except OSError:  # refused or reset by meshlet: its right; counted only
                st.add("hostile_refused")
    finally:
        for s, _ in silent:
            s.close()


# ---- the run -----------------------------------------------------------------------------------

def main():
    binary = Path(os.environ.get("ML_MESHLET") or ROOT / "build" / "host" / "meshlet")
    if not os.access(binary, os.X_OK):
        log(f"no meshlet binary at {binary} (cmake --build build/host, or set ML_MESHLET)")
        return 2
    backends = [Backend(f"b{i}", workers=16) for i in range(3)]
    names = {b.name for b in backends}
    work = Path(tempfile.mkdtemp(prefix="meshlet-soak."))
    admin_port, listen_port = free_port(), free_port()
    configs = [node_config(work / "state", admin_port, listen_port, [b.port for b in sel])
               for sel in (backends[:2], backends[1:])]
    (work / "meshlet.ini").write_text(configs[0])
    stderr = open(work / "meshlet.stderr", "wb")
    m = subprocess.Popen([str(binary), "-c", str(work / "meshlet.ini")], stdin=subprocess.DEVNULL,
                         stdout=stderr, stderr=stderr, cwd=work)
    log(f"meshlet {binary} pid {m.pid}, listener {listen_port}, admin {admin_port}, "
        f"{SECONDS}s, work dir {work}")
    st = Stats()
    threads = []
    samples = []  # (t, rss_kb, fds)
    ok = True
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/ready", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                if m.poll() is not None or time.monotonic() > deadline:
                    log(f"meshlet did not get ready (exit {m.poll()}); see {work}/meshlet.stderr")
                    return 2
                time.sleep(0.1)

        # Warm-up: one round of every call kind, then idle (no client connection) for the
        # baseline fd count.
        with channel(listen_port) as ch:
            for _ in range(20):
                unary(ch, "Say")(b"warm", timeout=CALL_TIMEOUT)
            list(server_stream(ch, "Repeat")(b"3 10", timeout=CALL_TIMEOUT))
        time.sleep(SETTLE_SECONDS)
        base_rss, base_fds = proc_sample(m.pid)
        log(f"baseline (idle after warm-up): rss {base_rss} KiB, fds {base_fds}")

        stop = threading.Event()
        for i in range(UNARY_THREADS):
            threads.append(threading.Thread(target=unary_client,
                                            args=(listen_port, names, stop, st, i)))
        threads.append(threading.Thread(target=stream_client,
                                        args=(listen_port, names, stop, st)))
        threads.append(threading.Thread(target=pusher, args=(admin_port, configs, stop, st)))
        threads.append(threading.Thread(target=hostile,
                                        args=(listen_port, admin_port, stop, st)))
        for t in threads:
            t.daemon = True
            t.start()
        t0 = time.monotonic()
        next_report = t0 + 60
        while time.monotonic() - t0 < SECONDS:
            time.sleep(min(SAMPLE_EVERY, SECONDS - (time.monotonic() - t0)))
            if m.poll() is not None:
                log(f"meshlet exited {m.returncode} during the run")
                ok = False
                break
            rss, fds = proc_sample(m.pid)
            samples.append((time.monotonic() - t0, rss, fds))
            if time.monotonic() >= next_report:
                next_report += 60
                with st.lock:
                    counts = dict(st.counts)
                log(f"t={time.monotonic() - t0:.0f}s rss {rss} KiB fds {fds} {json.dumps(counts)}")
        stop.set()
        for t in threads:
            t.join(timeout=CALL_TIMEOUT + 5)
        if any(t.is_alive() for t in threads):
            log("a client thread did not stop in time")
            ok = False
    finally:
        if m.poll() is None:
            time.sleep(SETTLE_SECONDS)
            end_rss, end_fds = proc_sample(m.pid)
        else:
            end_rss = end_fds = None

    with st.lock:
        counts = dict(st.counts)
    log(f"counts: {json.dumps(counts, sort_keys=True)}")
    for e in st.errors:
        log(f"  error: {e}")
    good_failed = sum(v for k, v in counts.items() if k.endswith("_failed"))
    calls = counts.get("unary_ok", 0) + counts.get("stream_ok", 0)
    log(f"well-behaved: {calls} calls ok, {good_failed} failed (pushes ok: "
        f"{counts.get('push_ok', 0)})")
    if good_failed:
        ok = False
    if not calls:
        log("no call went through")
        ok = False

    if samples:
        rss = [s[1] for s in samples]
        fds = [s[2] for s in samples]
        q = max(1, len(samples) // 4)
        second_q = statistics.mean(rss[q:2 * q] or rss[:q])
        last_q = statistics.mean(rss[-q:])
        limit = second_q * (1 + RSS_TOLERANCE) + RSS_SLACK_KB
        log(f"rss KiB: min {min(rss)} max {max(rss)}, second-quarter mean {second_q:.0f}, "
            f"last-quarter mean {last_q:.0f} (limit {limit:.0f}: +{RSS_TOLERANCE:.0%} "
            f"+{RSS_SLACK_KB} KiB); {len(samples)} samples every {SAMPLE_EVERY:g}s")
        half = samples[len(samples) // 2:]
        if len(half) >= 2 and half[-1][0] > half[0][0]:
            slope = (half[-1][1] - half[0][1]) / (half[-1][0] - half[0][0]) * 60
            log(f"rss slope over the second half: {slope:+.1f} KiB/min")
        log(f"fds under load: min {min(fds)} max {max(fds)}")
        log("rss samples (KiB): " + " ".join(str(r) for r in rss))
        if last_q > limit:
            log("FAIL: RSS grew")
            ok = False
    if end_fds is not None:
        log(f"settled at the end: rss {end_rss} KiB, fds {end_fds} (baseline {base_fds}, "
            f"slack {FD_SLACK})")
        if end_fds > base_fds + FD_SLACK:
            log("FAIL: fds grew")
            ok = False

    if m.poll() is None:
        m.send_signal(signal.SIGTERM)
        try:
            rc = m.wait(timeout=30)
        except subprocess.TimeoutExpired:
            m.kill()
            rc = "none (killed after 30 s)"
        log(f"meshlet exit on SIGTERM: {rc}")
        if rc != 0:
            ok = False
    else:
        ok = False
    stderr.close()
    for b in backends:
        b.stop()
    log(f"meshlet's stderr: {work}/meshlet.stderr")
    log("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
