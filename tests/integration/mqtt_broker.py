"""Debian's mosquitto (2.0, /usr/sbin/mosquitto) for the fleet-over-MQTT tests, on 127.0.0.1:
MqttBroker(workdir, tls=True, acl=ACL_TEXT, port=None) with .start(), .stop(), .restart() (same
port), .port, .ca_path and .cert(name) -> (crt, key), a client certificate with CN=name.

With tls (the default) the listener requires a client certificate that chains to the test CA
and takes its CN as the MQTT username (use_identity_as_username), so the ACL's %u is the node
id, as runtime/fleet/README.md's broker example says; without tls it is a plain listener that
allows anonymous clients. persistence is off unless asked for: a restart then forgets retained
messages unless the clients publish them again, as after a real broker crash without a
persistence file; with persistence=True they survive (SIGTERM saves them). name tells two
brokers of one test apart, extra adds mosquitto.conf lines (a bridge), debug_log logs every
packet (slower: not for the benchmark). Certificates come from fleet_peers.make_ca / make_leaf
(openssl). Every wait is bounded."""

import os
import socket
import subprocess
import time
from pathlib import Path

from conftest import scaled
from fleet_peers import make_ca, make_leaf

MOSQUITTO = "/usr/sbin/mosquitto"

# runtime/fleet/README.md, "The fleet over MQTT": the ACL the docs give, used as is.
ACL = """\
# meshlet fleet ACL for mosquitto (acl_file): each node reads only its own pushes and writes only its own topics
pattern read  meshlet/v1/node/%u/push
pattern write meshlet/v1/node/%u/hello
pattern write meshlet/v1/node/%u/answer
pattern write meshlet/v1/node/%u/status
user meshlet-controller
topic readwrite meshlet/v1/node/#
"""


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MqttBroker:
    def __init__(self, workdir, tls=True, acl=ACL, port=None, name="broker", extra="",
                 persistence=False, debug_log=False):
        self.dir = Path(workdir) / f"mqtt-{name}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.acl = acl
        self.port = port or _free_port()
        self.name = name
        self.extra = extra  # more mosquitto.conf lines (a bridge)
        self.persistence = persistence
        self.debug_log = debug_log
        self.proc = None
        self.logf = None
        self.log_path = self.dir / "mosquitto.log"
        if tls:
            if not (self.dir / "ca.crt").exists():
                make_ca(self.dir, "ca")
                make_leaf(self.dir, "server", "ca",
                          "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth",
                          cn="localhost")
            self.ca_path = self.dir / "ca.crt"
        else:
            self.ca_path = None

    def cert(self, name):
        """A client certificate with CN=name signed by the broker's CA: (crt path, key path)."""
        crt, key = self.dir / f"client-{name}.crt", self.dir / f"client-{name}.key"
        if not crt.exists():
            make_leaf(self.dir, f"client-{name}", "ca", "extendedKeyUsage=clientAuth", cn=name)
        return crt, key

    def _conf(self):
        lines = ["log_dest stderr", "connection_messages true",
                 "per_listener_settings false", "max_inflight_messages 100",
                 "max_queued_messages 100000"]
        lines += (["log_type all"] if self.debug_log else
                  ["log_type error", "log_type warning", "log_type notice"])
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.dir}/",
                      "autosave_interval 1"]
        else:
            lines.append("persistence false")
        if os.getuid() == 0:
            lines.append("user root")  # else mosquitto drops to "mosquitto", who cannot read here
        lines.append(f"listener {self.port} 127.0.0.1")
        if self.tls:
            lines += [f"cafile {self.dir / 'ca.crt'}", f"certfile {self.dir / 'server.crt'}",
                      f"keyfile {self.dir / 'server.key'}", "tls_version tlsv1.2",
                      "require_certificate true", "use_identity_as_username true",
                      "allow_anonymous false"]
        else:
            lines.append("allow_anonymous true")
        if self.acl is not None:
            (self.dir / "acl").write_text(self.acl)
            lines.append(f"acl_file {self.dir / 'acl'}")
        conf = self.dir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n" + self.extra)
        return conf

    def start(self, timeout=10):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        conf = self._conf()
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + scaled(timeout)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited {self.proc.returncode}: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto does not listen on {self.port}: {self.log()}")

    def stop(self, timeout=10):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: with persistence, the retained messages are saved
            try:
                self.proc.wait(timeout=scaled(timeout))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=scaled(timeout))
        self.proc = None
        if self.logf is not None:
            self.logf.close()
            self.logf = None

    def restart(self, down_for=0.0):
        """Stops the broker, waits down_for seconds, starts it again on the same port."""
        self.stop()
        time.sleep(down_for)
        for _ in range(int(scaled(10) / 0.1)):  # the port may linger a moment
            try:
                return self.start()
            except RuntimeError:
                self.stop()
                time.sleep(0.1)
        return self.start()

    def log(self):
        """What mosquitto logged so far (with debug_log, every packet)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0
