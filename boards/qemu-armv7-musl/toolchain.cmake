# boards/qemu-armv7-musl/toolchain.cmake — qemu-armv7 (QEMU virt, Cortex-A15, armhf) with musl
set(ML_TRIPLE    arm-linux-gnueabihf)
set(ML_PROCESSOR armv7l)
set(ML_CPU_FLAGS "-mcpu=cortex-a15 -mfpu=neon-vfpv4 -mfloat-abi=hard")
set(ML_QEMU_ARCH arm)
set(ML_QEMU_CPU  cortex-a15)
set(ML_MUSL_ARCH armhf)
include("${CMAKE_CURRENT_LIST_DIR}/../linux-musl.cmake")
