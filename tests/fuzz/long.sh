#!/usr/bin/env bash
# tests/fuzz/long.sh [TARGET...] — the long fuzz run (not in CI): every libFuzzer target
# (tests/fuzz/*_fuzz.c, or only the TARGETs named, e.g. config_fuzz) for FUZZ_RUNS executions
# (default 10,000,000), FUZZ_JOBS at a time (default 2, at most 2: the machines this runs on have
# 2 cores), and one line per target at the end: executions, exec/s, wall time, coverage and the
# result.
#
#   FUZZ_RUNS=N       executions per target (default 10000000)
#   FUZZ_MAX_TIME=S   stop a target after S seconds even before FUZZ_RUNS (default 0: no limit;
#                     the result then says "time limit" and the runs reached)
#   FUZZ_JOBS=1|2     targets at a time (default 2)
#
# Builds through tests/fuzz/run.sh --build-only (the same instrumented build/fuzz as CI's short
# run). Each target starts from its seed corpus plus what an earlier long run found, kept in
# build/fuzz/long/corpus/NAME (outside the repository); logs in build/fuzz/long/logs, crashing
# inputs in build/fuzz/artifacts/NAME/. Exit status 0 when every target ran clean, 1 otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FUZZ_DIR=$ROOT/tests/fuzz
BUILD=$ROOT/build/fuzz
LONG=$BUILD/long
RUNS=${FUZZ_RUNS:-10000000}
MAX_TIME=${FUZZ_MAX_TIME:-0}
JOBS=${FUZZ_JOBS:-2}

say() { echo "fuzz-long: $*"; }
die() {
	echo "fuzz-long: $*" >&2
	exit 2
}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "FUZZ_RUNS must be a positive number"
[[ $MAX_TIME =~ ^[0-9]+$ ]] || die "FUZZ_MAX_TIME must be a number of seconds"
# Two cores: a third job would only slow the other two (and everything else on the machine).
[[ $JOBS =~ ^[12]$ ]] || die "FUZZ_JOBS must be 1 or 2"

"$FUZZ_DIR/run.sh" --build-only

targets=()
if [ $# -gt 0 ]; then
	for t in "$@"; do
		t=${t%.c}
		[ -f "$FUZZ_DIR/$t.c" ] || die "no such target: tests/fuzz/$t.c"
		targets+=("$t")
	done
else
	shopt -s nullglob
	for src in "$FUZZ_DIR"/*_fuzz.c; do targets+=("$(basename "$src" .c)"); done
fi
[ ${#targets[@]} -gt 0 ] || die "no fuzz targets in tests/fuzz"
mkdir -p "$LONG/logs" "$LONG/corpus"
# This run's result lines (one file per target), apart from any other run's.
RESULTS=$(mktemp -d "${TMPDIR:-/tmp}/meshlet-fuzz-long.XXXXXX")
trap 'rm -rf "$RESULTS"' EXIT

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_one() { # TARGET: writes $RESULTS/TARGET (one summary line)
	local target=$1 name bin corpus artifacts log rc t0 secs args
	name=${target%_fuzz}
	bin=$BUILD/tests/$target
	corpus=$LONG/corpus/$name
	artifacts=$BUILD/artifacts/$name
	log=$LONG/logs/$target.log
	[ -x "$bin" ] || {
		echo "$target: not built ($bin)" >"$RESULTS/$target"
		return
	}
	mkdir -p "$corpus" "$artifacts"
	if [ -d "$FUZZ_DIR/corpus/$name" ]; then
		cp -R "$FUZZ_DIR/corpus/$name/." "$corpus/"
	fi
	args=(-seed=1 "-runs=$RUNS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
		"-artifact_prefix=$artifacts/")
	[ "$MAX_TIME" = 0 ] || args+=("-max_total_time=$MAX_TIME")
	[ ! -f "$FUZZ_DIR/$name.dict" ] || args+=("-dict=$FUZZ_DIR/$name.dict")
	t0=$(date +%s)
	rc=0
	"$bin" "${args[@]}" "$corpus" >"$log" 2>&1 || rc=$?
	secs=$(($(date +%s) - t0))

	# -print_final_stats=1: "stat::number_of_executed_units: N", "stat::average_exec_per_sec: N";
	# coverage from the last status line ("#N DONE cov: N ft: N corp: N/SIZE ...").
	local execs eps cov ft corp result
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	cov=$(grep -aE '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1 |
		sed -nE 's/.*cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+).*/\1 \2 \3/p')
	read -r cov ft corp <<<"${cov:-? ? ?}"
	if [ "$rc" -ne 0 ]; then
		result="FAILED (exit $rc: $(grep -aoE 'ERROR: [A-Za-z]+: [^ ]+|runtime error: .{0,60}|ERROR: libFuzzer: [a-z-]+' "$log" | head -n 1))"
		local repro
		repro=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
		[ -z "$repro" ] || result="$result reproducer $repro"
	elif [ -n "$execs" ] && [ "$execs" -ge "$RUNS" ]; then
		result="ok"
	else
		result="ok until the time limit (${execs:-?} of $RUNS runs)"
	fi
	printf '%-24s execs %10s  exec/s %6s  time %6ss  cov %5s  ft %6s  corpus %5s  %s\n' \
		"$target" "${execs:-?}" "${eps:-?}" "$secs" "$cov" "$ft" "$corp" "$result" \
		>"$RESULTS/$target"
}

limit=""
[ "$MAX_TIME" = 0 ] || limit=", at most ${MAX_TIME}s each"
say "${#targets[@]} target(s), $RUNS runs each, $JOBS at a time$limit"
running=0
for t in "${targets[@]}"; do
	if [ "$running" -ge "$JOBS" ]; then
		wait -n || true
		running=$((running - 1))
	fi
	say "$t: started ($(date -u +%H:%M:%S) UTC), log $LONG/logs/$t.log"
	(
		run_one "$t"
		say "done: $(cat "$RESULTS/$t")"
	) &
	running=$((running + 1))
done
wait

say "summary"
bad=0
for t in "${targets[@]}"; do
	line=$(cat "$RESULTS/$t" 2>/dev/null || echo "$t: no result")
	echo "  $line"
	case "$line" in *FAILED* | *"no result"* | *"not built"*) bad=1 ;; esac
done
exit "$bad"
