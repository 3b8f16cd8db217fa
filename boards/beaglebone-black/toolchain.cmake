# boards/beaglebone-black/toolchain.cmake — BeagleBone Black (TI AM335x, Cortex-A8, ARMv7-A, VFPv3+NEON), armhf (hard-float)
# What differs from the other Linux-GNU boards; the rest is boards/linux-gnu.cmake.
set(ML_TRIPLE    arm-linux-gnueabihf)
set(ML_PROCESSOR armv7l)
set(ML_CPU_FLAGS "-mcpu=cortex-a8 -mfpu=neon -mfloat-abi=hard")
set(ML_QEMU_ARCH arm)
set(ML_QEMU_CPU  cortex-a8)
include("${CMAKE_CURRENT_LIST_DIR}/../linux-gnu.cmake")
