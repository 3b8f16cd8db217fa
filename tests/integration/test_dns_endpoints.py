"""dns = HOST:PORT end to end: a cluster whose endpoints are what a name resolves to.

The name is resolved through /etc/hosts, which the test controls without touching the system's:
meshlet runs in a mount namespace of its own (`unshare -m`, the tests run as root) where a temp
file is bind-mounted over /etc/hosts, and nsswitch.conf says `hosts: files` (a name missing from
the file then fails at once instead of asking a resolver). The backends listen on 127.0.0.1,
127.0.0.2 and 127.0.0.3 (all loopback) on one port, since dns = names one port for all of them.
Rewriting the temp file in place (same inode) changes the answer seen inside the namespace."""

import json
import os
import re
import shlex
import signal
import socket
import threading
import time
import urllib.request
from concurrent import futures

import grpc
import pytest

from conftest import Meshlet, _with_node_defaults, scaled
from grpc_peers import SERVICE, channel, ident, unary
from test_proxy import CALL_TIMEOUT

NAME = "svc.meshlet.test"
REFRESH = "1s"


class AddrBackend:
    """A gRPC server answering Say on ip:port, counting its calls."""

    def __init__(self, ip, port):
        self.ip = ip
        self.calls = 0
        self.lock = threading.Lock()
        self.release = threading.Event()  # Block answers once set
        self.blocked = threading.Event()  # a Block call came in
        handlers = {"Say": grpc.unary_unary_rpc_method_handler(self.say, ident, ident),
                    "Block": grpc.unary_unary_rpc_method_handler(self.block, ident, ident)}
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                                  options=[("grpc.so_reuseport", 0)])
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, handlers),))
        if self.server.add_insecure_port(f"{ip}:{port}") != port:
            raise OSError(f"cannot listen on {ip}:{port}")
        self.server.start()

    def say(self, request, context):
        with self.lock:
            self.calls += 1
        return self.ip.encode()

    def block(self, request, context):
        self.blocked.set()
        self.release.wait(timeout=scaled(20))
        return self.ip.encode()

    def stop(self):
        self.release.set()
        self.server.stop(0).wait(timeout=5)


def _port_free_on_all(ips):
    """A port nothing listens on at any of ips (picked on the first, checked on the others)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind((ips[0], 0))
            port = s.getsockname()[1]
        try:
            for ip in ips:
                with socket.socket() as s:
                    s.bind((ip, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no port free on every address")


@pytest.fixture
def dns_setup(workdir, free_port, meshlet_cmd):
    """→ (start, hosts_file, backends{ip: AddrBackend}, port). start(extra) runs meshlet in its
    own mount namespace with a cluster `svc` (dns = NAME:port) and returns (meshlet, port)."""
    ips = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    port = _port_free_on_all(ips)
    bs = {ip: AddrBackend(ip, port) for ip in ips}
    hosts = workdir / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    nss = workdir / "nsswitch.conf"
    nss.write_text("hosts: files\n")
    started = []
    admin = [None]

    def start(extra=""):
        listen = free_port()
        admin[0] = free_port()
        text = f"[node]\nadmin = 127.0.0.1:{admin[0]}\n\n" + config(listen, extra)
        path = workdir / "meshlet.ini"
        path.write_text(_with_node_defaults(text, workdir / "state", free_port()))
        # meshlet_cmd: the absolute binary (and the emulator, for a cross build)
        script = (f"mount --bind {shlex.quote(str(hosts))} /etc/hosts && "
                  f"mount --bind {shlex.quote(str(nss))} /etc/nsswitch.conf && "
                  f"exec {shlex.join(meshlet_cmd)} -c {shlex.quote(str(path))}")
        m = Meshlet(["unshare", "-m", "sh", "-c", script], path, workdir)
        started.append(m)
        assert m.wait_for_stderr("running", timeout=10), m.stderr
        return m, listen

    def config(listen, extra="", refresh=REFRESH):
        return (f"[listener ingress]\nbind = 127.0.0.1:{listen}\n\n"
                "[route all]\nlistener = ingress\nto = svc\n\n"
                f"[cluster svc]\ndns = {NAME}:{port}\ndns_refresh = {refresh}\n{extra}\n")

    def reapply(m, listen, extra, refresh):
        """Rewrites m's config with extra in [cluster svc] and applies it (SIGHUP)."""
        applied = m.stderr.count("applied version")
        text = m.config_path.read_text()
        head = text[:text.index("[listener ingress]")]
        m.config_path.write_text(head + config(listen, extra, refresh))
        m.send_signal(signal.SIGHUP)
        wait_until(lambda: m.stderr.count("applied version") > applied, "the hot apply", 10)

    start.admin = admin
    start.reapply = reapply
    yield start, hosts, bs, port
    try:
        for m in started:  # a clean exit, resolver included (under ML_SANITIZE: no leak)
            if m.alive():
                m.send_signal(signal.SIGTERM)
                rc = m.wait(timeout=10)
                assert rc == 0, f"meshlet exited {rc} on SIGTERM:\n{m.stderr[-4000:]}"
    finally:
        for m in started:
            m.kill()
    for b in bs.values():
        b.stop()


