"""meshlet's command line as config/README.md states it: `version`, `check` (exit 0 usable, 1 invalid,
2 unreadable) and `-c FILE` (1 invalid, 2 unreadable, 3 cannot start; a clean exit on SIGTERM
and SIGINT). Real processes: conftest.py starts them and always kills them."""

import re
import signal
import subprocess
import time

import pytest

from conftest import scaled

VERSION_RE = r"local-[0-9a-f]{12}"
ERROR_LINE_RE = r"^{file}:(\d+): \S"  # FILE:LINE: [SECTION] KEY: ...


def good_config(listen_port=15001, upstream_port=50051):
    return (
        "[listener ingress]\n"
        f"bind = 127.0.0.1:{listen_port}\n"
        "\n"
        "[route all]\n"
        "listener = ingress\n"
        "to = backend\n"
        "\n"
        "[cluster backend]\n"
        f"endpoint = 127.0.0.1:{upstream_port}\n"
    )


def write(dirpath, name, text):
    path = dirpath / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def error_lines(stderr, file):
    """(line, text) of every FILE:LINE: error line; fails on a stderr line of another shape."""
    out = []
    for line in stderr.splitlines():
        m = re.match(ERROR_LINE_RE.format(file=re.escape(str(file))), line)
        assert m, f"not a FILE:LINE: error line: {line!r}"
        out.append((int(m.group(1)), line))
    return out


# ---- meshlet version ------------------------------------------------------------------------

def test_version_lists_board_features_and_the_five_libraries(meshlet):
    r = meshlet("version")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert re.match(r"^meshlet \d+\.\d+\.\d+\S*$", lines[0]), lines
    fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    assert re.fullmatch(r"[A-Za-z0-9._-]+", fields.get("board", "")), lines
    assert fields.get("features", "").split(), f"no features listed: {lines}"
    libraries = [lib.strip() for lib in fields.get("libraries", "").split(",")]
    names = [lib.split()[0] for lib in libraries if lib]
    assert names == ["libwebsockets", "mbedTLS", "nghttp2", "nanopb", "inih"], libraries
    for lib in libraries:
        assert re.search(r" r?\d+(\.\d+)*$", lib), f"no version in {lib!r}"


# ---- meshlet check: exit 0 ------------------------------------------------------------------

def test_check_good_config_prints_one_line_summary_and_exits_0(meshlet, workdir):
    path = write(workdir, "good.ini", good_config())
    r = meshlet("check", path)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert re.fullmatch(
        rf"{re.escape(str(path))}: ok, version {VERSION_RE}: "
        r"1 listener, 1 route, 1 cluster, 1 endpoint\n", r.stdout), r.stdout


