"""The node's side of the fleet over an MQTT broker (runtime/fleet/README.md "The fleet over
MQTT"): meshlet's fleet client with [fleet] url = mqtts://... against Debian's mosquitto, with TLS,
client certificates (CN = node id = MQTT username) and the ACL the README gives, and a small
controller played here with python3-paho-mqtt that publishes Envelope Push messages built with
the protobuf module (as fleet_peers.py does over WebSocket). Real grpcio backends behind meshlet
show which config routes. Every wait is bounded (scaled() for the sanitizer and emulator runs)."""

import re
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from conftest import scaled
from fleet_peers import content_version, fleet_pb2, make_ca
from mqtt_broker import ACL, MqttBroker
from test_fleet_node import admin_port, data_plane, http, stats, who

TOPIC = "meshlet/v1/node/{}/{}"


# ---- the test's controller: a paho client with the controller's certificate ----------------------

class MqttController:
    """Subscribes to every node's hello, answer and status (QoS 1); push() publishes a retained
    Push on a node's push topic and returns the Ack/Nack that answers it."""

    def __init__(self, broker, client_id="meshlet-controller", cert_name="meshlet-controller"):
        self.pb = fleet_pb2()
        self._cond = threading.Condition()
        self.messages = []  # (topic, retained, payload bytes), in arrival order
        self.suback = None
        self._nonce = 1000
        self.client = mqtt.Client(client_id=client_id, clean_session=True,
                                  protocol=mqtt.MQTTv311)
        if broker.tls:
            crt, key = broker.cert(cert_name)
            self.client.tls_set(ca_certs=str(broker.ca_path), certfile=str(crt),
                                keyfile=str(key))
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_connect = self._on_connect
        self._subs = []
        self.connected = False
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.client.connect("127.0.0.1", broker.port, keepalive=30)
        self.client.loop_start()
        assert self.wait_for(lambda: self.connected, 10), "the test controller cannot connect"

    def _on_connect(self, client, userdata, flags, rc):
        with self._cond:
            self.connected = rc == 0
            self._cond.notify_all()
        if self._subs:
            client.subscribe(self._subs)

    def _on_message(self, client, userdata, msg):
        with self._cond:
            self.messages.append((msg.topic, bool(msg.retain), bytes(msg.payload)))
            self._cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, granted):
        with self._cond:
            self.suback = list(granted)
            self._cond.notify_all()

    def subscribe(self, topics):
        self._subs = [(t, 1) for t in topics]
        self.suback = None
        self.client.subscribe(self._subs)
        assert self.wait_for(lambda: self.suback is not None, 10), "no SUBACK"
        return self.suback

    def follow(self, node_id):
        return self.subscribe([TOPIC.format(node_id, k) for k in ("hello", "answer", "status")])

    def wait_for(self, predicate, timeout=10):
        deadline = time.monotonic() + scaled(timeout)
        with self._cond:
            while True:
                got = predicate()
                if got:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    return got
                self._cond.wait(min(left, 0.1))

    def envelopes(self, node_id, kind):
        """The decoded envelopes of node_id on topic kind (empty payloads as None)."""
        out = []
        for topic, _, payload in list(self.messages):
            if topic == TOPIC.format(node_id, kind):
                if payload:
                    env = self.pb.Envelope()
                    env.ParseFromString(payload)
                    out.append(env)
                else:
                    out.append(None)
        return out

    def hellos(self, node_id):
        return [e for e in self.envelopes(node_id, "hello") if e is not None]

    def wait_hellos(self, node_id, count=1, timeout=10):
        return self.wait_for(lambda: len(self.hellos(node_id)) >= count, timeout)

    def publish_push(self, node_id, ini, version=None, nonce=None, retain=True):
        if isinstance(ini, str):
            ini = ini.encode()
        if nonce is None:
            self._nonce += 1
            nonce = self._nonce
        env = self.pb.Envelope()
        env.push.version = version or content_version(ini)
        env.push.nonce = nonce
        env.push.ini = ini
        self.publish_raw(node_id, env.SerializeToString(), retain=retain)
        return nonce

    def publish_raw(self, node_id, payload, retain=False):
        info = self.client.publish(TOPIC.format(node_id, "push"), payload, qos=1, retain=retain)
        info.wait_for_publish(scaled(10))

    def answer(self, node_id, nonce, timeout=10):
        def find():
            for env in self.envelopes(node_id, "answer"):
                m = getattr(env, env.WhichOneof("msg"))
                if m.nonce == nonce:
                    return env
            return None
        return self.wait_for(find, timeout)

    def push(self, node_id, ini, version=None, timeout=10):
        nonce = self.publish_push(node_id, ini, version)
        a = self.answer(node_id, nonce, timeout)
        assert a is not None, f"no answer to the push (nonce {nonce}) within {timeout}s"
        return a

    def stop(self):
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def broker(workdir):
    started = []

    def start(**kw):
        kw.setdefault("acl", ACL)
        b = MqttBroker(workdir, **kw).start()
        started.append(b)
        return b

    yield start
    for b in started:
        b.stop()


