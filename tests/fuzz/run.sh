#!/usr/bin/env bash
# tests/fuzz/run.sh [--build-only] [SECONDS] — build every libFuzzer target (tests/fuzz/*_fuzz.c) with clang in
# build/fuzz and run each for SECONDS (default 60), deterministically (-seed=1).
#
# Per target NAME_fuzz.c: the seed corpus is tests/fuzz/corpus/NAME/ and the dictionary
# tests/fuzz/NAME.dict (both optional). The fuzzer works on a copy of the corpus in a temp dir:
# nothing is written into the repository except build/fuzz (logs in build/fuzz/logs, crashing
# inputs in build/fuzz/artifacts/NAME/). Exit status: 0 when every target ran clean, 1 when one
# found a crash, leak, timeout or OOM (the reproducer's path is printed), 2 on a setup error.
#
# The whole of meshlet_core is instrumented (coverage, ASan, UBSan that aborts), not only the
# harness: the flags go in CMAKE_C_FLAGS. The pinned dependencies are their sanitizer variant
# (ASan + UBSan, clang), without coverage instrumentation: libFuzzer is not guided inside them.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FUZZ_DIR=$ROOT/tests/fuzz
BUILD=$ROOT/build/fuzz
BUILD_ONLY=0
if [ "${1:-}" = --build-only ]; then # tests/fuzz/long.sh builds through here, then runs its own way
	BUILD_ONLY=1
	shift
fi
DURATION=${1:-60}

# Progress and results on stdout, one "fuzz: " line each; the build's output goes to
# build/fuzz/{configure,build}.log and each target's to build/fuzz/logs/TARGET.log.
say() {
	echo "fuzz: $*"
}
die() {
	echo "fuzz: run.sh: $*" >&2
	exit 2
}

[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "usage: tests/fuzz/run.sh [--build-only] [SECONDS]  (SECONDS > 0)"
command -v clang >/dev/null || die "clang not found (apt-get install clang libclang-rt-dev)"

# The sanitizer variant of the dependencies (firmware/deps/build.sh --sanitize: clang, ASan +
# UBSan, the runtime these targets link): a bad access inside nghttp2, lws or mbedTLS that an
# input provokes is then caught where it happens. build.sh returns the prefix at once when it is
# built (the sanitizer stage of tests/run.sh builds it too) and waits on a build under way.
# The price: fewer executions in the same time where the libraries do the work (h2_downstream:
# ~1800 exec/s against ~3200 with the plain libraries, same machine and seed).
# ML_FUZZ_DEPS=plain links the plain (gcc, uninstrumented) host libraries instead.
if [ "${ML_FUZZ_DEPS:-sanitize}" = plain ]; then
	deps=$("$ROOT/firmware/deps/build.sh" host | tail -n 1)
else
	deps=$("$ROOT/firmware/deps/build.sh" host --sanitize | tail -n 1)
fi
[ -f "$deps/lib/libnghttp2.a" ] || die "dependencies not found in '$deps'"

# Debug at -O1: assert() stays on (MinSizeRel, the firmware default, has NDEBUG and -Os) and the
# stacks stay readable.
SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
say "configuring $BUILD (deps: $deps)"
mkdir -p "$BUILD"
CC=clang cmake -S "$ROOT" -B "$BUILD" -G Ninja -DML_BOARD=host -DML_FUZZ=ON \
	-DML_DEPS_PREFIX="$deps" -DCMAKE_BUILD_TYPE=Debug \
	-DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DCMAKE_C_FLAGS="$SAN" >"$BUILD/configure.log" 2>&1 ||
	{ cat "$BUILD/configure.log" >&2; die "cmake configure failed (log: $BUILD/configure.log)"; }
grep -q '^CMAKE_C_COMPILER:[A-Z]*=.*clang' "$BUILD/CMakeCache.txt" ||
	die "$BUILD was configured with another compiler than clang: remove it and run again"
cmake --build "$BUILD" >"$BUILD/build.log" 2>&1 ||
	{ tail -n 40 "$BUILD/build.log" >&2; die "build failed (log: $BUILD/build.log)"; }

if [ "$BUILD_ONLY" = 1 ]; then
	say "built in $BUILD"
	exit 0
fi

shopt -s nullglob
sources=("$FUZZ_DIR"/*_fuzz.c)
[ ${#sources[@]} -gt 0 ] || die "no fuzz targets in tests/fuzz"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/meshlet-fuzz.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$BUILD/logs" "$BUILD/artifacts"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
for src in "${sources[@]}"; do
	target=$(basename "$src" .c)     # config_fuzz
	name=${target%_fuzz}             # config
	bin=$BUILD/tests/$target # tests/CMakeLists.txt: one executable per *_fuzz.c
	[ -x "$bin" ] || die "$target was not built ($bin)"

	corpus=$TMP/$name
	mkdir -p "$corpus"
	if [ -d "$FUZZ_DIR/corpus/$name" ]; then
		cp -R "$FUZZ_DIR/corpus/$name/." "$corpus/"
	fi
	artifacts=$BUILD/artifacts/$name
	mkdir -p "$artifacts"
	args=(-seed=1 "-max_total_time=$DURATION" -timeout=10 -rss_limit_mb=2048
		-print_final_stats=1 "-artifact_prefix=$artifacts/")
	if [ -f "$FUZZ_DIR/$name.dict" ]; then
		args+=("-dict=$FUZZ_DIR/$name.dict")
	fi
	log=$BUILD/logs/$target.log
	say "$target: ${DURATION}s from $(find "$corpus" -type f | wc -l) seed(s), log $log"

	rc=0
	"$bin" "${args[@]}" "$corpus" >"$log" 2>&1 || rc=$?

	# libFuzzer's last status line: "#RUNS DONE cov: N ft: N corp: N/SIZE ... exec/s: N rss: NMb"
	status=$(grep -aE '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1 || true)
	stats=$(echo "$status" | sed -nE 's/^#([0-9]+).*cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+)'\
'.*exec\/s: ([0-9]+) rss: ([0-9]+Mb).*/\1 runs, \5 exec\/s, cov \2, ft \3, corpus \4, rss \6/p')
	if [ "$rc" -eq 0 ]; then
		say "$target ok: ${stats:-no status line in the log}"
		continue
	fi
	failed+=("$target")
	say "$target FAILED (exit $rc)${stats:+ after $stats}"
	grep -aE '^(==[0-9]+== ?ERROR|SUMMARY:)|runtime error:|invariant broken|ERROR: libFuzzer' "$log" |
		head -n 4 | sed 's/^/fuzz:   /' || true
	repro=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
	if [ -n "$repro" ]; then
		say "$target reproducer: $repro"
		say "$target replay: $bin $repro"
	else
		say "$target: no reproducer written; see $log"
	fi
done

if [ ${#failed[@]} -gt 0 ]; then
	say "failed: ${failed[*]}"
	exit 1
fi
say "all ${#sources[@]} target(s) clean for ${DURATION}s each"
