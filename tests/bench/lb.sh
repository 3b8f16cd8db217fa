#!/bin/bash
# tests/bench/lb.sh — the balancer's cost per LB policy, 1 vs 16 endpoints, meshlet beside nghttpx
# and HAProxy where they have the policy (tests/bench/lb_bench.py). A benchmark, not a test.
#
#   tests/bench/lb.sh [--rounds N] [--n CALLS] [--peers nghttpx,haproxy] [--meshlet PATH] [--no-pin]
#
# Installs the peers if missing (firmware/setup-host.sh --bench), builds meshlet and h2_backend as
# tests/bench/run.sh does. Defaults: 3 rounds of 50 000 calls per configuration (28 of them).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export PATH="/usr/bin:/usr/sbin:/bin:/sbin:$PATH"

missing=0
for t in h2load nghttpx haproxy taskset; do command -v "$t" >/dev/null || missing=1; done
if [ "$missing" = 1 ]; then
	"$ROOT/firmware/setup-host.sh" --bench
fi
if [ ! -x "$ROOT/build/host/meshlet" ]; then
	cmake -S "$ROOT" -B "$ROOT/build/host" -G Ninja -DML_BOARD=host >/dev/null
	cmake --build "$ROOT/build/host" -j2 >/dev/null
fi
"$ROOT/tests/bench/build.sh"

# The pick alone, in the process (tests/bench/lb_pick.c), linked against build/host's library and
# the same deps prefix as build.sh uses.
CACHE=${MESHLET_CACHE_DIR:-$HOME/.cache/meshlet}
DEPS=
for d in "$CACHE"/deps/host-*; do
	if [ -f "$d/lib/libnghttp2.a" ] && [ -f "$d/lib/libinih.a" ]; then DEPS=$d; break; fi
done
if [ -n "$DEPS" ] && [ -f "$ROOT/build/host/libmeshlet_core.a" ]; then
	mkdir -p "$ROOT/build/bench"
	cc -O2 -I"$ROOT/runtime" -I"$ROOT/build/host/generated" -I"$DEPS/include" \
		-o "$ROOT/build/bench/lb_pick" "$ROOT/tests/bench/lb_pick.c" \
		"$ROOT/build/host/libmeshlet_core.a" "$DEPS/lib/libwebsockets.a" "$DEPS/lib/libmbedtls.a" \
		"$DEPS/lib/libmbedx509.a" "$DEPS/lib/libmbedcrypto.a" "$DEPS/lib/libnghttp2.a" \
		"$DEPS/lib/libprotobuf-nanopb.a" "$DEPS/lib/libinih.a" -lpthread 2>/dev/null
	echo "The pick alone (tests/bench/lb_pick.c):"
	echo
	"$ROOT/build/bench/lb_pick"
	echo
fi
exec /usr/bin/python3 "$ROOT/tests/bench/lb_bench.py" "$@"
