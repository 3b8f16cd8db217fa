#!/usr/bin/env bash
# run.sh BOARD [options] — build a qemu board's meshlet and image, and boot it in qemu-system with
# the console on this terminal (Ctrl-A x quits QEMU; `reboot` or `poweroff` in the guest's shell).
#
#   --no-build          boot what build/image/BOARD holds (no cmake, no image build)
#   --disk FILE         the data disk (default build/image/BOARD/data.ext2, made when missing
#                       by mkdisk.sh: it keeps state_dir, so it is kept between boots)
#   --listen-port N     host port forwarded to the guest's listener 15001 (default 15001)
#   --admin-port N      host port forwarded to the guest's admin endpoint 15000 (default 15000)
#
# QEMU's user-mode network: the host ports are bound on 127.0.0.1 only; the guest reaches the
# host's 127.0.0.1:PORT as 10.0.2.2:PORT (QEMU's gateway), and nothing else.
set -Eeuo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

die() { printf 'image-run: ERROR: %s\n' "$*" >&2; exit 1; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2; }

BOARD=${1:-}
if [ -z "$BOARD" ] || [ "${BOARD#-}" != "$BOARD" ]; then usage; fi
shift
BUILD=1 DISK="" LISTEN=15001 ADMIN=15000
while [ $# -gt 0 ]; do
	case "$1" in
	--no-build) BUILD=0 ;;
	--disk) DISK=${2:?--disk FILE}; shift ;;
	--listen-port) LISTEN=${2:?--listen-port N}; shift ;;
	--admin-port) ADMIN=${2:?--admin-port N}; shift ;;
	*) usage ;;
	esac
	shift
done
[ -f "$ROOT/boards/$BOARD/qemu.conf" ] || die "no board $BOARD (boards/$BOARD/qemu.conf)"
# shellcheck disable=SC1090
. "$ROOT/boards/$BOARD/qemu.conf"
[ -n "${QEMU_SYSTEM:-}" ] || die "boards/$BOARD/qemu.conf names no QEMU_SYSTEM: this board has no qemu image"
read -r qemu _ <<<"$QEMU_SYSTEM"
command -v "$qemu" >/dev/null || die "$qemu is not installed (Debian: apt-get install qemu-system-arm)"

OUT=${ML_IMAGE_OUT:-$ROOT/build/image/$BOARD}
if [ "$BUILD" = 1 ]; then
	cmake -S "$ROOT" -B "$ROOT/build/$BOARD" -G Ninja -DML_BOARD="$BOARD" >&2
	cmake --build "$ROOT/build/$BOARD" -j2 --target meshlet >&2
	ML_IMAGE_OUT=$OUT "$HERE/build.sh" "$BOARD"
fi
if [ ! -f "$OUT/vmlinuz" ] || [ ! -f "$OUT/initramfs.cpio.gz" ]; then
	die "no image in $OUT: run without --no-build"
fi
DISK=${DISK:-$OUT/data.ext2}
[ -f "$DISK" ] || "$HERE/mkdisk.sh" "$DISK"

# The board's machine (-M virt, CPU, 256 MiB, 1 core) from qemu.conf; virtio over MMIO (the
# virt board's own transport: no PCI option ROM needed); panic=-1 reboots on a kernel panic.
# shellcheck disable=SC2086  # QEMU_SYSTEM is a command line
exec $QEMU_SYSTEM -nographic \
	-kernel "$OUT/vmlinuz" -initrd "$OUT/initramfs.cpio.gz" \
	-append "console=ttyAMA0 quiet panic=-1" \
	-netdev "user,id=net0,hostfwd=tcp:127.0.0.1:$LISTEN-:15001,hostfwd=tcp:127.0.0.1:$ADMIN-:15000" \
	-device virtio-net-device,netdev=net0 \
	-drive "file=$DISK,format=raw,if=none,id=data" -device virtio-blk-device,drive=data
