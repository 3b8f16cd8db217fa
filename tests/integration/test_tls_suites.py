"""The TLS suites, key exchange groups and certificate kinds a listener negotiates, as mbedTLS is
configured for meshlet (firmware/deps/mbedtls_config.h): every one that configuration keeps is
served to `openssl s_client` restricted to it, and the ones it leaves out (CCM, X448, key
exchanges without forward secrecy) find no common ground. Shows that a smaller mbedTLS still
speaks what clients offer, and that what was left out is really out."""

import subprocess

import pytest

from conftest import scaled
from test_tls_listener import pki, openssl, s_client, tls_meshlet  # noqa: F401 (fixtures)

# A build without ML_TLS refuses tls keys: these are skipped there.
pytestmark = pytest.mark.usefixtures("tls_built")

ECDSA, RSA, P384 = "ecdsa-p256", "rsa", "ecdsa-p384"


def server_cert(pki, kind):
    """(cert, key) for localhost: the fixture's P-256 one, an RSA one or a P-384 one."""
    if kind == ECDSA:
        return pki.server
    if kind == RSA:
        return pki.issue("server-rsa", "localhost", "DNS:localhost,IP:127.0.0.1", rsa=True)
    d = pki.dir
    openssl("ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", "server-p384.key", cwd=d)
    openssl("req", "-new", "-key", "server-p384.key", "-subj", "/CN=localhost", "-out",
            "server-p384.csr", cwd=d)
    (d / "server-p384.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server-p384.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "30", "-sha384", "-extfile", "server-p384.ext", "-out",
            "server-p384.pem", cwd=d)
    return d / "server-p384.pem", d / "server-p384.key"


def handshake(port, pki, *args):
    """s_client's -brief report (stderr) of one handshake that verifies the server."""
    r = s_client(port, "-CAfile", str(pki.ca), "-verify_return_error", "-alpn", "h2", *args)
    return r.returncode, r.stdout + r.stderr


SERVED = [
    # (certificate, s_client arguments, what the report must name)
    (ECDSA, ["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"], "TLS_AES_128_GCM_SHA256"),
    (ECDSA, ["-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384"], "TLS_AES_256_GCM_SHA384"),
    (ECDSA, ["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"],
     "TLS_CHACHA20_POLY1305_SHA256"),
    (ECDSA, ["-tls1_3", "-groups", "X25519"], "X25519"),
    (ECDSA, ["-tls1_3", "-groups", "P-256"], "prime256v1"),
    (ECDSA, ["-tls1_3", "-groups", "P-384"], "secp384r1"),
    (RSA, ["-tls1_3"], "TLSv1.3"),
    (P384, ["-tls1_3"], "TLSv1.3"),
    (ECDSA, ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
     "ECDHE-ECDSA-AES128-GCM-SHA256"),
    (ECDSA, ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"],
     "ECDHE-ECDSA-AES256-GCM-SHA384"),
    (ECDSA, ["-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"],
     "ECDHE-ECDSA-CHACHA20-POLY1305"),
    (RSA, ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"], "ECDHE-RSA-AES128-GCM-SHA256"),
    (RSA, ["-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305"], "ECDHE-RSA-CHACHA20-POLY1305"),
    (P384, ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"],
     "ECDHE-ECDSA-AES256-GCM-SHA384"),
]


@pytest.mark.parametrize("kind,args,named", SERVED,
                         ids=[f"{k}:{' '.join(a)}" for k, a, _ in SERVED])
def test_what_the_configuration_keeps_is_negotiated(pki, tls_meshlet, kind, args, named):
    m, port, admin = tls_meshlet(pki, "on", server_cert(pki, kind))
    rc, out = handshake(port, pki, *args)
    assert rc == 0, out
    assert named in out, out
    assert "Verification: OK" in out, out


LEFT_OUT = [
    (ECDSA, ["-tls1_3", "-ciphersuites", "TLS_AES_128_CCM_SHA256"]),
    (ECDSA, ["-tls1_3", "-groups", "X448"]),
    (ECDSA, ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-CCM"]),
    (RSA, ["-tls1_2", "-cipher", "AES128-GCM-SHA256"]),          # static RSA key exchange
    (RSA, ["-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256"]),  # finite-field DHE
]


@pytest.mark.parametrize("kind,args", LEFT_OUT, ids=[f"{k}:{' '.join(a)}" for k, a in LEFT_OUT])
def test_what_the_configuration_leaves_out_finds_no_common_ground(pki, tls_meshlet, kind, args):
    m, port, admin = tls_meshlet(pki, "on", server_cert(pki, kind))
    rc, out = handshake(port, pki, *args)
    assert rc != 0, out
    # and the listener still serves the next, ordinary client
    rc, out = handshake(port, pki)
    assert rc == 0, out
    assert m.alive(), m.stderr


def test_sanity_s_client_is_there():
    r = subprocess.run(["openssl", "version"], capture_output=True, text=True, timeout=scaled(10))
    assert r.returncode == 0 and r.stdout.startswith("OpenSSL"), r.stdout + r.stderr
