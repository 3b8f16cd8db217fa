"""[authz LISTENER] (proxy/step_authz.c), end to end with real grpcio peers on both sides: the
matrix of default × allow/deny rules × paths × the peer's principal, first match wins, the
per-rule counters, and that a denied call never reaches the backend.

The peer is a parametrized fixture: today every listener is plaintext, so the only peer is one
without a principal. When listeners speak TLS, a peer with a client certificate plugs in as one
more parameter of `peer` (its principal, and a channel that presents its certificate); every
case below already says what it expects for the principal PRINCIPAL."""

import re
import threading
import time
import urllib.request

import grpc
import pytest

from conftest import scaled
from grpc_peers import SERVICE, channel, client_stream, server_stream, unary
from test_hot_apply import Node
from test_proxy import nghttp

CALL_TIMEOUT = scaled(10)
PRINCIPAL = "spiffe://mesh.local/frontend"
SAY, META = f"/{SERVICE}/Say", f"/{SERVICE}/Meta"


class Peer:
    """A client of the listener: its principal (None: none) and how it opens a channel."""

    def __init__(self, name, principal, open_channel):
        self.name, self.principal, self.open_channel = name, principal, open_channel


@pytest.fixture(params=["plaintext"])
def peer(request):
    # One more parameter per kind of peer once the TLS listener exposes the verified principal:
    # "mtls-frontend" → Peer("mtls-frontend", PRINCIPAL, <channel with its client certificate>).
    if request.param == "plaintext":
        return Peer("plaintext", None, channel)
    raise AssertionError(request.param)


def listener_config(port, admin, backend_port, authz_lines, access_log=None):
    node = f"[node]\nadmin = 127.0.0.1:{admin}\n"
    if access_log is not None:
        node += f"access_log = {access_log}\n"
    return (f"{node}\n[listener ingress]\nbind = 127.0.0.1:{port}\n\n"
            f"[route r]\nlistener = ingress\nto = c\n\n"
            f"[cluster c]\nendpoint = 127.0.0.1:{backend_port}\n\n"
            f"[authz ingress]\n{authz_lines}\n")


def stats(admin):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/stats", timeout=CALL_TIMEOUT) as r:
        return dict(line.rsplit(" ", 1) for line in r.read().decode().splitlines() if line)


def call(peer, port, path):
    """One unary call on path: (grpc code, details or response)."""
    with peer.open_channel(port) as ch:
        m = ch.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            return grpc.StatusCode.OK, m(b"hi", timeout=CALL_TIMEOUT)
        except grpc.RpcError as e:
            return e.code(), e.details()


@pytest.fixture
def authz_node(run_meshlet, free_port, backends):
    """authz_node(authz_lines) → (port, admin, backend): a listener guarded by [authz ingress]."""
    def start(authz_lines, access_log=None):
        b = backends("b0")
        port, admin = free_port(), free_port()
        m = run_meshlet(listener_config(port, admin, b.port, authz_lines, access_log))
        assert m.alive(), m.stderr
        assert m.wait_for_stderr("listening on", timeout=5), m.stderr
        return port, admin, b

    return start


# (rules and default, path, {peer principal: (allowed, deciding rule number from 1 or "default")})
NONE = None
CASES = [
    ("default = deny", SAY, {NONE: (False, "default"), PRINCIPAL: (False, "default")}),
    ("default = allow", SAY, {NONE: (True, "default"), PRINCIPAL: (True, "default")}),
    # an allow "*" is any peer WITH a principal: never a plaintext one
    (f"allow = * -> /{SERVICE}/*\ndefault = deny", SAY,
     {NONE: (False, "default"), PRINCIPAL: (True, 1)}),
    # "-" names the peer without a principal
    (f"allow = - -> /{SERVICE}/*\ndefault = deny", SAY,
     {NONE: (True, 1), PRINCIPAL: (False, "default")}),
    # a deny "*" is every peer, with or without a principal
    (f"deny = * -> {SAY}\ndefault = allow", SAY, {NONE: (False, 1), PRINCIPAL: (False, 1)}),
    (f"deny = * -> {SAY}\ndefault = allow", META, {NONE: (True, "default"),
                                                   PRINCIPAL: (True, "default")}),
    (f"deny = - -> {SAY}\ndefault = allow", SAY, {NONE: (False, 1), PRINCIPAL: (True, "default")}),
    # any other glob matches only a principal
    ("deny = spiffe://mesh.local/* -> *\ndefault = allow", SAY,
     {NONE: (True, "default"), PRINCIPAL: (False, 1)}),
    ("allow = spiffe://mesh.local/* -> *\ndefault = deny", SAY,
     {NONE: (False, "default"), PRINCIPAL: (True, 1)}),
    ("allow = spiffe://other.domain/* -> *\ndefault = deny", SAY,
     {NONE: (False, "default"), PRINCIPAL: (False, "default")}),
    # first match wins, allow and deny alike
    (f"allow = - -> {SAY}\nallow = * -> {SAY}\ndeny = * -> *\ndefault = allow", SAY,
     {NONE: (True, 1), PRINCIPAL: (True, 2)}),
    (f"allow = - -> {SAY}\nallow = * -> {SAY}\ndeny = * -> *\ndefault = allow", META,
     {NONE: (False, 3), PRINCIPAL: (False, 3)}),
    (f"deny = * -> {META}\nallow = - -> *\nallow = * -> *\ndefault = deny", SAY,
     {NONE: (True, 2), PRINCIPAL: (True, 3)}),
    # path globs are case-sensitive and see no query string
    (f"allow = - -> /{SERVICE.lower()}/*\nallow = * -> /{SERVICE.lower()}/*\ndefault = deny", SAY,
     {NONE: (False, "default"), PRINCIPAL: (False, "default")}),
]


