# boards/linux-musl.cmake — a Linux-GNU cross board (boards/linux-gnu.cmake) with musl instead of
# glibc: the same Debian cross gcc, driven by the specs file of firmware/musl/fetch.sh (Debian's
# musl 1.2.3-1 for ML_MUSL_ARCH, pinned, unpacked under the meshlet cache). A board's
# toolchain.cmake sets linux-gnu.cmake's variables and ML_MUSL_ARCH (arm64, armhf), then
# includes this file.
include("${CMAKE_CURRENT_LIST_DIR}/linux-gnu.cmake")

execute_process(COMMAND "${CMAKE_CURRENT_LIST_DIR}/../firmware/musl/fetch.sh" ${ML_MUSL_ARCH}
                OUTPUT_VARIABLE ml_musl_out RESULT_VARIABLE ml_musl_rv)
if(NOT ml_musl_rv EQUAL 0)
  message(FATAL_ERROR "firmware/musl/fetch.sh ${ML_MUSL_ARCH} failed (see above)")
endif()
string(STRIP "${ml_musl_out}" ml_musl_out)
string(REGEX REPLACE "^.*\n" "" ML_MUSL_DIR "${ml_musl_out}")

# -specs: musl's headers, crt files and libc.a in place of glibc's (compile and link: CMake links
# through the compiler driver with these flags); the kernel's headers after them.
set(ml_musl_flags "-specs=${ML_MUSL_DIR}/musl-gcc.specs -idirafter ${ML_MUSL_DIR}/kernel")
set(CMAKE_C_FLAGS_INIT   "${ML_CPU_FLAGS} ${ml_musl_flags}")
set(CMAKE_CXX_FLAGS_INIT "${ML_CPU_FLAGS} ${ml_musl_flags}")
set(CMAKE_FIND_ROOT_PATH "${ML_MUSL_DIR}/usr")
