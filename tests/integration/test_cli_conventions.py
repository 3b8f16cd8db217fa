"""meshlet's command line follows the conventions config/README.md ("Errors and exit codes") states:
--version/-V and --help/-h, usage errors exit 64 (EX_USAGE) with the usage text, `meshlet check -`
reads stdin (FILE is `-` in its lines), and `meshlet check` warns (exit 0) about parts a config
never uses and errs (exit 1) about a state_dir or access_log this machine cannot give the node.
Real processes; the checks that depend on the user run meshlet as `nobody` (tests run as root)."""

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import scaled

VERSION_RE = r"local-[0-9a-f]{12}"


def run(cmd, *args, input=None, cwd=None, as_nobody=False):
    def drop():
        nobody = pwd.getpwnam("nobody")
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)

    return subprocess.run([*cmd, *map(str, args)], input=input, capture_output=True, text=True,
                          errors="replace", timeout=scaled(10), cwd=cwd,
                          stdin=None if input is not None else subprocess.DEVNULL,
                          preexec_fn=drop if as_nobody else None)


def config(node="", extra=""):
    return (
        (f"[node]\n{node}\n" if node else "") +
        "[listener ingress]\nbind = 127.0.0.1:15001\n"
        "\n[route all]\nlistener = ingress\nto = backend\n"
        "\n[cluster backend]\nendpoint = 127.0.0.1:50051\n" + extra)


