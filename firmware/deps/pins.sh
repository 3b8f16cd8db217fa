# shellcheck shell=bash disable=SC2034  # variables are used by the scripts that source us
# meshlet dependency pins: the one place that says WHICH source we build.
#
# Sourced (never executed) by fetch.sh and build.sh. Every byte of this file
# goes into the build-prefix hash, so changing a pin rebuilds the dependencies.
#
# Each `pin` line is:
#   pin DEBIAN-SOURCE-PACKAGE  UPSTREAM-VERSION  ORIG-TARBALL  SHA256-OF-ORIG-TARBALL
#
# Why pin the upstream version + orig tarball and not a Debian revision: the
# Debian archive keeps only the newest revision of a package (older .dsc and
# .debian.tar.xz files disappear, and even the newest may 404 for a while), but
# the .orig tarball of an upstream version is byte-identical across all Debian
# revisions. So the orig tarball is what we pin and verify; the Debian revision
# is whatever the archive serves at fetch time and is RECORDED (PATCHES.txt,
# versions.txt), not pinned. See README.md "Changing a pin".
#
# The SHA-256s were checked against the signed trixie Sources index
# (apt-cache showsrc) and against the downloaded files.

# Where the sources come from: Debian trixie (+ trixie-security, which is where
# the security revisions live and where some files are served from).
DEBIAN_MIRROR="http://deb.debian.org/debian"
DEBIAN_SECURITY_MIRROR="http://deb.debian.org/debian-security"
DEBIAN_SUITE="trixie"
DEBIAN_SECURITY_SUITE="trixie-security"

PIN_NAMES=()
declare -gA PIN_VERSION=() PIN_ORIG=() PIN_SHA256=()
pin() {
	PIN_NAMES+=("$1")
	PIN_VERSION[$1]=$2
	PIN_ORIG[$1]=$3
	PIN_SHA256[$1]=$4
}

# Order matters only for readability; build.sh has its own build order.
pin mbedtls       3.6.6   mbedtls_3.6.6.orig.tar.bz2       8fb65fae8dcae5840f793c0a334860a411f884cc537ea290ce1c52bb64ca007a
pin nghttp2       1.64.0  nghttp2_1.64.0.orig.tar.gz       b452dc69a1fcbc9375389b8b154175d8b7b125cdd713fc426774c2b79a1ebd77
pin libwebsockets 4.3.5   libwebsockets_4.3.5.orig.tar.gz  87f99ad32803ed325fceac5327aae1f5c1b417d54ee61ad36cffc8df5f5ab276
pin nanopb        0.4.9.1 nanopb_0.4.9.1.orig.tar.gz       4575944a468718ef25f05eb01d994364650b581563089a9841986bb1e460eac3
pin libinih       59      libinih_59.orig.tar.gz           062279922805f5e9a369551a08d5ddb506140fe50774183ffdbb7c22bb97e3f4
pin cmocka        1.1.7   cmocka_1.1.7.orig.tar.xz         810570eb0b8d64804331f82b29ff47c790ce9cd6b163e98d47a4807047ecad82

# The unpacked (and patched) source tree of NAME: $SRC/$(pin_srcdir NAME).
# Named after the Debian package, not the tarball's top directory (inih's is
# "inih-r59"), so every consumer can compute it from the pin alone.
pin_srcdir() { printf '%s-%s\n' "$1" "${PIN_VERSION[$1]}"; }