def test_check_summary_counts_every_section_and_says_fleet_managed(meshlet, workdir):
    text = good_config() + (
        "endpoint = 127.0.0.2:50051 weight=3\n"
        "\n[cluster other]\nendpoint = 127.0.0.3:50051\n"
        "\n[listener second]\nbind = [::1]:15002\n"
        "\n[route canary]\nlistener = second\nto = backend 90, other 10\n"
        "\n[fleet]\nurl = ws://127.0.0.1:9443/fleet/v1\ninsecure = on\n")
    path = write(workdir, "bigger.ini", text)
    r = meshlet("check", path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith(
        ": 2 listeners, 2 routes, 2 clusters, 3 endpoints, fleet-managed\n"), r.stdout


def test_check_version_is_a_hash_of_the_text(meshlet, workdir):
    a = write(workdir, "a.ini", good_config())
    b = write(workdir, "b.ini", good_config())
    c = write(workdir, "c.ini", good_config(upstream_port=50052))
    versions = []
    for path in (a, b, c):
        r = meshlet("check", path)
        assert r.returncode == 0, r.stderr
        versions.append(re.search(VERSION_RE, r.stdout).group(0))
    assert versions[0] == versions[1]
    assert versions[0] != versions[2]


def test_check_defaults_prints_every_section_kind(meshlet):
    r = meshlet("check", "--defaults")
    assert r.returncode == 0, r.stderr
    for header in ("[node]", "[fleet]", "[listener NAME]", "[route NAME]", "[cluster NAME]",
                   "[authz NAME]"):
        assert header in r.stdout.splitlines(), header
    assert "lb = round_robin" in r.stdout.splitlines()


# ---- meshlet check: exit 1 ------------------------------------------------------------------

def test_check_invalid_value_prints_file_line_section_key_and_exits_1(meshlet, workdir):
    text = good_config() + "\n[cluster greeter]\nendpoint = 10.0.0.5:50051\n" \
                           "max_streams_per_connection = lots\n"
    path = write(workdir, "bad.ini", text)
    line = text.splitlines().index("max_streams_per_connection = lots") + 1
    r = meshlet("check", path)
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.splitlines() == [
        f'{path}:{line}: [cluster greeter] max_streams_per_connection: '
        f'expected 1..2147483647, got "lots"']


def test_check_reports_every_error_in_line_order(meshlet, workdir):
    text = ("[node]\n"
            "log = loud\n"                       # 2: bad enum
            "[listener l]\n"
            "bind = localhost:80\n"              # 4: not an IP literal
            "colour = blue\n"                    # 5: unknown key
            "[route r]\n"                        # 6: listener and to missing
            "prefix = /a/\n"
            "[cluster c]\n"                      # 8: no endpoints
            "lb = fastest\n")                    # 9: bad enum
    path = write(workdir, "many.ini", text)
    r = meshlet("check", path)
    assert r.returncode == 1
    errors = error_lines(r.stderr, path)
    assert [n for n, _ in errors] == [2, 4, 5, 6, 6, 8, 9], r.stderr
    assert "[node] log: expected error, warn, info or debug" in errors[0][1]
    assert "[route r] listener: expected this key (required)" in r.stderr
    assert "[route r] to: expected this key (required)" in r.stderr


def test_check_dangling_reference_is_reported_on_the_key_that_names_it(meshlet, workdir):
    text = good_config().replace("to = backend", "to = nowhere")
    path = write(workdir, "dangling.ini", text)
    line = text.splitlines().index("to = nowhere") + 1
    r = meshlet("check", path)
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f'{path}:{line}: [route all] to: expected the name of a [cluster] section, got "nowhere"']


def test_check_names_the_file_as_given_on_the_command_line(meshlet, workdir):
    (workdir / "conf").mkdir()
    write(workdir / "conf", "x.ini", "[node]\nlog = loud\n")
    r = meshlet("check", "conf/x.ini")  # relative to the test's directory (meshlet's cwd)
    assert r.returncode == 1
    assert r.stderr.startswith("conf/x.ini:2: [node] log: "), r.stderr


def test_check_config_with_every_key_wrong_reports_many_errors_without_crashing(meshlet, workdir):
    # Every key of every section kind (from --defaults), each with a value no key takes: a
    # control byte makes even paths wrong.
    defaults = meshlet("check", "--defaults")
    assert defaults.returncode == 0
    out, n_keys = [], 0
    for line in defaults.stdout.splitlines():
        header = re.match(r"^\[(\w+)( NAME)?\]$", line)
        key = re.match(r"^;?([a-z_]+) =", line)
        if header:
            out.append(f"[{header.group(1)}{' x' if header.group(2) else ''}]")
        elif key:
            out.append(f"{key.group(1)} = \x01wrong")
            n_keys += 1
    assert n_keys > 40, defaults.stdout
    path = write(workdir, "all-wrong.ini", "\n".join(out) + "\n")
    r = meshlet("check", path)
    assert r.returncode == 1, f"exit {r.returncode} (a negative one is a signal): {r.stderr}"
    errors = error_lines(r.stderr, path)
    # health_service takes any text; every other key is refused where it stands.
    assert len(errors) >= n_keys - 1, r.stderr
    assert "\x01" not in r.stderr  # what it got is quoted without control bytes


