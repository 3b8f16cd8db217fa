#!/usr/bin/env bash
# fetch.sh BOARD — the board's pinned Debian packages (pins.sh), downloaded once with
# `apt-get download` and verified against their pinned SHA-256.
#
# Result: $CACHE/image/debs/PKG_VERSION_ARCH.deb ($CACHE = ${MESHLET_CACHE_DIR:-~/.cache/meshlet}),
# and on stdout one line per package: "ROLE PATH". A cache that already holds every file with
# the right hash means no network at all. The private apt state (binary indexes of bookworm and
# bookworm-security for arm64 and armhf) lives in $CACHE/image/apt: the system's sources,
# architectures and caches are not touched.
set -Eeuo pipefail
trap 'printf "image-fetch: ERROR: unexpected failure (exit %s) at fetch.sh line %s\n" "$?" "$LINENO" >&2' ERR

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=pins.sh
. "$HERE/pins.sh"

BOARD=${1:?usage: fetch.sh BOARD}
CACHE=${MESHLET_CACHE_DIR:-$HOME/.cache/meshlet}
IMG=$CACHE/image
APTDIR=$IMG/apt
DEBS=$IMG/debs

log() { printf 'image-fetch: %s\n' "$*" >&2; }
die() { printf 'image-fetch: ERROR: %s\n' "$*" >&2; exit 1; }
sha256() { sha256sum "$1" | cut -d' ' -f1; }

mapfile -t PINS < <(img_pins_of "$BOARD")
[ "${#PINS[@]}" -gt 0 ] || die "no image pins for board '$BOARD' in $HERE/pins.sh"

mkdir -p "$DEBS"
# Several test runs may build images at once: one downloads, the others wait for it.
exec 9>"$IMG/.lock"
flock 9

APT=(
	-o "Dir::Etc::SourceList=/dev/null"
	-o "Dir::Etc::SourceParts=$APTDIR/parts"
	-o "Dir::State::Lists=$APTDIR/lists"
	-o "Dir::State::status=/dev/null" # nothing is installed: only downloads
	-o "Dir::Cache::pkgcache="
	-o "Dir::Cache::srcpkgcache="
	-o "APT::Architecture=arm64"
	-o "APT::Architectures::=arm64"
	-o "APT::Architectures::=armhf"
	# root downloads into a root-owned cache; without this apt warns about its _apt sandbox user
	-o "APT::Sandbox::User=root"
	-q
)
apt_ready=0
apt_setup() {
	[ "$apt_ready" = 0 ] || return 0
	mkdir -p "$APTDIR/lists/partial" "$APTDIR/parts"
	cat >"$APTDIR/parts/meshlet-image.sources" <<-EOF2
		Types: deb
		URIs: $IMAGE_MIRROR
		Suites: $IMAGE_SUITE $IMAGE_SUITE-updates
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

		Types: deb
		URIs: $IMAGE_SECURITY_MIRROR
		Suites: $IMAGE_SUITE-security
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF2
	log "apt-get update (private $IMAGE_SUITE arm64/armhf lists in $APTDIR)"
	apt-get "${APT[@]}" update >&2 || die "apt-get update of the private lists failed"
	apt_ready=1
}

for p in "${PINS[@]}"; do
	read -r _ role pkg arch ver want <<<"$p"
	file="$DEBS/${pkg}_${ver//:/%3a}_$arch.deb"
	if [ -f "$file" ] && [ "$(sha256 "$file")" = "$want" ]; then
		printf '%s %s\n' "$role" "$file"
		continue
	fi
	apt_setup
	have=$(apt-cache "${APT[@]}" madison "$pkg:$arch" 2>/dev/null | awk -F'|' '{gsub(/ /,"",$2); print $2}' | sort -u | tr '\n' ' ')
	case " $have " in
	*" $ver "*) ;;
	*) die "$pkg:$arch: the archive no longer has the pinned $ver (it has: ${have:-nothing}); pick the current one and change pins.sh (firmware/README.md, Images)" ;;
	esac
	tmp=$(mktemp -d "$IMG/dl.XXXXXX")
	log "apt-get download $pkg:$arch=$ver"
	(cd "$tmp" && apt-get "${APT[@]}" download "$pkg:$arch=$ver" >&2) || {
		rm -rf "$tmp"
		die "apt-get download $pkg:$arch=$ver failed"
	}
	got_file=$(find "$tmp" -name '*.deb' | head -n1)
	got=$(sha256 "$got_file")
	if [ "$got" != "$want" ]; then
		rm -rf "$tmp"
		die "$pkg:$arch=$ver: SHA-256 $got, pins.sh says $want"
	fi
	mv -f "$got_file" "$file"
	rm -rf "$tmp"
	printf '%s %s\n' "$role" "$file"
done
