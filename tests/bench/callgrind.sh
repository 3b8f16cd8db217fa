#!/bin/bash
# tests/bench/callgrind.sh — instructions per proxied unary gRPC call, meshlet vs nghttpx, under
# callgrind: plaintext (h2c) and TLS listeners, 1 connection x 100 streams and 10 x 10, 100-byte
# calls to the h2_backend backends (tests/bench/callgrind_bench.py). Prints a Markdown table:
# instructions per call for each and the ratio. A benchmark, not a test: CI does not run it.
#
#   tests/bench/callgrind.sh [--short N] [--long N] [--warm N] [--shapes 1x100,10x10]
#                            [--targets meshlet,nghttpx] [--meshlet PATH] [--cap SECONDS] [--keep]
#
# Per shape and listener: a warm-up run, then two measured runs of SHORT (2 000) and LONG
# (12 000) calls between callgrind_control --zero and --dump; the difference over LONG - SHORT
# calls leaves out connection setup and TLS handshakes. Bounded: every h2load run is capped
# (--cap, 300 s); the whole takes ~4-6 minutes on a 2-CPU machine (callgrind runs the proxy ~50x
# slower). Instruction counts are exact: the machine's load changes the time, not the figures.
#
# Installs valgrind, nghttpx and h2load with apt-get if missing (firmware/setup-host.sh --bench),
# builds meshlet's host binary if it is not there and tests/bench/h2_backend.c (build.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export PATH="/usr/bin:/usr/sbin:/bin:/sbin:$PATH"

missing=0
for t in h2load nghttpx openssl; do command -v "$t" >/dev/null || missing=1; done
[ "$missing" = 0 ] || "$ROOT/firmware/setup-host.sh" --bench
command -v valgrind >/dev/null || apt-get install -y -q valgrind >/dev/null
command -v openssl >/dev/null || apt-get install -y -q openssl >/dev/null
if [ ! -x "$ROOT/build/host/meshlet" ]; then
	cmake -S "$ROOT" -B "$ROOT/build/host" -G Ninja -DML_BOARD=host >/dev/null
	cmake --build "$ROOT/build/host" -j2 >/dev/null
fi
"$ROOT/tests/bench/build.sh"
exec /usr/bin/python3 "$ROOT/tests/bench/callgrind_bench.py" "$@"
