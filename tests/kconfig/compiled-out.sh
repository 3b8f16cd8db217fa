#!/bin/sh
# compiled-out.sh MESHLET LIBMESHLET_CORE ADMIN FLEET CONTROLLER [FLEET_MQTT] — a build that Kconfig left
# admin, fleet, controller or the fleet over MQTT out of (ADMIN etc.: "y" or empty, from .config): that feature's
# objects are not in meshlet_core (CMakeLists.txt ml_sources_ifdef), `meshlet version` does not
# list it, `meshlet check` refuses its keys naming the symbol, its command says so (exit 64).
# $ML_EMULATOR: a qemu-user prefix for a cross board's binary.
set -u
MESHLET=$1 CORE=$2 ADMIN=$3 FLEET=$4 CONTROLLER=$5 FLEET_MQTT=${6-y}
fail=0
bad() { echo "FAIL: $*"; fail=1; }
run() { ${ML_EMULATOR:-} "$MESHLET" "$@"; }
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT

features=$(run version | sed -n 's/^features://p')
members=$(ar t "$CORE") || exit 2
# feature, its symbol's value, an object only it brings, a config that asks for it, the refusal
check() {
	name=$1 on=$2 object=$3 config=$4 refusal=$5
	[ "$on" = y ] && return 0
	case " $features " in *" $name "*) bad "version lists $name: $features" ;; esac
	if printf '%s\n' "$members" | grep -qx "$object"; then bad "$object is in $CORE"; fi
	printf '%b' "$config" >"$tmp/$name.ini"
	out=$(run check "$tmp/$name.ini" 2>&1)
	rc=$?
	[ "$rc" = 1 ] || bad "check of a $name config exited $rc, not 1: $out"
	case "$out" in *"$refusal"*) ;; *) bad "check of a $name config does not say \"$refusal\": $out" ;; esac
}
base='[listener l]\nbind = 127.0.0.1:15001\n[route r]\nlistener = l\nto = c\n[cluster c]\nendpoint = 127.0.0.1:50051\n'
check admin "$ADMIN" admin.c.o "[node]\nadmin = 127.0.0.1:15000\n$base" \
	"expected no admin key: this build of meshlet has no support for it (CONFIG_ML_ADMIN is off)"
check fleet "$FLEET" client.c.o "[fleet]\nurl = ws://127.0.0.1:9/f\ninsecure = on\n$base" \
	"expected no [fleet] section: this build of meshlet has no fleet client (CONFIG_ML_FLEET is off)"
# the fleet over MQTT: only a build with the fleet client can leave it out on its own
if [ "$FLEET" = y ]; then
	check fleet-mqtt "$FLEET_MQTT" mqtt.c.o "[fleet]\nurl = mqtts://127.0.0.1:8883\nca = /x\n$base" \
		"this build of meshlet has no fleet over MQTT (CONFIG_ML_FLEET_MQTT is off)"
fi
if [ "$CONTROLLER" != y ]; then
	case " $features " in *" controller "*) bad "version lists controller: $features" ;; esac
	if printf '%s\n' "$members" | grep -qx rollout.c.o; then bad "rollout.c.o is in $CORE"; fi
	out=$(run controller --listen 127.0.0.1:1 --configs "$tmp" 2>&1)
	rc=$?
	[ "$rc" = 64 ] || bad "controller exited $rc, not 64: $out"
	case "$out" in *"CONFIG_ML_CONTROLLER is off"*) ;; *) bad "controller does not name its symbol: $out" ;; esac
elif [ "$FLEET_MQTT" != y ]; then
	# the controller's broker transport is left out with the node's
	out=$(run controller --listen "127.0.0.1:$((20000 + $$ % 20000))" --configs "$tmp" --mqtt mqtt://127.0.0.1:1 --mqtt-insecure 2>&1)
	rc=$?
	[ "$rc" = 64 ] || bad "controller --mqtt exited $rc, not 64: $out"
	case "$out" in *"CONFIG_ML_FLEET_MQTT is off"*) ;; *) bad "controller --mqtt does not name its symbol: $out" ;; esac
fi
[ "$fail" = 0 ] && echo "ok: compiled out and refused:${ADMIN:+}${ADMIN:- admin}${FLEET:+}${FLEET:- fleet}${CONTROLLER:+}${CONTROLLER:- controller}${FLEET_MQTT:+}${FLEET_MQTT:- fleet-mqtt}"
exit "$fail"
