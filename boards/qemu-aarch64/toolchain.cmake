# boards/qemu-aarch64/toolchain.cmake — QEMU virt, Cortex-A53 (ARMv8-A), aarch64
# What differs from the other Linux-GNU boards; the rest is boards/linux-gnu.cmake.
set(ML_TRIPLE    aarch64-linux-gnu)
set(ML_PROCESSOR aarch64)
set(ML_CPU_FLAGS "-mcpu=cortex-a53")
set(ML_QEMU_ARCH aarch64)
set(ML_QEMU_CPU  cortex-a53)
include("${CMAKE_CURRENT_LIST_DIR}/../linux-gnu.cmake")
