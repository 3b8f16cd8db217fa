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
import shutil
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
sys.path.insert(0, str(ROOT / "tests" / "integration"))  # grpc_peers
sys.path.insert(0, str(HERE))

from grpc_peers import Backend, channel, server_stream, unary  # noqa: E402
from hostile import hostile  # noqa: E402
from traffic import CALL_TIMEOUT, Stats, pusher, stream_client, unary_client  # noqa: E402

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
UNARY_THREADS = 3


def log(msg):
    print(f"soak: {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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

# ---- the run -----------------------------------------------------------------------------------

def run(binary, backends, work, procs):
    """The soak itself; main() cleans up whatever happens. procs["meshlet"]: the process."""
    names = {b.name for b in backends}
    admin_port, listen_port = free_port(), free_port()
    configs = [node_config(work / "state", admin_port, listen_port, [b.port for b in sel])
               for sel in (backends[:2], backends[1:])]
    (work / "meshlet.ini").write_text(configs[0])
    stderr = open(work / "meshlet.stderr", "wb")
    m = subprocess.Popen([str(binary), "-c", str(work / "meshlet.ini")], stdin=subprocess.DEVNULL,
                         stdout=stderr, stderr=stderr, cwd=work)
    procs["meshlet"] = m
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
        threads.append(threading.Thread(target=pusher,
                                        args=(admin_port, configs, stop, st, PUSH_EVERY)))
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
    return 0 if ok else 1


def main():
    binary = Path(os.environ.get("ML_MESHLET") or ROOT / "build" / "host" / "meshlet").absolute()
    if not os.access(binary, os.X_OK):
        log(f"no meshlet binary at {binary} (cmake --build build/host, or set ML_MESHLET)")
        return 2
    backends = [Backend(f"b{i}", workers=16) for i in range(3)]
    work = Path(tempfile.mkdtemp(prefix="meshlet-soak."))
    procs = {}
    rc = 2
    try:
        rc = run(binary, backends, work, procs)
    finally:
        # Whatever ended the run (a failed warm-up call raises), nothing it started outlives it.
        m = procs.get("meshlet")
        if m is not None and m.poll() is None:
            m.kill()
            m.wait()
        for b in backends:
            b.stop()
        if rc == 0:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"meshlet's stderr (kept): {work}/meshlet.stderr")
        log({0: "PASS", 1: "FAIL"}.get(rc, "FAIL (setup)"))
    return rc


if __name__ == "__main__":
    sys.exit(main())
