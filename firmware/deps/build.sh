#!/usr/bin/env bash
# build.sh BOARD [--force] [--sanitize] — build meshlet's static dependencies for boards/BOARD.
#
# --sanitize: the sanitizer variant (clang, ASan + UBSan that aborts, -O1 -g, frame pointers) of
# every library, for meshlet's ML_SANITIZE build: a bug inside libwebsockets, nghttp2 or mbedTLS (or
# meshlet misusing them) is then caught where it happens, not only when meshlet touches the
# memory. Native boards only (the sanitizer runtimes are the host compiler's). Its prefix is
# $CACHE/deps/BOARD-asan-<hash>, with the variant in the hash, so both variants stay cached.
#
# Output: a prefix $CACHE/deps/BOARD[-asan]-<hash>/ with include/, lib/*.a,
# share/nanopb/generator/, versions.txt, build.log and, last, .complete.
# The LAST line on stdout is that prefix path alone (CMake reads it with
# execute_process); everything else goes to stderr or to $prefix/build.log.
#
# <hash> = first 16 hex of a SHA-256 over pins.sh, fetch.sh, build.sh,
# inih.flags, mbedtls_config.h, every CMake file and every patches/NAME/*.patch under
# firmware/deps/ and the board's toolchain.cmake. Change any of them and you
# get a new prefix (a rebuild); change nothing and a complete prefix is
# returned at once. The Debian revision is deliberately NOT in the hash (it is
# what the archive serves, not a pin); after `fetch.sh --refresh` use --force
# to rebuild the same prefix.
#
# $CACHE = ${MESHLET_CACHE_DIR:-$HOME/.cache/meshlet}
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=pins.sh
. "$HERE/pins.sh"

usage() { echo "usage: $0 BOARD [--force] [--sanitize]   (BOARD = a directory under boards/)" >&2; exit 2; }
[ $# -ge 1 ] || usage
BOARD=$1
shift
FORCE=0
SANITIZE=0
for arg in "$@"; do
	case "$arg" in
	--force) FORCE=1 ;;
	--sanitize) SANITIZE=1 ;;
	*) usage ;;
	esac