def test_check_lists_at_most_the_error_cap_then_and_n_more(meshlet, workdir):
    n = 1500
    text = "[node]\n" + "".join(f"unknown_key_{i} = {i}\n" for i in range(n))
    path = write(workdir, "flood.ini", text)
    r = meshlet("check", path)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    m = re.fullmatch(rf"{re.escape(str(path))}: \.\.\. and (\d+) more errors", lines[-1])
    assert m, lines[-1]
    kept = error_lines("\n".join(lines[:-1]), path)
    assert len(kept) + int(m.group(1)) == n
    assert [k for k, _ in kept] == list(range(2, 2 + len(kept)))


@pytest.fixture(scope="session")
def config_size_limit(meshlet_cmd, tmp_path_factory):
    """CONFIG_ML_MAX_CONFIG_BYTES of this build, as meshlet states it for a file past Kconfig's
    largest allowed value (4 MiB)."""
    path = tmp_path_factory.mktemp("limit") / "over.ini"
    path.write_bytes(b"\n" * (4 * 1024 * 1024 + 1))
    r = subprocess.run([*meshlet_cmd, "check", str(path)], capture_output=True, text=True,
                       timeout=scaled(30))
    m = re.search(r"expected at most (\d+) bytes", r.stderr)
    assert r.returncode == 2 and m, r.stderr
    return int(m.group(1))