def line_of(text, needle, nth=1):
    """1-based line number of the nth line of text that starts with needle."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if line.startswith(needle)]
    return hits[nth - 1]


@pytest.fixture
def open_dir():
    """A directory every user may traverse (pytest's own are root's 0700): for checks run as
    nobody."""
    d = tempfile.mkdtemp(prefix="meshlet-cli-")
    os.chmod(d, 0o755)
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def state(workdir):
    d = workdir / "state"
    d.mkdir(mode=0o700)
    return d


# ---- --version, -V, --help, -h --------------------------------------------------------------

@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_flags_print_what_version_prints(meshlet_cmd, flag):
    want = run(meshlet_cmd, "version")
    got = run(meshlet_cmd, flag)
    assert got.returncode == 0 and got.stderr == ""
    assert got.stdout == want.stdout
    assert re.match(r"^meshlet \d+\.\d+\.\d+\S*\n", got.stdout), got.stdout


@pytest.mark.parametrize("flag", ["--help", "-h", "help"])
def test_help_flags_print_the_usage_on_stdout_and_exit_0(meshlet_cmd, flag):
    r = run(meshlet_cmd, flag)
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.startswith("usage: meshlet ")
    for text in ("--version | -V", "--help | -h", "check [--defaults] FILE|-", "exit 64"):
        assert text in r.stdout, text


# ---- usage errors: 64 ------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["--bogus"], ["-c"], ["-c", "x.ini", "extra"], ["check"], ["check", "--bogus"],
    ["check", "a.ini", "b.ini"], ["check", "--defaults", "x"], ["--version", "x"], ["-V", "x"],
    ["-h", "x"], ["--help", "--version"],
], ids=lambda a: " ".join(a))
def test_usage_errors_exit_64_with_the_usage_text_on_stderr(meshlet_cmd, args):
    r = run(meshlet_cmd, *args)
    assert r.returncode == 64, (r.returncode, r.stderr)
    assert r.stdout == ""
    assert "usage: meshlet " in r.stderr
    assert r.stderr.splitlines()[0].startswith("meshlet"), r.stderr


def test_a_config_that_cannot_be_read_is_not_a_usage_error(meshlet_cmd, workdir):
    r = run(meshlet_cmd, "check", workdir / "missing.ini")
    assert r.returncode == 2, r.stderr
    assert "usage:" not in r.stderr


def test_check_double_dash_takes_a_file_named_like_an_option(meshlet_cmd, workdir, state):
    (workdir / "-odd.ini").write_text(config(f"state_dir = {state}"))
    r = run(meshlet_cmd, "check", "--", "-odd.ini", cwd=workdir)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("-odd.ini: ok, version ")


# ---- check - ---------------------------------------------------------------------------------

def test_check_dash_reads_stdin_with_the_version_the_file_would_get(meshlet_cmd, workdir, state):
    text = config(f"state_dir = {state}")
    path = workdir / "same.ini"
    path.write_text(text)
    from_file = run(meshlet_cmd, "check", path)
    from_stdin = run(meshlet_cmd, "check", "-", input=text)
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert from_stdin.stderr == ""
    m = re.fullmatch(rf"-: ok, version ({VERSION_RE}): 1 listener, 1 route, 1 cluster, "
                     r"1 endpoint\n", from_stdin.stdout)
    assert m, from_stdin.stdout
    assert m.group(1) in from_file.stdout


def test_check_dash_names_stdin_dash_in_error_lines_and_exits_1(meshlet_cmd):
    text = config() + "max_pending = lots\n"
    r = run(meshlet_cmd, "check", "-", input=text)
    assert r.returncode == 1, r.stderr
    n = line_of(text, "max_pending")
    assert re.fullmatch(rf"-:{n}: \[cluster backend\] max_pending: expected .*, got \"lots\"\n",
                        r.stderr), r.stderr


def test_check_dash_refuses_more_than_the_config_cap_and_exits_2(meshlet_cmd):
    text = config() + "; " + "x" * (1 << 20) + "\n"
    r = run(meshlet_cmd, "check", "-", input=text)
    assert r.returncode == 2, r.stderr
    assert re.fullmatch(r"-: expected at most \d+ bytes \(CONFIG_ML_MAX_CONFIG_BYTES\), got more\n",
                        r.stderr), r.stderr


def test_check_dash_with_empty_stdin_is_checked_like_an_empty_file(meshlet_cmd, workdir):
    (workdir / "empty.ini").write_text("")
    want = run(meshlet_cmd, "check", workdir / "empty.ini")
    got = run(meshlet_cmd, "check", "-", input="")
    assert got.returncode == want.returncode
    assert got.stderr == want.stderr.replace(str(workdir / "empty.ini"), "-")


# ---- check: warnings, exit 0 -----------------------------------------------------------------

def warnings(stderr, file="-"):
    out = []
    for line in stderr.splitlines():
        m = re.fullmatch(rf"{re.escape(file)}:(\d+): warning: (.*)", line)
        assert m, f"not a FILE:LINE: warning: line: {line!r}"
        out.append((int(m.group(1)), m.group(2)))
    return out


def test_check_warns_about_a_cluster_no_route_uses(meshlet_cmd, state):
    text = config(f"state_dir = {state}", "\n[cluster spare]\nendpoint = 127.0.0.1:50052\n")
    r = run(meshlet_cmd, "check", "-", input=text)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("-: ok, version ")
    assert warnings(r.stderr) == [(line_of(text, "[cluster spare]"),
                                   "[cluster spare]: no route sends calls to it")]


def test_a_cluster_used_only_by_a_weighted_split_is_used(meshlet_cmd, state):
    text = config(f"state_dir = {state}",
                  "\n[cluster canary]\nendpoint = 127.0.0.1:50052\n"
                  "\n[route split]\nlistener = ingress\nprefix = /svc.A/\n"
                  "to = backend 90, canary 10\n")
    # the split route comes after the catch-all: it is shadowed, the cluster is not unused
    r = run(meshlet_cmd, "check", "-", input=text)
    assert r.returncode == 0, r.stderr
    assert [w for _, w in warnings(r.stderr) if "cluster" in w.split(":")[0]] == []


def test_check_warns_about_a_listener_without_routes(meshlet_cmd, state):
    text = config(f"state_dir = {state}", "\n[listener side]\nbind = 127.0.0.1:15002\n")
    r = run(meshlet_cmd, "check", "-", input=text)
    assert r.returncode == 0, r.stderr
    got = warnings(r.stderr)
    assert len(got) == 1, got
    assert got[0][0] == line_of(text, "[listener side]")
    assert got[0][1].startswith("[listener side]: no route is attached to it")


SHADOWED = {
    "catch-all first": ("", "prefix = /svc.A/"),
    "same prefix": ("prefix = /svc.A/", "prefix = /svc.A/"),
    "shorter prefix covers a longer one": ("prefix = /svc.", "prefix = /svc.A/"),
    "prefix covers a path": ("prefix = /svc.A/", "path = /svc.A/Get"),
    "same path": ("path = /svc.A/Get", "path = /svc.A/Get"),
    "fewer headers": ("header = x-canary", "header = x-canary: 1\nheader = x-user: a"),
    "same header value": ("header = x-canary: 1", "header = x-canary: 1"),
    "any authority": ("authority = *", "authority = api.example.com"),
}


@pytest.mark.parametrize("first,second", SHADOWED.values(), ids=SHADOWED.keys())
def test_check_warns_about_a_route_an_earlier_one_shadows(meshlet_cmd, state, first, second):
    text = (f"[node]\nstate_dir = {state}\n"
            "[listener ingress]\nbind = 127.0.0.1:15001\n"
            f"\n[route early]\nlistener = ingress\n{first}\nto = backend\n"
            f"\n[route late]\nlistener = ingress\n{second}\nto = backend\n"
            "\n[cluster backend]\nendpoint = 127.0.0.1:50051\n")
    r = run(meshlet_cmd, "check", "-", input=text)
    assert r.returncode == 0, r.stderr
    early, late = line_of(text, "[route early]"), line_of(text, "[route late]")
    assert warnings(r.stderr) == [
        (late, f"[route late]: never matches: [route early] (line {early}) comes first on "
               "listener ingress and matches every call it would")], r.stderr


NOT_SHADOWED = {
    "longer prefix first": ("prefix = /svc.A/", "prefix = /svc."),
    "other path": ("path = /svc.A/Get", "path = /svc.A/Put"),
    "path before prefix": ("path = /svc.A/Get", "prefix = /svc.A/"),
    "header the later lacks": ("header = x-canary", "prefix = /"),
    "other header value": ("header = x-canary: 1", "header = x-canary: 2"),
    "value vs presence": ("header = x-canary: 1", "header = x-canary"),
    "other authority": ("authority = a.example.com", "authority = b.example.com"),
}


@pytest.mark.parametrize("first,second", NOT_SHADOWED.values(), ids=NOT_SHADOWED.keys())
def test_check_does_not_warn_about_routes_that_can_both_match(meshlet_cmd, state, first, second):
    text = (f"[node]\nstate_dir = {state}\n"
            "[listener ingress]\nbind = 127.0.0.1:15001\n"
            f"\n[route early]\nlistener = ingress\n{first}\nto = backend\n"
            f"\n[route late]\nlistener = ingress\n{second}\nto = backend\n"
            "\n[cluster backend]\nendpoint = 127.0.0.1:50051\n")
    r = run(meshlet_cmd, "check", "-", input=text)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_routes_of_other_listeners_do_not_shadow(meshlet_cmd, state):
    text = (f"[node]\nstate_dir = {state}\n"
            "[listener a]\nbind = 127.0.0.1:15001\n[listener b]\nbind = 127.0.0.1:15002\n"
            "[route ra]\nlistener = a\nto = backend\n[route rb]\nlistener = b\nto = backend\n"
            "[cluster backend]\nendpoint = 127.0.0.1:50051\n")
    r = run(meshlet_cmd, "check", "-", input=text)
    assert r.returncode == 0 and r.stderr == "", r.stderr


# ---- check: paths this machine cannot give the node, exit 1 (an error like any other) -------

def path_error(r, text, key):
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert r.stdout == ""
    n = line_of(text, key)
    assert re.fullmatch(rf"-:{n}: \[node\] {key}: expected .*\n", r.stderr), r.stderr


def test_check_errs_when_state_dir_is_a_file(meshlet_cmd, workdir):
    (workdir / "afile").write_text("x")
    text = config(f"state_dir = {workdir / 'afile'}")
    r = run(meshlet_cmd, "check", "-", input=text)
    path_error(r, text, "state_dir")
    assert "a regular file" in r.stderr


def test_check_errs_when_state_dir_is_under_a_file(meshlet_cmd, workdir):
    (workdir / "afile").write_text("x")
    text = config(f"state_dir = {workdir / 'afile' / 'state'}")
    r = run(meshlet_cmd, "check", "-", input=text)
    path_error(r, text, "state_dir")
    assert "Not a directory" in r.stderr


def test_check_errs_when_state_dir_is_missing_with_its_parent_as_root(meshlet_cmd, workdir):
    missing = workdir / "no" / "state"
    text = config(f"state_dir = {missing}")
    r = run(meshlet_cmd, "check", "-", input=text)
    path_error(r, text, "state_dir")
    assert not (workdir / "no").exists()  # check changes nothing


def test_check_only_warns_about_a_missing_parent_as_another_user(meshlet_cmd, open_dir):
    text = config(f"state_dir = {open_dir / 'no' / 'state'}")
    r = run(meshlet_cmd, "check", "-", input=text, as_nobody=True)
    assert r.returncode == 0, r.stderr
    assert len(warnings(r.stderr)) == 1
    assert "got nothing there" in r.stderr


def test_check_errs_when_its_user_owns_a_state_dir_it_cannot_write(meshlet_cmd, open_dir):
    d = open_dir / "ro-state"
    d.mkdir(mode=0o500)
    nobody = pwd.getpwnam("nobody")
    os.chown(d, nobody.pw_uid, nobody.pw_gid)
    text = config(f"state_dir = {d}")
    r = run(meshlet_cmd, "check", "-", input=text, as_nobody=True)
    path_error(r, text, "state_dir")
    assert "Permission denied" in r.stderr


def test_check_says_nothing_of_another_users_state_dir(meshlet_cmd, open_dir):
    # root's 0700 directory: nobody cannot write it, the node (as root) can
    state = open_dir / "state"
    state.mkdir(mode=0o700)
    text = config(f"state_dir = {state}")
    r = run(meshlet_cmd, "check", "-", input=text, as_nobody=True)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_a_missing_state_dir_in_a_writable_parent_is_fine(meshlet_cmd, workdir):
    text = config(f"state_dir = {workdir / 'new-state'}")
    r = run(meshlet_cmd, "check", "-", input=text)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert not (workdir / "new-state").exists()  # made by the node, not by check


def test_check_errs_when_access_log_is_a_directory(meshlet_cmd, workdir, state):
    text = config(f"state_dir = {state}\naccess_log = {workdir}")
    r = run(meshlet_cmd, "check", "-", input=text)
    path_error(r, text, "access_log")
    assert "a directory" in r.stderr


def test_check_errs_when_access_log_cannot_be_made(meshlet_cmd, workdir, state):
    text = config(f"state_dir = {state}\naccess_log = {workdir / 'no' / 'access.log'}")
    r = run(meshlet_cmd, "check", "-", input=text)
    path_error(r, text, "access_log")
    assert not (workdir / "no").exists()


def test_check_errs_when_its_user_owns_an_access_log_it_cannot_write(meshlet_cmd, open_dir):
    state = open_dir / "state"
    state.mkdir(mode=0o700)
    log = open_dir / "access.log"
    log.write_text("")
    os.chmod(log, 0o444)
    nobody = pwd.getpwnam("nobody")
    os.chown(log, nobody.pw_uid, nobody.pw_gid)
    text = config(f"state_dir = {state}\naccess_log = {log}")
    r = run(meshlet_cmd, "check", "-", input=text, as_nobody=True)
    path_error(r, text, "access_log")


def test_an_access_log_that_does_not_exist_yet_is_fine_and_not_made(meshlet_cmd, workdir, state):
    log = workdir / "access.log"
    text = config(f"state_dir = {state}\naccess_log = {log}")
    r = run(meshlet_cmd, "check", "-", input=text)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert not log.exists()


def test_access_log_to_dev_null_is_fine(meshlet_cmd, state):
    text = config(f"state_dir = {state}\naccess_log = /dev/null")
    r = run(meshlet_cmd, "check", "-", input=text)
    assert r.returncode == 0 and r.stderr == "", r.stderr
