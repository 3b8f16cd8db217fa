#!/usr/bin/env bash
# build.sh BOARD — assemble the bootable image of a qemu board from Debian's packages (pins.sh)
# and the board's meshlet binary.
#
#   ML_IMAGE_MESHLET  the binary to put in (default build/BOARD/meshlet; it must exist)
#   ML_IMAGE_OUT      where the image goes (default build/image/BOARD)
#
# Result in $OUT: vmlinuz (Debian's kernel, as packaged), initramfs.cpio.gz (BusyBox, the
# modules, meshlet, its config, inittab, rcS/rcK), versions.txt (what went in, with hashes).
# The data disk is made separately (mkdisk.sh), so rebuilding the image keeps the saved config.
set -Eeuo pipefail
trap 'printf "image-build: ERROR: unexpected failure (exit %s) at build.sh line %s\n" "$?" "$LINENO" >&2' ERR

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=pins.sh
. "$HERE/pins.sh"

BOARD=${1:?usage: build.sh BOARD}
CACHE=${MESHLET_CACHE_DIR:-$HOME/.cache/meshlet}
MESHLET=${ML_IMAGE_MESHLET:-$ROOT/build/$BOARD/meshlet}
OUT=${ML_IMAGE_OUT:-$ROOT/build/image/$BOARD}

log() { printf 'image-build: %s\n' "$*" >&2; }
die() { printf 'image-build: ERROR: %s\n' "$*" >&2; exit 1; }

[ -f "$ROOT/boards/$BOARD/qemu.conf" ] || die "no board $BOARD (boards/$BOARD/qemu.conf)"
[ -x "$MESHLET" ] || die "no meshlet binary at $MESHLET: build it first (cmake -S . -B build/$BOARD -G Ninja -DML_BOARD=$BOARD && cmake --build build/$BOARD)"

declare -A DEB=()
while read -r role path; do DEB[$role]=$path; done < <("$HERE/fetch.sh" "$BOARD")
if [ -z "${DEB[kernel]:-}" ] || [ -z "${DEB[busybox]:-}" ]; then
	die "pins.sh must give $BOARD a kernel and a busybox"
fi

# Each .deb is unpacked once into the cache (a kernel's modules are ~300 MB unpacked; the image
# takes a dozen of them), under the lock fetch.sh uses.
unpacked() { # DEB -> prints the directory it is unpacked in
	local d
	d="$CACHE/image/x/$(basename "$1" .deb)"
	if [ ! -f "$d/.complete" ]; then
		rm -rf "$d"
		mkdir -p "$d"
		dpkg-deb -x "$1" "$d"
		touch "$d/.complete"
	fi
	printf '%s\n' "$d"
}
exec 9>"$CACHE/image/.lock"
flock 9
KX=$(unpacked "${DEB[kernel]}")
BX=$(unpacked "${DEB[busybox]}")
flock -u 9

KVMLINUZ=$(find "$KX/boot" -maxdepth 1 -name 'vmlinuz-*' | head -n1)
[ -n "$KVMLINUZ" ] || die "no /boot/vmlinuz-* in ${DEB[kernel]}"
KVER=${KVMLINUZ##*/vmlinuz-}
KDIR=$KX/lib/modules/$KVER
[ -d "$KDIR" ] || die "no lib/modules/$KVER in ${DEB[kernel]}"

# The root file system, staged then packed (owners are set to root by the packer, not here).
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/meshlet-image.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
R=$STAGE/root
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc/init.d,etc/meshlet,lib/modules,proc,sys,dev,run,tmp,data,root}
chmod 1777 "$R/tmp"
chmod 0700 "$R/root"
install -m 0755 "$BX/bin/busybox" "$R/bin/busybox"
ln -s bin/busybox "$R/init" # the kernel runs /init from an initramfs: BusyBox init, by its name
ln -s ../bin/busybox "$R/sbin/init"
ln -s busybox "$R/bin/sh" # rcS and rcK start with #!/bin/sh, before rcS links the applets

# shellcheck disable=SC2086  # IMG_MODULES is a list of names
"$HERE/mkinitramfs.py" modules "$KDIR" $IMG_MODULES >"$STAGE/order"
: >"$R/lib/modules/load.order"
while read -r rel; do
	install -m 0644 "$KDIR/$rel" "$R/lib/modules/${rel##*/}"
	printf '%s\n' "${rel##*/}" >>"$R/lib/modules/load.order"
done <"$STAGE/order"

install -m 0755 "$MESHLET" "$R/usr/bin/meshlet"
install -m 0644 "$HERE/meshlet.ini" "$R/etc/meshlet/meshlet.ini"
install -m 0755 "$HERE/rcS" "$R/etc/init.d/rcS"
install -m 0755 "$HERE/rcK" "$R/etc/init.d/rcK"
# inittab: the image's lines, then meshlet's own line, taken as it is shipped for BusyBox
# systems, so the boot test tests the file users append to theirs.
{
	cat "$HERE/inittab"
	grep -v '^#' "$ROOT/firmware/init/busybox/inittab.meshlet" | grep .
} >"$R/etc/inittab"
grep -q '^::respawn:/usr/bin/meshlet ' "$R/etc/inittab" || die "no meshlet respawn line in firmware/init/busybox/inittab.meshlet"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\n' >"$R/etc/group"
# QEMU user-mode network's DNS (it asks the host's resolver); without it lws's resolver warns at start
printf 'nameserver 10.0.2.3\n' >"$R/etc/resolv.conf"

mkdir -p "$OUT"
"$HERE/mkinitramfs.py" cpio "$R" "$OUT/initramfs.cpio.gz.new"
mv -f "$OUT/initramfs.cpio.gz.new" "$OUT/initramfs.cpio.gz"
install -m 0644 "$KVMLINUZ" "$OUT/vmlinuz"
{
	echo "board $BOARD"
	echo "kernel $KVER"
	img_pins_of "$BOARD" | while read -r _ role pkg arch ver sum; do
		echo "deb $role $pkg:$arch=$ver sha256:$sum"
	done
	echo "modules $(tr '\n' ' ' <"$R/lib/modules/load.order")"
	echo "meshlet $(stat -c %s "$MESHLET") bytes sha256:$(sha256sum "$MESHLET" | cut -d' ' -f1)"
	echo "initramfs $(stat -c %s "$OUT/initramfs.cpio.gz") bytes"
} >"$OUT/versions.txt"
log "$OUT: vmlinuz ($KVER), initramfs.cpio.gz ($(stat -c %s "$OUT/initramfs.cpio.gz") bytes), meshlet $(stat -c %s "$MESHLET") bytes"
