"""[node] workers = 2 with a TLS listener and a TLS cluster: both loops run handshakes at the
same time. mbedTLS is built with MBEDTLS_THREADING_C (firmware/deps/mbedtls_config.h) because
its PSA key store and random generator, which TLS 1.3 uses, are process-wide; each worker has
its own listener and cluster TLS contexts. Concurrent grpcio TLS clients land on both workers
and every call is answered; under the sanitizer stage this also runs with ASan."""

import concurrent.futures

import grpc
import pytest

from conftest import scaled
from test_tls_cluster import cluster, tls_backend
from test_tls_listener import Pki
from test_workers import (SPREAD_CONNECTIONS, call, get, head, settle_calls, start, stop,
                          worker_metric)

pytestmark = pytest.mark.usefixtures("tls_built")

THREADS = 8


def tls_channel(port, ca):
    creds = grpc.ssl_channel_credentials(root_certificates=ca.read_bytes())
    return grpc.secure_channel(f"127.0.0.1:{port}", creds,
                               options=[("grpc.ssl_target_name_override", "localhost"),
                                        ("grpc.use_local_subchannel_pool", 1)])


def one_call(port, ca, i):
    with tls_channel(port, ca) as ch:
        return call(ch, "Say", b"%d" % i, timeout=scaled(20))


def test_two_workers_serve_concurrent_tls_handshakes(run_meshlet, backends, workdir, free_port):
    pki = Pki(workdir)
    crt, key = pki.issue("server", "localhost", "DNS:localhost,IP:127.0.0.1")
    pki.backend = pki.issue("backend", "greeter", "DNS:localhost")
    a = tls_backend(lambda name, **kw: backends(name, workers=2 * SPREAD_CONNECTIONS, **kw),
                    "a", pki)
    port, admin = free_port(), free_port()
    text = (head(workdir, admin, 2) +
            f"[listener ingress]\nbind = 127.0.0.1:{port}\ntls = on\ncert = {crt}\nkey = {key}\n\n"
            "[route all]\nlistener = ingress\nto = c\n\n"
            + cluster("c", [a.port], pki))
    m = start(run_meshlet, text)
    n = 3 * SPREAD_CONNECTIONS
    with concurrent.futures.ThreadPoolExecutor(THREADS) as ex:
        answers = list(ex.map(lambda i: one_call(port, pki.ca, i), range(n)))
    assert answers == [b"a:%d" % i for i in range(n)]
    settle_calls(admin, n)
    per_worker = worker_metric(admin, "downstream_cx_total")
    assert per_worker.get(0, 0) > 0 and per_worker.get(1, 0) > 0, per_worker
    assert sum(per_worker.values()) == n
    # each worker's pool made its own TLS connections to the backend
    st = dict(line.rsplit(" ", 1) for line in get(admin, "/stats").splitlines() if line)
    assert int(st["cluster.c.upstream_cx_tls_handshake"]) >= 2, st
    stop(m)
