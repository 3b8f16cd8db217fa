#!/bin/bash
# tests/bench/timer_bench.sh — builds timer_bench.c against a meshlet build's libmeshlet_core.a
# (default build/host) and runs it: ns per arm+cancel at 10, 1 000 and 10 000 pending timers.
#
#   tests/bench/timer_bench.sh [--build DIR] [--timer-src FILE] [--callgrind] [PENDING...]
#
# --timer-src: link this timer.c (-Os, as the build) instead of the library's, for a before/after
# with one library: git show e930e86:runtime/core/timer.c > /tmp/timer_old.c (the sorted-list one).
# --callgrind: also instructions per arm+cancel, exact (valgrind --tool=callgrind, collecting
# only measure_late() or measure_early(): its Ir divided by the pairs). The ns figures are clock_gettime over 20 000
# pairs and move with the machine's load; the instruction counts do not.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$ROOT/build/host
CG=0
SRC=
while [ $# -gt 0 ]; do
	case $1 in
	--build) BUILD=$(cd "$2" && pwd); shift 2 ;;
	--callgrind) CG=1; shift ;;
	--timer-src) SRC=$(realpath "$2"); shift 2 ;;
	*) break ;;
	esac
done
DEPS=$(grep -m1 -o '/[^ "]*/deps/host[-a-z]*-[0-9a-f]*' "$BUILD/build.ninja" | head -1)
GEN=$BUILD/generated
OUT=$ROOT/build/bench
mkdir -p "$OUT"
BIN=$OUT/timer_bench.$(basename "$BUILD")
EXTRA=()
if [ -n "$SRC" ]; then
	BIN=$BIN.$(basename "$SRC" .c)
	cc -Os -c -o "$BIN.timer.o" "$SRC" -I"$ROOT/runtime" -I"$GEN" -I"$DEPS/include"
	EXTRA=("$BIN.timer.o")
fi
# -O2 on the bench itself; the library is what the build made (-Os for build/host).
cc -O2 -g -o "$BIN" "$ROOT/tests/bench/timer_bench.c" "${EXTRA[@]}" -I"$ROOT/runtime" -I"$GEN" -I"$DEPS/include" \
	"$BUILD/libmeshlet_core.a" "$DEPS/lib/libwebsockets.a" "$DEPS/lib/libmbedtls.a" \
	"$DEPS/lib/libmbedx509.a" "$DEPS/lib/libmbedcrypto.a" "$DEPS/lib/libnghttp2.a" \
	"$DEPS/lib/libprotobuf-nanopb.a" "$DEPS/lib/libinih.a" -lpthread
PENDING=("$@")
[ ${#PENDING[@]} -gt 0 ] || PENDING=(10 1000 10000)
"$BIN" "${PENDING[@]}"
if [ $CG = 1 ]; then
	for p in "${PENDING[@]}"; do
		line="pending $p: instructions per arm+cancel (callgrind):"
		for where in late early; do
			f=$(mktemp /tmp/timer_bench.cg.XXXXXX)
			valgrind --tool=callgrind --toggle-collect=measure_$where --callgrind-out-file="$f" \
				"$BIN" "$p" >/dev/null 2>&1
			ir=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
			# measure_*() ran 100 warm-up pairs + 20 000 measured ones
			line="$line $where $((ir / 20100))"
			rm -f "$f"
		done
		echo "$line"
	done
fi
