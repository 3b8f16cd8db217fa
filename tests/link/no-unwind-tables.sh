#!/bin/sh
# tests/link/no-unwind-tables.sh READELF NM CC MESHLET — the static meshlet binary carries no unwind
# tables (firmware/link/no-unwind-tables.ld) and the link guard refuses an object that would start
# an unwinder (firmware/link/check-no-unwinding.sh).
set -eu
readelf=$1 nm=$2 cc=$3 meshlet=$4
here=$(cd "$(dirname "$0")" && pwd)
guard="$here/../../firmware/link/check-no-unwinding.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. What is left of .eh_frame is crtbegin's and crtend's few bytes, not libc's tens of KiB.
eh=$("$readelf" -SW "$meshlet" | sed 's/^ *\[ *[0-9]*\] *//' | awk '$1 == ".eh_frame" { print $5 }')
eh=$(printf '%d' "0x${eh:-0}")
[ "$eh" -le 1024 ] || { echo "FAIL: $meshlet has $eh bytes of .eh_frame (libc's tables kept?)"; exit 1; }
echo "ok: .eh_frame is $eh bytes"

# 2. The guard passes an object without unwinders and refuses one that calls pthread_exit.
printf 'int ml_plain(int x) { return x + 1; }\n' > "$tmp/plain.c"
printf '#include <pthread.h>\nvoid ml_quit(void) { pthread_exit(0); }\n' > "$tmp/quits.c"
"$cc" -c "$tmp/plain.c" -o "$tmp/plain.o"
"$cc" -c "$tmp/quits.c" -o "$tmp/quits.o"
sh "$guard" "$nm" "$tmp/plain.o" || { echo "FAIL: the guard refused an object without unwinders"; exit 1; }
if sh "$guard" "$nm" "$tmp/plain.o" "$tmp/quits.o" 2>"$tmp/err"; then
	echo "FAIL: the guard let pthread_exit through"
	exit 1
fi
grep -q "quits.o:.*U pthread_exit" "$tmp/err" || { echo "FAIL: the guard did not name the caller:"; cat "$tmp/err"; exit 1; }
echo "ok: the guard names quits.o's pthread_exit"
