"""`meshlet controller --mqtt URL` (runtime/fleet/README.md, "The fleet over MQTT"): the
controller reaches its nodes through Debian's mosquitto (TLS, client certificates, the docs'
ACL) instead of serving WebSockets; simulated nodes are paho clients (sim_mqtt.py). Everything
above the transport (pushes, Acks/Nacks, staged rollouts, rollback, transient retries, /fleet,
`meshlet fleet status`) behaves as over WebSockets. Every wait is bounded."""

import json
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import scaled
from fleet_peers import content_version, fleet_pb2
from mqtt_broker import MqttBroker
from sim_mqtt import SimMqttFleet, SimMqttNode
from sim_fleet import ack_all

WAIT = scaled(20)


def v(text):
    return content_version(text)


def request(port, path, method="GET", headers=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 headers=headers or {}, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=WAIT) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def fleet(port, query=""):
    status, body = request(port, "/fleet" + query)
    assert status == 200, body
    return json.loads(body)


def node(port, node_id):
    return next((n for n in fleet(port)["nodes"] if n["id"] == node_id), None)


def wait_until(check, timeout=WAIT, what=""):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def running(port):
    return {n["id"]: n["running_version"] for n in fleet(port)["nodes"] if n["connected"]}


def rollout_of(port, name="default.ini"):
    return next((r for r in fleet(port)["rollouts"] if r["file"] == name), None)


def nack_bad(node, push):
    return "nack" if b"; bad" in push.ini else "ack"


@pytest.fixture
def mqtt_fleet(run_meshlet, free_port, workdir):
    """mqtt_fleet(nodes, *controller_args) → (http port, configs dir, broker, sims, controller)."""
    made = []

    def start(nodes, *args, v1="; mqtt v1\n", broker=None):
        broker = broker or MqttBroker(workdir).start()
        made.append(broker)
        port = free_port()
        configs = workdir / "configs"
        configs.mkdir(exist_ok=True)
        (configs / "default.ini").write_text(v1)
        crt, key = broker.cert("meshlet-controller")
        ctl = run_meshlet(None, "controller", "--listen", f"127.0.0.1:{port}", "--configs",
                          configs, "--mqtt", f"mqtts://127.0.0.1:{broker.port}", "--mqtt-ca",
                          broker.ca_path, "--mqtt-cert", crt, "--mqtt-key", key, *args)
        assert ctl.alive(), ctl.stderr
        made.append(ctl)
        sims = SimMqttFleet(broker, nodes).start()
        made.append(sims)
        return port, configs, broker, sims, ctl

    yield start
    for m in reversed(made):
        if hasattr(m, "stop"):
            m.stop()
        else:
            print(m.stderr[-6000:])  # the controller's log, shown when the test fails


def sim(pb, i, answer=ack_all, labels=()):
    return SimMqttNode(pb, f"n{i:02d}", labels, answer=answer)


def test_hello_gets_retained_push_ack_synced_and_fleet_status(mqtt_fleet, meshlet_cmd):
    pb = fleet_pb2()
    port, configs, broker, sims, ctl = mqtt_fleet([sim(pb, 0), sim(pb, 1)])
    wait_until(lambda: running(port) == {"n00": v("; mqtt v1\n"), "n01": v("; mqtt v1\n")},
               what="both nodes acked v1")
    n0 = node(port, "n00")
    assert n0["state"] == "SYNCED" and n0["desired_version"] == n0["running_version"]
    out = subprocess.run([*meshlet_cmd, "fleet", "status", "--controller",
                          f"http://127.0.0.1:{port}"], capture_output=True, text=True,
                         timeout=WAIT)
    assert out.returncode == 0, out.stderr
    assert any("n00" in line and "SYNCED" in line for line in out.stdout.splitlines()), out.stdout
    # The push is retained: a client that subscribes later (as a node that reconnects) gets it
    # at once, from the broker alone.
    got = []
    import paho.mqtt.client as mqtt
    import ssl
    c = mqtt.Client(client_id="n00-late", clean_session=True, protocol=mqtt.MQTTv311)
    crt, key = broker.cert("n00")
    c.tls_set(ca_certs=str(broker.ca_path), certfile=str(crt), keyfile=str(key),
              tls_version=ssl.PROTOCOL_TLS_CLIENT)
    c.on_message = lambda cl, u, msg: got.append(msg)
    c.connect("127.0.0.1", broker.port)
    c.subscribe("meshlet/v1/node/n00/push", qos=1)
    deadline = time.monotonic() + WAIT
    while not got and time.monotonic() < deadline:
        c.loop(0.1)
    c.disconnect()
    assert got and got[0].retain, "the push is not retained"
    env = pb.Envelope.FromString(got[0].payload)
    assert env.push.version == v("; mqtt v1\n") and env.push.ini == b"; mqtt v1\n"
    # /stats says the controller is on the broker; no WebSocket is served on --listen.
    status, stats = request(port, "/stats")
    assert "controller.mqtt_connected 1" in stats, stats
    assert ctl.alive()


