# boards/host-musl/toolchain.cmake — the build host (x86_64) with musl 1.2.3 instead of glibc:
# Debian's musl-gcc wrapper (musl-tools, musl-dev), static. A smaller libc for the same code.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(CMAKE_C_COMPILER musl-gcc)
set(CMAKE_AR     ar     CACHE FILEPATH "")
set(CMAKE_RANLIB ranlib CACHE FILEPATH "")
set(CMAKE_STRIP  strip  CACHE FILEPATH "")

# musl-gcc sees only musl's headers; the kernel's (linux/, asm/: libwebsockets' netlink, the
# socket options) are libc-independent, so they are added from the host's linux-libc-dev
# through a directory of their own, never /usr/include itself (glibc's headers are there).
set(ml_kernel_headers "${CMAKE_BINARY_DIR}/musl-kernel-headers")
if(NOT EXISTS "${ml_kernel_headers}/linux")
  file(MAKE_DIRECTORY "${ml_kernel_headers}")
  file(CREATE_LINK /usr/include/linux "${ml_kernel_headers}/linux" SYMBOLIC)
  file(CREATE_LINK /usr/include/asm-generic "${ml_kernel_headers}/asm-generic" SYMBOLIC)
  file(CREATE_LINK /usr/include/x86_64-linux-gnu/asm "${ml_kernel_headers}/asm" SYMBOLIC)
endif()
set(CMAKE_C_FLAGS_INIT "-idirafter ${ml_kernel_headers}")

set(CMAKE_FIND_ROOT_PATH /usr/lib/x86_64-linux-musl)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