@pytest.mark.parametrize("head,repeat", [
    ("[listener a]\nbind = 127.0.0.1:1\n[authz a]\n", "deny=\n"),
    ("[listener a]\nbind = 127.0.0.1:1\n[authz a]\n", "allow=*->*\n"),
    ("[route r]\n", "header=\n"),
    ("[cluster c]\n", "endpoint=\n"),
    ("[node]\n", "x\n"),
    ("[node]\n", "no_such_key = 1\n"),
], ids=["deny", "allow", "header", "endpoint", "bare-words", "unknown-keys"])
def test_check_config_at_the_size_limit_lists_its_errors_not_out_of_memory(
        meshlet, workdir, config_size_limit, head, repeat):
    # The worst texts for the parser's memory: one entry (or error) per few bytes, up to the
    # largest file accepted. Each is invalid and must be reported as such (exit 1), never as
    # "out of memory" (exit 2).
    text = head + repeat * ((config_size_limit - len(head)) // len(repeat))
    path = write(workdir, "at-limit.ini", text)
    r = meshlet("check", path, timeout=60)
    assert "out of memory" not in r.stderr
    assert r.returncode == 1, r.stderr[-500:]
    assert re.fullmatch(rf"{re.escape(str(path))}: \.\.\. and \d+ more errors",
                        r.stderr.splitlines()[-1]), r.stderr[-500:]


# ---- meshlet check: exit 2 ------------------------------------------------------------------

def test_check_missing_file_exits_2_with_the_reason(meshlet, workdir):
    path = workdir / "missing.ini"
    r = meshlet("check", path)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.strip() == f"{path}: cannot read: No such file or directory"


def test_check_directory_exits_2_with_the_reason(meshlet, workdir):
    r = meshlet("check", workdir)
    assert r.returncode == 2
    assert r.stderr.strip() == f"{workdir}: cannot read: Is a directory"


def test_check_binary_file_exits_2_saying_it_is_not_text(meshlet, workdir):
    path = write(workdir, "binary.ini", b"[node]\nid = a\x00\x01\x02\xff\n" + bytes(range(256)))
    r = meshlet("check", path)
    assert r.returncode == 2
    assert r.stderr.startswith(f"{path}: expected a text file (UTF-8), got a NUL byte"), r.stderr


def test_check_file_over_the_size_limit_exits_2_saying_how_big(meshlet, workdir):
    size = 10 * 1024 * 1024
    path = workdir / "huge.ini"
    with open(path, "wb") as f:
        f.write(b"[node]\n")
        f.write(b"; padding\n" * ((size - 7) // 10))
        f.write(b"\n" * (size - f.tell()))
    r = meshlet("check", path)
    assert r.returncode == 2
    assert re.fullmatch(
        rf"{re.escape(str(path))}: expected at most \d+ bytes \(CONFIG_ML_MAX_CONFIG_BYTES\), "
        rf"got {size} bytes\n", r.stderr), r.stderr


def test_check_without_a_file_prints_usage_and_exits_64(meshlet):
    r = meshlet("check")
    assert r.returncode == 64  # EX_USAGE
    assert "meshlet check [--defaults] FILE|-" in r.stderr


# ---- meshlet -c FILE ------------------------------------------------------------------------

def test_run_with_invalid_config_exits_1_with_the_error_line(run_meshlet):
    m = run_meshlet("[listener l]\nbind = 127.0.0.1:99999\n")
    assert m.wait(timeout=10) == 1
    config = m.config_path.read_text().splitlines()
    line = config.index("bind = 127.0.0.1:99999") + 1
    assert (f"{m.config_path}:{line}: [listener l] bind: expected IP:PORT"
            in m.stderr), m.stderr
    assert "running" not in m.stderr


def test_run_with_missing_config_exits_2(run_meshlet, workdir):
    path = workdir / "nope.ini"
    m = run_meshlet(None, "-c", path)
    assert m.wait(timeout=10) == 2
    assert f"{path}: cannot read: No such file or directory" in m.stderr


def test_run_with_state_dir_under_a_regular_file_exits_3_saying_why(run_meshlet, workdir, free_port):
    (workdir / "plain-file").write_text("not a directory\n")
    state_dir = workdir / "plain-file" / "state"
    m = run_meshlet(f"[node]\nstate_dir = {state_dir}\n" + good_config(free_port(), free_port()))
    assert m.wait(timeout=10) == 3
    assert f"state_dir {state_dir}: cannot create it: Not a directory" in m.stderr, m.stderr
    assert "running" not in m.stderr


def test_run_with_state_dir_that_is_a_file_exits_3_saying_why(run_meshlet, workdir, free_port):
    state_dir = workdir / "plain-file"
    state_dir.write_text("not a directory\n")
    m = run_meshlet(f"[node]\nstate_dir = {state_dir}\n" + good_config(free_port(), free_port()))
    assert m.wait(timeout=10) == 3
    assert f"state_dir {state_dir}: not writable: Not a directory" in m.stderr, m.stderr


def test_run_creates_a_missing_state_dir(run_meshlet, workdir, free_port):
    state_dir = workdir / "fresh-state"
    m = run_meshlet(f"[node]\nstate_dir = {state_dir}\n" + good_config(free_port(), free_port()))
    assert m.alive() and "running" in m.stderr, m.stderr
    assert state_dir.is_dir()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_run_with_good_config_keeps_running_until_signalled_then_exits_0(run_meshlet, free_port,
                                                                          sig):
    m = run_meshlet("[node]\nid = edge-7\n" + good_config(free_port(), free_port()))
    assert m.alive(), f"exited {m.returncode}: {m.stderr}"
    assert re.search(rf"node edge-7: running {re.escape(str(m.config_path))} "
                     rf"\(version {VERSION_RE}\): 1 listener, 1 route, 1 cluster, 1 endpoint",
                     m.stderr), m.stderr
    time.sleep(scaled(0.5))
    assert m.alive(), f"exited {m.returncode} on its own: {m.stderr}"

    m.send_signal(sig)
    t0 = time.monotonic()
    try:
        rc = m.wait(timeout=2)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {scaled(2)}s after {sig.name}: {m.stderr}")
    assert rc == 0, m.stderr
    assert time.monotonic() - t0 <= scaled(2)
    assert f"{sig.name} received" in m.stderr
    assert any(line.endswith(" stopped") for line in m.stderr.splitlines()), m.stderr


# ---- arguments ------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["--bogus"], ["-x"], ["-c"], ["run"], ["-c", "x.ini", "extra"]],
                         ids=lambda a: " ".join(a))
def test_unknown_argument_exits_64_with_usage(meshlet, args):
    r = meshlet(*args)
    assert r.returncode == 64  # EX_USAGE
    assert re.match(r"meshlet: (unknown argument|expected a FILE after) ", r.stderr), r.stderr
    assert "usage: meshlet" in r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("arg", ["-h", "--help", "help"])
def test_help_prints_usage_and_exits_0(meshlet, arg):
    r = meshlet(arg)
    assert r.returncode == 0
    assert r.stdout.startswith("usage: meshlet")
