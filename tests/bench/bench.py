#!/usr/bin/python3
"""meshlet vs nghttpx vs HAProxy as per-call gRPC balancers: the benchmark behind tests/bench/run.sh.

Not a test (CI does not run it). Starts three tests/bench/h2_backend (127.0.0.1:50051..50053), meshlet
(:15001, config/meshlet.ini with access_log = off, log = warn, a temporary state_dir), nghttpx
(:15002, one worker, backend proto=h2, the 3 backends) and HAProxy (:15003, nbthread 1, h2 front and
back, round robin, http-reuse always), then runs h2load with gRPC-shaped unary calls (POST, 5-byte
prefixed 100-byte message, content-type application/grpc, te: trailers; 100-byte answer + trailers),
interleaved: every round runs every scenario against every target, the target order rotating from
round to round. "direct" is h2load straight to backend 127.0.0.1:50051 (the floor; its CPU column is
that backend's). Prints a Markdown table and the issue's targets.

Per run: calls/s is h2load's; p50/p99 come from h2load --log-file (one latency per call); CPU is the
proxy process's utime+stime (/proc/PID/stat) after minus before, over all rounds, per 10 000 calls;
"(schedstat)" is the same from /proc/PID/schedstat
(scheduler run time, ns: exact where utime+stime are tick samples); RSS idle is VmRSS after start, before any call; "VmHWM" is the peak RSS read right after the
scenario's run in round 1 (scenarios run 1x1, 1x100, 10x10, so the 1x100 row is the peak through
100 streams on one connection). "answered" counts calls that got
the backend's whole message (h2load's DATA bytes / 105): h2load alone cannot tell a gRPC error,
which is a trailers-only answer with :status 200. Values: median over rounds, with the spread
(min–max over rounds) of calls/s and of CPU per 10k calls, and for 1x100 and 10x10 whether
meshlet's and nghttpx's ranges are apart (the gap larger than the spread) or overlap (more rounds).

--scenarios picks the load shapes (CONNSxSTREAMS; default 1x1,1x100,10x10); --sweep adds 1x10
and 10x100, so CPU per call is seen at 1, 10, 100 and 1000 concurrent streams.

--pending N (e.g. 10000): after the scenarios of each round, for meshlet (and meshlet-b) and
nghttpx, N calls are held open (N/100 connections x 100 streams, on a listener of their own,
routed to a fourth h2_backend on :50054 that answers after --pending-delay seconds; meshlet's route
gives them a deadline, so N deadline timers and N stall checks are pending) while a second h2load
runs the 1x100 unary calls: CPU per 10k calls then, beside the same round's 1x100 without them.
The RSS growth while they are held, per held call, is the memory of one pending call (its
downstream connection's share included; round 1's: later rounds reuse what earlier ones freed). --conn-mem K: KiB per idle
h2c connection (K connections opened, preface and SETTINGS exchanged, held; RSS after minus
before), once after the warm-up; then VmHWM is reset (/proc/PID/clear_refs), so the VmHWM column
is the scenarios' peak (memory the connections left behind, if the allocator kept it, included).
"""
import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HZ = os.sysconf("SC_CLK_TCK")
PATH_ = "/helloworld.Greeter/SayHello"
BACKENDS = [50051, 50052, 50053]
PORTS = {"meshlet": 15001, "nghttpx": 15002, "haproxy": 15003, "meshlet-b": 15004}
ADMIN_B = 15005  # meshlet-b's admin port
ADMIN = 15008  # meshlet's: not config/meshlet.ini's 15000, which the integration tests use
# --pending: the late backend, and the listeners of the held calls (meshlet, nghttpx)
SLOW_BACKEND = 50054
HOLD_PORTS = {"meshlet": 15006, "nghttpx": 15007, "meshlet-b": 15009}
HOLD_PATH = "/bench.Slow/Hold"
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_port(port, proc, what, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if port_open(port):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise SystemExit(f"bench: {what} did not come up on 127.0.0.1:{port}")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)


