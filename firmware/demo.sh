#!/bin/bash
# firmware/demo.sh — meshlet's main demo on this machine: per-call (per-HTTP/2-stream) balancing.
#
#   firmware/demo.sh [--keep-running]
#
# 1. installs what the build needs (firmware/setup-host.sh) and builds the host binary;
# 2. starts three demo gRPC backends (tests/bench/demo_backend.py, helloworld.Greeter, each
#    answering with its own name) on 127.0.0.1:50051..50053, the endpoints of config/meshlet.ini;
# 3. starts meshlet with config/meshlet.ini (listener 127.0.0.1:15001, admin 127.0.0.1:15000);
# 4. runs tests/bench/demo_client.py: 30 unary calls on ONE channel through meshlet, 30 on one
#    channel straight to 127.0.0.1:50051, and prints which backend answered each;
# 5. stops everything it started (also on Ctrl-C or an error) and exits 0 (1 if the demo failed).
#
# --keep-running   after the demo, keep meshlet (and the backends) running in the foreground, its log
#                  on the terminal, until Ctrl-C: try `h2load`, grpcurl or your own client on :15001.
#
# state_dir: config/meshlet.ini keeps its last good config in /var/lib/meshlet. When that is not
# writable (not root, read-only /var/lib), the demo runs a copy of the config in a temporary directory
# with state_dir rewritten to a directory there, and says so. MESHLET_DEMO_STATE_DIR=DIR forces a
# copy with state_dir = DIR.
#
# Takes a few seconds once the binary is built (a fresh build of the dependencies takes minutes).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH="/usr/bin:/usr/sbin:/bin:/sbin:$PATH"
PY=/usr/bin/python3
CALLS=30
KEEP=0
for a in "$@"; do
	case "$a" in
		--keep-running) KEEP=1 ;;
		-h | --help) sed -n '2,21p' "$0"; exit 0 ;;
		*) echo "demo.sh: unknown argument: $a (try --help)" >&2; exit 2 ;;
	esac
done

"$ROOT/firmware/setup-host.sh"
if [ -x "$ROOT/build/host/meshlet" ] && [ ! -w "$ROOT/build/host" ]; then
	echo "demo.sh: $ROOT/build/host is not writable by $(id -un): using the meshlet already built there"
else
	cmake -S "$ROOT" -B "$ROOT/build/host" -G Ninja -DML_BOARD=host >/dev/null
	cmake --build "$ROOT/build/host" | grep -E "meshlet \(host\)|error:|FAILED" || true
fi
M="$ROOT/build/host/meshlet"
[ -x "$M" ] || { echo "demo.sh: $M was not built" >&2; exit 1; }

TMP=$(mktemp -d /tmp/meshlet-demo.XXXXXX)
PIDS=()
# shellcheck disable=SC2317  # (called from the traps)
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for _ in $(seq 20); do   # up to 2 s for a graceful stop, then SIGKILL
		local alive=0
		for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ "$alive" = 0 ] && break
		sleep 0.1
	done
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMP"
	[ "${#PIDS[@]}" -gt 0 ] && echo "demo.sh: stopped meshlet and the demo backends" >&2
	exit "$rc"
}
trap cleanup EXIT
trap 'echo >&2; exit 130' INT
trap 'exit 143' TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# wait_port PORT PID WHAT LOG: until PORT accepts, PID is alive, or 10 s pass.
wait_port() {
	for _ in $(seq 100); do
		port_open "$1" && return 0
		kill -0 "$2" 2>/dev/null || break
		sleep 0.1
	done
	echo "demo.sh: $3 did not come up on 127.0.0.1:$1; its log ($4):" >&2
	tail -n 20 "$4" >&2 || true
	exit 1
}

# The demo's ports must be free: say who holds one rather than fail obscurely.
for port in 15000 15001 50051 50052 50053; do
	if port_open "$port"; then
		echo "demo.sh: 127.0.0.1:$port is already in use (another meshlet or demo still running?):" >&2
		ss -ltnp "sport = :$port" 2>/dev/null | tail -n +2 >&2 || true
		exit 1
	fi
