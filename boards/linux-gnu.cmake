# boards/linux-gnu.cmake — the one toolchain of the Linux-GNU cross boards: Debian bookworm's
# cross gcc 12 with glibc 2.36 (libc6-dev-*-cross), installed by firmware/setup-host.sh. A
# board's toolchain.cmake sets what differs and includes this file:
#   ML_TRIPLE         the GNU triplet: aarch64-linux-gnu, arm-linux-gnueabihf
#   ML_PROCESSOR      CMAKE_SYSTEM_PROCESSOR: aarch64, armv7l
#   ML_CPU_FLAGS      -mcpu (and -mfpu, -mfloat-abi) of the board's CPU
#   ML_QEMU_CPU       qemu-user's -cpu for that CPU (the emulator is qemu-${ML_QEMU_ARCH}-static)
#   ML_QEMU_ARCH      aarch64, arm
# NOTE: firmware/deps/build.sh hashes the board's toolchain.cmake into its prefix; an edit here
# must come with a rebuild of the dependencies (build.sh BOARD --force), or be added to its hash.
foreach(var ML_TRIPLE ML_PROCESSOR ML_CPU_FLAGS ML_QEMU_CPU ML_QEMU_ARCH)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "${CMAKE_CURRENT_LIST_FILE}: ${var} is not set by the board's toolchain.cmake")
  endif()
endforeach()

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${ML_PROCESSOR})

set(CMAKE_C_COMPILER   ${ML_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${ML_TRIPLE}-g++)
# Named explicitly rather than left to CMake's guess from the compiler name;
# CACHE because that is where CMake keeps its binutils.
set(CMAKE_AR     ${ML_TRIPLE}-ar     CACHE FILEPATH "")
set(CMAKE_RANLIB ${ML_TRIPLE}-ranlib CACHE FILEPATH "")
set(CMAKE_STRIP  ${ML_TRIPLE}-strip  CACHE FILEPATH "")

# Tune for the board's CPU. *_FLAGS_INIT (not CMAKE_C_FLAGS) so that the
# CFLAGS environment variable and a project's own flags are added to it
# instead of replacing it.
# 32-bit glibc boards (armhf): 64-bit time_t and off_t (glibc >= 2.34), as musl has on every
# board. Gateways stay in the field for years: a 32-bit time_t wraps in January 2038, and before
# that mbedTLS and libwebsockets already turn certificate dates past 2038 (a CA's, typically)
# into wrapped times. Here, so the dependencies (built with this file) agree on the types.
if(ML_PROCESSOR MATCHES "^arm")
  string(APPEND ML_CPU_FLAGS " -D_TIME_BITS=64 -D_FILE_OFFSET_BITS=64")
endif()
set(CMAKE_C_FLAGS_INIT   "${ML_CPU_FLAGS}")
set(CMAKE_CXX_FLAGS_INIT "${ML_CPU_FLAGS}")

# Headers and libraries come from the cross sysroot only, programs from the
# host. NOTE: with the ONLY modes find_library()/find_path() will not look in
# a dependency prefix outside this root: use full paths into the prefix (or
# list(APPEND CMAKE_FIND_ROOT_PATH <prefix>)), see firmware/deps/README.md.
set(CMAKE_FIND_ROOT_PATH /usr/${ML_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# ctest / try_run / add_custom_command run target binaries through qemu-user
# with this board's CPU (a CMake list: program;arg;arg). Unit tests must be
# linked -static (the cross glibc is not where qemu looks), or run with
# QEMU_LD_PREFIX=/usr/${ML_TRIPLE}.
set(CMAKE_CROSSCOMPILING_EMULATOR "qemu-${ML_QEMU_ARCH}-static;-cpu;${ML_QEMU_CPU}")