def sched_ns(pid):
    """Time on CPU in ns from the scheduler (/proc/PID/schedstat, first field): exact, unlike
    utime+stime, which are sampled at the tick. Summed over the threads alive now."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):  # every thread (nghttpx's worker is a thread)
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total


def mem_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
    return out


def hold_idle_connections(port, k):
    """k h2c connections to 127.0.0.1:port: preface + empty SETTINGS, the server's first frames
    read (its SETTINGS: the connection is set up on both sides), then left open. Returns them."""
    socks = []
    for _ in range(k):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(H2_PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        s.recv(4096)
        s.sendall(b"\x00\x00\x00\x04\x01\x00\x00\x00\x00")  # SETTINGS ACK
        socks.append(s)
    return socks


def spread(vals, fmt="{:,.0f}"):
    return f"{fmt.format(min(vals))}–{fmt.format(max(vals))}" if vals else "—"


def apart(a, b):
    """'apart' when the ranges of a and b do not overlap (the gap is larger than the spread)."""
    if not a or not b:
        return "—"
    return "apart" if max(a) < min(b) or max(b) < min(a) else "**overlap**"


def percentile(sorted_vals, q):
    if not sorted_vals:
        return float("nan")
    k = min(len(sorted_vals) - 1, max(0, int(round(q / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


class Bench:
    def __init__(self, a):
        self.a = a
        self.tmp = tempfile.mkdtemp(prefix="meshlet-bench.")
        self.procs = []
        self.pin = a.pin and os.cpu_count() >= 2
        self.pids = {}
        self.idle = {}

    def spawn(self, argv, name, cpu):
        if self.pin and cpu == 1 and self.a.workers > 1:
            cpu = f"0-{os.cpu_count() - 1}"  # --workers N: the proxies' threads get every CPU
        if self.pin:
            argv = ["taskset", "-c", str(cpu)] + argv
        out = open(os.path.join(self.tmp, name + ".log"), "w")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.tmp,
                             start_new_session=True)
        self.procs.append((name, p))
        return p

    def stop(self):
        for _, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        end = time.time() + 3
        for _, p in self.procs:
            try:
                p.wait(max(0.1, end - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self):
        a = self.a
        extra = [SLOW_BACKEND] + list(HOLD_PORTS.values()) if a.pending else []
        for port in BACKENDS + list(PORTS.values()) + [ADMIN, ADMIN_B] + extra:
            if port_open(port):
                raise SystemExit(f"bench: 127.0.0.1:{port} is in use (a demo or another bench?)")
        with open(os.path.join(self.tmp, "req.bin"), "wb") as f:
            f.write(b"\x00" + a.msg.to_bytes(4, "big") + b"y" * a.msg)
        # backends and h2load on CPU 0, the proxy under test on CPU 1
        for port in BACKENDS:
            p = self.spawn([a.backend, str(port), str(a.msg)], f"backend-{port}", 0)
            wait_port(port, p, f"h2_backend {port}")
            if port == BACKENDS[0]:
                self.pids["direct"] = p.pid
        if a.pending:
            p = self.spawn([a.backend, str(SLOW_BACKEND), str(a.msg), str(a.pending_delay * 1000)],
                           "backend-slow", 0)
            wait_port(SLOW_BACKEND, p, f"h2_backend {SLOW_BACKEND} (late)")

        self.start_meshlet("meshlet", a.meshlet, {"admin": f"127.0.0.1:{ADMIN}"})
        if a.meshlet_b:
            self.start_meshlet("meshlet-b", a.meshlet_b,
                               {"bind": f"127.0.0.1:{PORTS['meshlet-b']}",
                                "admin": f"127.0.0.1:{ADMIN_B}"})

        nconf = os.path.join(self.tmp, "nghttpx.conf")
        with open(nconf, "w") as f:
            f.write(f"frontend=127.0.0.1,{PORTS['nghttpx']};no-tls\n")
            for port in BACKENDS:
                f.write(f"backend=127.0.0.1,{port};;proto=h2\n")
            if a.pending:  # the held calls: a frontend and a path of their own, no timeouts
                f.write(f"frontend=127.0.0.1,{HOLD_PORTS['nghttpx']};no-tls\n"
                        f"backend=127.0.0.1,{SLOW_BACKEND};/bench.Slow/;proto=h2\n"
                        f"backend-read-timeout={a.pending_delay * 2}s\n"
                        f"frontend-http2-read-timeout={a.pending_delay * 2}s\n"
                        f"stream-read-timeout=0\nstream-write-timeout=0\n")
            f.write(f"workers={a.workers}\nsingle-process=yes\nno-via=yes\n")
            f.write(f"errorlog-file={self.tmp}/nghttpx.err\n")
        p = self.spawn(["nghttpx", f"--conf={nconf}"], "nghttpx", 1)
        wait_port(PORTS["nghttpx"], p, "nghttpx")
        self.pids["nghttpx"] = p.pid

        hconf = os.path.join(self.tmp, "haproxy.cfg")
        with open(hconf, "w") as f:
            f.write(f"global\n    nbthread {a.workers}\n    maxconn 1000\n"
                    "defaults\n    mode http\n    timeout connect 1s\n"
                    "    timeout client 30s\n    timeout server 30s\n"
                    f"frontend fe\n    bind 127.0.0.1:{PORTS['haproxy']} proto h2\n"
                    "    default_backend be\n"
                    "backend be\n    balance roundrobin\n    http-reuse always\n")
            for i, port in enumerate(BACKENDS):
                f.write(f"    server s{i + 1} 127.0.0.1:{port} proto h2\n")
        p = self.spawn(["haproxy", "-f", hconf, "-db"], "haproxy", 1)
        wait_port(PORTS["haproxy"], p, "haproxy")
        self.pids["haproxy"] = p.pid

        time.sleep(0.3)
        for t, pid in self.pids.items():
            self.idle[t] = mem_kib(pid)["VmRSS"]

    def start_meshlet(self, name, binary, extra):
        """config/meshlet.ini with a temporary state_dir, access_log off, log warn (+ extra)."""
        conf = os.path.join(self.tmp, f"{name}.ini")
        with open(os.path.join(ROOT, "config", "meshlet.ini")) as f:
            lines = f.read().splitlines()
        repl = {"state_dir": os.path.join(self.tmp, f"{name}-state"), "access_log": "off",
                "log": "warn", **extra}
        if self.a.sweep:  # the file's cluster greeter sets it (100)
            repl["max_streams_per_connection"] = "1000"
        with open(conf, "w") as f:
            for line in lines:
                k = line.split("=", 1)[0].strip()
                if "=" in line and k in repl:
                    line = f"{k} = {repl[k]}"
                f.write(line + "\n")
                if line.strip() == "[node]" and self.a.workers > 1:
                    f.write(f"workers = {self.a.workers}\n")  # --workers N
                if line.strip() == "[cluster greeter]" and self.a.sweep:
                    # 1000 streams (10x100): the circuit breakers' defaults (256 calls, 128
                    # waiting) and 100 streams per upstream connection would answer most calls
                    # UNAVAILABLE; nghttpx and HAProxy have no such caps. Raised for every
                    # scenario (no effect below 256 calls in flight).
                    f.write("max_requests = 2000\nmax_pending = 2000\n")
            if self.a.pending:
                # the held calls: a listener, a route (deadline: twice the backend's delay) and
                # a cluster of their own, sized for them (12 x 1000 upstream streams)
                conns = (self.a.pending + 99) // 100
                f.write(f"\n[listener hold]\nbind = 127.0.0.1:{HOLD_PORTS[name]}\n"
                        f"max_connections = {conns}\nmax_streams = 100\n\n"
                        "[route hold]\nlistener = hold\nto = slow\n"
                        f"timeout = {self.a.pending_delay * 2}s\n\n"
                        f"[cluster slow]\nendpoint = 127.0.0.1:{SLOW_BACKEND}\n"
                        f"max_connections = {max(1, (self.a.pending + 999) // 1000 + 2)}\n"
                        "max_streams_per_connection = 1000\n"
                        f"max_requests = {self.a.pending + 1000}\n"
                        f"max_pending = {self.a.pending}\n")
        p = self.spawn([binary, "-c", conf], name, 1)
        wait_port(PORTS[name], p, name)
        self.pids[name] = p.pid

    def url(self, target):
        port = BACKENDS[0] if target == "direct" else PORTS[target]
        return f"http://127.0.0.1:{port}{PATH_}"

    def h2load(self, target, c, m, n, logfile=None):
        argv = ["timeout", str(self.a.cap), "h2load", "-n", str(n), "-c", str(c), "-m", str(m),
                "-t", "1", "-d", os.path.join(self.tmp, "req.bin"),
                "-H", "content-type: application/grpc", "-H", "te: trailers"]
        if logfile:
            argv += ["--log-file", logfile]
        argv.append(self.url(target))
        if self.pin:
            argv = ["taskset", "-c", "0"] + argv
        r = subprocess.run(argv, capture_output=True, text=True)
        rps, done, data = 0.0, 0, -1
        for line in r.stdout.splitlines():
            if line.startswith("finished in"):
                rps = float(line.split(",")[1].split()[0])
            elif line.startswith("requests:"):
                done = int(line.split(",")[3].split()[0])
            elif line.startswith("traffic:"):  # "..., 2.00MB (2100000) data"
                data = int(line.rsplit("(", 1)[1].split(")")[0])
        # h2load counts a finished stream as "succeeded", and a gRPC error is a trailers-only
        # answer with :status 200, so count the calls that got the whole message instead.
        ok = min(done, data // (5 + self.a.msg)) if data >= 0 else done
        if ok < done:
            log(f"bench: {target} -c{c} -m{m}: {done - ok} of {done} calls ended without the "
                f"response message (answered by the proxy itself: gRPC error?)")
        if r.returncode != 0:
            log(f"bench: h2load {target} -c{c} -m{m} -n{n}: exit {r.returncode} "
                f"(124 = hit the {self.a.cap}s cap)")
        return rps, ok

    def run(self, scenarios, targets):
        res = {}  # (scen, target) -> dict of lists
        for t in targets:  # warm-up: upstream connections open, caches warm
            self.h2load(t, 1, 10, 2000)
        for rnd in range(self.a.rounds):
            order = targets[rnd % len(targets):] + targets[:rnd % len(targets)]
            for sname, c, m, n in scenarios:
                for t in order:
                    pid = self.pids[t]
                    lf = os.path.join(self.tmp, "h2load.log")
                    if os.path.exists(lf):
                        os.unlink(lf)
                    c0, s0 = cpu_ticks(pid), sched_ns(pid)
                    rps, ok = self.h2load(t, c, m, n, lf)
                    c1, s1 = cpu_ticks(pid), sched_ns(pid)
                    mem = mem_kib(pid)
                    lat = []
                    with open(lf) as f:
                        for line in f:
                            parts = line.split()
                            if len(parts) >= 3 and parts[1].startswith("2"):
                                lat.append(int(parts[2]))
                    lat.sort()
                    r = res.setdefault((sname, t), {"rps": [], "p50": [], "p99": [], "cpu": 0,
                                                     "sched": 0, "ok": 0, "n": 0, "hwm": None,
                                                     "cpu_r": []})
                    r["rps"].append(rps)
                    if ok:
                        r["cpu_r"].append((c1 - c0) / HZ / ok * 10000)
                    r["p50"].append(percentile(lat, 50))
                    r["p99"].append(percentile(lat, 99))
                    r["cpu"] += (c1 - c0) / HZ
                    r["sched"] += (s1 - s0) / 1e9
                    r["ok"] += ok
                    r["n"] += n
                    if r["hwm"] is None:
                        r["hwm"] = mem["VmHWM"]
                    log(f"round {rnd + 1} {sname:6} {t:8} {rps:10.0f} calls/s "
                        f"p50 {percentile(lat, 50):6d}us p99 {percentile(lat, 99):6d}us "
                        f"cpu {(c1 - c0) / HZ:5.2f}s ({(s1 - s0) / 1e9:5.2f}s) ok {ok}/{n}")
            if self.a.pending:
                for t in order:
                    if t in HOLD_PORTS:
                        self.run_pending(res, t, rnd)
        return res

    def held_now(self):
        """The late backend's count of held requests (its last "held N" line)."""
        try:
            with open(os.path.join(self.tmp, "backend-slow.log")) as f:
                lines = [l for l in f.read().splitlines() if l.startswith("held ")]
        except OSError:
            return 0
        return int(lines[-1].split()[1]) if lines else 0

    def run_pending(self, res, t, rnd):
        """--pending: N calls held open on t while 1x100 unary calls run; CPU per 10k calls."""
        a, pid = self.a, self.pids[t]
        n, conns = a.pending, (a.pending + 99) // 100
        rss0 = mem_kib(pid)["VmRSS"]
        argv = ["timeout", str(a.pending_delay), "h2load", "-n", str(n), "-c", str(conns),
                "-m", "100", "-t", "1", "-d", os.path.join(self.tmp, "req.bin"),
                "-H", "content-type: application/grpc", "-H", "te: trailers",
                "-H", f"grpc-timeout: {a.pending_delay * 2}S",
                f"http://127.0.0.1:{HOLD_PORTS[t]}{HOLD_PATH}"]
        if self.pin:
            argv = ["taskset", "-c", "0"] + argv
        base = self.held_now()
        hold = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        end = time.time() + a.pending_wait
        while self.held_now() - base < n and time.time() < end and hold.poll() is None:
            time.sleep(0.2)
        time.sleep(0.5)
        held = self.held_now() - base
        rss1 = mem_kib(pid)["VmRSS"]
        c0 = cpu_ticks(pid)
        rps, ok = self.h2load(t, 1, 100, a.n100)
        c1 = cpu_ticks(pid)
        still = self.held_now() - base
        hold.send_signal(signal.SIGTERM)
        try:
            hold.wait(10)
        except subprocess.TimeoutExpired:
            hold.kill()
            hold.wait()
        end = time.time() + 30  # the proxy cancels the held calls upstream: wait for it
        while self.held_now() > base and time.time() < end:
            time.sleep(0.2)
        r = res.setdefault(("pending", t), {"rps": [], "cpu": 0, "ok": 0, "cpu_r": [],
                                             "held": [], "kib": []})
        r["rps"].append(rps)
        r["cpu"] += (c1 - c0) / HZ
        r["ok"] += ok
        if ok:
            r["cpu_r"].append((c1 - c0) / HZ / ok * 10000)
        r["held"].append(min(held, still))
        if held:
            r["kib"].append((rss1 - rss0) / held)
        log(f"round {rnd + 1} pending {t:8} held {held} (still {still} after) {rps:10.0f} calls/s "
            f"cpu {(c1 - c0) / HZ:5.2f}s ok {ok}/{a.n100} RSS +{rss1 - rss0} KiB")

    def conn_mem(self, targets):
        """KiB per idle h2c connection, per target (not direct)."""
        out = {}
        for t in targets:
            if t == "direct":
                continue
            pid = self.pids[t]
            time.sleep(0.2)
            r0 = mem_kib(pid)["VmRSS"]
            socks = hold_idle_connections(PORTS[t], self.a.conn_mem)
            time.sleep(0.5)
            r1 = mem_kib(pid)["VmRSS"]
            for s_ in socks:
                s_.close()
            out[t] = (r1 - r0) / self.a.conn_mem
            time.sleep(0.3)
            try:  # VmHWM from here on: the scenarios' peak, not these connections'
                with open(f"/proc/{pid}/clear_refs", "w") as f:
                    f.write("5")
            except OSError as e:
                log(f"conn-mem {t}: cannot reset VmHWM ({e}): the VmHWM column includes them")
            log(f"conn-mem {t}: {self.a.conn_mem} idle connections: +{r1 - r0} KiB")
        return out


