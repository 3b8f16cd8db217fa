#!/bin/bash
# The whole test suite, from a fresh Debian bookworm machine (run as root: it installs packages).
#
#   tests/run.sh            everything: host, qemu-aarch64 and qemu-armv7 (unit tests and the
#                           config corpus under qemu-user), the minimal host build, pytest
#                           integration tests (host, and one ARM board's binary under
#                           qemu-user, which also boots the qemu board images), the fuzzers for
#                           a bounded time, and builds of the real boards (rpi4,
#                           beaglebone-black) checked under qemu-user with their CPU
#   ML_ARM_PYTEST_BOARD=B   the board whose binary the integration suite also runs against
#                           (default qemu-aarch64; any board with a qemu.conf)
#   ML_FUZZ_SECONDS=N       seconds per fuzz target (default 30; tests/fuzz/long.sh runs 10 M each)
#   ML_ASAN=0               skip the sanitizer stage (host only; default on): meshlet and its
#                           libraries (lws, nghttp2, mbedTLS, nanopb, inih) built with ASan + UBSan
#                           in build/asan, its unit tests and the pytest integration suite run
#                           against it; any sanitizer report (build/asan/reports) fails the run
#   ML_BOARDS="host ..."    only these boards (default: all under boards/)
#
# Ends with one line "N passed, N failed" over every test case run, and exits non-zero when
# anything failed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="/usr/bin:$PATH" # Debian's python3 (kconfiglib, grpcio), not a pyenv one

"$ROOT/firmware/setup-host.sh" --qemu-system

FUZZ_SECONDS=${ML_FUZZ_SECONDS:-30}
BOARDS=${ML_BOARDS:-"host qemu-aarch64 qemu-armv7 rpi4 beaglebone-black"}
# Boards whose unit tests and corpus run (under qemu-user when cross); the others only build and
# answer `meshlet version` under qemu-user with their own CPU.
TESTED_BOARDS="host qemu-aarch64 qemu-armv7"

passed=0
failed=0
failures=()

