"""A controller message that is undecodable or over the fleet message bound, at the sizes where
libwebsockets 4.3.5 used to keep parsing into a receive buffer it had given up (a multiple of its
16 KiB receive chunk, and anything from about 80 KiB up): the node must stay up, keep serving
gRPC calls, count a protocol error and reconnect on the backoff. Also: the largest config that
`meshlet check` accepts fits in a push (the fleet message bound covers the config bound plus the
envelope), and is applied and acknowledged.

The hostile controller is fleet_peers.PyController: its first connection gets the bad message
(followed at once by a small valid one, so that more bytes sit behind it in the node's receive
chunk); later connections behave."""

import re
import time
import urllib.request

import pytest

import grpc_peers
from conftest import scaled
from fleet_peers import PyController, content_version
from grpc_peers import Backend, channel, unary

CALL_TIMEOUT = scaled(10)
PREFIX = f"/{grpc_peers.SERVICE}/"
KIB = 1024

# An unterminated varint (0xff...) is never an Envelope, whatever its length.
UNDECODABLE = b"\xff"
# An envelope of a kind the node does not know (field 6, empty): valid, ignored.
UNKNOWN_KIND = b"\x32\x00"


@pytest.fixture
def backend():
    b = Backend("A")
    yield b
    b.stop()


@pytest.fixture
def controller(free_port):
    started = []

    def start(**kw):
        c = PyController(free_port(), **kw)
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()


def node_config(ctl_port, listen, backend_port, node_id="gw-big"):
    return (f"[node]\nid = {node_id}\n\n"
            f"[fleet]\nurl = ws://127.0.0.1:{ctl_port}/fleet/v1\ninsecure = on\n"
            f"backoff = 100ms..400ms\nreport_interval = 5s\n\n"
            f"[listener in]\nbind = 127.0.0.1:{listen}\n\n"
            f"[route all]\nlistener = in\nprefix = {PREFIX}\nto = c\n\n"
            f"[cluster c]\nendpoint = 127.0.0.1:{backend_port}\n")


def admin_port(m):
    text = open(m.config_path).read()
    return int(re.search(r"^admin\s*=\s*127\.0\.0\.1:(\d+)\s*$", text, re.M).group(1))


def stats(m):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port(m)}/stats",
                                timeout=scaled(10)) as r:
        body = r.read().decode()
    return {k: int(v) for k, v in (line.rsplit(" ", 1) for line in body.splitlines()
                                   if line and not line.startswith("#"))}


def calls_succeed(listen, n=4):
    with channel(listen) as ch:
        say = unary(ch, "Say")
        for _ in range(n):
            assert say(b"x", timeout=CALL_TIMEOUT).startswith(b"A:")


def hostile_once(payload):
    """on_connect for PyController: the first connection gets payload (then a valid message
    right behind it) and is held until the node drops it; later ones are served normally."""
    state = {"sent": False}

    async def on_connect(ctl, ws):
        if state["sent"]:
            return True
        state["sent"] = True
        try:
            await ws.send(payload)
            await ws.send(UNKNOWN_KIND)
            await ws.wait_closed()
        except Exception:
            pass
        return False

    return on_connect


SIZES = [k * 16 * KIB for k in range(1, 6)] + [80 * KIB + 1, 10 * 1024 * KIB]


@pytest.mark.parametrize("size", SIZES, ids=[f"{s}B" for s in SIZES])
def test_bad_message_at_rx_chunk_sizes_leaves_the_node_up_and_reconnecting(
        run_meshlet, free_port, backend, controller, kconfig, size):
    ctl = controller(on_connect=hostile_once(UNDECODABLE * size))
    listen = free_port()
    m = run_meshlet(node_config(ctl.port, listen, backend.port))
    assert m.alive(), m.stderr
    # the second connection says Hello: the node dropped the first and came back
    assert ctl.wait_hello(timeout=15), m.stderr
    assert m.alive(), m.stderr
    calls_succeed(listen)
    bound = kconfig["CONFIG_ML_FLEET_MAX_MESSAGE_BYTES"]  # 64 KiB by default
    assert m.wait_for_stderr("undecodable envelope" if size <= bound else "message over"), \
        m.stderr
    assert re.search(r"fleet: c1: connection to ws://\S+ ended after \d+ ms: .*next attempt in "
                     r"\d+ ms", m.stderr), m.stderr
    # the reconnect waited for the backoff (its lower bound is 100 ms)
    assert ctl.connect_times[1] - ctl.connect_times[0] >= 0.1, ctl.connect_times
    st = stats(m)
    assert st["fleet_protocol_errors_total"] == 1, st
    assert st["fleet_connected"] == 1 and st["fleet_connects_total"] == 2, st
    assert st["fleet_pushes_total"] == 0, st
    # a moment later: still up (a late parse of the dropped connection's bytes would show here)
    time.sleep(0.5)
    assert m.alive(), m.stderr
    calls_succeed(listen, 1)


def big_valid_config(base, target_bytes):
    """base plus comment lines, padded to exactly target_bytes."""
    line = "; " + "p" * 97 + "\n"  # 100 bytes
    text = base + "\n"
    while len(text) + len(line) <= target_bytes:
        text += line
    text += ";" + "q" * (target_bytes - len(text) - 2) + "\n"
    assert len(text) == target_bytes
    return text


def test_the_largest_config_is_pushed_applied_and_acked(run_meshlet, free_port, backend,
                                                       controller, meshlet, workdir, kconfig):
    ctl = controller()
    listen = free_port()
    m = run_meshlet(node_config(ctl.port, listen, backend.port))
    assert ctl.wait_hello(), m.stderr
    # what runs, padded to the config bound (60 KiB by default); `meshlet check` accepts it
    running = open(m.config_path).read()
    text = big_valid_config(running, kconfig["CONFIG_ML_MAX_CONFIG_BYTES"])
    path = workdir / "big.ini"
    path.write_text(text)
    r = meshlet("check", str(path))
    assert r.returncode == 0, r.stdout + r.stderr
    answer = ctl.push(text, timeout=15)
    assert answer.WhichOneof("msg") == "ack", answer
    assert answer.ack.version == content_version(text)
    st = stats(m)
    assert st["fleet_protocol_errors_total"] == 0 and st["fleet_connects_total"] == 1, st
    calls_succeed(listen, 1)
