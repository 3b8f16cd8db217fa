#!/bin/bash
# tests/bench/run.sh — benchmark meshlet against nghttpx and HAProxy as per-call gRPC balancers.
# A benchmark, not a test: CI does not run it. Results and how to read them: tests/bench/README.md.
#
#   tests/bench/run.sh [--rounds N] [--n1 N] [--n100 N] [--n10x10 N] [--cap SECONDS] [--no-pin]
#                      [--scenarios 1x1,1x100,10x10] [--sweep] [--pending N] [--conn-mem K]
#                      [--targets direct,meshlet,nghttpx,haproxy] [--meshlet PATH] [--meshlet-b PATH]
#   --meshlet-b PATH   A/B: also run a second meshlet build (target meshlet-b, :15004, admin :15005)
#
# Installs nghttp2-proxy (nghttpx) and haproxy with apt-get if missing (root; through
# firmware/setup-host.sh --bench), builds meshlet's host
# binary if it is not there yet and tests/bench/h2_backend.c (tests/bench/build.sh), then runs
# tests/bench/bench.py, which prints a Markdown table on stdout (progress on stderr).
# Defaults: 4 rounds of 10k (1x1) / 100k (1x100) / 100k (10x10) calls per target, each h2load run
# capped at 60 s (--cap); about 5 minutes on a 2-CPU machine. --rounds 1 for a quick look.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export PATH="/usr/bin:/usr/sbin:/bin:/sbin:$PATH"

# nghttpx, haproxy (and h2load, taskset): firmware/setup-host.sh --bench installs them with apt-get
# (root) when missing, with the build's packages. On a systemd host Debian also starts haproxy.service
# (its default config listens nowhere): `systemctl disable --now haproxy` if you do not want it.
missing=0
for t in h2load nghttpx haproxy taskset; do command -v "$t" >/dev/null || missing=1; done
if [ "$missing" = 1 ]; then
	"$ROOT/firmware/setup-host.sh" --bench
	command -v taskset >/dev/null || { apt-get install -y -q util-linux >/dev/null; }
fi

if [ ! -x "$ROOT/build/host/meshlet" ]; then
	cmake -S "$ROOT" -B "$ROOT/build/host" -G Ninja -DML_BOARD=host >/dev/null
	cmake --build "$ROOT/build/host" >/dev/null
fi
"$ROOT/tests/bench/build.sh"
exec /usr/bin/python3 "$ROOT/tests/bench/bench.py" "$@"