@pytest.fixture
def mqtt_controller():
    started = []

    def start(broker, **kw):
        c = MqttController(broker, **kw)
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()


def mqtt_fleet(b, node_id, ca=None, backoff="100ms..1s"):
    if not b.tls:
        return (f"[fleet]\nurl = mqtt://127.0.0.1:{b.port}\ninsecure = on\n"
                f"backoff = {backoff}\nreport_interval = 1s\n")
    crt, key = b.cert(node_id)
    return (f"[fleet]\nurl = mqtts://127.0.0.1:{b.port}\nca = {ca or b.ca_path}\n"
            f"cert = {crt}\nkey = {key}\nbackoff = {backoff}\nreport_interval = 1s\n")


def start_node(run_meshlet, free_port, b, backend, node_id="gw-1", **kw):
    listen = free_port()
    text = (f"[node]\nid = {node_id}\n\n" + mqtt_fleet(b, node_id, **kw) + "\n" +
            data_plane(listen, backend.port))
    m = run_meshlet(text)
    assert m.alive(), m.stderr
    return m, listen


def applied(m, version):
    """How many times the node logged that it applied version (a real apply, not an ack)."""
    return len(re.findall(rf"applied version {re.escape(version)} ", m.stderr))


# ---- push, ack, nack -------------------------------------------------------------------------

def test_mqtt_push_is_acked_and_routes_the_next_call(run_meshlet, free_port, backends, broker,
                                                      mqtt_controller):
    a, b_ = backends("A"), backends("B")
    b = broker()
    ctl = mqtt_controller(b)
    ctl.follow("gw-1")
    m, listen = start_node(run_meshlet, free_port, b, a)
    assert ctl.wait_hellos("gw-1"), m.stderr + b.log()
    hello = ctl.hellos("gw-1")[0]
    assert hello.hello.node_id == "gw-1" and hello.hello.config_version == ""
    assert "fleet-mqtt" in hello.hello.features
    assert who(listen) == "A"

    answer = ctl.push("gw-1", data_plane(listen, b_.port), version="v-one")
    assert answer.WhichOneof("msg") == "ack", answer
    assert answer.ack.version == "v-one"
    assert who(listen) == "B"
    st = stats(admin_port(m))
    assert st["fleet_acks_total"] == 1 and st["fleet_connects_total"] == 1
    # Status reports arrive on the status topic, QoS 0
    assert ctl.wait_for(lambda: [e for e in ctl.envelopes("gw-1", "status")
                                 if e.status.config_version == "v-one"]), m.stderr


def test_mqtt_bad_push_is_nacked_with_its_lines_and_nothing_changes(run_meshlet, free_port,
                                                                     backends, broker,
                                                                     mqtt_controller):
    a = backends("A")
    b = broker()
    ctl = mqtt_controller(b)
    ctl.follow("gw-1")
    m, listen = start_node(run_meshlet, free_port, b, a)
    assert ctl.wait_hellos("gw-1"), m.stderr
    bad = ("[listener in]\nbind = 127.0.0.1:99999\n\n"
           f"[route all]\nlistener = in\nprefix = /\nto = c\nbogus = 1\n\n"
           f"[cluster c]\nendpoint = 127.0.0.1:{a.port}\n")
    answer = ctl.push("gw-1", bad, version="v-bad")
    assert answer.WhichOneof("msg") == "nack", answer
    assert answer.nack.version == "v-bad"
    assert re.search(r"^push:2: \[listener in\] bind: expected", answer.nack.error, re.M), \
        answer.nack.error
    assert re.search(r"^push:8: \[route all\] bogus", answer.nack.error, re.M), answer.nack.error
    assert who(listen) == "A"  # the old config still serves
    assert stats(admin_port(m))["fleet_nacks_total"] == 1


# ---- broker restart, clean stop -------------------------------------------------------------------

