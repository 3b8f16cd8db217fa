# Prints the size of the stripped binary after each link (the number a board's flash cares for).
file(SIZE "${FILE}" size)
math(EXPR kib "${size} / 1024")
message(STATUS "meshlet (${BOARD}): ${size} bytes (${kib} KiB), static, stripped: ${FILE}")
