"""Install and packages (firmware/README.md, "Install"): `cmake --install` puts every file in its
place under DESTDIR and the prefix; the .deb CPack builds installs into a throw-away root with
dpkg (never into this machine), its installed binary starts and runs with its installed config,
it removes (the conffile stays) and purges (nothing of it stays); lintian finds no error in it.
The build directory is the one of ML_MESHLET (build/host by default)."""

import os
import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import MESHLET, meshlet_command, scaled

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def build_dir():
    build = MESHLET.parent
    if not (build / "cmake_install.cmake").exists():
        pytest.fail(f"{build} is not a configured build directory (no cmake_install.cmake)")
    return build


# A package carries the firmware binary (static, stripped): the sanitizer stage's build is neither,
# so lintian would rightly refuse its .deb. The plain suite runs these.
not_under_sanitizers = pytest.mark.skipif(os.environ.get("ML_SANITIZE") == "1",
                                          reason="the .deb is built from the firmware binary, not "
                                                 "the sanitizer build")


@pytest.fixture(scope="module")
def deb(build_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("package")
    r = subprocess.run(["cpack", "--config", str(build_dir / "CPackConfig.cmake"), "-B", str(out)],
                       capture_output=True, text=True, timeout=scaled(300))
    assert r.returncode == 0, r.stdout + r.stderr
    debs = list(out.glob("meshlet_*.deb"))
    assert len(debs) == 1, r.stdout
    return debs[0]


def install(build_dir, destdir, *args):
    env = dict(os.environ, DESTDIR=str(destdir))
    r = subprocess.run(["cmake", "--install", str(build_dir), *args], env=env,
                       capture_output=True, text=True, timeout=scaled(120))
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_cmake_install_puts_every_file_in_its_place_under_destdir(build_dir, tmp_path):
    d = tmp_path / "dest"
    install(build_dir, d)
    binary = d / "usr" / "bin" / "meshlet"
    assert binary.is_file() and os.access(binary, os.X_OK)
    ini = (d / "etc/meshlet/meshlet.ini").read_bytes()
    assert ini == (ROOT / "config/meshlet.ini").read_bytes()
    unit = (d / "lib/systemd/system/meshlet.service").read_text()
    assert "ExecStart=/usr/bin/meshlet -c /etc/meshlet/meshlet.ini" in unit
    assert "Type=notify" in unit
    assert os.access(d / "usr/share/meshlet/init/openwrt/meshlet", os.X_OK)
    assert "::respawn:/usr/bin/meshlet" in (d / "usr/share/meshlet/init/busybox/inittab.meshlet"
                                            ).read_text()
    for doc in ("README.md", "config.md", "firmware.md", "copyright", "changelog.gz"):
        assert (d / "usr/share/doc/meshlet" / doc).is_file(), doc
    # Every file installed (the manifest names them without DESTDIR) is under DESTDIR, the
    # absolute destinations (/etc, /lib/systemd) included.
    manifest = (build_dir / "install_manifest.txt").read_text().split()
    assert manifest and all((d / p.lstrip("/")).is_file() for p in manifest), manifest
    assert sorted(manifest) == sorted("/" + f for f in files_of(d) if (d / f).is_file())


def test_cmake_install_prefix_moves_what_is_relative_to_it(build_dir, tmp_path):
    d = tmp_path / "dest"
    install(build_dir, d, "--prefix", "/opt/meshlet")
    assert (d / "opt/meshlet/bin/meshlet").is_file()
    assert (d / "opt/meshlet/share/doc/meshlet/README.md").is_file()


def dpkg(root, *args):
    # Maintainer scripts run outside a chroot (the root has no shell) with DPKG_ROOT set: they
    # touch nothing outside the root (firmware/deb/).
    return subprocess.run(["dpkg", f"--root={root}", "--force-not-root",
                           "--force-script-chrootless", "--log=/dev/null", *args],
                          capture_output=True, text=True, timeout=scaled(120))


def empty_root(root):
    admin = root / "var" / "lib" / "dpkg"
    for sub in ("info", "updates", "triggers"):
        (admin / sub).mkdir(parents=True)
    (admin / "status").write_text("")
    (admin / "available").write_text("")


def files_of(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if not str(p.relative_to(root)).startswith("var/lib/dpkg"))


def wait_ready(notify, timeout=10):
    notify.settimeout(scaled(timeout))
    while True:
        if b"READY=1" in notify.recv(4096).split(b"\n"):
            return True


# ELF e_machine → Debian's architecture name: the board's toolchain decides the package's.
ELF_MACHINE_TO_DEB = {0x3E: "amd64", 0xB7: "arm64", 0x28: "armhf"}


def deb_arch(binary):
    head = binary.read_bytes()[:20]
    assert head[:4] == b"\x7fELF", binary
    return ELF_MACHINE_TO_DEB.get(int.from_bytes(head[18:20], "little"), "?")


@not_under_sanitizers
def test_deb_installs_starts_removes_and_purges_in_a_throwaway_root(deb, tmp_path, free_port):
    root = tmp_path / "root"
    empty_root(root)
    # --force-architecture: a board's package (arm64, armhf) installs on this host's dpkg too.
    r = dpkg(root, "--force-architecture", "-i", str(deb))
    assert r.returncode == 0, r.stdout + r.stderr
    arch = subprocess.run(["dpkg-deb", "-f", str(deb), "Architecture"], capture_output=True,
                          text=True).stdout.strip()
    assert arch == deb_arch(root / "usr/bin/meshlet")
    assert re.search(r"^Status: install ok installed$", dpkg(root, "-s", "meshlet").stdout, re.M)
    binary = root / "usr/bin/meshlet"
    ini = root / "etc/meshlet/meshlet.ini"
    assert (root / "lib/systemd/system/meshlet.service").is_file()

    # It starts: the installed binary with the installed config, its ports and state_dir moved
    # into the test's reach, tells READY=1 and drains on SIGTERM.
    text = ini.read_text()
    text = text.replace("127.0.0.1:15000", f"127.0.0.1:{free_port()}")
    text = text.replace("127.0.0.1:15001", f"127.0.0.1:{free_port()}")
    text = re.sub(r"(?m)^state_dir = .*$", f"state_dir = {tmp_path / 'state'}", text)
    text = re.sub(r"(?m)^drain_timeout = .*$", "drain_timeout = 0", text)
    run_ini = tmp_path / "run.ini"
    run_ini.write_text(text)
    # the installed copy, under qemu-user for a board's binary
    check = subprocess.run([*meshlet_command(binary), "check", str(run_ini)], capture_output=True,
                           text=True, timeout=scaled(30))
    assert check.returncode == 0, check.stderr
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(tmp_path / "notify"))
        env = dict(os.environ, NOTIFY_SOCKET=str(tmp_path / "notify"))
        p = subprocess.Popen([*meshlet_command(binary), "-c", str(run_ini)], env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        try:
            assert wait_ready(notify)
            p.send_signal(signal.SIGTERM)
            assert p.wait(timeout=scaled(10)) == 0
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stderr.close()

    # Remove: the files go, the conffile stays; purge: it goes too, and so does the state.
    ini.write_text(ini.read_text() + "\n; changed by the admin\n")
    r = dpkg(root, "-r", "meshlet")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not binary.exists()
    assert ini.exists() and "changed by the admin" in ini.read_text()
    (root / "var/lib/meshlet").mkdir(parents=True)
    (root / "var/lib/meshlet/config.state").write_text("saved")
    r = dpkg(root, "-P", "meshlet")
    assert r.returncode == 0, r.stdout + r.stderr
    left = [f for f in files_of(root) if f not in ("var", "var/lib")]
    assert left == [], left
    assert "meshlet" not in dpkg(root, "-l").stdout


@not_under_sanitizers
def test_lintian_finds_no_error_in_the_deb(deb):
    lintian = shutil.which("lintian")
    if lintian is None:
        pytest.fail("lintian missing: run firmware/setup-host.sh")
    r = subprocess.run([lintian, "--no-cfg", "--fail-on", "error", str(deb)], capture_output=True,
                       text=True, timeout=scaled(300))
    errors = [line for line in r.stdout.splitlines() if line.startswith("E:")]
    assert errors == [] and r.returncode == 0, r.stdout + r.stderr
    # Warnings are allowed, and shown (pytest -rA, or a failure above).
    print(r.stdout)