def test_mqtt_broker_restart_reconnects_and_applies_nothing_twice(run_meshlet, free_port,
                                                                 backends, broker,
                                                                 mqtt_controller):
    a, b_ = backends("A"), backends("B")
    # persistence: the retained push survives the broker's restart, as in a real deployment
    b = broker(persistence=True, debug_log=True)
    ctl = mqtt_controller(b)
    ctl.follow("gw-1")
    m, listen = start_node(run_meshlet, free_port, b, a)
    assert ctl.wait_hellos("gw-1"), m.stderr
    assert ctl.push("gw-1", data_plane(listen, b_.port), version="v1").WhichOneof("msg") == "ack"
    assert who(listen) == "B" and applied(m, "v1") == 1
    hellos_before = len(ctl.hellos("gw-1"))

    b.restart(down_for=0.5)
    # paho reconnects (1 s) and subscribes again; the node reconnects on its backoff (<= 1 s)
    # and says Hello again with what it runs: v1, nothing lost (the retained Hello of its first
    # connection, still saying the local file, may come to the controller first)
    assert ctl.wait_for(lambda: [h for h in ctl.hellos("gw-1")[hellos_before:]
                                 if h.hello.config_version == "v1"], 20), m.stderr + b.log()
    # the retained push came again with the new connection: acked, not applied again
    assert m.wait_for_stderr("push of version v1: already running, acknowledged", 20), m.stderr
    assert applied(m, "v1") == 1
    assert who(listen) == "B"
    st = stats(admin_port(m))
    assert st["fleet_connects_total"] >= 2 and st["fleet_disconnects_total"] >= 1, st
    assert st["fleet_acks_total"] >= 2  # the first push and its retained copy

    # a clean stop deletes the retained Hello: a controller that starts now sees gw-1 offline
    m.send_signal(15)
    assert m.wait(20) == 0
    late = mqtt_controller(b, client_id="meshlet-controller-late")
    late.follow("gw-1")
    time.sleep(scaled(1))
    assert late.hellos("gw-1") == [], late.messages
    assert "Received DISCONNECT from gw-1" in b.log()


# ---- identity and the ACL --------------------------------------------------------------------

def test_mqtt_a_node_cannot_read_another_nodes_pushes(run_meshlet, free_port, backends, broker,
                                                      mqtt_controller):
    a = backends("A")
    b = broker()
    ctl = mqtt_controller(b)
    ctl.follow("gw-1")
    m, listen = start_node(run_meshlet, free_port, b, a)
    assert ctl.wait_hellos("gw-1"), m.stderr
    assert ctl.push("gw-1", data_plane(listen, a.port), version="v-a").WhichOneof("msg") == "ack"

    # node B's certificate (CN gw-2) asking for gw-1's pushes: refused, or granted and silent
    spy = mqtt_controller(b, client_id="gw-2", cert_name="gw-2")
    granted = spy.subscribe([TOPIC.format("gw-1", "push")])
    ctl.publish_push("gw-1", data_plane(listen, a.port), version="v-b")
    assert ctl.answer("gw-1", ctl._nonce), "gw-1 did not get its own push"
    time.sleep(scaled(0.5))
    assert spy.messages == [], f"gw-2 read gw-1's push (SUBACK {granted})"
    # nor may it write as gw-1
    spy.client.publish(TOPIC.format("gw-1", "hello"), b"forged", qos=1).wait_for_publish(
        scaled(10))
    time.sleep(scaled(0.5))
    assert b"forged" not in [p for _, _, p in ctl.messages]


# ---- refusals and limits ---------------------------------------------------------------------------

def test_mqtt_plain_url_needs_insecure(meshlet_cmd, workdir):
    ini = workdir / "plain.ini"
    ini.write_text("[node]\nid = gw-1\n\n[fleet]\nurl = mqtt://127.0.0.1:1883\n")
    r = subprocess.run([*meshlet_cmd, "check", str(ini)], capture_output=True, text=True,
                       timeout=scaled(20))
    assert r.returncode == 1, r
    assert (f'{ini}:5: [fleet] url: expected mqtts:// (mqtt:// only with insecure = on), got '
            '"mqtt://127.0.0.1:1883"') in r.stderr, r.stderr
    ini.write_text("[node]\nid = gw-1\n\n[fleet]\nurl = mqtts://127.0.0.1:8883/fleet\n"
                   "ca = /etc/hostname\n")
    r = subprocess.run([*meshlet_cmd, "check", str(ini)], capture_output=True, text=True,
                       timeout=scaled(20))
    assert r.returncode == 1 and '[fleet] url: expected mqtts://HOST[:PORT] with nothing after ' \
        'the port' in r.stderr, r.stderr