def report(res, scenarios, targets, idle, rounds, conn_kib=None):
    out = []
    out.append("| scenario | target | calls/s | (min–max) | p50 µs | p99 µs | added p50 µs "
               "| CPU s / 10k calls | (min–max) | (schedstat) | RSS idle KiB | VmHWM KiB "
               "| answered / sent |")
    out.append("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    med = lambda v: statistics.median(v)
    for sname, *_ in scenarios:
        d50 = med(res[(sname, "direct")]["p50"]) if (sname, "direct") in res else None
        for t in targets:
            r = res[(sname, t)]
            p50 = med(r["p50"])
            added = "—" if t == "direct" or d50 is None else f"+{p50 - d50:.0f}"
            cpu = r["cpu"] / r["ok"] * 10000 if r["ok"] else float("nan")
            sch = r["sched"] / r["ok"] * 10000 if r["ok"] else float("nan")
            name = "direct (backend)" if t == "direct" else t
            out.append(f"| {sname} | {name} | {med(r['rps']):,.0f} | {spread(r['rps'])} | "
                       f"{p50:.0f} | {med(r['p99']):.0f} | {added} | {cpu:.3f} | "
                       f"{spread(r['cpu_r'], '{:.3f}')} | {sch:.3f} | {idle[t]:,} | "
                       f"{r['hwm']:,} | {r['ok']:,} / {r['n']:,} |")
    out.append("")
    out.append(f"Median of {rounds} interleaved rounds; CPU summed over all rounds; (min–max): "
               "the spread over the rounds.")
    # spread against gap: is the number of rounds enough to tell meshlet from each peer?
    rows = []
    for sname in ("1x100", "10x10"):
        for peer in ("nghttpx", "haproxy"):
            if (sname, "meshlet") in res and (sname, peer) in res:
                m, x = res[(sname, "meshlet")], res[(sname, peer)]
                rows.append(f"| {sname} | {peer} | {med(m['rps']) / med(x['rps']):.2f} × | "
                            f"{apart(m['rps'], x['rps'])} | "
                            f"{(m['cpu'] / m['ok']) / (x['cpu'] / x['ok']):.2f} × | "
                            f"{apart(m['cpu_r'], x['cpu_r'])} |")
    if rows:
        out += ["", "| scenario | meshlet vs | calls/s ratio | ranges over rounds | "
                "CPU / call ratio | ranges over rounds |", "|---|---|--:|---|--:|---|"] + rows
        out.append("")
        out.append("\"apart\": every round's figure of one is beyond every round's of the other "
                   "(the gap is larger than the spread); \"overlap\": run more rounds.")
    # cost as concurrency grows
    sweep = [(sname, c * m) for sname, c, m, _ in scenarios]
    if len(sweep) > 1:
        hdr = " | ".join(f"{sname} ({n} stream{'s' if n > 1 else ''})" for sname, n in sweep)
        out += ["", f"| CPU µs per call | {hdr} |", "|---|" + "--:|" * len(sweep)]
        for t in targets:
            cells = []
            for sname, _ in sweep:
                r = res.get((sname, t))
                cells.append(f"{r['cpu'] / r['ok'] * 1e6:.1f}" if r and r["ok"] else "—")
            out.append(f"| {t} | " + " | ".join(cells) + " |")
    # pending deadlines
    pend = [t for t in targets if ("pending", t) in res]
    if pend:
        out += ["", "| target | held calls | 1x100 calls/s alone | with them held | "
                "CPU s / 10k alone | with them held | (min–max) | ratio | KiB per held call (round 1) |",
                "|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
        for t in pend:
            p, b = res[("pending", t)], res.get(("1x100", t))
            alone = b["cpu"] / b["ok"] * 10000 if b and b["ok"] else float("nan")
            held = p["cpu"] / p["ok"] * 10000 if p["ok"] else float("nan")
            # round 1's: later rounds reuse memory freed by the earlier ones
            kib = f"{p['kib'][0]:.2f}" if p["kib"] else "—"
            out.append(f"| {t} | {min(p['held']):,}–{max(p['held']):,} | "
                       f"{med(b['rps']) if b else float('nan'):,.0f} | {med(p['rps']):,.0f} | "
                       f"{alone:.3f} | {held:.3f} | {spread(p['cpu_r'], '{:.3f}')} | "
                       f"{held / alone:.2f} × | {kib} |")
    if conn_kib:
        out += ["", "| target | RSS idle KiB | KiB per idle h2c connection |", "|---|--:|--:|"]
        for t, k in conn_kib.items():
            out.append(f"| {t} | {idle[t]:,} | {k:.1f} |")
    # the targets
    if all((s, t) in res for s in ("1x1", "1x100") for t in ("direct", "meshlet", "nghttpx")):
        m, x = res[("1x100", "meshlet")], res[("1x100", "nghttpx")]
        rr = med(m["rps"]) / med(x["rps"])
        cr = (m["cpu"] / m["ok"]) / (x["cpu"] / x["ok"])
        sr = (m["sched"] / m["ok"]) / (x["sched"] / x["ok"])
        d50 = med(res[("1x1", "direct")]["p50"])
        added = {t: med(res[("1x1", t)]["p50"]) - d50 for t in targets if t != "direct"}
        peers = {t: v for t, v in added.items() if not t.startswith("meshlet")}
        best = min(peers, key=peers.get)
        hwm100 = res[("1x100", "meshlet")]["hwm"]
        ok = lambda b: "**met**" if b else "**MISSED**"
        out.append("")
        out.append("| target (issue) | measured | |")
        out.append("|---|---|---|")
        out.append(f"| 1x100 calls/s ≥ 1.2 × nghttpx | {rr:.2f} × | {ok(rr >= 1.2)} |")
        out.append(f"| 1x100 CPU / 10k calls ≤ 0.8 × nghttpx | {cr:.2f} × | {ok(cr <= 0.8)} (schedstat: {sr:.2f} ×) |")
        if ("10x10", "meshlet") in res and ("10x10", "nghttpx") in res:
            m, x = res[("10x10", "meshlet")], res[("10x10", "nghttpx")]
            rr = med(m["rps"]) / med(x["rps"])
            cr = (m["cpu"] / m["ok"]) / (x["cpu"] / x["ok"])
            out.append(f"| 10x10 calls/s ≥ 1.2 × nghttpx | {rr:.2f} × | {ok(rr >= 1.2)} |")
            out.append(f"| 10x10 CPU / 10k calls ≤ 0.8 × nghttpx | {cr:.2f} × | {ok(cr <= 0.8)} |")
        out.append(f"| 1x1 added p50 below the best peer ({best} +{peers[best]:.0f} µs) | "
                   f"+{added['meshlet']:.0f} µs | {ok(added['meshlet'] < peers[best])} |")
        out.append(f"| RSS idle ≤ 2 MiB | {idle['meshlet'] / 1024:.2f} MiB | "
                   f"{ok(idle['meshlet'] <= 2048)} |")
        out.append(f"| RSS ≤ 4 MiB at 100 streams on one connection (VmHWM after 1x100) | "
                   f"{hwm100 / 1024:.2f} MiB | {ok(hwm100 <= 4096)} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description="meshlet vs nghttpx vs HAProxy (see run.sh)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--n1", type=int, default=10000, help="calls per run, 1 conn x 1 stream")
    ap.add_argument("--n100", type=int, default=100000, help="calls per run, 1 conn x 100 streams")
    ap.add_argument("--n10x10", type=int, default=100000, help="calls per run, 10 conns x 10 streams")
    ap.add_argument("--cap", type=int, default=60, help="seconds: time cap of one h2load run")
    ap.add_argument("--msg", type=int, default=100, help="message bytes, request and response")
    ap.add_argument("--targets", default="direct,meshlet,nghttpx,haproxy")
    ap.add_argument("--no-pin", dest="pin", action="store_false",
                    help="do not pin (default: proxies on CPU 1, backends + h2load on CPU 0)")
    ap.add_argument("--meshlet", default=os.path.join(ROOT, "build", "host", "meshlet"))
    ap.add_argument("--meshlet-b", metavar="PATH",
                    help="a second meshlet binary (A/B: another build), target 'meshlet-b' on :15004")
    ap.add_argument("--workers", type=int, default=1,
                    help="N event loops/threads per proxy: meshlet [node] workers, nghttpx "
                         "workers (single-process), HAProxy nbthread; N > 1 lets the proxies "
                         "run on every CPU (pinning keeps backends and h2load on CPU 0)")
    ap.add_argument("--backend", default=os.path.join(ROOT, "build", "bench", "h2_backend"))
    ap.add_argument("--scenarios", default="1x1,1x100,10x10",
                    help="CONNSxSTREAMS,... (calls per run: --n1 for 1x1, --n10x10 for 10x10, "
                         "--n100 for the others)")
    ap.add_argument("--sweep", action="store_true",
                    help="add 1x10 and 10x100: CPU per call at 1, 10, 100, 1000 streams")
    ap.add_argument("--pending", type=int, default=0, metavar="N",
                    help="also 1x100 with N calls held open on meshlet and nghttpx (e.g. 10000)")
    ap.add_argument("--pending-delay", type=int, default=120, metavar="S",
                    help="seconds the late backend holds each call (--pending)")
    ap.add_argument("--pending-wait", type=int, default=30, metavar="S",
                    help="seconds to wait for the N calls to be held (--pending)")
    ap.add_argument("--conn-mem", type=int, default=0, metavar="K",
                    help="KiB per idle h2c connection, over K connections (e.g. 100)")
    a = ap.parse_args()
    targets = a.targets.split(",")
    names = a.scenarios.split(",")
    if a.sweep:
        names += [s for s in ("1x10", "10x100") if s not in names]
    order = {"1x1": 0, "1x10": 1, "1x100": 2, "10x10": 3, "10x100": 4}
    names.sort(key=lambda s: order.get(s, 9))
    scenarios = []
    for sname in names:
        c, m = (int(v) for v in sname.split("x"))
        n = a.n1 if c * m == 1 else a.n10x10 if sname == "10x10" else a.n100
        scenarios.append((sname, c, m, n))

    b = Bench(a)
    # meshlet: run a private copy, so a rebuild of build/host during the run changes nothing
    snap = os.path.join(b.tmp, "meshlet")
    shutil.copy2(a.meshlet, snap)
    ver = subprocess.run([snap, "version"], capture_output=True, text=True).stdout.splitlines()[0]
    a.meshlet = snap
    if a.meshlet_b:
        snap_b = os.path.join(b.tmp, "meshlet-b")
        shutil.copy2(a.meshlet_b, snap_b)
        a.meshlet_b = snap_b
        if "meshlet-b" not in targets:
            targets.insert(targets.index("meshlet") + 1 if "meshlet" in targets else 0, "meshlet-b")
    old = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        b.start()
        log(f"bench: {ver}; pids {b.pids}; idle RSS KiB {b.idle}; pinned: {b.pin}")
        t0 = time.time()
        conn_kib = None
        if a.conn_mem:
            for t in targets:  # warm-up first: upstream connections open
                b.h2load(t, 1, 10, 2000)
            conn_kib = b.conn_mem(targets)
        res = b.run(scenarios, targets)
        took = time.time() - t0
    finally:
        b.stop()
        signal.signal(signal.SIGTERM, old)
    print(f"{ver}; nghttpx {subprocess.run(['nghttpx', '--version'], capture_output=True, text=True).stdout.split()[-1]}; "
          f"{subprocess.run(['haproxy', '-v'], capture_output=True, text=True).stdout.split(chr(10))[0].split(' - ')[0]}; "
          f"{os.cpu_count()} CPUs; {a.workers} worker(s) per proxy; {took:.0f} s of runs")
    print()
    print(report(res, scenarios, targets, b.idle, a.rounds, conn_kib))


if __name__ == "__main__":
    main()
