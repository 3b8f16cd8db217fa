#!/bin/sh
# Makes the unreadable configs of cases.txt in DIR (which must exist and be empty).
#   sh tests/config/unreadable/generate.sh DIR
set -eu
dir=${1:?usage: generate.sh DIR}
cd "$dir"

# Text up to a NUL byte: the NUL makes it not a text file, wherever it is.
printf '[node]\nlog = info\n\000\n' > nul-byte.ini
# Latin-1 (0xe9 alone) is not UTF-8.
printf '[node]\nid = caf\351\n' > not-utf8.ini
# What a mistaken `meshlet check /usr/bin/meshlet` reads: an ELF header and zeros.
printf '\177ELF\002\001\001\000\000\000\000\000\000\000\000\000\002\000' > binary.ini
dd if=/dev/zero bs=1024 count=4 2>/dev/null >> binary.ini
# 10 MiB of empty lines, valid text: refused for its size alone (CONFIG_ML_MAX_CONFIG_BYTES is
# at most 4 MiB on any board).
dd if=/dev/zero bs=1048576 count=10 2>/dev/null | tr '\000' '\n' > too-big.ini
mkdir directory.ini
mkfifo fifo.ini
# missing.ini: not made.
