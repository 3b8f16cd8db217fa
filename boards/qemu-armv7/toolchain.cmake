# boards/qemu-armv7/toolchain.cmake — QEMU virt, Cortex-A15 (ARMv7-A, VFPv4+NEON), armhf (hard-float)
# What differs from the other Linux-GNU boards; the rest is boards/linux-gnu.cmake.
set(ML_TRIPLE    arm-linux-gnueabihf)
set(ML_PROCESSOR armv7l)
set(ML_CPU_FLAGS "-mcpu=cortex-a15 -mfpu=neon-vfpv4 -mfloat-abi=hard")
set(ML_QEMU_ARCH arm)
set(ML_QEMU_CPU  cortex-a15)
include("${CMAKE_CURRENT_LIST_DIR}/../linux-gnu.cmake")