def test_nack_shows_its_lines_in_fleet(mqtt_fleet):
    pb = fleet_pb2()
    port, configs, _, sims, _ = mqtt_fleet([sim(pb, 0, answer=nack_bad)])
    wait_until(lambda: running(port).get("n00") == v("; mqtt v1\n"), what="n00 on v1")
    (configs / "default.ini").write_text("; bad\n")
    n = wait_until(lambda: (lambda x: x if x and x["state"] == "NACKED" else None)(
        node(port, "n00")), what="n00 NACKED")
    assert "sim:1: n00 refuses " + v("; bad\n") in json.dumps(n), n
    assert fleet(port, "?state=nacked")["nodes"][0]["id"] == "n00"


def test_rollout_over_20_mqtt_nodes_halts_on_first_nack_and_rolls_back(mqtt_fleet):
    pb = fleet_pb2()
    nodes = [sim(pb, i, answer=nack_bad) for i in range(20)]
    port, configs, _, sims, _ = mqtt_fleet(nodes, "--stages", "1,10%,100%", "--soak", "1s",
                                           "--stale", "5s")
    v1 = v("; mqtt v1\n")
    wait_until(lambda: (lambda r: len(r) == 20 and set(r.values()) == {v1})(running(port)),
               what="20 nodes on v1")
    (configs / "default.ini").write_text("; mqtt v2\n")
    v2 = v("; mqtt v2\n")
    wait_until(lambda: (lambda r: len(r) == 20 and set(r.values()) == {v2})(running(port)),
               what="20 nodes on v2")
    wait_until(lambda: rollout_of(port)["state"] == "none", what="the v2 rollout to finish")
    (configs / "default.ini").write_text("; bad\n")
    bad = v("; bad\n")
    ro = wait_until(lambda: next((r for r in fleet(port)["rollouts"]
                                  if r["file"] == "default.ini" and r["state"] == "halted"), None),
                    what=f"the rollout halted {sims.errors} {[t.is_alive() for t in sims.threads]}")
    assert "n00" in json.dumps(ro) and "refuses" in json.dumps(ro), ro
    time.sleep(scaled(1))
    # Stage 1 is one node: only n00 was ever offered the bad version.
    offered = [n.id for n in nodes if any(p[0] == bad for p in n.pushes)]
    assert offered == ["n00"], offered
    r = running(port)
    assert all(r[f"n{i:02d}"] == v2 for i in range(1, 20)), r
    # The first rollback abandons the halted version (every node stays on v2); the next one
    # takes the fleet back to the version before v2.
    status, body = request(port, "/rollback", method="POST")
    assert status == 200, body
    assert rollout_of(port)["state"] == "rolled_back"
    assert (lambda r: len(r) == 20 and set(r.values()) == {v2})(running(port))
    status, body = request(port, "/rollback", method="POST")
    assert status == 200, body
    wait_until(lambda: (lambda r: len(r) == 20 and set(r.values()) == {v1})(running(port)),
               what="rollback: 20 nodes on v1")


