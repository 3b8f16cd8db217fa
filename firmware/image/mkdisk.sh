#!/usr/bin/env bash
# mkdisk.sh FILE [SITE_INI [ADMIN_TOKEN_FILE]] — a new data disk for a qemu board image: an ext2
# file system of 16 MiB made on the host (mke2fs -d, no mount, no root needed), mounted by the
# image's rcS on /data, where state_dir lives. Optional: SITE_INI is put at /data/meshlet.ini (it
# replaces the image's factory config at boot), ADMIN_TOKEN_FILE at /data/admin.token (else the
# first boot makes one). An existing FILE is replaced: that is a factory reset of the gateway.
set -Eeuo pipefail
FILE=${1:?usage: mkdisk.sh FILE [SITE_INI [ADMIN_TOKEN_FILE]]}
# 16 MiB: a saved config is at most a few hundred KiB (CONFIG_ML_FLEET_MAX_MESSAGE_BYTES), and
# ext2 keeps 5% for root and its inode tables besides
SIZE=16M

dir=$(mktemp -d "${TMPDIR:-/tmp}/meshlet-disk.XXXXXX")
trap 'rm -rf "$dir"' EXIT
chmod 0755 "$dir"
if [ -n "${2:-}" ]; then install -m 0644 "$2" "$dir/meshlet.ini"; fi
if [ -n "${3:-}" ]; then install -m 0600 "$3" "$dir/admin.token"; fi
rm -f "$FILE.new"
mke2fs -q -t ext2 -L meshlet-data -E root_owner=0:0 -d "$dir" -F "$FILE.new" "$SIZE"
mv -f "$FILE.new" "$FILE"