def answer(hosts, ips):
    """NAME resolves to ips from now on (an empty list: NAME is unknown)."""
    text = "127.0.0.1 localhost\n" + "".join(f"{ip} {NAME}\n" for ip in ips)
    with open(hosts, "r+") as f:  # in place: the bind mount keeps the same inode
        f.seek(0)
        f.write(text)
        f.truncate()


def wait_until(pred, what, timeout=15):
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def dns_stats(start):
    """{"dns_resolutions": n, "dns_failures": n, "dns_hosts": n} of cluster svc, from /stats."""
    url = f"http://127.0.0.1:{start.admin[0]}/stats"
    with urllib.request.urlopen(url, timeout=scaled(5)) as r:
        lines = r.read().decode().splitlines()
    return {k.split(".")[-1]: int(v) for k, v in (line.split() for line in lines)
            if k.startswith("cluster.svc.dns_")}


def counts(bs):
    return {ip: b.calls for ip, b in bs.items()}


def calls_land_only_on(say, bs, ips, n=30):
    """The next n calls all answered by backends in ips (True) or not (False)."""
    return all(say(b"x", timeout=CALL_TIMEOUT).decode() in ips for _ in range(n))


def test_calls_are_balanced_over_the_resolved_addresses(dns_setup):
    start, hosts, bs, _ = dns_setup
    answer(hosts, ["127.0.0.1", "127.0.0.2", "127.0.0.3"])
    m, port = start()
    assert m.wait_for_stderr("dns: new host 127.0.0.3", timeout=10), m.stderr
    with channel(port) as ch:
        say = unary(ch, "Say")
        before = counts(bs)
        for _ in range(300):
            say(b"x", timeout=CALL_TIMEOUT)
    got = {ip: bs[ip].calls - before[ip] for ip in bs}
    # round robin over three hosts of weight 1: exactly a third each
    assert all(n == 100 for n in got.values()), got
    st = dns_stats(start)
    assert st["dns_resolutions"] >= 1 and st["dns_failures"] == 0 and st["dns_hosts"] == 3, st


def test_changed_answer_moves_traffic_without_failing_calls(dns_setup):
    start, hosts, bs, _ = dns_setup
    answer(hosts, ["127.0.0.1", "127.0.0.2"])
    m, port = start()
    assert m.wait_for_stderr("dns: new host 127.0.0.2", timeout=10), m.stderr
    with channel(port) as ch:
        say = unary(ch, "Say")
        assert calls_land_only_on(say, bs, {"127.0.0.1", "127.0.0.2"})
        assert bs["127.0.0.3"].calls == 0
        answer(hosts, ["127.0.0.2", "127.0.0.3"])
        # every call made meanwhile succeeds (say raises otherwise); after dns_refresh the
        # traffic goes to the new set only
        wait_until(lambda: calls_land_only_on(say, bs, {"127.0.0.2", "127.0.0.3"}, n=10),
                   "traffic on the new answer")
        before = counts(bs)
        for _ in range(100):
            say(b"x", timeout=CALL_TIMEOUT)
    got = {ip: bs[ip].calls - before[ip] for ip in bs}
    assert got["127.0.0.1"] == 0 and got["127.0.0.2"] == 50 and got["127.0.0.3"] == 50, got
    assert "dns: 127.0.0.1:" in m.stderr and "is gone" in m.stderr, m.stderr


def test_failed_lookup_keeps_the_last_good_set(dns_setup):
    start, hosts, bs, _ = dns_setup
    answer(hosts, ["127.0.0.2", "127.0.0.3"])
    m, port = start()
    assert m.wait_for_stderr("dns: new host 127.0.0.3", timeout=10), m.stderr
    answer(hosts, [])  # the name is unknown from now on: every lookup fails
    assert m.wait_for_stderr("keeping the 2 hosts of the last answer", timeout=10), m.stderr
    with channel(port) as ch:
        say = unary(ch, "Say")
        before = counts(bs)
        for _ in range(100):
            say(b"x", timeout=CALL_TIMEOUT)
    got = {ip: bs[ip].calls - before[ip] for ip in bs}
    assert got == {"127.0.0.1": 0, "127.0.0.2": 50, "127.0.0.3": 50}, got
    st = dns_stats(start)
    assert st["dns_failures"] >= 1 and st["dns_resolutions"] > st["dns_failures"], st
    assert st["dns_hosts"] == 2, st
    url = f"http://127.0.0.1:{start.admin[0]}/stats/prometheus"
    with urllib.request.urlopen(url, timeout=scaled(5)) as r:
        prom = r.read().decode()
    assert 'meshlet_cluster_dns_hosts{cluster="svc"} 2\n' in prom, prom
    url = f"http://127.0.0.1:{start.admin[0]}/stats.json"
    with urllib.request.urlopen(url, timeout=scaled(5)) as r:
        svc = next(c for c in json.loads(r.read())["clusters"] if c["name"] == "svc")
    assert svc["dns_hosts"] == 2 and svc["dns_failures"] >= st["dns_failures"], svc
    failures = re.search(r'^meshlet_cluster_dns_failures_total\{cluster="svc"\} (\d+)$', prom, re.M)
    assert failures and int(failures.group(1)) >= st["dns_failures"], prom


