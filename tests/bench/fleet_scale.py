#!/usr/bin/python3
"""Benchmark (not a test): N simulated nodes (default 1000) on one `meshlet controller` over
WebSockets, or through mosquitto (--mqtt: one broker; --mqtt-bridged: two brokers bridged, the
nodes split between them, the controller on the first). Measures the time from writing a new
default.ini to every node's Ack, the controller's CPU time over that interval and its peak RSS
(and each broker's RSS), for a one-stage rollout (--stages 100%: every node at once) and, with
--staged, three stages (1,10%,100%) with a short soak.

    ML_MESHLET=/abs/build/host/meshlet /usr/bin/python3 tests/bench/fleet_scale.py [--nodes N]
        [--mqtt | --mqtt-bridged] [--staged]

Over MQTT the nodes are paho clients (tests/integration/sim_mqtt.py, plain mqtt:// as the
WebSocket run is plain ws://), a few threads each serving a share of them with poll().

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


def start_brokers(work, bridged):
    """One mosquitto, or two with the second bridged to the first (every fleet topic both ways)."""
    from mqtt_broker import MqttBroker

    a = MqttBroker(work, tls=False, acl=None, name="a").start()
    brokers = [a]
    if bridged:
        bridge = (f"connection bridge-to-a\naddress 127.0.0.1:{a.port}\n"
                  "topic meshlet/v1/node/# both 1\ncleansession true\n"
                  "bridge_protocol_version mqttv311\n")
        brokers.append(MqttBroker(work, tls=False, acl=None, name="b", extra=bridge).start())
        time.sleep(1.0)  # the bridge connects
    return brokers


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--staged", action="store_true", help="--stages 1,10%%,100%% --soak 1s")
    ap.add_argument("--mqtt", action="store_true", help="through one mosquitto")
    ap.add_argument("--mqtt-bridged", action="store_true", help="through two bridged mosquittos")
    ap.add_argument("--threads", type=int, default=4, help="threads serving the MQTT nodes")
    ap.add_argument("--timeout", type=float, default=300)
    a = ap.parse_args()
    mqtt = a.mqtt or a.mqtt_bridged
    meshlet = os.environ.get("ML_MESHLET", str(ROOT / "build" / "host" / "meshlet"))
    work = Path(tempfile.mkdtemp(prefix="meshlet-fleet-bench-"))
    configs = work / "configs"
    configs.mkdir()
    (configs / "default.ini").write_text("; bench v1\n")
    port = free_port()
    stages = ["--stages", "1,10%,100%", "--soak", "1s"] if a.staged else ["--stages", "100%"]
    brokers = start_brokers(work, a.mqtt_bridged) if mqtt else []
    transport = ["--mqtt", f"mqtt://127.0.0.1:{brokers[0].port}", "--mqtt-insecure"] if mqtt else []
    ctl = subprocess.Popen([meshlet, "controller", "--listen", f"127.0.0.1:{port}", "--configs",
                            str(configs), "--state", str(work / "state"), "--stale", "60s",
                            *stages, *transport], stdout=subprocess.DEVNULL,
                           stderr=open(work / "controller.log", "w"))
    time.sleep(0.5)
    pb = fleet_pb2()
    labels = lambda i: [f"ring={'canary' if i < 10 else 'main'}"]
    if mqtt:
        from sim_mqtt import SimMqttFleet, SimMqttNode

        nodes = [SimMqttNode(pb, f"b{i:04d}", labels(i)) for i in range(a.nodes)]
        fleets = [SimMqttFleet(b, nodes[k::len(brokers)], tls=False, report_s=10.0,
                               reconnect_s=1.0, threads=a.threads) for k, b in
                  enumerate(brokers)]
        for f in fleets:
            f.start()
        all_nodes = nodes
    else:
        fleets = [SimFleet(f"ws://127.0.0.1:{port}/",
                           [SimNode(pb, f"b{i:04d}", labels(i)) for i in range(a.nodes)],
                           report_s=10.0, reconnect_s=1.0).start()]
        all_nodes = fleets[0].nodes
    try:
        v1 = content_version("; bench v1\n")
        t0 = time.monotonic()
        while sum(1 for s in all_nodes if s.config_version == v1) < a.nodes:
            n = sum(1 for s in all_nodes if s.config_version == v1)
            assert time.monotonic() - t0 < a.timeout, f"only {n} nodes connected and acked v1"
            time.sleep(0.5)
        connect_s = time.monotonic() - t0
        idle_rss = rss_kib(ctl.pid)
        text = "; bench v2\n"
        v2 = content_version(text)
        cpu0 = cpu_s(ctl.pid)
        t0 = time.monotonic()
        (configs / "default.ini").write_text(text)
        while True:
            n = sum(1 for s in all_nodes if s.config_version == v2)
            if n >= a.nodes:
                break
            assert time.monotonic() - t0 < a.timeout, f"only {n} of {a.nodes} acked"
            time.sleep(0.02)
        push_s = time.monotonic() - t0
        cpu = cpu_s(ctl.pid) - cpu0
        how = ("WebSockets" if not mqtt else
               "one mosquitto" if not a.mqtt_bridged else "two bridged mosquittos")
        print(f"nodes: {a.nodes} over {how}, stages: {' '.join(stages)}")
        print(f"connect + first config (v1) on all: {connect_s:.2f} s")
        print(f"new file -> all Acks: {push_s:.2f} s (includes the 500 ms directory poll)")
        print(f"controller CPU during the rollout: {cpu:.2f} s")
        print(f"controller RSS: {idle_rss} KiB with all nodes connected, "
              f"{rss_kib(ctl.pid)} KiB after, peak {rss_kib(ctl.pid, 'VmHWM')} KiB")
        for b in brokers:
            print(f"broker {b.name} RSS: {rss_kib(b.proc.pid)} KiB, "
                  f"peak {rss_kib(b.proc.pid, 'VmHWM')} KiB")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/fleet", timeout=60) as r:
            body = r.read()
        print(f"GET /fleet: {len(body)} bytes")
    finally:
        for f in fleets:
            try:
                f.stop()
            except AssertionError as e:
                print(f"simulated nodes: {e}", file=sys.stderr)
        ctl.terminate()
        ctl.wait(timeout=30)
        for b in brokers:
            b.stop()


if __name__ == "__main__":
    main()
