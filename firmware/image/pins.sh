# shellcheck shell=bash disable=SC2034  # variables are used by the scripts that source us
# The Debian binary packages a qemu board image is made of: the one place that says WHICH.
#
# Sourced by fetch.sh and build.sh. Every package is pinned to one Debian version and the SHA-256
# of its .deb, as the Packages index of the suite below lists it. A kernel or BusyBox from
# anywhere else is never used: fetch.sh downloads with `apt-get download` from a private apt
# state (the system's sources and caches are left alone) and refuses a file whose hash differs.
#
# Why bookworm (the build host's release) and not trixie like the library sources: these are
# binaries that must boot under the host's qemu-system (7.2), and the host already trusts
# bookworm's keyring. Kernels come from bookworm-security, which keeps only the newest ABI:
# when fetch.sh says the archive no longer has a pinned version, take the new one it names
# (`apt-cache depends linux-image-arm64` / `linux-image-armmp:armhf` in the private state),
# put its version and the SHA256 of `apt-cache show` here, and rebuild (firmware/README.md).
IMAGE_MIRROR="http://deb.debian.org/debian"
IMAGE_SECURITY_MIRROR="http://deb.debian.org/debian-security"
IMAGE_SUITE="bookworm"

# img_pin BOARD ROLE PACKAGE ARCH VERSION SHA256-OF-THE-DEB
#   ROLE kernel: a linux-image-* package (vmlinuz under /boot, modules under /lib/modules)
#   ROLE busybox: busybox-static (/bin/busybox, statically linked: no libc in the image)
IMG_PINS=()
img_pin() { IMG_PINS+=("$*"); }

img_pin qemu-aarch64 kernel  linux-image-6.1.0-57-arm64 arm64 6.1.192-3             8301bd5b5b2cf8fd5e479832200c23e64eca0ae9ec45c487c5c318b1e44d4692
img_pin qemu-aarch64 busybox busybox-static             arm64 1:1.35.0-4+deb12u1+b1 732c9135564fc71337e0e05fb4da4d11e6c28c1834bce3e405e575afef2a52f5
img_pin qemu-armv7   kernel  linux-image-6.1.0-57-armmp armhf 6.1.192-3             62cdb16ec5bc06443d4ad73f98ba6de7d0a594b876e7202a889444bfb530d343
img_pin qemu-armv7   busybox busybox-static             armhf 1:1.35.0-4+deb12u1+b1 2f68dbeaebeda49f3cde34ac421d5add85fb1c837ff7c4a4971945340d9d66ff

# Kernel modules the image loads (Debian builds them as modules, =m in /boot/config-*: checked for
# 6.1.0-57 arm64 and armmp), by name; build.sh adds what each depends on (the depends= field of
# the module's .modinfo) and loads them in that order. virtio and virtio_ring are built in.
#   virtio_mmio     the virt board's virtio transport (-device virtio-*-device)
#   virtio_net      eth0, QEMU's user-mode network
#   virtio_blk      /dev/vda, the data disk that holds state_dir
#   ext4            mounts the ext2 data disk (CONFIG_EXT4_USE_FOR_EXT2=y; there is no ext2.ko)
#   crc32c_generic  ext4 asks for the "crc32c" hash when it mounts (a soft dependency, not in
#                   depends=)
IMG_MODULES="virtio_mmio virtio_net virtio_blk crc32c_generic ext4"

# img_pins_of BOARD: the pins of one board, one per line
img_pins_of() {
	local p
	for p in "${IMG_PINS[@]}"; do
		case "$p" in "$1 "*) printf '%s\n' "$p" ;; esac
	done
}