def test_transient_nack_is_retried_then_acked(mqtt_fleet):
    pb = fleet_pb2()
    tries = []

    def flaky(node, push):
        if b"v2" not in push.ini:
            return "ack"
        tries.append(time.monotonic())
        return "transient" if len(tries) == 1 else "ack"

    port, configs, _, sims, _ = mqtt_fleet([sim(pb, 0, answer=flaky)])
    wait_until(lambda: running(port).get("n00") == v("; mqtt v1\n"), what="n00 on v1")
    (configs / "default.ini").write_text("; mqtt v2\n")
    wait_until(lambda: running(port).get("n00") == v("; mqtt v2\n"), what="n00 acked v2")
    assert len(tries) == 2, tries
    assert tries[1] - tries[0] >= 0.9, "retried before the backoff"
    assert node(port, "n00")["state"] == "SYNCED"


def test_broker_restart_controller_reconnects_nothing_lost(mqtt_fleet):
    pb = fleet_pb2()
    nodes = [sim(pb, 0), sim(pb, 1)]
    port, configs, broker, sims, ctl = mqtt_fleet(nodes, "--stages", "100%")
    v1 = v("; mqtt v1\n")
    wait_until(lambda: running(port) == {"n00": v1, "n01": v1}, what="both on v1")
    broker.restart()  # persistence off: every retained message is gone
    ctl.wait_for_stderr("reconnecting in", timeout=WAIT)
    wait_until(lambda: "controller.mqtt_connects 2" in request(port, "/stats")[1],
               what="the controller reconnected")
    # A change made after the restart reaches every node through the new connection.
    (configs / "default.ini").write_text("; mqtt v2\n")
    v2 = v("; mqtt v2\n")
    wait_until(lambda: running(port) == {"n00": v2, "n01": v2},
               what=f"both on v2 {[(n.id, n.connects, n.connected) for n in nodes]}")
    for n in nodes:
        assert [p[0] for p in n.pushes].count(v2) >= 1
        assert n.answers.count((v2, "ack")) == len([p for p in n.pushes if p[0] == v2])
    assert ctl.alive()


def test_empty_retained_hello_makes_the_node_offline(mqtt_fleet):
    pb = fleet_pb2()
    nodes = [sim(pb, 0), sim(pb, 1)]
    port, configs, broker, sims, _ = mqtt_fleet(nodes)
    v1 = v("; mqtt v1\n")
    wait_until(lambda: running(port) == {"n00": v1, "n01": v1}, what="both on v1")
    sims.kill(nodes[0])  # no DISCONNECT: the broker publishes its Will (an empty retained Hello)
    wait_until(lambda: node(port, "n00")["state"] == "OFFLINE", timeout=scaled(60),
               what="n00 OFFLINE (Will)")
    sims.stop_cleanly(nodes[1])  # clears its retained Hello itself
    wait_until(lambda: node(port, "n01")["state"] == "OFFLINE", what="n01 OFFLINE (clean stop)")


def test_controller_started_later_learns_nodes_from_retained_hellos(run_meshlet, free_port,
                                                                    workdir):
    pb = fleet_pb2()
    broker = MqttBroker(workdir).start()
    sims = SimMqttFleet(broker, [sim(pb, 0), sim(pb, 1)]).start()
    try:
        wait_until(lambda: all(n.connected for n in sims.nodes), what="sims connected")
        sims.stop_cleanly(sims.nodes[1])
        port = free_port()
        configs = workdir / "configs"
        configs.mkdir()
        (configs / "default.ini").write_text("; later\n")
        crt, key = broker.cert("meshlet-controller")
        run_meshlet(None, "controller", "--listen", f"127.0.0.1:{port}", "--configs", configs,
                    "--mqtt", f"mqtts://127.0.0.1:{broker.port}", "--mqtt-ca", broker.ca_path,
                    "--mqtt-cert", crt, "--mqtt-key", key)
        wait_until(lambda: running(port) == {"n00": v("; later\n")}, what="n00 learnt and synced")
        assert node(port, "n01") is None  # its Hello was cleared before the controller came
    finally:
        sims.stop()
        broker.stop()


