#!/usr/bin/python3
"""Instructions per proxied unary call, meshlet vs nghttpx: the script behind tests/bench/callgrind.sh.

Not a test (CI does not run it). Starts three tests/bench/h2_backend (127.0.0.1:53081..53083), then
meshlet and nghttpx, each under `valgrind --tool=callgrind`, each with a plaintext (h2c) and a TLS
listener (server certificate only, ECDSA P-256 from tls_bench.make_pki; ALPN h2) in front of the
same three backends, round robin. meshlet: config/meshlet.ini as bench.py runs it (its route
timeout, retries and cluster limits), the ports moved, access_log off, log warn. nghttpx:
workers=1, single-process, no-via.

For every shape (1x100: h2load -c1 -m100; 10x10: -c10 -m10) and every listener (plaintext, TLS),
after a warm-up run of the same shape (pools, caches and upstream connections warm):

    callgrind_control --zero; h2load -n SHORT ...; callgrind_control --dump   -> Ir(SHORT)
    callgrind_control --zero; h2load -n LONG  ...; callgrind_control --dump   -> Ir(LONG)

and instructions per call = (Ir(LONG) - Ir(SHORT)) / (LONG - SHORT): the two runs open the same
connections (and, with TLS, make the same handshakes), so the difference is the cost of the calls
alone. All threads of the process count (nghttpx's worker is a thread). Prints a Markdown table.
Counts are exact and do not depend on the machine's load; the time a run takes does (callgrind
runs the proxy ~50x slower).
"""
import argparse
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import port_open, wait_port  # noqa: E402
from tls_bench import make_pki  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PATH_ = "/helloworld.Greeter/SayHello"
BACKENDS = [53081, 53082, 53083]
# plaintext and TLS listener per proxy; ports of their own, so this runs beside the other benches
PORTS = {("meshlet", "h2c"): 18001, ("meshlet", "tls"): 18002,
         ("nghttpx", "h2c"): 18011, ("nghttpx", "tls"): 18012}