def test_mqtt_plain_broker_with_insecure_on(run_meshlet, free_port, backends, broker,
                                            mqtt_controller):
    a, b_ = backends("A"), backends("B")
    b = broker(tls=False, acl=None)
    ctl = mqtt_controller(b)
    ctl.follow("gw-1")
    m, listen = start_node(run_meshlet, free_port, b, a)
    assert ctl.wait_hellos("gw-1"), m.stderr
    assert m.wait_for_stderr("INSECURE")
    assert ctl.push("gw-1", data_plane(listen, b_.port)).WhichOneof("msg") == "ack"
    assert who(listen) == "B"


def test_mqtt_oversized_and_undecodable_payloads_are_counted_and_ignored(
        run_meshlet, free_port, backends, broker, mqtt_controller, kconfig):
    a, b_ = backends("A"), backends("B")
    b = broker()
    ctl = mqtt_controller(b)
    ctl.follow("gw-1")
    m, listen = start_node(run_meshlet, free_port, b, a)
    assert ctl.wait_hellos("gw-1"), m.stderr
    bound = kconfig["CONFIG_ML_FLEET_MAX_MESSAGE_BYTES"]
    ctl.publish_raw("gw-1", b"\x0a" + b"x" * bound)  # one byte over the bound
    assert m.wait_for_stderr(f"over {bound} bytes"), m.stderr
    ctl.publish_raw("gw-1", b"\xff\xff\xff\xff not an envelope")
    assert m.wait_for_stderr("undecodable envelope"), m.stderr
    st = stats(admin_port(m))
    assert st["fleet_protocol_errors_total"] == 2, st
    assert st["fleet_connects_total"] == 1 and st["fleet_disconnects_total"] == 0, st
    assert who(listen) == "A"  # nothing applied
    # the connection is still good: the next push works
    assert ctl.push("gw-1", data_plane(listen, b_.port)).WhichOneof("msg") == "ack"
    assert who(listen) == "B"


def test_mqtt_wrong_ca_fails_tls_and_is_retried_on_the_backoff(run_meshlet, free_port, backends,
                                                               broker, workdir):
    a = backends("A")
    b = broker()
    make_ca(workdir, "other-ca")
    m, listen = start_node(run_meshlet, free_port, b, a, ca=workdir / "other-ca.crt",
                           backoff="100ms..300ms")
    assert m.wait_for_stderr("cannot connect to mqtts://"), m.stderr
    deadline = time.monotonic() + scaled(20)
    while time.monotonic() < deadline:
        st = stats(admin_port(m))
        if st["fleet_connect_failures_total"] >= 3:
            break
        time.sleep(0.2)
    assert st["fleet_connect_failures_total"] >= 3 and st["fleet_connects_total"] == 0, st
    assert re.search(r"cannot connect to mqtts://\S+: TLS", m.stderr), m.stderr
    assert who(listen) == "A"  # the data plane never waits for the fleet


# ---- the real pair: meshlet controller --mqtt and a meshlet node through mosquitto -----------------

def test_mqtt_meshlet_controller_pushes_to_a_meshlet_node(run_meshlet, free_port, backends, broker,
                                                          workdir):
    a, b_ = backends("A"), backends("B")
    b = broker()
    m, listen = start_node(run_meshlet, free_port, b, a)
    assert m.wait_for_stderr("fleet: c1: connected to mqtts://"), m.stderr
    assert who(listen) == "A"
    configs = workdir / "configs"
    configs.mkdir()
    text = data_plane(listen, b_.port)
    (configs / "default.ini").write_text(text)
    port = free_port()
    crt, key = b.cert("meshlet-controller")
    ctl = run_meshlet(None, "controller", "--listen", f"127.0.0.1:{port}", "--configs", configs,
                      "--mqtt", f"mqtts://127.0.0.1:{b.port}", "--mqtt-ca", b.ca_path,
                      "--mqtt-cert", crt, "--mqtt-key", key)
    assert ctl.alive(), ctl.stderr
    # the controller learns gw-1 from its retained Hello and pushes default.ini; the node acks
    assert m.wait_for_stderr(f"applied version {content_version(text)} (push)", 30), \
        m.stderr + ctl.stderr
    assert who(listen) == "B"
    deadline = time.monotonic() + scaled(20)
    while time.monotonic() < deadline:
        status, body = http(port, "/fleet")
        if status == 200 and '"SYNCED"' in body:
            break
        time.sleep(0.2)
    assert '"id":"gw-1"' in body.replace(" ", "") and '"SYNCED"' in body, body