@pytest.mark.parametrize("rules,path,expect", CASES,
                         ids=[f"{i}:{c[0].splitlines()[0]}" for i, c in enumerate(CASES)])
def test_authz_matrix(authz_node, peer, rules, path, expect):
    allowed, rule = expect[peer.principal]
    port, admin, b = authz_node(rules)
    code, got = call(peer, port, path)
    where = "default" if rule == "default" else f"rule.{rule}"
    counts = stats(admin)
    if allowed:
        assert code == grpc.StatusCode.OK, (code, got)
        assert b.calls == 1
        assert counts[f"authz.ingress.{where}.allowed"] == "1", counts
    else:
        assert code == grpc.StatusCode.PERMISSION_DENIED, (code, got)
        assert got.startswith("permission denied: [authz ingress] "), got
        assert (f"rule {rule} (" in got) if rule != "default" else ("default = deny" in got), got
        assert b.calls == 0, "a denied call reached the backend"
        assert counts[f"authz.ingress.{where}.denied"] == "1", counts
    # exactly one decision counted, where it was made
    decided = {k: v for k, v in counts.items() if k.startswith("authz.") and v != "0"}
    assert len(decided) == 1, decided


def test_denied_calls_of_every_kind_never_reach_the_backend(authz_node, peer):
    port, admin, b = authz_node(f"deny = * -> /{SERVICE}/*\ndefault = allow")
    with peer.open_channel(port) as ch:
        with pytest.raises(grpc.RpcError) as e:
            unary(ch, "Say")(b"x", timeout=CALL_TIMEOUT)
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as e:
            client_stream(ch, "Sum")(iter([b"a", b"b"]), timeout=CALL_TIMEOUT)
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as e:
            list(server_stream(ch, "Repeat")(b"3 x", timeout=CALL_TIMEOUT))
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as e:
            ch.stream_stream(f"/{SERVICE}/Chat", request_serializer=lambda x: x,
                             response_deserializer=lambda x: x)(iter([b"a"]),
                                                                timeout=CALL_TIMEOUT).next()
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert e.value.details() == (f"permission denied: [authz ingress] rule 1 "
                                     f"(deny = * -> /{SERVICE}/*)")
    assert b.calls == 0
    assert stats(admin)["authz.ingress.rule.1.denied"] == "4"
    assert stats(admin)["cluster.c.upstream_rq_total"] == "0"


def test_query_string_does_not_dodge_a_deny(authz_node, peer):
    port, admin, b = authz_node("deny = * -> /admin/*\nallow = - -> *\nallow = * -> *\n"
                                "default = deny")
    out = nghttp(f"http://127.0.0.1:{port}/admin/reset?x=1")
    assert ":status: 403" in out, out
    assert "permission denied: [authz ingress] rule 1" in out, out
    assert b.calls == 0
    assert stats(admin)["authz.ingress.rule.1.denied"] == "1"


def test_plain_http_request_denied_gets_403(authz_node, peer):
    port, admin, b = authz_node("default = deny")
    out = nghttp(f"http://127.0.0.1:{port}/index.html")
    assert ":status: 403" in out, out
    assert stats(admin)["authz.ingress.default.denied"] == "1"


def test_prometheus_counts_per_rule_and_default(authz_node, peer):
    port, admin, b = authz_node(f"deny = * -> {META}\nallow = - -> {SAY}\ndefault = deny")
    call(peer, port, SAY)
    call(peer, port, META)
    call(peer, port, META)
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/stats/prometheus", timeout=CALL_TIMEOUT) as r:
        text = r.read().decode()
    assert "# TYPE meshlet_authz_rq_denied_total counter" in text, text
    assert 'meshlet_authz_rq_denied_total{listener="ingress",rule="1"} 2' in text, text
    # SAY: rule 2 lets a peer without a principal in; one with a principal falls to the default
    if peer.principal is None:
        assert 'meshlet_authz_rq_allowed_total{listener="ingress",rule="2"} 1' in text, text
        assert 'meshlet_authz_rq_denied_total{listener="ingress",rule="default"} 0' in text, text
    else:
        assert 'meshlet_authz_rq_denied_total{listener="ingress",rule="default"} 1' in text, text