done

# Config: the default one, unless its state_dir is not writable here.
CONF="$ROOT/config/meshlet.ini"
STATE=$(sed -n 's/^[[:space:]]*state_dir[[:space:]]*=[[:space:]]*//p' "$CONF" | tail -n 1)
STATE=${STATE:-/var/lib/meshlet}
writable_dir() { if [ -e "$1" ]; then [ -d "$1" ] && [ -w "$1" ]; else [ -w "$(dirname "$1")" ]; fi; }
if [ -n "${MESHLET_DEMO_STATE_DIR:-}" ] || ! writable_dir "$STATE"; then
	NEW=${MESHLET_DEMO_STATE_DIR:-$TMP/state}
	sed "s|^\([[:space:]]*state_dir[[:space:]]*=\).*|\1 $NEW|" "$CONF" >"$TMP/meshlet.ini"
	if [ -n "${MESHLET_DEMO_STATE_DIR:-}" ]; then
		echo "demo.sh: MESHLET_DEMO_STATE_DIR is set:"
	else
		echo "demo.sh: state_dir $STATE (config/meshlet.ini) is not writable by $(id -un):"
	fi
	echo "         running a copy of the config, $TMP/meshlet.ini, with state_dir = $NEW"
	CONF="$TMP/meshlet.ini"
fi

"$M" version | head -n 1
"$M" check "$CONF"

# Bounded lifetimes: a backend that outlives a killed demo.sh still goes away by itself.
LIFE=60
[ "$KEEP" = 1 ] && LIFE=86400
for i in 1 2 3; do
	"$PY" "$ROOT/tests/bench/demo_backend.py" "backend-$i" "127.0.0.1:5005$i" --timeout "$LIFE" \
		>"$TMP/backend-$i.log" 2>&1 &
	PIDS+=($!)
done
for i in 1 2 3; do wait_port "5005$i" "${PIDS[$((i - 1))]}" "backend-$i" "$TMP/backend-$i.log"; done
echo "--- backends: backend-1 127.0.0.1:50051, backend-2 127.0.0.1:50052, backend-3 127.0.0.1:50053"

"$M" -c "$CONF" >"$TMP/meshlet.log" 2>&1 &
MPID=$!
PIDS+=("$MPID")
wait_port 15001 "$MPID" meshlet "$TMP/meshlet.log"
echo "--- meshlet (pid $MPID): $M -c $CONF  (listener 127.0.0.1:15001, admin 127.0.0.1:15000)"

rc=0
"$PY" "$ROOT/tests/bench/demo_client.py" --calls "$CALLS" --via 127.0.0.1:15001 \
	--direct 127.0.0.1:50051 || rc=$?
if ! kill -0 "$MPID" 2>/dev/null; then
	echo "demo.sh: meshlet exited during the demo; its log:" >&2
	tail -n 20 "$TMP/meshlet.log" >&2
	rc=1
fi
if [ "$rc" -ne 0 ]; then
	echo "demo.sh: the demo FAILED (see above); last lines of meshlet's log:" >&2
	tail -n 10 "$TMP/meshlet.log" >&2
	exit 1
fi
echo "--- meshlet's log: start, then the first calls (access log: upstream= is the backend picked):"
grep -v '^ts=' "$TMP/meshlet.log" | head -n 5 || true
grep '^ts=' "$TMP/meshlet.log" | head -n 3 || true

if [ "$KEEP" = 1 ]; then
	echo "--- --keep-running: meshlet stays up on 127.0.0.1:15001 with its log below; Ctrl-C stops it"
	echo "    and the backends. Try: $PY $ROOT/tests/bench/demo_client.py"
	tail -n 0 -f --pid="$MPID" "$TMP/meshlet.log" &
	PIDS+=($!)
	wait "$MPID" || true
fi
exit 0
