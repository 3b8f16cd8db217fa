#!/bin/sh
# firmware/link/check-no-unwinding.sh NM FILE... — fails if any of meshlet's objects or libraries
# (FILE: .o or .a) calls a function that unwinds the stack. The static binary is linked without
# libc's unwind tables (firmware/link/no-unwind-tables.ld); an unwinder started there would find
# no frames and abort the thread or the process instead of running its cleanup. Run before each
# link of the meshlet binary (CMakeLists.txt).
set -eu
nm=$1
shift
# The C entry points that start unwinding; C++ never links into meshlet.
unwinders='pthread_cancel|pthread_exit|backtrace|backtrace_symbols|backtrace_symbols_fd|_Unwind_Backtrace|_Unwind_RaiseException|_Unwind_ForcedUnwind|__cxa_throw'
found=$("$nm" -A --undefined-only "$@" 2>/dev/null | grep -Ew "U ($unwinders)$" || true)
if [ -n "$found" ]; then
	echo "check-no-unwinding: these objects call an unwinder, but the static binary has no unwind" >&2
	echo "tables (firmware/link/no-unwind-tables.ld); drop the call or the script:" >&2
	echo "$found" >&2
	exit 1
fi
