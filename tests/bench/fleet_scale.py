#!/usr/bin/python3
"""Benchmark (not a test): N simulated nodes (default 1000) on one `meshlet controller` over
WebSockets. Measures the time from writing a new default.ini to every node's Ack, the
controller's CPU time over that interval and its peak RSS, for a one-stage rollout
(--stages 100%: every node at once) and, with --staged, the default stages with a short soak.

    ML_MESHLET=/abs/build/host/meshlet /usr/bin/python3 tests/bench/fleet_scale.py [--nodes N]

The simulated nodes (tests/integration/sim_fleet.py) run in this one Python process, so on a
small machine Python, not the controller, is often what takes the time: the controller's own
CPU seconds are the figure to compare."""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from fleet_peers import content_version, fleet_pb2  # noqa: E402
from sim_fleet import SimFleet, SimNode  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick  # utime + stime


def rss_kib(pid, key="VmRSS"):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def acked(port, version, n):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/fleet", timeout=60) as r:
        nodes = json.loads(r.read())["nodes"]
    return sum(1 for x in nodes if x["running_version"] == version) >= n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--staged", action="store_true", help="default stages, --soak 1s")
    ap.add_argument("--timeout", type=float, default=300)
    a = ap.parse_args()
    meshlet = os.environ.get("ML_MESHLET", str(ROOT / "build" / "host" / "meshlet"))
    work = Path(tempfile.mkdtemp(prefix="meshlet-fleet-bench-"))
    configs = work / "configs"
    configs.mkdir()
    (configs / "default.ini").write_text("; bench v1\n")
    port = free_port()
    stages = ["--stages", "1,10%,100%", "--soak", "1s"] if a.staged else ["--stages", "100%"]
    ctl = subprocess.Popen([meshlet, "controller", "--listen", f"127.0.0.1:{port}", "--configs",
                            str(configs), "--state", str(work / "state"), "--stale", "60s",
                            *stages], stdout=subprocess.DEVNULL,
                           stderr=open(work / "controller.log", "w"))
    time.sleep(0.5)
    pb = fleet_pb2()
    sims = SimFleet(f"ws://127.0.0.1:{port}/",
                    [SimNode(pb, f"b{i:04d}", [f"ring={'canary' if i < 10 else 'main'}"])
                     for i in range(a.nodes)], report_s=10.0, reconnect_s=1.0).start()
    try:
        v1 = content_version("; bench v1\n")
        t0 = time.monotonic()
        while sum(1 for s in sims.nodes if s.config_version == v1) < a.nodes:
            assert time.monotonic() - t0 < a.timeout, "nodes did not all connect and ack v1"
            time.sleep(0.5)
        connect_s = time.monotonic() - t0
        idle_rss = rss_kib(ctl.pid)
        text = "; bench v2\n"
        v2 = content_version(text)
        cpu0 = cpu_s(ctl.pid)
        t0 = time.monotonic()
        (configs / "default.ini").write_text(text)
        while True:
            n = sum(1 for s in sims.nodes if s.config_version == v2)
            if n >= a.nodes:
                break
            assert time.monotonic() - t0 < a.timeout, f"only {n} of {a.nodes} acked"
            time.sleep(0.02)
        push_s = time.monotonic() - t0
        cpu = cpu_s(ctl.pid) - cpu0
        print(f"nodes: {a.nodes} over WebSockets, stages: {' '.join(stages)}")
        print(f"connect + first config (v1) on all: {connect_s:.2f} s")
        print(f"new file -> all Acks: {push_s:.2f} s (includes the 500 ms directory poll)")
        print(f"controller CPU during the rollout: {cpu:.2f} s")
        print(f"controller RSS: {idle_rss} KiB with all nodes connected, "
              f"{rss_kib(ctl.pid)} KiB after, peak {rss_kib(ctl.pid, 'VmHWM')} KiB")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/fleet", timeout=60) as r:
            body = r.read()
        print(f"GET /fleet: {len(body)} bytes")
    finally:
        sims.stop()
        ctl.terminate()
        ctl.wait(timeout=30)


if __name__ == "__main__":
    main()
