#!/usr/bin/env bash
# setup-host.sh — install the Debian (bookworm) packages that meshlet's build
# and test suite need. Idempotent and fast: when everything is installed it
# only asks dpkg and exits, no apt-get update, no network.
#
# Usage: firmware/setup-host.sh [--qemu-system] [--bench]
#   --qemu-system  also install qemu-system-arm (qemu-system-aarch64 and
#                  qemu-system-arm, for boards/*/qemu.conf QEMU_SYSTEM boots);
#                  ~43 MB + libraries, so only on request (or MESHLET_QEMU_SYSTEM=1).
#   --bench        also install the peers of tests/bench/run.sh (a benchmark, not a
#                  test): nghttpx (nghttp2-proxy) and haproxy (or MESHLET_BENCH=1).
# Must run as root (CI runs as root); non-interactive.
set -euo pipefail

PKGS=(
	# build: CMake + Ninja, native gcc, clang (+ its runtime libs, which carry
	# libFuzzer for -fsanitize=fuzzer in tests/fuzz)
	cmake ninja-build gcc clang libclang-rt-14-dev
	# cross compilers + the target glibc for the ARM boards
	gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf
	libc6-dev-arm64-cross libc6-dev-armhf-cross
	# run ARM binaries on the host (unit tests, boards' QEMU_USER)
	qemu-user-static
	# nanopb generator: system protoc + python protobuf (3.21.12, matched)
	protobuf-compiler python3-protobuf
	# Kconfig tools (run as /usr/bin/python3 -m defconfig ...)
	python3-kconfiglib
	# integration tests: real gRPC peers, pytest, WebSocket fleet peer, h2load/nghttp,
	# python3-h2 for bare HTTP/2 peers (an upstream that sends GOAWAY)
	python3-grpcio python3-pytest python3-websockets nghttp2-client python3-h2
	# the fleet over MQTT: a real broker and the tests' controller (test_fleet_mqtt)
	mosquitto python3-paho-mqtt
	# pytest -n: the ARM board's integration run under qemu-user (tests/run.sh)
	python3-pytest-xdist
	# strace stalls a save (fsync) to test SIGTERM during it: test_state_dir_trust
	strace
	# the admin page is loaded in headless Chromium (test_admin_page); promtool checks the
	# Prometheus exposition and runtime/admin/alerts.yml (test_prometheus)
	chromium prometheus
	# firmware/deps/fetch.sh: apt-get source needs dpkg-dev; patch applies
	# Debian's patches; xz/bzip2 unpack the tarballs; CA certificates for apt
	dpkg-dev patch xz-utils bzip2 ca-certificates
	# misc build helpers
	pkg-config file
	# firmware/image: the qemu boards' data disk (mke2fs -d) and unpacking Debian's .debs
	e2fsprogs dpkg
	# boards/host-musl: Debian's musl-gcc (the ARM musl boards fetch musl themselves:
	# firmware/musl/fetch.sh)
	musl-tools
	# firmware/init and the .deb (tests/integration/test_init_systems.py,
	# test_install_package.py): systemd-analyze verify (systemd need not run as PID 1), lintian
	systemd lintian
	# the Node.js peer of tests/integration/test_health_checks.py (its npm packages,
	# @grpc/grpc-js + grpc-health-check, go into build/npm: tests/integration/node/setup.sh)
	nodejs
)
# Debian's npm, unless the node there brings its own (NodeSource's nodejs does; the two conflict).
command -v npm >/dev/null 2>&1 || PKGS+=(npm)
# NOT python3-grpc-tools: nanopb_generator.py prefers its bundled protoc
# 3.5.1, which rejects proto3 `optional` (firmware/TOOLCHAIN.md).

# tests/bench only (never needed by the build or the tests): the proxies meshlet is compared with.
BENCH_PKGS=(nghttp2-proxy haproxy)

WITH_QEMU_SYSTEM=${MESHLET_QEMU_SYSTEM:-0}
WITH_BENCH=${MESHLET_BENCH:-0}
for a in "$@"; do
	case "$a" in
		--qemu-system) WITH_QEMU_SYSTEM=1 ;;
		--bench) WITH_BENCH=1 ;;
		-h | --help) sed -n '2,12p' "$0"; exit 0 ;;
		*) echo "setup-host.sh: unknown argument: $a" >&2; exit 2 ;;
	esac
done
[ "$WITH_QEMU_SYSTEM" = 1 ] && PKGS+=(qemu-system-arm)
[ "$WITH_BENCH" = 1 ] && PKGS+=("${BENCH_PKGS[@]}")

installed() {   # true if package $1 is fully installed ("ii")
	[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

# One dpkg-query for all (fast path); unknown packages just print nothing.
declare -A ok=()
while read -r name status; do
	[ "$status" = "ii" ] && ok[$name]=1
done < <(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PKGS[@]}" 2>/dev/null || true)
missing=()
for p in "${PKGS[@]}"; do
	[ -n "${ok[$p]:-}" ] || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
	echo "setup-host.sh: all ${#PKGS[@]} packages already installed" >&2
else
	echo "setup-host.sh: installing: ${missing[*]}" >&2
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup-host.sh: need root to install packages (run as root or with sudo)" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
	for p in "${missing[@]}"; do
		installed "$p" || { echo "setup-host.sh: $p did not install" >&2; exit 1; }
	done
fi

if installed python3-grpc-tools; then
	echo "setup-host.sh: WARNING: python3-grpc-tools is installed; its protoc 3.5.1 breaks" \
		"nanopb_generator.py on proto3 'optional' (use protoc plugin mode, or remove it)" >&2
fi
