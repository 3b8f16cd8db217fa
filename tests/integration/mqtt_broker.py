"""A real MQTT broker for the fleet-over-MQTT tests: Debian's mosquitto (2.0) on 127.0.0.1, with
TLS and client certificates (the certificate's CN is the MQTT username, as
runtime/fleet/README.md's broker example says) or a plain listener. Certificates come from
fleet_peers.make_ca / make_leaf (openssl). Every wait is bounded.

    b = MqttBroker(workdir, tls=True, acl=ACL_TEXT)   # port=None: a free one
    b.start(); b.port; b.ca_path; crt, key = b.cert("gw-1")
    b.restart()   # the same port; retained messages survive only with persistence=True
    b.stop()
"""

import os
import socket
import subprocess
import time
from pathlib import Path

from conftest import scaled
from fleet_peers import make_ca, make_leaf

MOSQUITTO = "/usr/sbin/mosquitto"

# runtime/fleet/README.md's ACL, as the docs give it: each node reads only its own pushes and
# writes only its own topics; the controller (certificate CN meshlet-controller) everything.
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
    def __init__(self, workdir, tls=True, acl=None, port=None, persistence=False):
        self.dir = Path(workdir) / f"mqtt-broker-{id(self):x}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.acl = acl
        self.port = port or _free_port()
        self.persistence = persistence
        self.proc = None
        self.log_path = self.dir / "mosquitto.log"
        self.ca_path = None
        if tls:
            make_ca(self.dir, "mqtt-ca")
            make_leaf(self.dir, "broker", "mqtt-ca",
                      "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth")
            self.ca_path = self.dir / "mqtt-ca.crt"
        self._conf = self.dir / "mosquitto.conf"
        self._write_conf()

    def _write_conf(self):
        lines = [
            # as root mosquitto would switch to its own user, who cannot read the test's files
            *(["user root"] if os.geteuid() == 0 else []),
            f"log_dest file {self.log_path}",
            "log_type all",
            "connection_messages true",
        ]
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.dir}/",
                      "autosave_interval 1"]
        else:
            lines.append("persistence false")
        if self.acl is not None:
            (self.dir / "acl").write_text(self.acl)
            lines.append(f"acl_file {self.dir / 'acl'}")
        lines.append(f"listener {self.port} 127.0.0.1")
        if self.tls:
            lines += [
                f"cafile {self.ca_path}",
                f"certfile {self.dir / 'broker.crt'}",
                f"keyfile {self.dir / 'broker.key'}",
                "tls_version tlsv1.2",
                "require_certificate true",
                "use_identity_as_username true",
                "allow_anonymous false",
            ]
        else:
            lines.append("allow_anonymous true")
        self._conf.write_text("\n".join(lines) + "\n")

    def cert(self, name):
        """(crt, key) paths of a client certificate with CN=name, signed by the broker's CA."""
        crt = self.dir / f"client-{name}.crt"
        if not crt.exists():
            make_leaf(self.dir, f"client-{name}", "mqtt-ca", "extendedKeyUsage=clientAuth",
                      cn=name)
        return crt, self.dir / f"client-{name}.key"

    def start(self, timeout=10):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self._conf)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + scaled(timeout)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited {self.proc.returncode}: "
                                   f"{self.proc.stderr.read().decode(errors='replace')}"
                                   f"{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto does not listen on {self.port}: {self.log()}")

    def stop(self, timeout=10):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # SIGTERM: with persistence, the retained messages are saved
        try:
            self.proc.wait(timeout=scaled(timeout))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=scaled(timeout))
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    def restart(self, down_for=0.0):
        """Stops the broker, waits down_for seconds, starts it again on the same port."""
        self.stop()
        time.sleep(down_for)
        for _ in range(int(scaled(10) / 0.1)):  # the port may linger a moment (TIME_WAIT)
            try:
                return self.start()
            except RuntimeError:
                time.sleep(0.1)
        return self.start()

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""
