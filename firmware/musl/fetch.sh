#!/usr/bin/env bash
# firmware/musl/fetch.sh ARCH — Debian bookworm's musl (musl + musl-dev 1.2.3-1, pinned by
# SHA-256) for ARCH = arm64 | armhf, unpacked into $CACHE/musl/1.2.3-1-ARCH, with a gcc specs
# file that drives Debian's glibc cross gcc (aarch64-linux-gnu-gcc, arm-linux-gnueabihf-gcc)
# against musl instead: the musl boards' toolchain.cmake use it (boards/*-musl). Nothing is
# installed on the system: the .debs come through apt-get with private lists (no dpkg
# --add-architecture). The LAST line on stdout is the directory.
#   $CACHE = ${MESHLET_CACHE_DIR:-$HOME/.cache/meshlet}
set -euo pipefail

VERSION=1.2.3-1
ARCH=${1:-}
case "$ARCH" in
arm64)
	TRIPLE=aarch64-linux-musl GNU=aarch64-linux-gnu
	SHA_MUSL=6ccf2bf0f479b00411cb8e1eeb048e648718170db5d63bbb4bf4a89350b81468
	SHA_DEV=55c2ca4bc3041c8ed8ac7dc3ef6080d9551a21650568b2fd7610b59eaf98a4f4
	;;
armhf)
	TRIPLE=arm-linux-musleabihf GNU=arm-linux-gnueabihf
	SHA_MUSL=75e00006d3967c24d505cac439ba14e5508a5ff11a72e248f329e05da5e1cc0b
	SHA_DEV=3a9dbb8ae66716f117dce87558fb47a161db0eebf0700cc6bf84ef6871ce7d38
	;;
*)
	echo "usage: $0 arm64|armhf" >&2
	exit 2
	;;
esac
CACHE=${MESHLET_CACHE_DIR:-$HOME/.cache/meshlet}
DIR=$CACHE/musl/$VERSION-$ARCH
if [ -f "$DIR/.complete" ]; then
	echo "$DIR"
	exit 0
fi
mkdir -p "$CACHE/musl"
exec 8>"$CACHE/musl/.$ARCH.lock"
flock -x 8
if [ -f "$DIR/.complete" ]; then
	echo "$DIR"
	exit 0
fi

APT=$CACHE/musl/apt
mkdir -p "$APT/lists/partial" "$APT/parts" "$APT/debs"
cat >"$APT/parts/bookworm.sources" <<SOURCES
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Architectures: $ARCH
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
O=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$APT/parts"
	-o "Dir::State::Lists=$APT/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
	-o "APT::Architectures::=$ARCH")
fetch() { # package sha256
	local deb=$APT/debs/$1_${VERSION}_$ARCH.deb
	if [ ! -f "$deb" ] || ! echo "$2  $deb" | sha256sum -c --quiet - 2>/dev/null; then
		(cd "$APT/debs" && apt-get "${O[@]}" download "$1:$ARCH=$VERSION") >&2 ||
			{ apt-get "${O[@]}" update >&2 && (cd "$APT/debs" && apt-get "${O[@]}" download "$1:$ARCH=$VERSION") >&2; }
	fi
	echo "$2  $deb" | sha256sum -c --quiet - >&2 || { echo "fetch.sh: $deb: SHA-256 mismatch" >&2; exit 1; }
	dpkg-deb -x "$deb" "$DIR.tmp"
}
rm -rf "$DIR.tmp" "$DIR"
mkdir -p "$DIR.tmp"
fetch musl "$SHA_MUSL"
fetch musl-dev "$SHA_DEV"
# The kernel's headers (linux/, asm/) are libc-independent: from the cross glibc's sysroot, in a
# directory of their own so that none of glibc's headers can be picked up.
mkdir -p "$DIR.tmp/kernel"
for d in linux asm asm-generic; do
	ln -s "/usr/$GNU/include/$d" "$DIR.tmp/kernel/$d"
done
# Debian's musl-gcc.specs with its paths moved under $DIR (static links only: no dynamic
# loader is named).
sed -e "s|/usr/include/$TRIPLE|$DIR/usr/include/$TRIPLE|g" \
	-e "s|/usr/lib/$TRIPLE|$DIR/usr/lib/$TRIPLE|g" \
	"$DIR.tmp/usr/lib/$TRIPLE/musl-gcc.specs" >"$DIR.tmp/musl-gcc.specs"
# libgcc and libc as one group: on arm, libgcc's division helpers call raise() from libc, which a
# static link would otherwise leave undefined (libc is searched before the last libgcc).
printf '*link_gcc_c_sequence:\n--start-group %%G %%L --end-group\n\n' >>"$DIR.tmp/musl-gcc.specs"
echo "$VERSION $ARCH" >"$DIR.tmp/.complete"
mv "$DIR.tmp" "$DIR"
echo "$DIR"