count_ctest() { # LOG: "100% tests passed, 0 tests failed out of 41"
    local line n_failed n_total
    line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$1" | tail -1 || true)
    if [ -z "$line" ]; then
        failed=$((failed + 1))
        return
    fi
    n_failed=$(echo "$line" | sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/')
    n_total=$(echo "$line" | sed -E 's/.* failed out of ([0-9]+).*/\1/')
    passed=$((passed + n_total - n_failed))
    failed=$((failed + n_failed))
}

count_pytest() { # LOG: "3 failed, 120 passed, 2 errors in 300.12s"
    local line p f n
    line=$(grep -E '^[0-9]+ passed|^=+ .*(passed|failed)|^[0-9]+ (failed|errors?)' "$1" | tail -1 || true)
    p=$(echo "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || echo 0)
    f=0
    for n in $(echo "$line" | grep -oE '[0-9]+ (failed|errors?)' | grep -oE '^[0-9]+' || true); do
        f=$((f + n))
    done
    passed=$((passed + ${p:-0}))
    failed=$((failed + f))
    if [ -z "$line" ]; then failed=$((failed + 1)); fi
}

stage() { # NAME COMMAND...: run, log to build/logs/NAME.log, record the outcome
    local name=$1 log
    shift
    log="$ROOT/build/logs/$name.log"
    mkdir -p "$ROOT/build/logs"
    echo "=== $name: $*"
    local t0=$SECONDS
    if "$@" >"$log" 2>&1; then
        echo "=== $name: ok ($((SECONDS - t0)) s)"
        return 0
    fi
    echo "=== $name: FAILED ($((SECONDS - t0)) s); last lines of $log:"
    tail -40 "$log"
    failures+=("$name")
    return 1
}

build_board() { # BOARD
    cmake -S "$ROOT" -B "$ROOT/build/$1" -G Ninja -DML_BOARD="$1" &&
        cmake --build "$ROOT/build/$1"
}

arm_pytest() { # BOARD: the integration suite against a board's binary, under its qemu-user
    env ML_MESHLET="$ROOT/build/$1/meshlet" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
        -n "${ML_ARM_PYTEST_JOBS:-4}" "$ROOT/tests/integration"
}

build_minimal() { # BOARD: the board with boards/minimal.conf merged over its defconfig
    cmake -S "$ROOT" -B "$ROOT/build/$1-min" -G Ninja -DML_BOARD="$1" -DML_MINIMAL=ON &&
        cmake --build "$ROOT/build/$1-min"
}

version_under_qemu() { # BOARD: the binary starts on the board's CPU and says what it is
    # shellcheck disable=SC1090
    . "$ROOT/boards/$1/qemu.conf"
    $QEMU_USER "$ROOT/build/$1/meshlet" version | tee /dev/stderr | grep -q "board: $1"
}

# ---- the sanitizer stage (host) ----------------------------------------------------------------
# ASan + UBSan over meshlet AND its libraries (firmware/deps/build.sh --sanitize builds them; the
# prefix is cached like the plain one). Every sanitized process writes its report to a file of
# its own under $ASAN_REPORTS (log_path: integration tests read meshlet's stderr, and a report
# must survive the process being killed), and the stage fails on any report, whichever test
# met it. UBSan aborts (-fno-sanitize-recover=all at compile time; halt_on_error for the
# runtime). Leak checks run at a normal exit: conftest.py (ML_SANITIZE=1) ends meshlet with
# SIGINT, not SIGKILL.
ASAN_BUILD="$ROOT/build/asan"
ASAN_REPORTS="$ASAN_BUILD/reports"

build_asan() {
    CC=clang cmake -S "$ROOT" -B "$ASAN_BUILD" -G Ninja -DML_BOARD=host -DML_SANITIZE=ON &&
        cmake --build "$ASAN_BUILD" -j2
}

with_sanitizers() { # COMMAND...: run with the sanitizer options the stage needs
    env ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:disable_coredump=1:strict_string_checks=1:check_initialization_order=1:log_path=$ASAN_REPORTS/report" \
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$ASAN_REPORTS/report" \
        LSAN_OPTIONS="report_objects=1" \
        ML_SANITIZE=1 ML_TIMEOUT_SCALE="${ML_TIMEOUT_SCALE:-3}" "$@"
}

check_reports() { # NAME: 0 if no sanitizer report was written; else print them (abridged)
    local n=0 f
    for f in "$ASAN_REPORTS"/*; do
        [ -s "$f" ] || continue
        n=$((n + 1))
        echo "--- $f"
        head -60 "$f"
    done
    echo "$1: $n sanitizer report(s) in $ASAN_REPORTS"
    [ "$n" -eq 0 ]
}

sanitizer_stages() {
    if ! stage build-asan build_asan; then
        failed=$((failed + 1))
        return
    fi
    rm -rf "$ASAN_REPORTS"
    mkdir -p "$ASAN_REPORTS"
    stage ctest-asan with_sanitizers ctest --test-dir "$ASAN_BUILD" --output-on-failure -j2 || true
    count_ctest "$ROOT/build/logs/ctest-asan.log"
    grep -E 'tests passed|Failed|\*\*\*' "$ROOT/build/logs/ctest-asan.log" | tail -5 || true
    if [ -d "$ROOT/tests/integration" ]; then
        stage pytest-asan with_sanitizers env ML_MESHLET="$ASAN_BUILD/meshlet" \
            /usr/bin/python3 -m pytest -q -p no:cacheprovider "$ROOT/tests/integration" || true
        tail -3 "$ROOT/build/logs/pytest-asan.log"
        count_pytest "$ROOT/build/logs/pytest-asan.log"
    fi
    # One case more in the total: "no process met a sanitizer error or leaked".
    if stage asan-reports check_reports asan; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
}

for board in $BOARDS; do
    if ! stage "build-$board" build_board "$board"; then
        failed=$((failed + 1))
        continue
    fi
    grep -h "meshlet ($board):" "$ROOT/build/logs/build-$board.log" || true
    case " $TESTED_BOARDS " in
    *" $board "*)
        stage "ctest-$board" ctest --test-dir "$ROOT/build/$board" --output-on-failure -j2 || true
        count_ctest "$ROOT/build/logs/ctest-$board.log"
        grep -E 'tests passed|Failed|\*\*\*' "$ROOT/build/logs/ctest-$board.log" | tail -5 || true
        ;;
    *)
        if stage "version-$board" version_under_qemu "$board"; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
        fi
        ;;
    esac
done

case " $BOARDS " in
*" host "*)
    # The minimal build (boards/minimal.conf: no fleet, controller, admin): Kconfig must leave
    # their code out, and what is left must still serve calls (tests/integration/test_minimal_build.py).
    if stage build-host-min build_minimal host; then
        stage ctest-host-min ctest --test-dir "$ROOT/build/host-min" --output-on-failure -j2 || true
        count_ctest "$ROOT/build/logs/ctest-host-min.log"
        export ML_MESHLET_MINIMAL="$ROOT/build/host-min/meshlet"
    else
        failed=$((failed + 1))
    fi
    if [ -d "$ROOT/tests/integration" ]; then
        stage pytest /usr/bin/python3 -m pytest -q -p no:cacheprovider "$ROOT/tests/integration" || true
        tail -3 "$ROOT/build/logs/pytest.log"
        count_pytest "$ROOT/build/logs/pytest.log"
    fi
    # The integration suite against an ARM board's binary under its qemu-user (conftest.py
    # finds the emulator from the build), in the background beside the sanitizer stage: mostly
    # waiting on emulated processes, -n 4 workers (python3-pytest-xdist).
    ARM_PYTEST_BOARD=${ML_ARM_PYTEST_BOARD:-qemu-aarch64}
    arm_pid=
    case " $BOARDS " in
    *" $ARM_PYTEST_BOARD "*)
        if [ -x "$ROOT/build/$ARM_PYTEST_BOARD/meshlet" ]; then
            stage "pytest-$ARM_PYTEST_BOARD" arm_pytest "$ARM_PYTEST_BOARD" &
            arm_pid=$!
        fi
        ;;
    esac
    if [ "${ML_ASAN:-1}" != 0 ]; then
        sanitizer_stages
    fi
    if [ -n "$arm_pid" ]; then
        # stage ran in a subshell: its outcome comes back through the exit status and the log
        wait "$arm_pid" || failures+=("pytest-$ARM_PYTEST_BOARD")
        tail -3 "$ROOT/build/logs/pytest-$ARM_PYTEST_BOARD.log"
        count_pytest "$ROOT/build/logs/pytest-$ARM_PYTEST_BOARD.log"
    fi
    if [ -x "$ROOT/tests/fuzz/run.sh" ] && [ "$FUZZ_SECONDS" -gt 0 ]; then
        if stage fuzz "$ROOT/tests/fuzz/run.sh" "$FUZZ_SECONDS"; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
        fi
        grep -E '^(fuzz|Done|#[0-9]+ *DONE)' "$ROOT/build/logs/fuzz.log" | tail -5 || true
    fi
    ;;
esac

if [ ${#failures[@]} -gt 0 ]; then
    echo "failed stages: ${failures[*]} (logs in build/logs/)"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ ${#failures[@]} -eq 0 ]