ADMIN = 18000


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class CgBench:
    def __init__(self, a):
        self.a = a
        self.tmp = tempfile.mkdtemp(prefix="meshlet-cg-bench.")
        self.procs = []
        self.cg = {}  # target -> (Popen, callgrind out prefix)

    def f(self, name):
        return os.path.join(self.tmp, name)

    def spawn(self, argv, name):
        out = open(self.f(name + ".log"), "w")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.tmp,
                             start_new_session=True)
        self.procs.append(p)
        return p

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        end = time.time() + 10
        for p in self.procs:
            try:
                p.wait(max(0.1, end - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if not self.a.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self):
        for port in BACKENDS + list(PORTS.values()) + [ADMIN]:
            if port_open(port):
                raise SystemExit(f"callgrind_bench: 127.0.0.1:{port} is in use")
        make_pki(self.tmp)
        with open(self.f("req.bin"), "wb") as f:
            f.write(b"\x00" + self.a.msg.to_bytes(4, "big") + b"y" * self.a.msg)
        for port in BACKENDS:
            p = self.spawn([self.a.backend, str(port), str(self.a.msg)], f"backend-{port}")
            wait_port(port, p, f"h2_backend {port}")
        for t in self.a.targets:
            argv = getattr(self, "conf_" + t)()
            prefix = self.f(f"cg.{t}")
            vg = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={prefix}.%p",
                  "--dump-instr=no", "--collect-jumps=no"]
            p = self.spawn(vg + argv, t)
            for kind in ("h2c", "tls"):
                wait_port(PORTS[(t, kind)], p, f"{t} ({kind}) under callgrind", timeout=60)
            self.cg[t] = (p, prefix)

    def conf_meshlet(self):
        conf = self.f("meshlet.ini")
        with open(os.path.join(ROOT, "config", "meshlet.ini")) as f:
            text = f.read()
        repl = {"state_dir": self.f("meshlet-state"), "access_log": "off", "log": "warn",
                "admin": f"127.0.0.1:{ADMIN}", "bind": f"127.0.0.1:{PORTS[('meshlet', 'h2c')]}"}
        out = []
        for line in text.splitlines():
            k = line.split("=", 1)[0].strip()
            if "=" in line and not line.lstrip().startswith(";") and k in repl:
                line = f"{k} = {repl[k]}"
            for old, new in zip(("50051", "50052", "50053"), BACKENDS):
                line = line.replace(f"127.0.0.1:{old}", f"127.0.0.1:{new}")
            out.append(line)
        # the TLS listener: the same routes as ingress (greeter's prefix and the catch-all)
        out += ["", "[listener tls]", f"bind = 127.0.0.1:{PORTS[('meshlet', 'tls')]}",
                "tls = on", f"cert = {self.f('server.pem')}", f"key = {self.f('server.key')}",
                "max_connections = 64", "max_streams = 100", "",
                "[route tls-greeter]", "listener = tls", "prefix = /helloworld.Greeter/",
                "to = greeter", "timeout = 2s", "retries = 2",
                "retry_on = unavailable, reset, connect-failure", "",
                "[route tls-catch-all]", "listener = tls", "to = greeter", ""]
        with open(conf, "w") as f:
            f.write("\n".join(out))
        r = subprocess.run([self.a.meshlet, "check", conf], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"callgrind_bench: meshlet check {conf}: {r.stdout}{r.stderr}")
        return [self.a.meshlet, "-c", conf]

    def conf_nghttpx(self):
        conf = self.f("nghttpx.conf")
        with open(conf, "w") as f:
            f.write(f"frontend=127.0.0.1,{PORTS[('nghttpx', 'h2c')]};no-tls\n"
                    f"frontend=127.0.0.1,{PORTS[('nghttpx', 'tls')]}\n"
                    f"private-key-file={self.f('server.key')}\n"
                    f"certificate-file={self.f('server.pem')}\n" +
                    "".join(f"backend=127.0.0.1,{p};;proto=h2\n" for p in BACKENDS) +
                    "workers=1\nsingle-process=yes\nno-via=yes\n"
                    f"errorlog-file={self.f('nghttpx.err')}\naccesslog-file=/dev/null\n")
        return ["nghttpx", f"--conf={conf}"]

    def h2load(self, t, kind, c, m, n):
        scheme = "https" if kind == "tls" else "http"
        argv = ["timeout", str(self.a.cap), "h2load", "-n", str(n), "-c", str(c), "-m", str(m),
                "-t", "1", "-d", self.f("req.bin"), "-H", "content-type: application/grpc",
                "-H", "te: trailers", f"{scheme}://127.0.0.1:{PORTS[(t, kind)]}{PATH_}"]
        r = subprocess.run(argv, capture_output=True, text=True)
        done, data = 0, -1
        for line in r.stdout.splitlines():
            if line.startswith("requests:"):
                done = int(line.split(",")[3].split()[0])
            elif line.startswith("traffic:"):
                data = int(line.rsplit("(", 1)[1].split(")")[0])
        ok = min(done, data // (5 + self.a.msg)) if data >= 0 else done
        if r.returncode != 0 or ok < n:
            raise SystemExit(f"callgrind_bench: h2load {t} {kind} -c{c} -m{m} -n{n}: exit "
                             f"{r.returncode}, {ok} answered (a cap of {self.a.cap}s: --cap)\n"
                             f"{r.stdout[-500:]}{r.stderr[-300:]}")

    def control(self, t, what):
        p, prefix = self.cg[t]
        r = subprocess.run(["callgrind_control", what, str(p.pid)], capture_output=True,
                           text=True, timeout=120)
        if r.returncode != 0:
            raise SystemExit(f"callgrind_bench: callgrind_control {what} {t}: {r.stdout}{r.stderr}")

    def measured_ir(self, t, kind, c, m, n):
        """Ir of n calls: zero the counters, run, dump, read the new dump's totals."""
        p, prefix = self.cg[t]
        before = set(glob.glob(f"{prefix}.{p.pid}*"))
        self.control(t, "--zero")
        self.h2load(t, kind, c, m, n)
        self.control(t, "--dump")
        end = time.time() + 60
        while time.time() < end:
            new = sorted(set(glob.glob(f"{prefix}.{p.pid}*")) - before)
            for path in new:
                ir = totals(path)
                if ir is not None:
                    return ir
            time.sleep(0.2)
        raise SystemExit(f"callgrind_bench: no dump from {t} after callgrind_control --dump")

    def run(self, shapes):
        res = {}
        for sname, c, m in shapes:
            for kind in ("h2c", "tls"):
                for t in self.a.targets:
                    self.h2load(t, kind, c, m, self.a.warm)  # warm-up: pools, upstreams
                    short = self.measured_ir(t, kind, c, m, self.a.short)
                    long_ = self.measured_ir(t, kind, c, m, self.a.long)
                    per = (long_ - short) / (self.a.long - self.a.short)
                    res[(sname, kind, t)] = per
                    log(f"{sname:6} {kind:4} {t:8} Ir({self.a.short})={short:,} "
                        f"Ir({self.a.long})={long_:,} -> {per:,.0f} instructions/call")
        return res


def totals(path):
    """The Ir total of a complete callgrind dump (its 'totals:' or 'summary:' line)."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    for key in ("totals:", "summary:"):
        for line in text.splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    return None


def main():
    ap = argparse.ArgumentParser(description="instructions per proxied call (callgrind)")
    ap.add_argument("--short", type=int, default=2000, help="calls in the short run")
    ap.add_argument("--long", type=int, default=12000, help="calls in the long run")
    ap.add_argument("--warm", type=int, default=2000, help="warm-up calls before each pair")
    ap.add_argument("--cap", type=int, default=300, help="seconds an h2load run may take")
    ap.add_argument("--msg", type=int, default=100, help="message bytes, request and response")
    ap.add_argument("--shapes", default="1x100,10x10", help="CONNSxSTREAMS,...")
    ap.add_argument("--targets", default="meshlet,nghttpx")
    ap.add_argument("--meshlet", default=os.path.join(ROOT, "build", "host", "meshlet"))
    ap.add_argument("--backend", default=os.path.join(ROOT, "build", "bench", "h2_backend"))
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (dumps)")
    a = ap.parse_args()
    if a.long <= a.short:
        raise SystemExit("callgrind_bench: --long must be more than --short")
    a.targets = a.targets.split(",")
    shapes = []
    for s in a.shapes.split(","):
        c, m = s.split("x")
        shapes.append((s, int(c), int(m)))
    b = CgBench(a)
    snap = b.f("meshlet")  # a private copy: a rebuild of build/host during the run changes nothing
    shutil.copy2(a.meshlet, snap)
    ver = subprocess.run([snap, "version"], capture_output=True, text=True).stdout.splitlines()[0]
    a.meshlet = snap
    old = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    t0 = time.time()
    try:
        b.start()
        res = b.run(shapes)
    finally:
        b.stop()
        signal.signal(signal.SIGTERM, old)
    ngv = subprocess.run(["nghttpx", "--version"], capture_output=True, text=True).stdout.split()
    print(f"{ver}; nghttpx {ngv[-1] if ngv else '?'}; callgrind, "
          f"(Ir({a.long}) - Ir({a.short})) / {a.long - a.short} calls after {a.warm} warm-up calls; "
          f"{time.time() - t0:.0f} s")
    print()
    print("| shape | listener | meshlet instructions/call | nghttpx instructions/call | meshlet / nghttpx |")
    print("|---|---|--:|--:|--:|")
    for sname, *_ in shapes:
        for kind in ("h2c", "tls"):
            m = res.get((sname, kind, "meshlet"))
            x = res.get((sname, kind, "nghttpx"))
            fmt = lambda v: f"{v:,.0f}" if v is not None else "—"
            ratio = f"{m / x:.2f} ×" if m and x else "—"
            name = "plaintext (h2c)" if kind == "h2c" else "TLS"
            print(f"| {sname} | {name} | {fmt(m)} | {fmt(x)} | {ratio} |")


if __name__ == "__main__":
    main()
