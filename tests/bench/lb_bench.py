#!/usr/bin/python3
"""The balancer's cost: calls/s and CPU per 10 000 calls of each LB policy with 1 and with 16
endpoints, meshlet beside nghttpx and HAProxy where they have the policy. Run by tests/bench/lb.sh;
a benchmark, not a test (CI does not run it). Results and how to read them: tests/bench/README.md.

Each (proxy, policy, endpoints) is one configuration: the proxy is started on it alone (pinned to
CPU 1; the h2_backend processes and h2load on CPU 0), warmed up with 2 000 calls, then h2load sends
N gRPC-shaped unary calls over 1 connection × 100 streams. The paths carry 64 different keys
(`?u=0..63`, h2load takes the URIs in turn), so hash policies keyed on `path` spread the calls.
Rounds run every configuration, the order rotating from round to round; calls/s is the median over
rounds, CPU (utime+stime and schedstat of the proxy) is summed over the rounds.

Peers: nghttpx has round robin only (one backend group); HAProxy has roundrobin, random,
leastconn (in-flight requests per server, its least_request) and `balance uri` with
`hash-type consistent` (a ring); HAProxy 2.6 has no Maglev.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import cpu_ticks, log, port_open, sched_ns, wait_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HZ = os.sysconf("SC_CLK_TCK")
# Ports of their own, so that this runs beside tests/bench/run.sh's defaults.
BACKEND_BASE = 51061
PROXY_PORT = 16001
N_KEYS = 64
PATH_ = "/helloworld.Greeter/SayHello"

# policy → (meshlet lb and extra lines, haproxy balance lines or None, nghttpx has it)
POLICIES = {
    "round_robin": ("lb = round_robin\n", "balance roundrobin\n", True),
    "random": ("lb = random\n", "balance random\n", False),
    "least_request": ("lb = least_request\n", "balance leastconn\n", False),
    "ring_hash": ("lb = ring_hash\nhash = path\n", "balance uri\n    hash-type consistent\n", False),
    "maglev": ("lb = maglev\nhash = path\n", None, False),
}


class LbBench:
    def __init__(self, a):
        self.a = a
        self.tmp = tempfile.mkdtemp(prefix="meshlet-lb-bench.")
        self.backends = []
        self.pin = a.pin and os.cpu_count() >= 2

    def spawn(self, argv, name, cpu):
        if self.pin:
            argv = ["taskset", "-c", str(cpu)] + argv
        out = open(os.path.join(self.tmp, name + ".log"), "w")
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.tmp,
                                start_new_session=True)

    @staticmethod
    def end(p):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(3)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def start_backends(self):
        for port in self.ports(16) + [PROXY_PORT]:
            if port_open(port):
                raise SystemExit(f"lb_bench: 127.0.0.1:{port} is in use")
        with open(os.path.join(self.tmp, "req.bin"), "wb") as f:
            f.write(b"\x00" + self.a.msg.to_bytes(4, "big") + b"y" * self.a.msg)
        for port in self.ports(16):
            p = self.spawn([self.a.backend, str(port), str(self.a.msg)], f"backend-{port}", 0)
            wait_port(port, p, f"h2_backend {port}")
            self.backends.append(p)

    @staticmethod
    def ports(n):
        return [BACKEND_BASE + i for i in range(n)]

    def start_proxy(self, proxy, policy, n):
        ports = self.ports(n)
        name = f"{proxy}-{policy}-{n}"
        if proxy == "meshlet":
            conf = os.path.join(self.tmp, name + ".ini")
            with open(conf, "w") as f:
                f.write(f"[node]\nstate_dir = {self.tmp}/state\nadmin = off\naccess_log = off\n"
                        f"log = warn\n\n[listener ingress]\nbind = 127.0.0.1:{PROXY_PORT}\n\n"
                        "[route all]\nlistener = ingress\nto = greeter\n\n"
                        "[cluster greeter]\n" + POLICIES[policy][0] +
                        "".join(f"endpoint = 127.0.0.1:{p}\n" for p in ports))
            argv = [self.a.meshlet, "-c", conf]
        elif proxy == "nghttpx":
            conf = os.path.join(self.tmp, name + ".conf")
            with open(conf, "w") as f:
                f.write(f"frontend=127.0.0.1,{PROXY_PORT};no-tls\n")
                f.write("".join(f"backend=127.0.0.1,{p};;proto=h2\n" for p in ports))
                f.write(f"workers=1\nsingle-process=yes\nno-via=yes\n"
                        f"errorlog-file={self.tmp}/nghttpx.err\n")
            argv = ["nghttpx", f"--conf={conf}"]
        else:
            conf = os.path.join(self.tmp, name + ".cfg")
            with open(conf, "w") as f:
                f.write("global\n    nbthread 1\n    maxconn 1000\n"
                        "defaults\n    mode http\n    timeout connect 1s\n"
                        "    timeout client 30s\n    timeout server 30s\n"
                        f"frontend fe\n    bind 127.0.0.1:{PROXY_PORT} proto h2\n"
                        "    default_backend be\n"
                        f"backend be\n    {POLICIES[policy][1]}    http-reuse always\n")
                f.write("".join(f"    server s{i} 127.0.0.1:{p} proto h2\n"
                                for i, p in enumerate(ports)))
            argv = ["haproxy", "-f", conf, "-db"]
        p = self.spawn(argv, name, 1)
        wait_port(PROXY_PORT, p, name)
        return p

    def h2load(self, c, m, n):
        urls = [f"http://127.0.0.1:{PROXY_PORT}{PATH_}?u={k}" for k in range(N_KEYS)]
        argv = ["timeout", str(self.a.cap), "h2load", "-n", str(n), "-c", str(c), "-m", str(m),
                "-t", "1", "-d", os.path.join(self.tmp, "req.bin"),
                "-H", "content-type: application/grpc", "-H", "te: trailers"] + urls
        if self.pin:
            argv = ["taskset", "-c", "0"] + argv
        r = subprocess.run(argv, capture_output=True, text=True)
        rps, done, data = 0.0, 0, -1
        for line in r.stdout.splitlines():
            if line.startswith("finished in"):
                rps = float(line.split(",")[1].split()[0])
            elif line.startswith("requests:"):
                done = int(line.split(",")[3].split()[0])
            elif line.startswith("traffic:"):
                data = int(line.rsplit("(", 1)[1].split(")")[0])
        ok = min(done, data // (5 + self.a.msg)) if data >= 0 else done
        return rps, ok

    def configs(self):
        out = []
        for policy, (_, hap, ngx) in POLICIES.items():
            for n in (1, 16):
                out.append(("meshlet", policy, n))
                if ngx and "nghttpx" in self.a.peers:
                    out.append(("nghttpx", policy, n))
                if hap and "haproxy" in self.a.peers:
                    out.append(("haproxy", policy, n))
        return out

    def run(self):
        res = {}
        configs = self.configs()
        for rnd in range(self.a.rounds):
            k = (rnd * 7) % len(configs)
            for cfg in configs[k:] + configs[:k]:
                p = self.start_proxy(*cfg)
                try:
                    self.h2load(1, 10, 2000)  # warm-up: upstream connections open
                    c0, s0 = cpu_ticks(p.pid), sched_ns(p.pid)
                    rps, ok = self.h2load(1, 100, self.a.n)
                    c1, s1 = cpu_ticks(p.pid), sched_ns(p.pid)
                finally:
                    self.end(p)
                r = res.setdefault(cfg, {"rps": [], "cpu": 0.0, "sched": 0.0, "ok": 0, "n": 0})
                r["rps"].append(rps)
                r["cpu"] += (c1 - c0) / HZ
                r["sched"] += (s1 - s0) / 1e9
                r["ok"] += ok
                r["n"] += self.a.n
                log(f"round {rnd + 1} {cfg[0]:8} {cfg[1]:14} {cfg[2]:2} endpoints "
                    f"{rps:9.0f} calls/s cpu {(c1 - c0) / HZ:5.2f}s ({(s1 - s0) / 1e9:5.2f}s) "
                    f"ok {ok}/{self.a.n}")
        return res

    def stop(self):
        for p in self.backends:
            self.end(p)
        shutil.rmtree(self.tmp, ignore_errors=True)


def report(res, a):
    def cell(cfg):
        r = res.get(cfg)
        if r is None:
            return "—", "—"
        per10k = 1e4 / max(1, r["ok"])
        return (f"{statistics.median(r['rps']):,.0f}",
                f"{r['cpu'] * per10k:.3f} ({r['sched'] * per10k:.3f})")

    lines = [f"1 connection × 100 streams, {a.n} calls per run, {a.rounds} round(s); "
             "CPU s / 10k calls as utime+stime (schedstat)", "",
             "| policy | endpoints | meshlet calls/s | meshlet CPU | nghttpx calls/s | "
             "nghttpx CPU | HAProxy calls/s | HAProxy CPU |",
             "|---|--:|--:|--:|--:|--:|--:|--:|"]
    for policy in POLICIES:
        for n in (1, 16):
            row = [policy, str(n)]
            for proxy in ("meshlet", "nghttpx", "haproxy"):
                row += cell((proxy, policy, n))
            lines.append("| " + " | ".join(row) + " |")
    short = [f"{c[0]} {c[1]} {c[2]}: {r['ok']}/{r['n']}" for c, r in res.items() if r["ok"] < r["n"]]
    if short:
        lines += ["", "Calls without the backend's answer: " + "; ".join(short)]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=50000, help="calls per measured run")
    ap.add_argument("--cap", type=int, default=60, help="seconds an h2load run may take")
    ap.add_argument("--msg", type=int, default=100)
    ap.add_argument("--meshlet", default=os.path.join(ROOT, "build", "host", "meshlet"))
    ap.add_argument("--backend", default=os.path.join(ROOT, "build", "bench", "h2_backend"))
    ap.add_argument("--peers", default="nghttpx,haproxy")
    ap.add_argument("--no-pin", dest="pin", action="store_false")
    a = ap.parse_args()
    a.peers = [p for p in a.peers.split(",") if p and shutil.which(p)]
    # a private copy: a rebuild of build/host during the run changes nothing
    copy = tempfile.NamedTemporaryFile(prefix="meshlet-lb-bench-bin.", delete=False)
    copy.close()
    shutil.copy2(a.meshlet, copy.name)
    a.meshlet = copy.name
    version = subprocess.run([a.meshlet, "version"], capture_output=True,
                             text=True).stdout.splitlines()[0]
    b = LbBench(a)
    t0 = time.time()
    try:
        b.start_backends()
        res = b.run()
    finally:
        b.stop()
        os.unlink(copy.name)
    print(f"{version}; peers: {', '.join(a.peers) or 'none'}; {os.cpu_count()} CPUs; "
          f"{time.time() - t0:.0f} s")
    print(report(res, a))


if __name__ == "__main__":
    main()
