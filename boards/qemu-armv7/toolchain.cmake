# boards/qemu-armv7/toolchain.cmake — QEMU virt, Cortex-A15 (ARMv7-A, VFPv4+NEON), armhf (hard-float)
# Debian bookworm's cross gcc (arm-linux-gnueabihf-gcc 12, glibc 2.36 from
# libc6-dev-*-cross); installed by firmware/setup-host.sh.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR armv7l)

set(CMAKE_C_COMPILER   arm-linux-gnueabihf-gcc)
set(CMAKE_CXX_COMPILER arm-linux-gnueabihf-g++)
# Named explicitly rather than left to CMake's guess from the compiler name;
# CACHE because that is where CMake keeps its binutils.
set(CMAKE_AR     arm-linux-gnueabihf-ar     CACHE FILEPATH "")
set(CMAKE_RANLIB arm-linux-gnueabihf-ranlib CACHE FILEPATH "")
set(CMAKE_STRIP  arm-linux-gnueabihf-strip  CACHE FILEPATH "")

# Tune for the board's CPU. *_FLAGS_INIT (not CMAKE_C_FLAGS) so that the
# CFLAGS environment variable and a project's own flags are added to it
# instead of replacing it.
set(CMAKE_C_FLAGS_INIT   "-mcpu=cortex-a15 -mfpu=neon-vfpv4 -mfloat-abi=hard")
set(CMAKE_CXX_FLAGS_INIT "-mcpu=cortex-a15 -mfpu=neon-vfpv4 -mfloat-abi=hard")

# Headers and libraries come from the cross sysroot only, programs from the
# host. NOTE: with the ONLY modes find_library()/find_path() will not look in
# a dependency prefix outside this root: use full paths into the prefix (or
# list(APPEND CMAKE_FIND_ROOT_PATH <prefix>)), see firmware/deps/README.md.
set(CMAKE_FIND_ROOT_PATH /usr/arm-linux-gnueabihf)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# ctest / try_run / add_custom_command run target binaries through qemu-user
# with this board's CPU (a CMake list: program;arg;arg). Unit tests must be
# linked -static (the cross glibc is not where qemu looks), or run with
# QEMU_LD_PREFIX=/usr/arm-linux-gnueabihf.
set(CMAKE_CROSSCOMPILING_EMULATOR "qemu-arm-static;-cpu;cortex-a15")
