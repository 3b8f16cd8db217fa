#!/usr/bin/python3
"""What each library weighs in a linked meshlet, from a GNU ld map file (tests/bench/tls_size.sh).

  tls_size_map.py MAPFILE      prints "mbedtls=N libwebsockets=N nghttp2=N meshlet=N libc=N other=N"

Counts the bytes of every input section the link kept (after --gc-sections: the map's "Linker
script and memory map" part, not its "Discarded input sections") that takes room in the file:
code, read-only data, data, unwind tables; not .bss/.tbss (zero-filled at load), not debug or
comment sections (the build strips them). mbedtls is libmbedtls + libmbedx509 + libmbedcrypto.
"""
import re
import sys

GROUPS = [("mbedtls", re.compile(r"libmbed(tls|x509|crypto)\.a")),
          ("libwebsockets", re.compile(r"libwebsockets\.a")),
          ("nghttp2", re.compile(r"libnghttp2\.a")),
          ("meshlet", re.compile(r"libmeshlet_core\.a|CMakeFiles/meshlet\.dir|"
                                 r"libprotobuf-nanopb\.a|libinih\.a")),
          ("libc", re.compile(r"/lib(c|m|pthread|resolv|gcc|gcc_eh|dl|rt)\.a|crt\w*\.o"))]
SKIP = re.compile(r"^\.(bss|tbss|debug|comment|note\.GNU-stack|gnu\.warning|stab)|^COMMON")
# " .text.foo  0x0000000000401000  0x2a /path/lib.a(obj.o)"; a long name puts the rest on the
# next line
ONE = re.compile(r"^ (\S+)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S.*)$")
NAME = re.compile(r"^ (\S+)$")
REST = re.compile(r"^\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S.*)$")


def main(path):
    sizes = {g: 0 for g, _ in GROUPS}
    sizes["other"] = 0
    in_map, pending = False, None
    with open(path) as f:
        for line in f:
            if line.startswith("Linker script and memory map"):
                in_map = True
                continue
            if not in_map:
                continue
            m = ONE.match(line)
            if m:
                name, size, obj = m.group(1), int(m.group(2), 16), m.group(3)
            elif pending is not None and REST.match(line):
                m = REST.match(line)
                name, size, obj = pending, int(m.group(1), 16), m.group(2)
            else:
                n = NAME.match(line)
                pending = n.group(1) if n else None
                continue
            pending = None
            if SKIP.match(name) or size == 0:
                continue
            for g, rx in GROUPS:
                if rx.search(obj):
                    sizes[g] += size
                    break
            else:
                sizes["other"] += size
    print(" ".join(f"{k}={v}" for k, v in sizes.items()))


if __name__ == "__main__":
    main(sys.argv[1])
