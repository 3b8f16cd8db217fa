#!/usr/bin/env bash
# tests/soak/run.sh [--asan] — the soak test (not in CI): one meshlet under mixed gRPC traffic,
# config pushes and hostile clients for SOAK_SECONDS (default 600), sampling its RSS and open fds.
# Pass/fail rules and tunables: tests/soak/soak.py's docstring.
#
#   ML_MESHLET=path   the binary (default build/host/meshlet, built here if missing)
#   SOAK_SECONDS=N    length of the run (default 600)
#   --asan            against the sanitizer build (build/asan/meshlet, built here if missing):
#                     every report (build/asan/soak-reports) fails the run, leaks included (they
#                     are checked when meshlet exits on SIGTERM). The RSS rule is off (ASan's
#                     quarantine holds freed memory, up to 256 MiB); the fd rule stays.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Debian's python3 has grpcio and h2; the python3 first on PATH may not.
PY=/usr/bin/python3

if [ "${1:-}" = --asan ]; then
	B=$ROOT/build/asan
	if [ ! -x "$B/meshlet" ]; then
		CC=clang cmake -S "$ROOT" -B "$B" -G Ninja -DML_BOARD=host -DML_SANITIZE=ON
		cmake --build "$B" -j2
	fi
	REPORTS=$B/soak-reports
	rm -rf "$REPORTS"
	mkdir -p "$REPORTS"
	rc=0
	ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:disable_coredump=1:log_path=$REPORTS/report" \
		UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$REPORTS/report" \
		ML_MESHLET=$B/meshlet SOAK_RSS_TOLERANCE=${SOAK_RSS_TOLERANCE:-1000} \
		"$PY" "$ROOT/tests/soak/soak.py" || rc=$?
	n=0
	for f in "$REPORTS"/*; do
		[ -s "$f" ] || continue
		n=$((n + 1))
		echo "--- $f"
		head -60 "$f"
	done
	echo "soak: $n sanitizer report(s) in $REPORTS"
	[ "$n" -eq 0 ] || rc=1
	exit "$rc"
fi

if [ -z "${ML_MESHLET:-}" ] && [ ! -x "$ROOT/build/host/meshlet" ]; then
	cmake -S "$ROOT" -B "$ROOT/build/host" -G Ninja -DML_BOARD=host
	cmake --build "$ROOT/build/host" -j2
fi
exec "$PY" "$ROOT/tests/soak/soak.py"
