# boards/qemu-aarch64-musl/toolchain.cmake — qemu-aarch64 (QEMU virt, Cortex-A53) with musl
set(ML_TRIPLE    aarch64-linux-gnu)
set(ML_PROCESSOR aarch64)
set(ML_CPU_FLAGS "-mcpu=cortex-a53")
set(ML_QEMU_ARCH aarch64)
set(ML_QEMU_CPU  cortex-a53)
set(ML_MUSL_ARCH arm64)
include("${CMAKE_CURRENT_LIST_DIR}/../linux-musl.cmake")
