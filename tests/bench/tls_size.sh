#!/bin/bash
# tests/bench/tls_size.sh — what data-plane TLS (Kconfig ML_TLS) costs in the binary, per board.
# Not a test: CI does not run it. Results: tests/bench/README.md and the top-level README.
#
#   tests/bench/tls_size.sh [BOARD...]      default: every board under boards/
#
# For each board it builds the meshlet target three times, in build/size/BOARD-tls-{y,n,nofleet}:
# the board's defconfig as is (ML_TLS=y is Kconfig's default), the same with ML_TLS off, and with
# ML_TLS and ML_FLEET (so the controller too) off: mbedTLS stays linked as long as the fleet
# client (libwebsockets' wss://) or the certificate checks need it, so the third build shows what
# mbedTLS itself weighs. The .config of each build dir is written here, from the board's defconfig
# plus one line, before the first configure (CMake only creates .config when it is missing), so a
# Kconfig typo is refused by firmware/kconfig.py as in a normal build. The dependencies are the
# board's cached prefix (~/.cache/meshlet/deps), the same for all. Prints a Markdown table on
# stdout (progress on stderr): the stripped, static binary's file size (the build strips meshlet
# after linking) and its text+data (`size`: what the program occupies; the file size moves in
# steps of the linker's segment alignment, 4 KiB since meshlet sets max-page-size, and hides small
# differences).
# Then each ML_TLS=y build is relinked once more with a map file (-Wl,-Map): the bytes each
# library keeps in the binary (tests/bench/tls_size_map.py). Build with at most -j2 (ML_JOBS):
# the machine may be shared.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export PATH="/usr/bin:/usr/sbin:/bin:/sbin:$PATH"
JOBS=${ML_JOBS:-2}

boards=("$@")
if [ ${#boards[@]} -eq 0 ]; then
	for d in "$ROOT"/boards/*/; do
		[ -f "$d/defconfig" ] && boards+=("$(basename "$d")")
	done
fi

build_one() { # BOARD y|n|nofleet → prints "FILE-BYTES TEXT+DATA-BYTES"
	local board=$1 tls=$2 dir="$ROOT/build/size/$1-tls-$2" frag sz
	mkdir -p "$dir"
	frag="$dir/defconfig.fragment"
	cat "$ROOT/boards/$board/defconfig" >"$frag"
	case $tls in
	n) echo "# CONFIG_ML_TLS is not set" >>"$frag" ;;
	nofleet) printf '# CONFIG_ML_TLS is not set\n# CONFIG_ML_FLEET is not set\n' >>"$frag" ;;
	esac
	# Written every time (a stale .config from an older Kconfig would otherwise be kept), but
	# replaced only when it differs, so an unchanged config does not rebuild everything.
	/usr/bin/python3 "$ROOT/firmware/kconfig.py" defconfig "$ROOT/Kconfig" "$frag" "$dir/.config.new" >&2
	cmp -s "$dir/.config.new" "$dir/.config" || mv "$dir/.config.new" "$dir/.config"
	rm -f "$dir/.config.new"
	if [ "$tls" != y ] && grep -q "^CONFIG_ML_TLS=y" "$dir/.config"; then
		echo "tls_size: $dir/.config still has ML_TLS" >&2
		exit 1
	fi
	# The same lines as a Kconfig fragment for CMake too: configure remakes .config from the
	# defconfig and ML_KCONFIG_FRAGMENTS whenever they differ from what it last merged (a fresh
	# build dir always), which would otherwise undo the .config written above.
	grep -v -x -F -f "$ROOT/boards/$board/defconfig" "$frag" >"$dir/tls.conf" || true
	cmake -S "$ROOT" -B "$dir" -G Ninja -DML_BOARD="$board" -DML_KCONFIG_FRAGMENTS="$dir/tls.conf" \
		>"$dir/configure.log" 2>&1 || {
		tail -20 "$dir/configure.log" >&2
		exit 1
	}
	cmake --build "$dir" -j"$JOBS" --target meshlet >"$dir/build.log" 2>&1 || {
		tail -20 "$dir/build.log" >&2
		exit 1
	}
	# the board's own binutils: the compiler's name with size for gcc
	sz=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$dir/CMakeCache.txt")
	sz=${sz%gcc}size
	command -v "$sz" >/dev/null || sz=size
	echo "$(stat -c %s "$dir/meshlet") $("$sz" -B "$dir/meshlet" | awk 'NR == 2 { print $1 + $2 }')"
}

map_one() { # BOARD → the y build relinked with a map file: bytes per library (tls_size_map.py)
	local dir="$ROOT/build/size/$1-tls-y" cmd
	# the build's own link command (ninja's), up to its first "&&" (the strip and size steps)
	cmd=$(cd "$dir" && ninja -t commands meshlet | grep -- ' -o meshlet ' | tail -1)
	cmd=${cmd#: && }
	cmd=${cmd%% && *}
	cmd=${cmd/ -o meshlet / -o meshlet.map-link -Wl,-Map=meshlet.map }
	(cd "$dir" && eval "$cmd") >/dev/null 2>&1 || {
		echo "tls_size: $1: relink with a map failed" >&2
		exit 1
	}
	rm -f "$dir/meshlet.map-link"
	/usr/bin/python3 "$ROOT/tests/bench/tls_size_map.py" "$dir/meshlet.map"
}

maps=()
kib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1024 }'; }

echo "| board | ML_TLS=y: file / text+data bytes | ML_TLS=n | TLS code costs (text+data) | ML_TLS=n, ML_FLEET=n | TLS+fleet cost (text+data) |"
echo "|---|--:|--:|--:|--:|--:|"
for b in "${boards[@]}"; do
	echo "tls_size: $b ..." >&2
	read -r yf yt < <(build_one "$b" y)
	read -r nf nt < <(build_one "$b" n)
	read -r ff ft < <(build_one "$b" nofleet)
	if [ -z "$yt" ] || [ -z "$nt" ] || [ -z "$ft" ]; then
		echo "tls_size: $b: a build failed (see build/size/$b-tls-*/build.log)" >&2
		exit 1
	fi
	printf '| %s | %s / %s | %s / %s | %s KiB | %s / %s | %s KiB |\n' "$b" "$yf" "$yt" "$nf" "$nt" \
		"$(kib $((yt - nt)))" "$ff" "$ft" "$(kib $((yt - ft)))"
	maps+=("$b $(map_one "$b")")
done

# What stays with ML_TLS=n: mbedTLS is linked as long as libwebsockets (built with mbedTLS for
# the fleet's wss://) is, whatever Kconfig says.
echo
echo "| board (ML_TLS=y) | mbedTLS KiB | libwebsockets KiB | nghttp2 KiB | meshlet's own KiB | libc KiB |"
echo "|---|--:|--:|--:|--:|--:|"
for m in "${maps[@]}"; do
	set -- $m
	b=$1
	shift
	declare -A v=()
	for kv in "$@"; do v[${kv%%=*}]=${kv#*=}; done
	printf '| %s | %s | %s | %s | %s | %s |\n' "$b" "$(kib "${v[mbedtls]}")" \
		"$(kib "${v[libwebsockets]}")" "$(kib "${v[nghttp2]}")" "$(kib "${v[meshlet]}")" \
		"$(kib "${v[libc]}")"
done
