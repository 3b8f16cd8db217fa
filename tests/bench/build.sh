#!/bin/bash
# tests/bench/build.sh — build tests/bench/h2_backend.c into build/bench/h2_backend.
#
# Links nghttp2 statically from meshlet's own host deps prefix
# (~/.cache/meshlet/deps/host-*: include/nghttp2 + lib/libnghttp2.a, nghttp2 1.64, the library
# meshlet itself uses), so the backend needs no -dev package; -O2. The prefix exists once
# `cmake --build build/host` has run. MESHLET_CACHE_DIR moves the cache, as for the build.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${MESHLET_CACHE_DIR:-$HOME/.cache/meshlet}
DEPS=
for d in "$CACHE"/deps/host-*; do   # the first complete one (another may be mid-build)
	if [ -f "$d/lib/libnghttp2.a" ] && [ -f "$d/include/nghttp2/nghttp2.h" ]; then DEPS=$d; break; fi
done
if [ -z "$DEPS" ]; then
	echo "build.sh: no host deps prefix with libnghttp2.a under $CACHE/deps (run: cmake --build build/host)" >&2
	exit 1
fi
OUT="$ROOT/build/bench"
mkdir -p "$OUT"
if [ ! -x "$OUT/h2_backend" ] || [ "$ROOT/tests/bench/h2_backend.c" -nt "$OUT/h2_backend" ] ||
	[ "$DEPS/lib/libnghttp2.a" -nt "$OUT/h2_backend" ]; then
	cc -O2 -g -Wall -Wextra -o "$OUT/h2_backend" "$ROOT/tests/bench/h2_backend.c" \
		-I"$DEPS/include" "$DEPS/lib/libnghttp2.a"
	echo "build.sh: built $OUT/h2_backend (nghttp2 static from $DEPS)" >&2
fi
