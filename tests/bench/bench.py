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
which is a trailers-only answer with :status 200. Values: median over rounds.
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
ADMIN_B = 15005  # meshlet-b's admin port (meshlet keeps 15000)


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
        for port in BACKENDS + list(PORTS.values()):
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

        self.start_meshlet("meshlet", a.meshlet, {})
        if a.meshlet_b:
            self.start_meshlet("meshlet-b", a.meshlet_b,
                               {"bind": f"127.0.0.1:{PORTS['meshlet-b']}",
                                "admin": f"127.0.0.1:{ADMIN_B}"})

        nconf = os.path.join(self.tmp, "nghttpx.conf")
        with open(nconf, "w") as f:
            f.write(f"frontend=127.0.0.1,{PORTS['nghttpx']};no-tls\n")
            for port in BACKENDS:
                f.write(f"backend=127.0.0.1,{port};;proto=h2\n")
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
        with open(conf, "w") as f:
            for line in lines:
                k = line.split("=", 1)[0].strip()
                if "=" in line and k in repl:
                    line = f"{k} = {repl[k]}"
                f.write(line + "\n")
                if line.strip() == "[node]" and self.a.workers > 1:
                    f.write(f"workers = {self.a.workers}\n")  # --workers N
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
                                                     "sched": 0, "ok": 0, "n": 0, "hwm": None})
                    r["rps"].append(rps)
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
        return res


def report(res, scenarios, targets, idle, rounds):
    out = []
    out.append("| scenario | target | calls/s | p50 µs | p99 µs | added p50 µs | CPU s / 10k calls "
               "| (schedstat) | RSS idle KiB | VmHWM KiB | answered / sent |")
    out.append("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
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
            out.append(f"| {sname} | {name} | {med(r['rps']):,.0f} | {p50:.0f} | "
                       f"{med(r['p99']):.0f} | {added} | {cpu:.3f} | {sch:.3f} | {idle[t]:,} | "
                       f"{r['hwm']:,} | {r['ok']:,} / {r['n']:,} |")
    out.append("")
    out.append(f"Median of {rounds} interleaved rounds; CPU summed over all rounds.")
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
    a = ap.parse_args()
    targets = a.targets.split(",")
    scenarios = [("1x1", 1, 1, a.n1), ("1x100", 1, 100, a.n100), ("10x10", 10, 10, a.n10x10)]

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
        res = b.run(scenarios, targets)
        took = time.time() - t0
    finally:
        b.stop()
        signal.signal(signal.SIGTERM, old)
    print(f"{ver}; nghttpx {subprocess.run(['nghttpx', '--version'], capture_output=True, text=True).stdout.split()[-1]}; "
          f"{subprocess.run(['haproxy', '-v'], capture_output=True, text=True).stdout.split(chr(10))[0].split(' - ')[0]}; "
          f"{os.cpu_count()} CPUs; {a.workers} worker(s) per proxy; {took:.0f} s of runs")
    print()
    print(report(res, scenarios, targets, b.idle, a.rounds))


if __name__ == "__main__":
    main()
