#!/bin/bash
# tests/bench/tls.sh — TLS on the listener: meshlet vs nghttpx vs HAProxy on the same ECDSA P-256
# certificates, mTLS (tests/bench/tls_bench.py). A benchmark, not a test: CI does not run it.
# Results and how to read them: tests/bench/README.md, section "TLS".
#
#   tests/bench/tls.sh [--rounds N] [--secs S] [--clients K] [--n100 N] [--n10 N] [--idle N]
#                      [--targets meshlet,nghttpx,haproxy] [--meshlet PATH] [--no-pin] [--quick]
#
# Full and resumed handshakes per second, mTLS unary calls/s and CPU per 10k calls at 1x100 and
# 10x10, RSS per idle and per active TLS connection. Defaults: 3 interleaved rounds of 5 s of
# handshakes (2 client processes) and 50 000 calls per scenario, 100 held connections: about
# 3 minutes on a 2-CPU machine. --quick: one short round (a smoke run, ~20 s).
#
# Installs the peers with apt-get if missing (firmware/setup-host.sh --bench, as run.sh does) and
# libssl-dev (the OpenSSL headers of the two client helpers), builds meshlet's host binary if it is
# not there, tests/bench/h2_backend.c (build.sh), tests/bench/tls_hs.c (the handshake and
# held-connection client) and tests/bench/tls_client_cert.c (an LD_PRELOAD that gives h2load a
# client certificate) into build/bench.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export PATH="/usr/bin:/usr/sbin:/bin:/sbin:$PATH"

missing=0
for t in h2load nghttpx haproxy taskset openssl; do command -v "$t" >/dev/null || missing=1; done
if [ "$missing" = 1 ]; then
	"$ROOT/firmware/setup-host.sh" --bench
	command -v openssl >/dev/null || apt-get install -y -q openssl >/dev/null
fi
if [ ! -f /usr/include/openssl/ssl.h ]; then
	apt-get install -y -q libssl-dev >/dev/null
fi
if [ ! -x "$ROOT/build/host/meshlet" ]; then
	cmake -S "$ROOT" -B "$ROOT/build/host" -G Ninja -DML_BOARD=host >/dev/null
	cmake --build "$ROOT/build/host" -j2 >/dev/null
fi
"$ROOT/tests/bench/build.sh"
OUT="$ROOT/build/bench"
mkdir -p "$OUT"
if [ ! -x "$OUT/tls_hs" ] || [ "$ROOT/tests/bench/tls_hs.c" -nt "$OUT/tls_hs" ]; then
	cc -O2 -Wall -Wextra -o "$OUT/tls_hs" "$ROOT/tests/bench/tls_hs.c" -lssl -lcrypto
fi
if [ ! -f "$OUT/tls_client_cert.so" ] || [ "$ROOT/tests/bench/tls_client_cert.c" -nt "$OUT/tls_client_cert.so" ]; then
	cc -O2 -Wall -Wextra -shared -fPIC -o "$OUT/tls_client_cert.so" \
		"$ROOT/tests/bench/tls_client_cert.c" -ldl
fi
exec /usr/bin/python3 "$ROOT/tests/bench/tls_bench.py" "$@"
