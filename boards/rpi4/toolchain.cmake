# boards/rpi4/toolchain.cmake — Raspberry Pi 4 (BCM2711, Cortex-A72, ARMv8-A), aarch64 (64-bit OS)
# What differs from the other Linux-GNU boards; the rest is boards/linux-gnu.cmake.
set(ML_TRIPLE    aarch64-linux-gnu)
set(ML_PROCESSOR aarch64)
set(ML_CPU_FLAGS "-mcpu=cortex-a72")
set(ML_QEMU_ARCH aarch64)
set(ML_QEMU_CPU  cortex-a72)
include("${CMAKE_CURRENT_LIST_DIR}/../linux-gnu.cmake")
