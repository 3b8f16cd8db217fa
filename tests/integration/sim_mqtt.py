"""Simulated fleet nodes over an MQTT broker (Debian's python3-paho-mqtt 1.6), for `meshlet
controller --mqtt` tests and benchmarks: the topic layout of runtime/fleet/README.md ("The fleet
over MQTT") with the Envelope messages of fleet.proto, as sim_fleet.py does over WebSockets.

Each node connects with its own client certificate (CN = node id: the broker's ACL lets it touch
only its own topics), sets an empty retained Will on its hello topic, publishes its Hello
(retained, QoS 1) after every CONNACK, subscribes to its push topic, answers each non-empty Push
as its `answer` function says ("ack", "nack", "transient") on its answer topic, and sends a
Status after an Ack and every `report_s`. Many nodes share a few threads: each thread runs the
paho clients of its share with one select() (paho's external-loop calls), so a thousand nodes
need no thousand threads. Every wait is bounded."""

import select
import ssl
import threading
import time

import paho.mqtt.client as mqtt

from sim_fleet import SimNodeState, ack_all

PREFIX = "meshlet/v1/node/"


class SimMqttNode(SimNodeState):
    """A node over the broker: its own paho client, driven by SimMqttFleet's threads."""

    def __init__(self, pb, node_id, labels=(), config_version="", answer=ack_all):
        super().__init__(pb, node_id, labels, config_version, answer)
        self.client = None
        self.next_report = 0.0
        self.next_retry = 0.0
        self.down = False     # stopped on purpose (stop_cleanly / kill)

    def topic(self, kind):
        return f"{PREFIX}{self.id}/{kind}"

    def make_client(self, broker, tls):
        c = mqtt.Client(client_id=self.id, clean_session=True, protocol=mqtt.MQTTv311)
        if tls:
            crt, key = broker.cert(self.id)
            c.tls_set(ca_certs=str(broker.ca_path), certfile=str(crt), keyfile=str(key),
                      tls_version=ssl.PROTOCOL_TLS_CLIENT)
        c.will_set(self.topic("hello"), payload=None, qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.on_disconnect = self._on_disconnect
        self.client = c
        return c

    def _status(self):
        status = self.status_bytes()
        if status is not None:
            self.client.publish(self.topic("status"), status, qos=0)

    def _on_connect(self, c, userdata, flags, rc):
        if rc != 0:
            return
        self.connects += 1
        self.connected = True
        c.subscribe(self.topic("push"), qos=1)
        c.publish(self.topic("hello"), self.hello_bytes(), qos=1, retain=True)

    def _on_disconnect(self, c, userdata, rc):
        self.connected = False

    def _on_message(self, c, userdata, msg):
        if not msg.payload:
            return  # the controller cleared this node's push: ignored
        taken = self.take(msg.payload)
        if taken is None:
            return
        answer, status_follows = taken
        c.publish(self.topic("answer"), answer, qos=1)
        if status_follows:
            self._status()


class SimMqttFleet:
    """SimMqttFleet(broker, nodes, tls=True).start() runs every node until stop()."""

    def __init__(self, broker, nodes, tls=True, report_s=0.5, reconnect_s=0.2, threads=1):
        self.broker = broker
        self.nodes = nodes
        self.tls = tls
        self.report_s = report_s
        self.reconnect_s = reconnect_s
        self.stop_event = threading.Event()
        self.errors = []
        self.lock = threading.Lock()  # held while a thread runs its clients' callbacks
        share = [nodes[i::threads] for i in range(threads)]
        self.threads = [threading.Thread(target=self._run, args=(s,), daemon=True)
                        for s in share if s]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=30)
        assert not self.errors, self.errors
        for n in self.nodes:
            if n.client is not None:
                try:
                    n.client.disconnect()
                except Exception:
                    pass

    def by_id(self, node_id):
        return next(n for n in self.nodes if n.id == node_id)

    def stop_cleanly(self, node):
        """What a node stopping cleanly does: clear its retained Hello, then DISCONNECT."""
        with self.lock:
            node.down = True
            node.client.publish(node.topic("hello"), None, qos=1, retain=True)
            node.client.loop_write()
            time.sleep(0.2)
            node.client.disconnect()

    def kill(self, node):
        """A node that dies without DISCONNECT: the broker publishes its Will."""
        with self.lock:
            node.down = True
            sock = node.client.socket()
            if sock is not None:
                sock.close()

    def _connect(self, n, now):
        if n.down or now < n.next_retry:
            return
        n.next_retry = now + self.reconnect_s
        try:
            if n.client is None:
                n.make_client(self.broker, self.tls).connect("127.0.0.1", self.broker.port,
                                                             keepalive=30)
            else:
                n.client.reconnect()
        except (OSError, ssl.SSLError, ValueError):
            pass

    def _run(self, nodes):
        try:
            self._serve(nodes)
        except Exception as e:  # shown by stop(): a sim that dies must fail the test
            self.errors.append(repr(e))
            raise

    def _serve(self, nodes):
        while not self.stop_event.is_set():
            now = time.monotonic()
            socks = {}
            with self.lock:
                for n in nodes:
                    s = n.client.socket() if n.client is not None else None
                    if s is None or n.client._state == mqtt.mqtt_cs_connect_async:
                        self._connect(n, now)
                        s = n.client.socket() if n.client is not None else None
                    if s is not None and not n.down:
                        try:
                            socks[s.fileno()] = n
                        except (OSError, ValueError):
                            pass
            if not socks:
                time.sleep(0.05)
                continue
            # poll, not select: a thousand nodes pass select()'s FD_SETSIZE (1024)
            p = select.poll()
            for fd, n in socks.items():
                p.register(fd, select.POLLIN | (select.POLLOUT if n.client.want_write() else 0))
            try:
                ready = p.poll(50)
            except (OSError, ValueError):
                time.sleep(0.01)
                continue
            r = [fd for fd, ev in ready if ev & (select.POLLIN | select.POLLERR | select.POLLHUP)]
            w = [fd for fd, ev in ready if ev & select.POLLOUT]
            # TLS records already read into the SSL object do not show up in select().
            r = set(r) | {fd for fd, n in socks.items()
                          if hasattr(n.client.socket(), "pending") and n.client.socket().pending()}
            with self.lock:
                for fd in r:
                    n = socks[fd]
                    if not n.down:
                        n.client.loop_read(100)
                for fd in w:
                    n = socks[fd]
                    if not n.down:
                        n.client.loop_write()
                now = time.monotonic()
                for n in nodes:
                    if n.client is None or n.down:
                        continue
                    n.client.loop_misc()
                    if n.connected and now >= n.next_report:
                        n.next_report = now + self.report_s
                        n._status()