done
[[ $BOARD =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || usage
[ -d "$ROOT/boards/$BOARD" ] || { echo "build.sh: no such board: boards/$BOARD" >&2; exit 2; }

CACHE=${MESHLET_CACHE_DIR:-$HOME/.cache/meshlet}
SRC=$CACHE/src

# ---------------------------------------------------------------------------
# The prefix hash: everything that decides what ends up in the prefix.
# ---------------------------------------------------------------------------
inputs=(firmware/deps/pins.sh firmware/deps/fetch.sh firmware/deps/build.sh firmware/deps/inih.flags
	firmware/deps/mbedtls_config.h)
while IFS= read -r f; do inputs+=("$f"); done < <(
	cd "$ROOT" && find firmware/deps \( -name '*.cmake' -o -name CMakeLists.txt -o -name '*.patch' \) \
		-type f | LC_ALL=C sort)
TOOLCHAIN=""
if [ -f "$ROOT/boards/$BOARD/toolchain.cmake" ] && [ "$SANITIZE" = 1 ]; then
	echo "build.sh: --sanitize is for native boards only; boards/$BOARD cross-compiles" >&2
	exit 2
fi
if [ -f "$ROOT/boards/$BOARD/toolchain.cmake" ]; then
	TOOLCHAIN=$ROOT/boards/$BOARD/toolchain.cmake
	inputs+=("boards/$BOARD/toolchain.cmake")
	# the shared toolchain files it includes (boards/linux-gnu.cmake, linux-musl.cmake) are
	# inputs too: an edit there must rebuild every board that uses them
	while read -r shared; do
		inputs+=("boards/$shared")
	done < <(sed -n 's#^include("${CMAKE_CURRENT_LIST_DIR}/\.\./\([A-Za-z0-9_.-]*\.cmake\)").*#\1#p' "$TOOLCHAIN")
fi
# Hash "path\nsha256\n" per input, so renaming a helper also counts. The sanitizer variant adds
# a line of its own (the plain variant's hash is unchanged by the option's existence).
VARIANT=""
[ "$SANITIZE" = 0 ] || VARIANT=-asan
HASH=$({
	for f in "${inputs[@]}"; do
		printf '%s\n' "$f"
		sha256sum <"$ROOT/$f" | cut -d' ' -f1
	done
	[ -z "$VARIANT" ] || printf 'variant %s\n' "$VARIANT"
} | sha256sum | cut -c1-16)
BOARD_V=$BOARD$VARIANT
PREFIX=$CACHE/deps/$BOARD_V-$HASH

# Fast path: nothing to do, no lock, no fetch.
if [ "$FORCE" = 0 ] && [ -f "$PREFIX/.complete" ]; then
	echo "build.sh: $BOARD_V: cached ($(cat "$PREFIX/.complete"))" >&2
	echo "$PREFIX"
	exit 0
fi

# One build per prefix at a time (CMake configure of meshlet for one board
# from two build trees would otherwise race here).
mkdir -p "$CACHE/deps"
exec 8>"$CACHE/deps/.$BOARD_V-$HASH.lock"
if ! flock -n -x 8; then
	echo "build.sh: $BOARD_V: another build of $PREFIX is running; waiting for it" >&2
	flock -x 8
fi
if [ "$FORCE" = 0 ] && [ -f "$PREFIX/.complete" ]; then   # someone else just finished it
	echo "$PREFIX"
	exit 0
fi

BUILD=$CACHE/build/$BOARD_V-$HASH
rm -rf "$PREFIX" "$BUILD"
mkdir -p "$PREFIX" "$BUILD"
LOG=$PREFIX/build.log
START=$(date +%s)

# fd 3 = the caller's stdout (only the prefix line goes there),
# fd 4 = the caller's stderr (short progress lines); all tool output -> log.
exec 3>&1 4>&2 >"$LOG" 2>&1
say() { printf 'build.sh: %s: %s\n' "$BOARD_V" "$*" >&4; printf '\n==== %s\n' "$*"; }
on_exit() {
	local rc=$?
	if [ "$rc" -ne 0 ]; then
		{
			printf 'build.sh: %s: FAILED (exit %s). Last lines of %s:\n' "$BOARD_V" "$rc" "$LOG"
			tail -n 40 "$LOG" | sed 's/^/  | /'
			printf 'build.sh: build trees kept in %s\n' "$BUILD"
		} >&4
	fi
}
trap on_exit EXIT
die() { printf 'ERROR: %s\n' "$*"; printf 'build.sh: %s: ERROR: %s\n' "$BOARD_V" "$*" >&4; exit 1; }

say "prefix $PREFIX"
say "log    $LOG"
printf 'hash inputs:\n'; printf '  %s\n' "${inputs[@]}"

# ---------------------------------------------------------------------------
# Sources (network only if the cache lacks a verified tarball).
# ---------------------------------------------------------------------------
say "fetch sources"
# Hold the source cache shared while compiling: fetch.sh takes it exclusively
# before it re-unpacks anything, so no tree changes under a running build. But
# fetch.sh lets go of the lock when it exits, and another checkout whose recipe
# differs (other patches: its own tree key) may re-unpack the trees before we
# hold it: so check, under our lock, that they are still this recipe's.
for try in 1 2 3; do
	"$HERE/fetch.sh"
	exec 7>>"$SRC/.lock"
	flock -s 7
	if "$HERE/fetch.sh" --check; then
		break
	fi
	exec 7>&-
	[ "$try" -lt 3 ] || die "the source trees in $SRC keep changing (another checkout's fetch.sh?)"
done
srcdir() { printf '%s/%s\n' "$SRC" "$(pin_srcdir "$1")"; }

# ---------------------------------------------------------------------------
# Common CMake arguments.
# ---------------------------------------------------------------------------
# Section flags let meshlet's final link drop unused functions
# (--gc-sections). Passed through CFLAGS, which CMake prepends to the
# toolchain's CMAKE_C_FLAGS_INIT: a -DCMAKE_C_FLAGS=... would silently drop
# the board's -mcpu/-mfpu flags instead.
export CFLAGS="-ffunction-sections -fdata-sections"
# No unwind tables (.eh_frame): C libraries that nothing unwinds through (no C++ exceptions, no
# pthread_cancel, no backtrace() in meshlet); gcc emits them by default on aarch64 and x86-64, and
# they were 10-13 % of each library's bytes. The sanitizer variant keeps them for its stack traces.
[ "$SANITIZE" = 1 ] || CFLAGS="$CFLAGS -fno-asynchronous-unwind-tables -fno-unwind-tables"
# The caller's environment must not change what lands in a prefix whose name
# does not record it: CC=clang (as the fuzz build sets for its own configure)
# would otherwise build the host deps with clang.
unset CC CXX CXXFLAGS LDFLAGS CPPFLAGS
COMMON=(
	-G Ninja
	-DCMAKE_BUILD_TYPE=MinSizeRel
	-DCMAKE_INSTALL_PREFIX="$PREFIX"
	-DBUILD_SHARED_LIBS=OFF
)
[ -z "$TOOLCHAIN" ] || COMMON+=(-DCMAKE_TOOLCHAIN_FILE="$TOOLCHAIN")
OPT_FLAGS="-Os -DNDEBUG" # MinSizeRel's own
if [ "$SANITIZE" = 1 ]; then
	# clang, like meshlet's ML_SANITIZE build: gcc links UBSan as a runtime of its own beside
	# ASan's, and that one ignores log_path (its reports go to stderr only, where a test that
	# reads meshlet's stderr, or nobody, sees them). clang has one runtime for both.
	export CC=clang
	# The same flags as meshlet's ML_SANITIZE build. CFLAGS also reach every link (lws's mbedTLS
	# probes link against these instrumented libraries, so they need the runtimes too).
	# -O1 -g instead of -Os for readable stacks; NDEBUG kept so the libraries behave as in the
	# firmware (a finding is a memory or UB error, not a debug-only assert).
	# Less one check: libwebsockets 4.3.5 reads a sockaddr_in6 as uint64_t at 4-byte alignment
	# (lib/core-net/client/sort-dns.c:142, lws_ipv6_unicast_scope, on every IPv6 connect), which
	# UBSan's alignment check aborts on; x86-64 and ARMv7+ load it fine. meshlet's own code keeps
	# the check (CMakeLists.txt's ML_SANITIZE flags).
	CFLAGS="$CFLAGS -fsanitize=address,undefined -fno-sanitize=alignment -fno-sanitize-recover=all -fno-omit-frame-pointer"
	OPT_FLAGS="-O1 -g -DNDEBUG"
	COMMON+=(-DCMAKE_C_FLAGS_MINSIZEREL="$OPT_FLAGS")
fi
# For the projects that use GNUInstallDirs: plain lib/, never lib64 or
# lib/<triplet>. (Not passed to the others: CMake warns about unused -D.)
GNUDIRS=(-DCMAKE_INSTALL_LIBDIR=lib -DCMAKE_INSTALL_INCLUDEDIR=include)

cmake_build() {   # NAME SRC-DIR ARGS... : configure, build, install
	local name=$1 src=$2
	shift 2
	say "$name: configure"
	cmake -S "$src" -B "$BUILD/$name" "${COMMON[@]}" "$@"
	say "$name: build + install"
	cmake --build "$BUILD/$name"
	cmake --install "$BUILD/$name"
}

# ---------------------------------------------------------------------------
# mbedTLS: library only, with meshlet's own configuration (mbedtls_config.h here: TLS 1.2 +
# 1.3, ECDSA and RSA, P-256/P-384/X25519, AES-GCM and ChaCha20-Poly1305, tickets, ALPN, SNI, a 4 KiB
# output record buffer; one comment per choice there). Installed as the prefix's
# include/mbedtls/mbedtls_config.h, so libwebsockets and meshlet compile against the very options
# the library was built with (several change struct layouts) without a flag of their own.
# GEN_FILES=OFF: the release tarball ships the generated sources, so no Python/Perl code
# generation at build time.
# ---------------------------------------------------------------------------
cmake_build mbedtls "$(srcdir mbedtls)" "${GNUDIRS[@]}" \
	-DENABLE_PROGRAMS=OFF -DENABLE_TESTING=OFF -DGEN_FILES=OFF \
	-DUSE_STATIC_MBEDTLS_LIBRARY=ON -DUSE_SHARED_MBEDTLS_LIBRARY=OFF \
	-DMBEDTLS_FATAL_WARNINGS=OFF -DMBEDTLS_CONFIG_FILE="$HERE/mbedtls_config.h"
cp "$HERE/mbedtls_config.h" "$PREFIX/include/mbedtls/mbedtls_config.h"

# ---------------------------------------------------------------------------
# nghttp2: the library only (no apps, no HPACK tools, no docs), no threads
# (meshlet is one loop per core), no allocator/XML extras.
# Built -O2, the one library not at -Os: it runs about 60 % of meshlet's instructions per proxied
# call (HPACK, framing, stream bookkeeping), and -O2 cuts them by 6 % (41,162 -> 38,772 per call
# in h2c, 53,178 -> 50,873 in TLS: tests/bench/callgrind.sh) for 20 KiB more on aarch64 (the
# stripped binary, 1,604,728 -> 1,625,208 bytes; mostly nghttp2_session.c and nghttp2_hd.c).
# The sanitizer variant keeps its -O1 -g.
# ---------------------------------------------------------------------------
NGHTTP2_OPT=()
[ "$SANITIZE" = 1 ] || NGHTTP2_OPT=(-DCMAKE_C_FLAGS_MINSIZEREL="-O2 -DNDEBUG")
cmake_build nghttp2 "$(srcdir nghttp2)" "${GNUDIRS[@]}" "${NGHTTP2_OPT[@]}" \
	-DENABLE_LIB_ONLY=ON -DBUILD_STATIC_LIBS=ON -DBUILD_TESTING=OFF \
	-DENABLE_DOC=OFF -DENABLE_THREADS=OFF -DENABLE_FAILMALLOC=OFF \
	-DWITH_LIBXML2=OFF -DWITH_JEMALLOC=OFF

# ---------------------------------------------------------------------------
# libwebsockets on the mbedTLS above. One sentence per option: README.md.
# ---------------------------------------------------------------------------
P=$PREFIX
LWS_OPTS=(
	# TLS through our static mbedTLS.
	-DLWS_WITH_SSL=ON -DLWS_WITH_MBEDTLS=ON
	-DLWS_MBEDTLS_INCLUDE_DIRS="$P/include"
	-DLWS_MBEDTLS_LIBRARIES="$P/lib/libmbedtls.a;$P/lib/libmbedx509.a;$P/lib/libmbedcrypto.a"
	# The fix for lws's silent probe failure: lib/tls/CMakeLists.txt builds
	# CMAKE_REQUIRED_LIBRARIES for its mbedTLS feature probes from THESE
	# variables, which only its own find_library() would fill. Without them
	# every probe fails to link and ALPN/SNI are quietly compiled out.
	-DMBEDTLS_LIBRARY="$P/lib/libmbedtls.a"
	-DMBEDX509_LIBRARY="$P/lib/libmbedx509.a"
	-DMBEDCRYPTO_LIBRARY="$P/lib/libmbedcrypto.a"
	# Static only; nothing but the library.
	-DLWS_WITH_STATIC=ON -DLWS_WITH_SHARED=OFF
	-DLWS_WITHOUT_TESTAPPS=ON -DLWS_WITH_MINIMAL_EXAMPLES=OFF -DLWS_WITH_PLUGINS=OFF
	-DLWS_WITH_EXPORT_LWSTARGETS=OFF -DLWS_CTEST_INTERNET_AVAILABLE=OFF
	# Roles: h1 + ws (fleet WebSocket, admin HTTP), mqtt (the fleet over an MQTT
	# broker, node and controller); raw sockets are always in.
	# meshlet does its own HTTP/2 with nghttp2, so lws's h2 stays out.
	-DLWS_WITH_HTTP2=OFF -DLWS_ROLE_H1=ON -DLWS_ROLE_WS=ON -DLWS_ROLE_RAW_FILE=OFF
	-DLWS_ROLE_MQTT=ON
	-DLWS_WITHOUT_CLIENT=OFF -DLWS_WITHOUT_SERVER=OFF
	-DLWS_IPV6=ON -DLWS_UNIX_SOCK=ON
	# Nothing blocks the loop: lws's own non-blocking resolver.
	-DLWS_WITH_SYS_ASYNC_DNS=ON
	# Trim what meshlet does not use.
	-DLWS_WITH_LEJP=OFF -DLWS_WITH_LEJP_CONF=OFF -DLWS_WITH_CONMON=OFF
	-DLWS_WITH_CACHE_NSCOOKIEJAR=OFF -DLWS_CLIENT_HTTP_PROXYING=OFF
	-DLWS_WITH_SYS_SMD=OFF
	-DLWS_WITH_SYS_STATE=ON -DLWS_WITH_DIR=OFF
	# Neither route watching, basic auth, custom headers nor file serving: meshlet calls none.
	-DLWS_WITH_NETLINK=OFF -DLWS_WITH_HTTP_BASIC_AUTH=OFF -DLWS_WITH_CUSTOM_HEADERS=OFF
	-DLWS_WITH_FILE_OPS=OFF -DLWS_WITH_CBOR_FLOAT=OFF
	# The "uncommon" headers include the PUT and DELETE methods the admin endpoint and the
	# controller answer (without them lws answers 400). Basic auth used to imply them.
	-DLWS_WITH_HTTP_UNCOMMON_HEADERS=ON
	# Certificates come from meshlet's config, not from the build host.
	-DLWS_SSL_CLIENT_USE_OS_CA_CERTS=OFF
	# New compilers must not turn a dependency warning into a failed build.
	-DDISABLE_WERROR=ON
)
say "libwebsockets: configure"
cmake -S "$(srcdir libwebsockets)" -B "$BUILD/libwebsockets" "${COMMON[@]}" "${LWS_OPTS[@]}"
# The silent-probe trap: configure "succeeds" even when the feature probes
# fail. Refuse a library without what meshlet relies on.
LWS_CONFIG_H=$BUILD/libwebsockets/lws_config.h
[ -f "$LWS_CONFIG_H" ] || die "libwebsockets: $LWS_CONFIG_H not generated"
for d in LWS_HAVE_mbedtls_ssl_conf_alpn_protocols LWS_HAVE_mbedtls_ssl_get_alpn_protocol \
	LWS_HAVE_mbedtls_ssl_conf_sni LWS_WITH_SYS_ASYNC_DNS LWS_WITH_MBEDTLS LWS_WITH_IPV6 \
	LWS_WITH_CLIENT LWS_WITH_SERVER LWS_ROLE_WS LWS_ROLE_MQTT LWS_WITH_HTTP_UNCOMMON_HEADERS; do
	grep -Eq "^#define[[:space:]]+$d([[:space:]]|$)" "$LWS_CONFIG_H" ||
		die "libwebsockets: $d missing from lws_config.h (see CMakeFiles/CMakeError.log in $BUILD/libwebsockets)"
done
say "libwebsockets: build + install (lws_config.h checks passed)"
cmake --build "$BUILD/libwebsockets"
cmake --install "$BUILD/libwebsockets"

# ---------------------------------------------------------------------------
# nanopb runtime + inih (firmware/deps/smalllibs/CMakeLists.txt).
# ---------------------------------------------------------------------------
cmake_build smalllibs "$HERE/smalllibs" \
	-DNANOPB_SRC="$(srcdir nanopb)" -DINIH_SRC="$(srcdir libinih)" \
	-DINIH_FLAGS_FILE="$HERE/inih.flags"
mkdir -p "$PREFIX/share/inih"
cp "$HERE/inih.flags" "$PREFIX/share/inih/inih.flags"

# ---------------------------------------------------------------------------
# nanopb generator (host tool, runs with Debian's python3-protobuf + protoc).
# ---------------------------------------------------------------------------
say "nanopb generator: install + smoke test"
GEN=$PREFIX/share/nanopb/generator
mkdir -p "$(dirname "$GEN")"
cp -a "$(srcdir nanopb)/generator" "$GEN"
rm -rf "$GEN"/*.bat "$GEN"/*py2* "$GEN"/__pycache__ "$GEN"/proto/__pycache__
# `#!/usr/bin/env python3` finds pyenv's python first on developer machines,
# which lacks Debian's python3-protobuf ("No module named 'google'"). Pin the
# interpreter that has it. (Installed copy only; the source tree is untouched.)
for f in protoc-gen-nanopb nanopb_generator nanopb_generator.py protoc; do
	sed -i '1s|^#!/usr/bin/env python3$|#!/usr/bin/python3|' "$GEN/$f"
done
# Generate nanopb_pb2.py now, with the system protoc, so the generator never
# has to write into the prefix (or guess a protoc) at meshlet build time.
/usr/bin/protoc --python_out="$GEN/proto" -I"$GEN/proto" "$GEN/proto/nanopb.proto"
SMOKE=$BUILD/nanopb-smoke
mkdir -p "$SMOKE"
cat >"$SMOKE/smoke.proto" <<'EOF'
syntax = "proto3";
package meshlet.smoke;
message Ping { optional uint32 seq = 1; string note = 2; }
EOF
echo 'meshlet.smoke.Ping.note max_size:16' >"$SMOKE/smoke.options"
# Plugin mode with the system protoc (see firmware/TOOLCHAIN.md) and the
# caller's PATH (pyenv's python3 may come first), which proves the shebang fix.
(cd "$SMOKE" && PYTHONDONTWRITEBYTECODE=1 /usr/bin/protoc \
	--plugin=protoc-gen-nanopb="$GEN/protoc-gen-nanopb" --nanopb_out=. smoke.proto)
grep -q 'has_seq' "$SMOKE/smoke.pb.h" || die "nanopb generator smoke test: no has_seq in smoke.pb.h"

# ---------------------------------------------------------------------------
# cmocka (unit tests only): static library + cmocka.h, no examples/docs.
# ---------------------------------------------------------------------------
cmake_build cmocka "$(srcdir cmocka)" "${GNUDIRS[@]}" \
	-DWITH_EXAMPLES=OFF -DUNIT_TESTING=OFF -DPICKY_DEVELOPER=OFF \
	-DCMAKE_DISABLE_FIND_PACKAGE_Doxygen=TRUE

# ---------------------------------------------------------------------------
# Check the result, write versions.txt and a CMake snippet, stamp.
# ---------------------------------------------------------------------------
LIBS=(libwebsockets.a libmbedtls.a libmbedx509.a libmbedcrypto.a libnghttp2.a
	libprotobuf-nanopb.a libinih.a libcmocka.a)
for l in "${LIBS[@]}"; do
	[ -s "$PREFIX/lib/$l" ] || die "missing $PREFIX/lib/$l"
done
for h in libwebsockets.h lws_config.h mbedtls/ssl.h nghttp2/nghttp2.h pb.h pb_common.h \
	pb_encode.h pb_decode.h ini.h cmocka.h; do
	[ -f "$PREFIX/include/$h" ] || die "missing $PREFIX/include/$h"
done
# No shared objects may sneak in (a static-only prefix by contract).
if find "$PREFIX/lib" -name '*.so*' | grep -q .; then die "shared libraries in $PREFIX/lib"; fi

# The compiler CMake actually resolved (full path), as recorded per build tree.
CC_USED=$(sed -n 's/^set(CMAKE_C_COMPILER "\(.*\)")$/\1/p' "$BUILD"/mbedtls/CMakeFiles/*/CMakeCCompiler.cmake)
[ -x "$CC_USED" ] || die "cannot tell which C compiler CMake used"
C_FLAGS_USED=$(sed -n 's/^CMAKE_C_FLAGS:[A-Z]*=//p' "$BUILD/mbedtls/CMakeCache.txt")
say "compiler $CC_USED, C flags: $C_FLAGS_USED $OPT_FLAGS (MinSizeRel)"
mkdir -p "$PREFIX/share/meshlet-deps"
cp "$SRC/PATCHES.txt" "$PREFIX/share/meshlet-deps/PATCHES.txt"
{
	echo "# meshlet dependencies for board $BOARD_V (prefix hash $HASH)"
	echo "# built $(date -u +%Y-%m-%dT%H:%M:%SZ) by firmware/deps/build.sh"
	echo "# compiler: $CC_USED ($("$CC_USED" --version | head -n1))"
	echo "# C flags:  $C_FLAGS_USED + MinSizeRel ($OPT_FLAGS)${NGHTTP2_OPT:+; nghttp2 -O2 -DNDEBUG}"
	echo "# toolchain: ${TOOLCHAIN:-(none: host compiler)}"
	echo "# Full patch details: share/meshlet-deps/PATCHES.txt"
	printf '%-14s %-8s %-22s %s\n' "# name" upstream debian-revision patches-applied
	for n in "${PIN_NAMES[@]}"; do
		patches=$(sed -n 's/^applied *= //p' "$(srcdir "$n")/.meshlet-patches")
		ours=$(sed -n 's/^meshlet patches = //p' "$(srcdir "$n")/.meshlet-patches")
		[ -z "$ours" ] || [ "$ours" = "(none)" ] || patches="$patches + meshlet: $ours"
		rev=$(sed -n 's/^debian revision = //p' "$(srcdir "$n")/.meshlet-patches")
		deb=$(sed -n 's/^debian tarball  = //p' "$(srcdir "$n")/.meshlet-patches")
		[ "$deb" != none ] || rev="$rev(no-debian-tarball)"
		printf '%-14s %-8s %-22s %s\n' "$n" "${PIN_VERSION[$n]}" "$rev" "$patches"
	done
} >"$PREFIX/versions.txt"

# For meshlet's CMakeLists.txt: include("${prefix}/meshlet-deps.cmake").
# Full paths, in link order (a static link resolves left to right), because a
# cross toolchain's FIND_ROOT_PATH ONLY mode hides this prefix from find_*().
{
	echo "# Generated by firmware/deps/build.sh for board $BOARD_V. Do not edit."
	echo "set(MESHLET_DEPS_PREFIX \"$PREFIX\")"
	echo "set(MESHLET_DEPS_INCLUDE_DIR \"$PREFIX/include\")"
	echo "set(MESHLET_DEPS_LIBRARIES"
	for l in libwebsockets.a libmbedtls.a libmbedx509.a libmbedcrypto.a libnghttp2.a \
		libprotobuf-nanopb.a libinih.a; do
		echo "  \"$PREFIX/lib/$l\""
	done
	echo ")"
	echo "set(MESHLET_CMOCKA_LIBRARY \"$PREFIX/lib/libcmocka.a\")"
	echo "set(MESHLET_NANOPB_GENERATOR_DIR \"$GEN\")"
	echo "set(MESHLET_NANOPB_PLUGIN \"$GEN/protoc-gen-nanopb\")"
	echo "set(MESHLET_INIH_FLAGS_FILE \"$PREFIX/share/inih/inih.flags\")"
} >"$PREFIX/meshlet-deps.cmake"

rm -rf "$BUILD"
rmdir "$CACHE/build" 2>/dev/null || true
ELAPSED=$(($(date +%s) - START))
printf '%s built in %ss, hash %s\n' "$BOARD_V" "$ELAPSED" "$HASH" >"$PREFIX/.complete"
say "done in ${ELAPSED}s"
echo "$PREFIX" >&3
