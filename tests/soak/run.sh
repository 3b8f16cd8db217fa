#!/usr/bin/env bash
# tests/soak/run.sh — the soak test (not in CI): one meshlet under mixed gRPC traffic, config pushes
# and hostile clients for SOAK_SECONDS (default 600), sampling its RSS and open fds. Pass/fail
# rules and tunables: tests/soak/soak.py's docstring.
#
#   ML_MESHLET=path   the binary (default build/host/meshlet, built here if missing)
#   SOAK_SECONDS=N    length of the run (default 600)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ -z "${ML_MESHLET:-}" ] && [ ! -x "$ROOT/build/host/meshlet" ]; then
	cmake -S "$ROOT" -B "$ROOT/build/host" -G Ninja -DML_BOARD=host
	cmake --build "$ROOT/build/host" -j2
fi
# Debian's python3 has grpcio and h2; the python3 first on PATH may not.
exec /usr/bin/python3 "$ROOT/tests/soak/soak.py"
