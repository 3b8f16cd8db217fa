#!/usr/bin/env bash
# Installs the npm packages of the Node.js test peers (tests/integration/node/*.js) into
# build/npm, pinned. Idempotent: when the pinned versions are there it exits at once, with no
# network. The integration tests that use a Node.js peer run it first; firmware/setup-host.sh
# installs node and npm.
set -euo pipefail

root=$(cd "$(dirname "$0")/../../.." && pwd)
prefix="$root/build/npm"
# name@version: what tests/integration/node/*.js require
pins=("@grpc/grpc-js@1.14.7" "grpc-health-check@2.1.0")

have() { # true when node_modules holds package $1 at version $2
	grep -qs "\"version\": \"$2\"" "$prefix/node_modules/$1/package.json"
}

missing=0
for pin in "${pins[@]}"; do
	have "${pin%@*}" "${pin##*@}" || missing=1
done
[ "$missing" = 0 ] && exit 0

command -v npm >/dev/null || {
	echo "node/setup.sh: npm is missing: run firmware/setup-host.sh" >&2
	exit 1
}
mkdir -p "$prefix"
# A lock: tests run in parallel sessions may both get here.
exec 9>"$prefix/.lock"
flock 9
npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "${pins[@]}" >&2
