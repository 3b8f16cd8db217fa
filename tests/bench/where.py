#!/usr/bin/python3
"""Where a proxied call's time goes outside the proxy's own code: a benchmark, not a test.

Starts what tests/bench/bench.py starts (three h2_backend, meshlet, nghttpx, HAProxy; the
backends and h2load pinned to CPU 0, each proxy to CPU 1) and, per shape and proxy, runs h2load
once with the proxy's system calls counted (`perf stat -e syscalls:sys_enter_*`, which costs far
less than strace and does not change the batching) and the CPUs' busy time read from /proc/stat.
Prints, per run:
  - calls/s, and how busy each CPU was: a CPU near 100 % is the limit; both well below it means
    the run is bound by the round trip (h2load keeps a fixed number of calls in flight);
  - CPU µs per call of the proxy, of the three backends, and of the rest of CPU 0 (h2load, and
    whatever else runs there: run it on a quiet machine);
  - the proxy's system calls per call, by name.

  tests/bench/where.py [--meshlet PATH] [--targets meshlet,nghttpx] [--shapes 1x100,10x10]
                       [--n 100000] [--rounds 2]

Needs perf (Debian: linux-perf) for the system call counts; without it those columns are left out.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (tests/bench/bench.py: the same peers, ports and pinning)

SYSCALLS = ("poll", "epoll_wait", "epoll_ctl", "read", "recvfrom", "write", "writev", "sendto",
            "sendmsg", "recvmsg")


def cpu_busy():
    """Per CPU: (busy jiffies, all jiffies) from /proc/stat (busy = all but idle and iowait)."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            name = line.split(" ", 1)[0]
            if name.startswith("cpu") and name != "cpu":
                v = [int(x) for x in line.split()[1:]]
                out[name] = (sum(v) - v[3] - v[4], sum(v))
    return out


def start_perf(pid, out):
    if shutil.which("perf") is None:
        return None
    events = ",".join(f"syscalls:sys_enter_{s}" for s in SYSCALLS)
    return subprocess.Popen(["perf", "stat", "-x,", "-o", out, "-e", events, "-p", str(pid)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_perf(p, out, calls):
    if p is None:
        return {}
    p.send_signal(signal.SIGINT)
    p.wait(10)
    counts = {}
    with open(out) as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) > 2 and parts[0].replace(".", "").isdigit():
                name = parts[2].rsplit("sys_enter_", 1)[-1]
                if float(parts[0]) > 0:
                    counts[name] = float(parts[0]) / calls
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--meshlet", default=os.path.join(bench.ROOT, "build", "host", "meshlet"))
    ap.add_argument("--targets", default="meshlet,nghttpx")
    ap.add_argument("--shapes", default="1x100,10x10")
    ap.add_argument("--n", type=int, default=100000, help="calls per run")
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    args = argparse.Namespace(pin=True, workers=1, msg=100, pending=0, pending_delay=120,
                              backend=os.path.join(bench.ROOT, "build", "bench", "h2_backend"),
                              meshlet=os.path.abspath(a.meshlet), meshlet_b=None, sweep=False,
                              cap=60)
    targets = a.targets.split(",")
    shapes = [tuple(int(x) for x in s.split("x")) for s in a.shapes.split(",")]
    b = bench.Bench(args)
    tmp = tempfile.mkdtemp(prefix="meshlet-where.")
    try:
        b.start()
        backends = [p.pid for name, p in b.procs if name.startswith("backend-")]
        for t in targets:
            b.h2load(t, 10, 10, 20000)  # warm: pools connected, caches filled
        print("| round | shape | target | calls/s | CPU 0 busy | CPU 1 busy | proxy µs/call | "
              "backends µs/call | rest of CPU 0 µs/call (h2load) | proxy system calls per call |")
        print("|--:|---|---|--:|--:|--:|--:|--:|--:|---|")
        for rnd in range(1, a.rounds + 1):
            for c, m in shapes:
                for t in targets:
                    pid = b.pids[t]
                    out = os.path.join(tmp, f"perf-{t}.txt")
                    perf = start_perf(pid, out)
                    time.sleep(0.2)  # perf attached before the calls start
                    # the CPUs' busy share over the h2load run alone
                    s0, p0 = cpu_busy(), bench.cpu_ticks(pid)
                    k0 = sum(bench.cpu_ticks(x) for x in backends)
                    rps, ok = b.h2load(t, c, m, a.n)
                    s1, p1 = cpu_busy(), bench.cpu_ticks(pid)
                    k1 = sum(bench.cpu_ticks(x) for x in backends)
                    sc = stop_perf(perf, out, a.n)
                    busy = {k: (s1[k][0] - s0[k][0]) / max(1, s1[k][1] - s0[k][1]) for k in s1}
                    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
                    proxy = (p1 - p0) * tick_us / a.n
                    back = (k1 - k0) * tick_us / a.n
                    rest0 = (s1["cpu0"][0] - s0["cpu0"][0]) * tick_us / a.n - back
                    calls = ", ".join(f"{k} {v:.3f}" for k, v in sorted(sc.items()))
                    print(f"| {rnd} | {c}x{m} | {t} | {rps:,.0f} | {busy['cpu0']:.0%} | "
                          f"{busy['cpu1']:.0%} | {proxy:.2f} | {back:.2f} | {rest0:.2f} | "
                          f"{calls or '(no perf)'} |", flush=True)
    finally:
        b.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
