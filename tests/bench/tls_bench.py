#!/usr/bin/python3
"""TLS on the listener: meshlet vs nghttpx vs HAProxy, the benchmark behind tests/bench/tls.sh.

Not a test (CI does not run it). Makes an ECDSA P-256 CA, server certificate (SAN 127.0.0.1) and
client certificate (URI SAN spiffe://bench.local/client) with openssl, starts three
tests/bench/h2_backend (127.0.0.1:52071..52073, plaintext h2c) and the three proxies, each with
an mTLS listener on the same certificates (client certificate required, chaining to the CA; TLS
1.2..1.3, ALPN h2) and plaintext HTTP/2 round robin to the same backends: meshlet :17001
(`tls = mtls`), nghttpx :17002 (`verify-client=yes`, one worker), HAProxy :17003 (`ssl ... verify
required alpn h2`, nbthread 1). The proxies are pinned to CPU 1, clients and backends to CPU 0.

Per round, for every proxy (the order rotating from round to round):
- full handshakes/s: `tls_hs loop` (tests/bench/tls_hs.c, OpenSSL) × CLIENTS processes for SECS
  seconds: connect, TLS with ALPN h2 and the client certificate, HTTP/2 preface, the server's
  first HTTP/2 bytes, close. Every handshake is full (no session offered).
- resumed handshakes/s: the same, each connection offering the previous one's session (TLS 1.3
  ticket); the "resumed" column counts what the server accepted.
- mTLS unary calls: h2load over TLS (h2load has no client-certificate option:
  tls_client_cert.so, an LD_PRELOAD, gives every SSL_CTX of h2load the client certificate),
  gRPC-shaped calls as tests/bench/bench.py's, 1 connection × 100 streams and 10 × 10.
CPU is the proxy's utime+stime (schedstat in brackets) per handshake or per 10 000 calls, summed
over rounds; rates are medians over rounds.

Memory, once, before the rounds (each proxy just started and warmed up): VmRSS with IDLE held
connections (`tls_hs hold`: handshake, preface, SETTINGS ACK, then nothing) minus VmRSS before,
per connection; then the same connections each carry one unary call and stay open ("active").
A second meshlet with a plaintext (h2c) listener on :17004 gives the same two figures without TLS.
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
from bench import cpu_ticks, log, mem_kib, port_open, sched_ns, wait_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HZ = os.sysconf("SC_CLK_TCK")
# Ports of their own, so that this runs beside tests/bench/run.sh's and lb.sh's defaults.
BACKENDS = [52071, 52072, 52073]
PORTS = {"meshlet": 17001, "nghttpx": 17002, "haproxy": 17003}
PLAIN_PORT = 17004  # meshlet's plaintext listener: the memory baseline without TLS
PATH_ = "/helloworld.Greeter/SayHello"
MSG = 100
SPIFFE = "spiffe://bench.local/client"


def openssl(tmp, *args):
    r = subprocess.run(["openssl", *args], cwd=tmp, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"tls_bench: openssl {' '.join(args)}: {r.stderr.strip()}")


def make_pki(tmp):
    """CA, server and client certificates, all ECDSA P-256, valid 30 days."""
    for name in ("ca", "server", "client"):
        openssl(tmp, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", f"{name}.key")
    openssl(tmp, "req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=bench-ca", "-days", "30",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "ca.pem")
    exts = {"server": "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
            "client": f"subjectAltName=URI:{SPIFFE}\nextendedKeyUsage=clientAuth\n"}
    for name, ext in exts.items():
        with open(os.path.join(tmp, f"{name}.ext"), "w") as f:
            f.write(ext)
        openssl(tmp, "req", "-new", "-key", f"{name}.key", "-subj", f"/CN=bench-{name}",
                "-out", f"{name}.csr")
        openssl(tmp, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "30", "-extfile", f"{name}.ext", "-out", f"{name}.pem")
    # HAProxy wants certificate and key in one file
    with open(os.path.join(tmp, "server-bundle.pem"), "w") as f:
        for part in ("server.pem", "server.key"):
            with open(os.path.join(tmp, part)) as g:
                f.write(g.read())


class TlsBench:
    def __init__(self, a):
        self.a = a
        self.tmp = tempfile.mkdtemp(prefix="meshlet-tls-bench.")
        self.procs = {}
        self.backends = []
        self.pin = a.pin and os.cpu_count() >= 2
        self.env = dict(os.environ, ML_BENCH_CERT=self.f("client.pem"),
                        ML_BENCH_KEY=self.f("client.key"), LD_PRELOAD=a.shim)

    def f(self, name):
        return os.path.join(self.tmp, name)

    def spawn(self, argv, name, cpu, **kw):
        if self.pin:
            argv = ["taskset", "-c", str(cpu)] + argv
        out = open(self.f(name + ".log"), "w")
        return subprocess.Popen(argv, stdout=kw.pop("stdout", out), stderr=out, cwd=self.tmp,
                                start_new_session=True, **kw)

    @staticmethod
    def end(p):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(3)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def start(self):
        for port in BACKENDS + list(PORTS.values()) + [PLAIN_PORT]:
            if port_open(port):
                raise SystemExit(f"tls_bench: 127.0.0.1:{port} is in use")
        make_pki(self.tmp)
        with open(self.f("req.bin"), "wb") as f:
            f.write(b"\x00" + MSG.to_bytes(4, "big") + b"y" * MSG)
        for port in BACKENDS:
            p = self.spawn([self.a.backend, str(port), str(MSG)], f"backend-{port}", 0)
            wait_port(port, p, f"h2_backend {port}")
            self.backends.append(p)
        for t in self.a.targets:
            self.procs[t] = getattr(self, "start_" + t)()
            wait_port(PORTS[t], self.procs[t], t)

    def start_meshlet(self, plain=False):
        """meshlet with the mTLS listener; plain: a second process with a plaintext (h2c)
        listener instead, for the memory baseline (its own process, so neither run's freed
        memory is reused by the other's connections)."""
        name = "meshlet-h2c" if plain else "meshlet"
        conf = self.f(name + ".ini")
        if plain:
            listener = f"bind = 127.0.0.1:{PLAIN_PORT}\n"
        else:
            listener = (f"bind = 127.0.0.1:{PORTS['meshlet']}\ntls = mtls\n"
                        f"cert = {self.f('server.pem')}\nkey = {self.f('server.key')}\n"
                        f"ca = {self.f('ca.pem')}\n")
        with open(conf, "w") as f:
            f.write(f"[node]\nstate_dir = {self.tmp}/state-{name}\nadmin = off\n"
                    "access_log = off\nlog = warn\n\n"
                    f"[listener ingress]\n{listener}max_connections = {self.a.max_conns}\n\n"
                    "[route all]\nlistener = ingress\nto = greeter\n\n"
                    "[cluster greeter]\nlb = round_robin\n" +
                    "".join(f"endpoint = 127.0.0.1:{p}\n" for p in BACKENDS))
        return self.spawn([self.a.meshlet, "-c", conf], name, 1)

    def start_nghttpx(self):
        conf = self.f("nghttpx.conf")
        with open(conf, "w") as f:
            f.write(f"frontend=127.0.0.1,{PORTS['nghttpx']}\n"
                    f"private-key-file={self.f('server.key')}\n"
                    f"certificate-file={self.f('server.pem')}\n"
                    f"verify-client=yes\nverify-client-cacert={self.f('ca.pem')}\n"
                    "tls-min-proto-version=TLSv1.2\ntls-max-proto-version=TLSv1.3\n" +
                    "".join(f"backend=127.0.0.1,{p};;proto=h2\n" for p in BACKENDS) +
                    "workers=1\nsingle-process=yes\nno-via=yes\n"
                    f"errorlog-file={self.f('nghttpx.err')}\naccesslog-file=/dev/null\n")
        return self.spawn(["nghttpx", f"--conf={conf}"], "nghttpx", 1)

    def start_haproxy(self):
        conf = self.f("haproxy.cfg")
        with open(conf, "w") as f:
            f.write("global\n    nbthread 1\n    maxconn 4000\n"
                    "defaults\n    mode http\n    timeout connect 1s\n"
                    "    timeout client 120s\n    timeout server 30s\n"
                    f"frontend fe\n    bind 127.0.0.1:{PORTS['haproxy']} ssl crt "
                    f"{self.f('server-bundle.pem')} ca-file {self.f('ca.pem')} verify required "
                    "alpn h2 ssl-min-ver TLSv1.2\n    default_backend be\n"
                    "backend be\n    balance roundrobin\n    http-reuse always\n" +
                    "".join(f"    server s{i} 127.0.0.1:{p} proto h2\n"
                            for i, p in enumerate(BACKENDS)))
        return self.spawn(["haproxy", "-f", conf, "-db"], "haproxy", 1)

    # ---- load ---------------------------------------------------------------------------------

    def h2load(self, port, c, m, n, tls=True):
        scheme = "https" if tls else "http"
        argv = ["timeout", str(self.a.cap), "h2load", "-n", str(n), "-c", str(c), "-m", str(m),
                "-t", "1", "-d", self.f("req.bin"), "-H", "content-type: application/grpc",
                "-H", "te: trailers", f"{scheme}://127.0.0.1:{port}{PATH_}"]
        if self.pin:
            argv = ["taskset", "-c", "0"] + argv
        r = subprocess.run(argv, capture_output=True, text=True, env=self.env)
        rps, done, data = 0.0, 0, -1
        for line in r.stdout.splitlines():
            if line.startswith("finished in"):
                rps = float(line.split(",")[1].split()[0])
            elif line.startswith("requests:"):
                done = int(line.split(",")[3].split()[0])
            elif line.startswith("traffic:"):
                data = int(line.rsplit("(", 1)[1].split(")")[0])
        # calls that got the backend's whole message (a gRPC error is a 200 to h2load)
        ok = min(done, data // (5 + MSG)) if data >= 0 else done
        if r.returncode != 0 or ok < n:
            log(f"tls_bench: h2load :{port} -c{c} -m{m} -n{n}: exit {r.returncode}, "
                f"{ok} answered; {r.stderr.strip()[-300:]}")
        return rps, ok

    def handshakes(self, port, mode):
        argv = [self.a.hs, "loop", "127.0.0.1", str(port), str(self.a.secs), mode,
                self.f("client.pem"), self.f("client.key")]
        if self.pin:
            argv = ["taskset", "-c", "0"] + argv
        ps = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
              for _ in range(self.a.clients)]
        hs = resumed = failed = 0
        secs = 0.0
        for p in ps:
            out, _ = p.communicate(timeout=self.a.secs + 30)
            w = out.split()  # handshakes N resumed R failed F seconds S
            hs, resumed, failed = hs + int(w[1]), resumed + int(w[3]), failed + int(w[5])
            secs = max(secs, float(w[7]))
        if failed:
            log(f"tls_bench: :{port} {mode}: {failed} connections failed")
        return hs, resumed, hs / secs if secs else 0.0

    def measure(self, target, fn):
        """fn's result, and the CPU seconds the target used meanwhile (utime+stime, schedstat)."""
        pid = self.procs[target].pid
        c0, s0 = cpu_ticks(pid), sched_ns(pid)
        out = fn()
        return out, (cpu_ticks(pid) - c0) / HZ, (sched_ns(pid) - s0) / 1e9

    def memory(self, target, port, path):
        """KiB per idle connection and per connection that carried one call (VmRSS deltas)."""
        pid = self.procs[target].pid
        n = self.a.idle
        time.sleep(0.3)
        base = mem_kib(pid)["VmRSS"]
        argv = [self.a.hs, "hold", "127.0.0.1", str(port), str(n), self.f("client.pem"),
                self.f("client.key"), path]
        if port == PLAIN_PORT:  # the same connections in plaintext h2c
            argv[5:7] = ["-", "-"]
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            held = int(p.stdout.readline().split()[1])
            time.sleep(0.5)
            idle = mem_kib(pid)["VmRSS"]
            p.stdin.write("\n")
            p.stdin.flush()
            called = int(p.stdout.readline().split()[1])
            time.sleep(0.5)
            active = mem_kib(pid)["VmRSS"]
        finally:
            p.stdin.close()
            p.wait(30)
        if held < n or called < n:
            log(f"tls_bench: {target} :{port}: held {held}, called {called} of {n}")
        return {"base": base, "held": held, "called": called,
                "idle": (idle - base) / max(1, held), "active": (active - base) / max(1, called)}

    def run(self):
        res = {t: {"full": [], "resumed": [], "resumed_n": 0, "full_n": 0, "cpu_full": [0, 0],
                   "cpu_res": [0, 0], "1x100": [], "10x10": [], "cpu_1x100": [0, 0],
                   "cpu_10x10": [0, 0], "ok_1x100": 0, "ok_10x10": 0, "n_1x100": 0,
                   "n_10x10": 0, "res_hs": 0} for t in self.a.targets}
        mem = {}
        for t in self.a.targets:  # warm-up: upstream connections open, caches filled
            self.h2load(PORTS[t], 1, 10, 2000)
        for t in self.a.targets:
            mem[t] = self.memory(t, PORTS[t], PATH_)
            log(f"memory {t}: {mem[t]}")
        if "meshlet" in self.a.targets:
            self.procs["meshlet-h2c"] = p = self.start_meshlet(plain=True)
            try:
                wait_port(PLAIN_PORT, p, "meshlet-h2c")
                self.h2load(PLAIN_PORT, 1, 10, 2000, tls=False)
                mem["meshlet (h2c)"] = self.memory("meshlet-h2c", PLAIN_PORT, PATH_)
            finally:
                self.end(self.procs.pop("meshlet-h2c"))
            log(f"memory meshlet h2c: {mem['meshlet (h2c)']}")
        targets = self.a.targets
        for rnd in range(self.a.rounds):
            k = rnd % len(targets)
            for t in targets[k:] + targets[:k]:
                r, port = res[t], PORTS[t]
                (hs, _, rate), c, s = self.measure(t, lambda: self.handshakes(port, "full"))
                r["full"].append(rate)
                r["full_n"] += hs
                r["cpu_full"][0] += c
                r["cpu_full"][1] += s
                (hs, rs, rate), c, s = self.measure(t, lambda: self.handshakes(port, "resume"))
                r["resumed"].append(rate)
                r["resumed_n"] += rs
                r["res_hs"] += hs
                r["cpu_res"][0] += c
                r["cpu_res"][1] += s
                for sc, cc, mm, n in (("1x100", 1, 100, self.a.n100),
                                      ("10x10", 10, 10, self.a.n10)):
                    (rps, ok), c, s = self.measure(t, lambda: self.h2load(port, cc, mm, n))
                    r[sc].append(rps)
                    r["ok_" + sc] += ok
                    r["n_" + sc] += n
                    r["cpu_" + sc][0] += c
                    r["cpu_" + sc][1] += s
                log(f"round {rnd + 1} {t:8} full {r['full'][-1]:7.0f}/s resumed "
                    f"{r['resumed'][-1]:7.0f}/s 1x100 {r['1x100'][-1]:8.0f}/s "
                    f"10x10 {r['10x10'][-1]:8.0f}/s")
        for t in targets:
            res[t]["vmhwm"] = mem_kib(self.procs[t].pid)["VmHWM"]
        return res, mem

    def stop(self):
        for p in list(self.procs.values()) + self.backends:
            self.end(p)
        shutil.rmtree(self.tmp, ignore_errors=True)


def report(res, mem, a):
    lines = ["| target | full hs/s | CPU ms / full hs | resumed hs/s | resumed / offered | "
             "CPU ms / resumed hs | 1x100 calls/s | CPU s / 10k (1x100) | 10x10 calls/s | "
             "CPU s / 10k (10x10) | answered |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for t, r in res.items():
        def ms(cpu, n):
            return f"{cpu[0] * 1e3 / max(1, n):.2f} ({cpu[1] * 1e3 / max(1, n):.2f})"

        def per10k(sc):
            ok = max(1, r["ok_" + sc])
            return f"{r['cpu_' + sc][0] * 1e4 / ok:.3f} ({r['cpu_' + sc][1] * 1e4 / ok:.3f})"

        lines.append(
            f"| {t} | {statistics.median(r['full']):,.0f} | {ms(r['cpu_full'], r['full_n'])} | "
            f"{statistics.median(r['resumed']):,.0f} | {r['resumed_n']:,} / {r['res_hs']:,} | "
            f"{ms(r['cpu_res'], r['res_hs'])} | {statistics.median(r['1x100']):,.0f} | "
            f"{per10k('1x100')} | {statistics.median(r['10x10']):,.0f} | {per10k('10x10')} | "
            f"{r['ok_1x100'] + r['ok_10x10']:,} / {r['n_1x100'] + r['n_10x10']:,} |")
    lines += ["", f"Memory: {a.idle} connections held open, VmRSS after minus before "
              "(the proxy just started and warmed up); VmHWM after all rounds.", "",
              "| target | RSS before KiB | KiB / idle TLS connection | KiB / active connection "
              "(carried one call) | VmHWM KiB |", "|---|--:|--:|--:|--:|"]
    for t, m in mem.items():
        hwm = res[t]["vmhwm"] if t in res else "—"
        lines.append(f"| {t} | {m['base']:,} | {m['idle']:.1f} | {m['active']:.1f} | "
                     f"{hwm if isinstance(hwm, str) else f'{hwm:,}'} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=float, default=5.0, help="seconds per handshake run")
    ap.add_argument("--clients", type=int, default=2, help="handshake client processes")
    ap.add_argument("--n100", type=int, default=50000, help="calls per 1x100 run")
    ap.add_argument("--n10", type=int, default=50000, help="calls per 10x10 run")
    ap.add_argument("--idle", type=int, default=100, help="connections held for the RSS figures")
    ap.add_argument("--max-conns", type=int, default=256, help="meshlet's listener max_connections")
    ap.add_argument("--cap", type=int, default=60, help="seconds an h2load run may take")
    ap.add_argument("--quick", action="store_true",
                    help="1 round, 1 s of handshakes, 2 000 calls, 10 connections: a smoke run")
    ap.add_argument("--targets", default="meshlet,nghttpx,haproxy")
    ap.add_argument("--meshlet", default=os.path.join(ROOT, "build", "host", "meshlet"))
    ap.add_argument("--backend", default=os.path.join(ROOT, "build", "bench", "h2_backend"))
    ap.add_argument("--hs", default=os.path.join(ROOT, "build", "bench", "tls_hs"))
    ap.add_argument("--shim", default=os.path.join(ROOT, "build", "bench", "tls_client_cert.so"))
    ap.add_argument("--no-pin", dest="pin", action="store_false")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.secs, a.n100, a.n10, a.idle = 1, 1.0, 2000, 2000, 10
    a.targets = [t for t in a.targets.split(",") if t == "meshlet" or shutil.which(t)]
    # a private copy: a rebuild of build/host during the run changes nothing
    copy = tempfile.NamedTemporaryFile(prefix="meshlet-tls-bench-bin.", delete=False)
    copy.close()
    shutil.copy2(a.meshlet, copy.name)
    a.meshlet = copy.name
    version = subprocess.run([a.meshlet, "version"], capture_output=True,
                             text=True).stdout.splitlines()[0]
    b = TlsBench(a)
    t0 = time.time()
    try:
        b.start()
        res, mem = b.run()
    finally:
        b.stop()
        os.unlink(copy.name)
    print(f"{version}; {', '.join(a.targets)}; ECDSA P-256, mTLS; {a.rounds} round(s) of "
          f"{a.secs:g} s x {a.clients} handshake clients, {a.n100} calls 1x100, {a.n10} calls "
          f"10x10; {os.cpu_count()} CPUs; {time.time() - t0:.0f} s")
    print()
    print(report(res, mem, a))


if __name__ == "__main__":
    main()
