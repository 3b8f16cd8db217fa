"""Simulated fleet nodes for `meshlet controller` tests and benchmarks: each is one WebSocket
(python3-websockets) speaking the fleet protocol (protobuf classes from fleet.proto), in one
asyncio loop on a background thread, so tests stay synchronous.

A node says Hello (with labels and the version it runs), answers every Push as its `answer`
function says ("ack", "nack", "transient"), sends a Status naming what it runs right after an Ack
and every `report_s`, and reconnects (after `reconnect_s`) when the connection ends, as a real
node does. Everything it saw is recorded (pushes, answers) for the test to check."""

import asyncio
import threading
import time

import websockets

PROTOCOL = "meshlet.fleet.v1"


def ack_all(node, push):
    return "ack"


class SimNodeState:
    """What a simulated node is and says, whatever carries it (this file's WebSocket, sim_mqtt's
    broker): its Hello, its Status, and its answer to a Push, as serialized Envelopes."""

    def __init__(self, pb, node_id, labels=(), config_version="", answer=ack_all):
        self.pb = pb
        self.id = node_id
        self.labels = list(labels)
        self.config_version = config_version
        self.answer = answer
        self.pushes = []      # (version, ini bytes) in order
        self.answers = []     # (version, "ack" | "nack" | "transient")
        self.connects = 0
        self.connected = False
        self.first_ack_at = {}  # version -> time.monotonic() of its Ack
        self.mute = False       # set (by answer) to stop sending Status: a node gone quiet
        self.endpoints = (0, 0)  # (healthy, total) its Status reports

    def hello_bytes(self):
        h = self.pb.Hello(node_id=self.id, board="sim", version="0.0.0-sim",
                          config_version=self.config_version, features=["fleet"],
                          labels=self.labels)
        return self.pb.Envelope(hello=h).SerializeToString()

    def status_bytes(self):
        """The Status envelope, or None once the node is mute."""
        if self.mute:
            return None
        s = self.pb.Status(config_version=self.config_version, uptime_s=1,
                           endpoints_healthy=self.endpoints[0], endpoints_total=self.endpoints[1])
        return self.pb.Envelope(status=s).SerializeToString()

    def take(self, data):
        """An envelope from the controller: for a Push, (the Ack or Nack to send, whether a Status
        follows); None for anything else."""
        env = self.pb.Envelope.FromString(data)
        if env.WhichOneof("msg") != "push":
            return None
        p = env.push
        self.pushes.append((p.version, p.ini))
        what = self.answer(self, p)
        self.answers.append((p.version, what))
        if what == "ack":
            self.config_version = p.version
            self.first_ack_at.setdefault(p.version, time.monotonic())
            return self.pb.Envelope(
                ack=self.pb.Ack(version=p.version, nonce=p.nonce)).SerializeToString(), True
        nack = self.pb.Nack(version=p.version, nonce=p.nonce,
                            error=f"sim:1: {self.id} refuses {p.version}",
                            transient=(what == "transient"))
        return self.pb.Envelope(nack=nack).SerializeToString(), False


class SimNode(SimNodeState):
    """A node over its own WebSocket."""

    async def _status(self, ws):
        status = self.status_bytes()
        if status is not None:
            await ws.send(status)

    async def session(self, url, report_s):
        async with websockets.connect(url, subprotocols=[PROTOCOL], max_size=1 << 22,
                                      open_timeout=30, ping_interval=None) as ws:
            self.connects += 1
            self.connected = True
            await ws.send(self.hello_bytes())
            next_report = time.monotonic() + report_s
            while True:
                try:
                    data = await asyncio.wait_for(ws.recv(),
                                                  max(0.01, next_report - time.monotonic()))
                except asyncio.TimeoutError:
                    await self._status(ws)
                    next_report = time.monotonic() + report_s
                    continue
                taken = self.take(data)
                if taken is None:
                    continue
                answer, status_follows = taken
                await ws.send(answer)
                if status_follows:
                    await self._status(ws)

    async def run(self, url, report_s, reconnect_s, stop):
        while not stop.is_set():
            try:
                await self.session(url, report_s)
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
                pass
            self.connected = False
            await asyncio.sleep(reconnect_s)


class SimFleet:
    """SimFleet(pb, url, nodes).start() runs every node until stop()."""

    def __init__(self, url, nodes, report_s=0.5, reconnect_s=0.2):
        self.url = url
        self.nodes = nodes
        self.report_s = report_s
        self.reconnect_s = reconnect_s
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.stop_event = None

    def _main(self):
        asyncio.set_event_loop(self.loop)
        self.stop_event = asyncio.Event()
        tasks = [self.loop.create_task(n.run(self.url, self.report_s, self.reconnect_s,
                                             self.stop_event)) for n in self.nodes]
        self._tasks = tasks
        self.loop.run_until_complete(self.stop_event.wait())
        for t in tasks:
            t.cancel()
        self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self.loop.close()

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        if self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(timeout=30)

    def by_id(self, node_id):
        return next(n for n in self.nodes if n.id == node_id)
