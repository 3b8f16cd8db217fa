#!/bin/sh
# firmware/size.sh BUILD [MINIMAL_BUILD] — what a board's meshlet costs, per library and per
# Kconfig feature, from the link map (firmware/size.py says how it counts). BUILD is a build tree
# that linked meshlet (cmake --build BUILD --target meshlet); MINIMAL_BUILD a -DML_MINIMAL=ON one
# of the same board, to compare. Example, the figures of the README's size section:
#   cmake -S . -B build/qemu-aarch64 -G Ninja -DML_BOARD=qemu-aarch64
#   cmake -S . -B build/qemu-aarch64-min -G Ninja -DML_BOARD=qemu-aarch64 -DML_MINIMAL=ON
#   cmake --build build/qemu-aarch64 --target meshlet && cmake --build build/qemu-aarch64-min --target meshlet
#   firmware/size.sh build/qemu-aarch64 build/qemu-aarch64-min
exec /usr/bin/python3 "$(dirname "$0")/size.py" "$@"