def test_oversized_and_undecodable_publishes_are_counted_and_ignored(mqtt_fleet):
    import paho.mqtt.client as mqtt
    import ssl
    pb = fleet_pb2()
    port, configs, broker, sims, ctl = mqtt_fleet([sim(pb, 0)])
    wait_until(lambda: running(port).get("n00") == v("; mqtt v1\n"), what="n00 on v1")
    c = mqtt.Client(client_id="n09", clean_session=True, protocol=mqtt.MQTTv311)
    crt, key = broker.cert("n09")
    c.tls_set(ca_certs=str(broker.ca_path), certfile=str(crt), keyfile=str(key),
              tls_version=ssl.PROTOCOL_TLS_CLIENT)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    try:
        c.publish("meshlet/v1/node/n09/status", b"\xff" * 64, qos=1).wait_for_publish(WAIT)
        c.publish("meshlet/v1/node/n09/hello", b"\x0a" * 300000, qos=1).wait_for_publish(WAIT)
        c.publish("meshlet/v1/node/n09/hello", b"\xff\xff\xff", qos=1).wait_for_publish(WAIT)
        wait_until(lambda: "controller.mqtt_dropped 3" in request(port, "/stats")[1],
                   what="three PUBLISHes dropped")
    finally:
        c.publish("meshlet/v1/node/n09/hello", None, qos=1, retain=True).wait_for_publish(WAIT)
        c.loop_stop()
        c.disconnect()
    assert ctl.alive()
    assert node(port, "n09") is None
    assert node(port, "n00")["state"] == "SYNCED"


def test_bad_mqtt_arguments_are_refused(meshlet_cmd, workdir):
    (workdir / "c").mkdir()
    base = [*meshlet_cmd, "controller", "--listen", "127.0.0.1:1", "--configs", str(workdir / "c")]
    for extra, said in ((["--mqtt", "mqtt://127.0.0.1:1883"], "--mqtt-insecure"),
                        (["--mqtt", "mqtts://127.0.0.1:8883/path", "--mqtt-ca", "x", "--mqtt-cert",
                          "x", "--mqtt-key", "x"], "no path"),
                        (["--mqtt", "mqtts://127.0.0.1:8883"], "--mqtt-ca"),
                        (["--mqtt", "http://h"], "mqtts://"),
                        (["--mqtt-insecure"], "need --mqtt URL")):
        out = subprocess.run(base + extra, capture_output=True, text=True, timeout=WAIT)
        assert out.returncode == 64, (extra, out.returncode, out.stderr)
        assert said in out.stderr, (extra, out.stderr)


def _client(broker, name):
    import paho.mqtt.client as mqtt
    import ssl
    c = mqtt.Client(client_id=name, clean_session=True, protocol=mqtt.MQTTv311)
    crt, key = broker.cert(name)
    c.tls_set(ca_certs=str(broker.ca_path), certfile=str(crt), keyfile=str(key),
              tls_version=ssl.PROTOCOL_TLS_CLIENT)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    return c


def test_acl_a_node_reads_only_its_own_pushes_and_cannot_speak_for_another(mqtt_fleet):
    pb = fleet_pb2()
    port, configs, broker, sims, ctl = mqtt_fleet([sim(pb, 0)])
    wait_until(lambda: running(port).get("n00") == v("; mqtt v1\n"), what="n00 on v1")
    got = []
    spy = _client(broker, "n01")
    try:
        spy.on_message = lambda cl, u, msg: got.append(msg.topic)
        spy.subscribe("meshlet/v1/node/n00/push", qos=1)  # the ACL denies it: nothing arrives
        spy.subscribe("meshlet/v1/node/n01/push", qos=1)
        # n01 writing on n00's topics is dropped by the broker; on its own hello topic, a Hello
        # naming n00 is refused by the controller (the topic is the identity).
        hello = pb.Envelope(hello=pb.Hello(node_id="n00", board="x", version="x",
                                           config_version="forged")).SerializeToString()
        spy.publish("meshlet/v1/node/n00/hello", hello, qos=1, retain=True).wait_for_publish(WAIT)
        spy.publish("meshlet/v1/node/n01/hello", hello, qos=1).wait_for_publish(WAIT)
        wait_until(lambda: "controller.hello_refused_identity 1" in request(port, "/stats")[1],
                   what="the forged Hello refused")
        time.sleep(scaled(1))
    finally:
        spy.loop_stop()
        spy.disconnect()
    assert "meshlet/v1/node/n00/push" not in got, got
    n0 = node(port, "n00")
    assert n0["state"] == "SYNCED" and n0["running_version"] == v("; mqtt v1\n"), n0
    assert node(port, "n01") is None