def test_a_gone_host_finishes_its_calls(dns_setup):
    start, hosts, bs, _ = dns_setup
    answer(hosts, ["127.0.0.1"])
    m, port = start()
    assert m.wait_for_stderr("dns: new host 127.0.0.1", timeout=10), m.stderr
    with channel(port) as ch:
        say = unary(ch, "Say")
        pending = unary(ch, "Block").future(b"x", timeout=scaled(30))
        assert bs["127.0.0.1"].blocked.wait(timeout=scaled(10))
        answer(hosts, ["127.0.0.2"])
        assert m.wait_for_stderr("127.0.0.1:", timeout=10) and \
            m.wait_for_stderr("is gone", timeout=10), m.stderr
        wait_until(lambda: calls_land_only_on(say, bs, {"127.0.0.2"}, n=5), "the new answer")
        assert not pending.done()  # the gone host's call still runs ...
        bs["127.0.0.1"].release.set()
        assert pending.result() == b"127.0.0.1"  # ... and ends well


def test_hot_apply_keeps_the_resolved_hosts(dns_setup):
    start, hosts, bs, _ = dns_setup
    answer(hosts, ["127.0.0.1", "127.0.0.2"])
    m, port = start()
    assert m.wait_for_stderr("dns: new host 127.0.0.2", timeout=10), m.stderr
    # long refresh: after the apply only the hosts carried over can answer
    start.reapply(m, port, "max_requests = 50\n", "1h")
    with channel(port) as ch:
        say = unary(ch, "Say")
        before = counts(bs)
        for _ in range(20):
            say(b"x", timeout=CALL_TIMEOUT)
    got = {ip: bs[ip].calls - before[ip] for ip in bs}
    assert got == {"127.0.0.1": 10, "127.0.0.2": 10, "127.0.0.3": 0}, got
    assert "is gone" not in m.stderr, m.stderr


def test_hosts_a_new_answer_brings_are_health_checked(dns_setup):
    start, hosts, bs, port = dns_setup
    # 127.0.0.4: nothing listens there on the port
    with socket.socket() as s:
        s.bind(("127.0.0.4", port))  # free now; closed again at once
    answer(hosts, ["127.0.0.2"])
    m, listen = start("health_check = tcp\nhealth_interval = 100ms\nhealth_timeout = 50ms\n"
                      "unhealthy_threshold = 1\nhealthy_threshold = 1\n")
    assert m.wait_for_stderr("dns: new host 127.0.0.2", timeout=10), m.stderr
    answer(hosts, ["127.0.0.2", "127.0.0.3", "127.0.0.4"])
    assert m.wait_for_stderr("dns: new host 127.0.0.4", timeout=10), m.stderr
    with channel(listen) as ch:
        say = unary(ch, "Say")
        # the dead address is checked like the others and taken out: then every call succeeds,
        # on the two live hosts only (say raises on a failed call)
        wait_until(lambda: "127.0.0.4:" + str(port) + " is unhealthy" in m.stderr,
                   "the dead host's failed check")
        before = counts(bs)
        for _ in range(40):
            say(b"x", timeout=CALL_TIMEOUT)
    got = {ip: bs[ip].calls - before[ip] for ip in bs}
    assert got == {"127.0.0.1": 0, "127.0.0.2": 20, "127.0.0.3": 20}, got


def test_an_ipv6_literal_in_brackets_resolves_to_itself(run_meshlet, free_port):
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        port6 = s.getsockname()[1]
    b = AddrBackend("[::1]", port6)
    try:
        listen = free_port()
        m = run_meshlet(f"[listener ingress]\nbind = 127.0.0.1:{listen}\n\n"
                        "[route all]\nlistener = ingress\nto = svc\n\n"
                        f"[cluster svc]\ndns = [::1]:{port6}\n")
        assert m.wait_for_stderr(f"dns: new host [::1]:{port6}", timeout=10), m.stderr
        with channel(listen) as ch:
            assert unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT) == b"[::1]"
    finally:
        b.stop()