def test_access_log_prints_the_principal(authz_node, peer, workdir):
    log = workdir / "access.log"
    port, admin, b = authz_node("allow = - -> *\nallow = * -> *\ndefault = deny", access_log=log)
    assert call(peer, port, SAY)[0] == grpc.StatusCode.OK
    deadline = time.monotonic() + scaled(5)
    while time.monotonic() < deadline and not (log.exists() and log.read_text()):
        time.sleep(0.02)
    line = log.read_text().splitlines()[0]
    want = "-" if peer.principal is None else peer.principal
    assert re.search(rf" principal={re.escape(want)}$", line), line


def test_a_listener_without_authz_allows_every_call(run_meshlet, free_port, backends):
    b = backends("b0")
    port, admin = free_port(), free_port()
    m = run_meshlet(f"[node]\nadmin = 127.0.0.1:{admin}\n\n[listener ingress]\n"
                    f"bind = 127.0.0.1:{port}\n\n[listener other]\nbind = 127.0.0.1:{free_port()}\n"
                    f"\n[route r]\nlistener = ingress\nto = c\n\n"
                    f"[cluster c]\nendpoint = 127.0.0.1:{b.port}\n\n[authz other]\ndefault = deny\n")
    assert m.wait_for_stderr("listening on", timeout=5), m.stderr
    assert call(Peer("plaintext", None, channel), port, SAY)[0] == grpc.StatusCode.OK
    assert b.calls == 1


def test_hot_apply_new_rules_decide_calls_that_start_after_it(run_meshlet, free_port, backends,
                                                              workdir):
    b = backends("b0")
    port, admin = free_port(), free_port()
    node = Node(run_meshlet, workdir, admin)
    body = (f"[listener ingress]\nbind = 127.0.0.1:{port}\n\n[route r]\nlistener = ingress\n"
            f"to = c\n\n[cluster c]\nendpoint = 127.0.0.1:{b.port}\n\n[authz ingress]\n")
    try:
        node.start(body + "default = allow\n")
        result = {}

        def in_flight():
            with channel(port) as ch:
                result["v"] = unary(ch, "Sleep")(b"1.0", timeout=CALL_TIMEOUT)

        t = threading.Thread(target=in_flight)
        t.start()
        deadline = time.monotonic() + scaled(5)
        while b.calls < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert b.calls == 1
        node.apply(body + f"deny = * -> /{SERVICE}/*\ndefault = allow\n")
        t.join(timeout=CALL_TIMEOUT)
        assert result.get("v") == b"slept", "the call in flight did not finish on its config"
        code, details = call(Peer("plaintext", None, channel), port, SAY)
        assert code == grpc.StatusCode.PERMISSION_DENIED, (code, details)
        assert b.calls == 1
        # an apply that keeps the rule keeps its counters (another config text, the same rule)
        assert node.stats()["authz.ingress.rule.1.denied"] == "1"
        node.apply(body + f"deny = * -> /{SERVICE}/*\ndefault = allow\n; same rule\n")
        assert node.stats()["authz.ingress.rule.1.denied"] == "1"
        assert call(Peer("plaintext", None, channel), port, SAY)[0] == \
            grpc.StatusCode.PERMISSION_DENIED
        assert node.stats()["authz.ingress.rule.1.denied"] == "2"
        # and a bad [authz] is refused like any bad config: the rules in force stay
        node.apply(body + "allow = nonsense\n", expect_ok=False)
        assert call(Peer("plaintext", None, channel), port, SAY)[0] == \
            grpc.StatusCode.PERMISSION_DENIED
        node.apply(body + "default = allow\n")
        assert call(Peer("plaintext", None, channel), port, SAY)[0] == grpc.StatusCode.OK
    finally:
        node.stop()


def test_check_warns_of_an_allow_rule_no_plaintext_peer_can_match(meshlet, workdir):
    path = workdir / "authz.ini"
    path.write_text("[listener l]\nbind = 127.0.0.1:15001\n\n[route r]\nlistener = l\nto = c\n\n"
                    "[cluster c]\nendpoint = 127.0.0.1:50051\n\n"
                    f"[authz l]\nallow = * -> /{SERVICE}/*\nallow = - -> {SAY}\n"
                    "allow = spiffe://mesh.local/* -> *\ndefault = deny\n")
    r = meshlet("check", path)
    assert r.returncode == 0, r.stderr
    warnings = r.stderr.splitlines()
    assert len(warnings) == 2, r.stderr
    assert warnings[0] == (f"{path}:11: warning: [authz l]: rule 1 (allow = * -> /{SERVICE}/*) "
                           "never matches: listener l is plaintext, its peers have no principal "
                           "(allow them with `allow = - -> PATH`)")
    assert warnings[1].startswith(f"{path}:11: warning: [authz l]: rule 3 (allow = "
                                  "spiffe://mesh.local/* -> *) never matches")


def test_meshlets_own_health_answer_comes_before_authz(authz_node, peer):
    port, admin, b = authz_node("deny = * -> *\ndefault = deny")
    code, got = call(peer, port, "/grpc.health.v1.Health/Check")
    assert code == grpc.StatusCode.OK, (code, got)
    assert got == b"\x08\x01"  # SERVING
    assert b.calls == 0
    assert stats(admin)["authz.ingress.rule.1.denied"] == "0"
