"""A node whose client certificate names another node, over MQTT (runtime/fleet/README.md "The
fleet over MQTT"). The broker makes the certificate's CN the MQTT username and its ACL lets a
username use only its own topics, so a node configured as gw-1 with gw-2's certificate can
neither speak nor listen as gw-1, and MQTT 3.1.1 tells it nothing: mosquitto acknowledges the
dropped Hello and grants the subscription it never feeds. meshlet says so up front, in
`meshlet check` (FILE:LINE: warning) and in the running node's log."""

import subprocess
import time

from conftest import scaled
from test_fleet_mqtt import broker, mqtt_controller, mqtt_fleet  # noqa: F401 (fixtures)
from test_fleet_node import data_plane

WARNING = 'warning: [fleet] cert: names "gw-2", not this node\'s id "gw-1"'


def fleet_with_cert_of(b, node_id, cert_of):
    """[fleet] for node_id on broker b, with the client certificate of cert_of."""
    text = mqtt_fleet(b, node_id)
    if cert_of != node_id:
        for mine, theirs in zip(b.cert(node_id), b.cert(cert_of)):
            text = text.replace(str(mine), str(theirs))
    return text


def check(meshlet_cmd, ini):
    return subprocess.run([*meshlet_cmd, "check", str(ini)], capture_output=True, text=True,
                          timeout=scaled(20))


def test_check_warns_at_the_cert_line_when_its_cn_is_not_the_node_id(meshlet_cmd, workdir,
                                                                      broker):  # noqa: F811
    b = broker()
    ini = workdir / "other-cert.ini"
    ini.write_text("[node]\nid = gw-1\n\n" + fleet_with_cert_of(b, "gw-1", "gw-2"))
    cert_line = ini.read_text().splitlines().index(
        next(l for l in ini.read_text().splitlines() if l.startswith("cert = "))) + 1
    r = check(meshlet_cmd, ini)
    assert r.returncode == 0, r  # a warning: a broker may map names another way
    assert f"{ini}:{cert_line}: {WARNING}" in r.stderr, r.stderr

    # its own certificate: nothing to say
    ini.write_text("[node]\nid = gw-1\n\n" + fleet_with_cert_of(b, "gw-1", "gw-1"))
    r = check(meshlet_cmd, ini)
    assert r.returncode == 0 and "names" not in r.stderr, r.stderr


def test_node_with_another_nodes_certificate_warns_and_is_not_heard(
        run_meshlet, free_port, backends, broker, mqtt_controller):  # noqa: F811
    b = broker()
    backend = backends("b1")
    ctl = mqtt_controller(b)
    ctl.follow("gw-1")
    m = run_meshlet("[node]\nid = gw-1\n\n" + fleet_with_cert_of(b, "gw-1", "gw-2") + "\n" +
                    data_plane(free_port(), backend.port))
    assert m.wait_for_stderr('fleet: the client certificate', timeout=10), m.stderr
    assert 'names "gw-2", not this node\'s id "gw-1"' in m.stderr, m.stderr
    # what the warning is about: the broker took the connection (as user gw-2) ...
    deadline = time.monotonic() + scaled(10)
    while "u'gw-2'" not in b.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "as gw-1" in b.log() and "u'gw-2'" in b.log(), b.log()
    # ... and dropped the Hello it published as gw-1
    time.sleep(scaled(1))
    assert ctl.hellos("gw-1") == [], ctl.messages
