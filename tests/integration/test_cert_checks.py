"""Certificate files in `meshlet check` and on every apply (tls/cert_check.c): readable, PEM that
parses, a key that matches its certificate, not expired (errors at the key's line); expiring
within 7 days, not valid yet, or not chaining to `ca` (warnings, exit 0). The certificates are
made here with openssl: an expired one with `openssl ca -startdate/-enddate` (no faketime)."""

import signal
import subprocess
import time

import pytest

from conftest import scaled


def openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a node key with certificates valid for a year, for 2 days, and expired in 2021; a
    key of no certificate, another CA, a CSR, an encrypted key, a DER certificate."""
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "3650",
            "-subj", "/CN=mesh-ca", cwd=d)
    openssl("req", "-x509", *ec, "-keyout", "ca2.key", "-out", "ca2.pem", "-days", "3650",
            "-subj", "/CN=other-ca", cwd=d)
    openssl("req", *ec, "-keyout", "node.key", "-out", "node.csr", "-subj", "/CN=node1", cwd=d)
    for name, days in (("node.crt", "365"), ("soon.crt", "2")):
        openssl("x509", "-req", "-in", "node.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", name, "-days", days, cwd=d)
    (d / "db").mkdir()
    (d / "db" / "index.txt").write_text("")
    (d / "db" / "serial").write_text("01\n")
    (d / "ca.cnf").write_text("[ca]\ndefault_ca = d\n[d]\ndatabase = db/index.txt\n"
                              "serial = db/serial\nnew_certs_dir = db\ndefault_md = sha256\n"
                              "policy = p\nunique_subject = no\n[p]\ncommonName = supplied\n")
    openssl("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key",
            "-in", "node.csr", "-out", "expired.crt", "-notext",
            "-startdate", "20200101000000Z", "-enddate", "20210101000000Z", cwd=d)
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", "other.key", cwd=d)
    openssl("pkey", "-in", "node.key", "-aes256", "-passout", "pass:secret",
            "-out", "encrypted.key", cwd=d)
    openssl("x509", "-in", "node.crt", "-outform", "DER", "-out", "node.der", cwd=d)
    (d / "garbage.pem").write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n"
                                   "-----END CERTIFICATE-----\n")
    return d


def fleet_config(pki, ca="ca.pem", cert="node.crt", key="node.key"):
    """[fleet] with ca on line 3, cert on line 4, key on line 5."""
    return (f"[fleet]\nurl = wss://127.0.0.1:9/fleet/v1\nca = {pki / ca}\ncert = {pki / cert}\n"
            f"key = {pki / key}\n")


def check(meshlet, workdir, text):
    path = workdir / "certs.ini"
    path.write_text(text)
    return meshlet("check", path), path


def test_good_certificate_key_and_ca_pass_silently(meshlet, workdir, pki):
    r, path = check(meshlet, workdir, fleet_config(pki))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""


@pytest.mark.parametrize("files,line,key,text", [
    ({"cert": "expired.crt"}, 4, "cert", "expired on 2021-01-01T00:00:00Z"),
    ({"key": "other.key"}, 5, "key", "does not match the certificate's public key"),
    ({"key": "encrypted.key"}, 5, "key", "it needs a password"),
    ({"cert": "missing.crt"}, 4, "cert", "expected a readable PEM certificate"),
    ({"ca": "missing.pem"}, 3, "ca", "No such file or directory"),
    ({"cert": "node.der"}, 4, "cert", "no PEM block"),
    ({"cert": "node.csr"}, 4, "cert", "expected a PEM certificate"),
    ({"ca": "garbage.pem"}, 3, "ca", "expected a PEM CA certificate"),
    ({"ca": "other.key"}, 3, "ca", "expected a PEM CA certificate"),
    ({"key": "node.crt"}, 5, "key", "expected a PEM private key"),
], ids=["expired", "key-mismatch", "encrypted-key", "missing-cert", "missing-ca", "der",
        "csr-as-cert", "garbage-ca", "key-as-ca", "cert-as-key"])
def test_bad_certificate_files_are_errors_at_their_key_line(meshlet, workdir, pki, files, line,
                                                           key, text):
    r, path = check(meshlet, workdir, fleet_config(pki, **files))
    assert r.returncode == 1, r.stderr
    errors = [x for x in r.stderr.splitlines() if x]
    assert len(errors) == 1, r.stderr
    assert errors[0].startswith(f"{path}:{line}: [fleet] {key}: "), r.stderr
    assert text in errors[0], r.stderr
    assert r.stdout == ""


def test_a_certificate_expiring_within_7_days_is_a_warning(meshlet, workdir, pki):
    r, path = check(meshlet, workdir, fleet_config(pki, cert="soon.crt"))
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"{path}:4: warning: [fleet] cert: {pki / 'soon.crt'} expires on ")
    hours = int(lines[0].split(" in ")[1].split()[0])
    assert 24 <= hours <= 48, lines[0]


def test_a_certificate_from_another_ca_is_a_warning(meshlet, workdir, pki):
    # ca is what this side's peers chain to: usually the same CA, not necessarily
    r, path = check(meshlet, workdir, fleet_config(pki, ca="ca2.pem"))
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith(f"{path}:4: warning: [fleet] cert: "), r.stderr
    assert "does not chain to" in r.stderr


def test_listener_certificate_files_are_checked_too(meshlet, workdir, pki):
    text = (f"[listener ingress]\nbind = 127.0.0.1:15001\ncert = {pki / 'expired.crt'}\n"
            f"key = {pki / 'other.key'}\n")
    r, path = check(meshlet, workdir, text)
    assert r.returncode == 1
    assert f"{path}:3: [listener ingress] cert: expected a certificate valid now" in r.stderr
    assert f"{path}:4: [listener ingress] key: expected the private key of" in r.stderr


def test_files_in_a_directory_this_machine_lacks_are_not_checked(meshlet, workdir):
    # a config checked off the board it is for (its /etc/meshlet is not here)
    text = ("[fleet]\nurl = wss://127.0.0.1:9/fleet/v1\nca = /no-such-dir/ca.pem\n"
            "cert = /no-such-dir/node.crt\nkey = /no-such-dir/node.key\n")
    r, _ = check(meshlet, workdir, text)
    assert r.returncode == 0, r.stderr


def test_sighup_reads_the_files_again_and_refuses_an_expired_certificate(run_meshlet, workdir,
                                                                         pki, free_port):
    files = workdir / "live"
    files.mkdir()
    for name in ("ca.pem", "node.crt", "node.key"):
        (files / name).write_bytes((pki / name).read_bytes())
    admin = free_port()
    text = (f"[node]\nstate_dir = {workdir / 'state'}\nadmin = 127.0.0.1:{admin}\n\n"
            + fleet_config(files))
    m = run_meshlet(text, defaults=False)
    assert m.alive(), m.stderr
    assert m.wait_for_stderr("running", timeout=5), m.stderr

    def hup_and_wait(word):
        before = m.stderr.count(word)
        m.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + scaled(10)
        while time.monotonic() < deadline and m.stderr.count(word) == before:
            if m.returncode == -signal.SIGHUP:
                pytest.skip("this build does not re-read its config on SIGHUP")
            time.sleep(0.02)
        return m.stderr.count(word) > before

    # rotated under the same path to an expired one: the apply is refused, naming the line.
    # Waits for the line itself: the fleet client's "Connection refused" retries (no controller
    # here) also say "refused", at times of their own (later under an emulator).
    (files / "node.crt").write_bytes((pki / "expired.crt").read_bytes())
    assert hup_and_wait(":8: [fleet] cert: expected a certificate valid now"), m.stderr[-3000:]
    assert "refused, the running config" in m.stderr, m.stderr[-3000:]
    assert m.alive()
    # a good one again: applied
    (files / "node.crt").write_bytes((pki / "node.crt").read_bytes())
    assert hup_and_wait("applied version"), m.stderr[-3000:]
    m.send_signal(signal.SIGTERM)
    assert m.wait(timeout=10) == 0
