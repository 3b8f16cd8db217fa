#!/usr/bin/python3
"""What meshlet's bytes are: per library and per Kconfig feature, from the link map.

  firmware/size.py BUILD [MINIMAL_BUILD]      (firmware/size.sh runs it; /usr/bin/python3)

BUILD is a board's build tree (cmake -DML_BOARD=...); its link wrote BUILD/meshlet.map
(CMakeLists.txt) and BUILD/feature-sources.txt names the sources of each Kconfig feature. Every
input section the linker kept in a section that takes room in the file (not .bss/.tbss) is
charged to the archive or object it came from; meshlet's own sections to their source file, and
those of a feature's files to its Kconfig symbol. The sums are input section bytes: the stripped
file adds headers and alignment (meshlet is linked with 4 KiB pages, so a few KiB at most) and
merges equal strings across files (so .rodata counts a little high). With MINIMAL_BUILD (a -DML_MINIMAL=ON tree of the
same board) the stripped sizes of both are compared: what the left-out features really cost,
library code only they pull in included.
"""
import os
import re
import subprocess
import sys
from collections import defaultdict

# Output sections that take no room in the stripped file: zero-filled ones and what strip drops
# or the loader never sees (by prefix).
NOT_IN_FILE = (".bss", ".tbss", ".sbss", ".noinit", ".comment", ".debug", ".ARM.attributes",
               ".gnu.attributes", ".note.GNU-stack", ".gnu_debuglink", ".stab", "/DISCARD/")
INPUT_RE = re.compile(r"^ (\S+)?\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
OUTPUT_RE = re.compile(r"^(\.\S+|\S+)(\s+0x[0-9a-f]+\s+0x[0-9a-f]+)?\s*$")
MEMBER_RE = re.compile(r"^(.*?)([^/()]+)\.a\((.+)\)$")


def cache_value(build, key):
    with open(os.path.join(build, "CMakeCache.txt")) as f:
        for line in f:
            if line.startswith(key + ":"):
                return line.split("=", 1)[1].strip()
    return ""


def core_symbols(build):
    """symbol -> source file, for meshlet's own objects (archive members are named by their base
    name alone: balance/health.c and grpc/health.c are both health.c.o)."""
    nm = cache_value(build, "CMAKE_NM") or "nm"
    objdir = os.path.join(build, "CMakeFiles", "meshlet_core.dir")
    by_symbol, by_base = {}, defaultdict(set)
    objs = []
    for root, _, files in os.walk(objdir):
        objs += [os.path.join(root, f) for f in files if f.endswith(".o")]
    for obj in objs:
        src = os.path.relpath(obj, objdir)[: -len(".o")]  # runtime/balance/health.c
        by_base[os.path.basename(obj)].add(src)
        out = subprocess.run([nm, "--defined-only", obj], capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3:
                by_symbol.setdefault(parts[2], src)
    return by_symbol, by_base


def features(build):
    """source file (runtime/...) -> Kconfig symbol."""
    out = {}
    path = os.path.join(build, "feature-sources.txt")
    gen = os.path.join(os.path.abspath(build), "generated") + "/"
    for line in open(path):
        if not line.strip():
            continue
        symbol, src = line.split(" ", 1)
        src = src.strip()
        if src.startswith(gen):
            src = "generated/" + src[len(gen):]
        else:
            src = src[src.index("runtime/"):]
        out[src] = symbol
    return out


def owner(section, where, by_symbol, by_base):
    """(library, source file or None) of one input section."""
    m = MEMBER_RE.match(where)
    if m is None:
        name = os.path.basename(where)
        if name == "main.c.o":
            return "meshlet", "runtime/main.c"
        return ("startup (crt*.o)" if name.startswith("crt") else name), None
    lib, member = m.group(2), m.group(3)
    if lib != "libmeshlet_core":
        return lib + ".a", None
    # .text.NAME, .rodata.NAME, .data.rel.ro.NAME...: -ffunction-sections/-fdata-sections
    for prefix in (".text.", ".rodata.", ".data.rel.ro.local.", ".data.rel.ro.", ".data.rel.local.",
                   ".data.rel.", ".data."):
        if section.startswith(prefix) and section[len(prefix):] in by_symbol:
            return "meshlet", by_symbol[section[len(prefix):]]
    srcs = by_base.get(member, set())
    if len(srcs) == 1:
        return "meshlet", next(iter(srcs))
    # merged strings and the like of a base name two files share (node/apply.c, proxy/apply.c)
    return "meshlet", "(%s: %s)" % (member[: -len(".o")], " or ".join(sorted(srcs)))


def charge(build):
    by_symbol, by_base = core_symbols(build)
    libs, files = defaultdict(int), defaultdict(int)
    out_section, pending = None, None
    started = False
    for line in open(os.path.join(build, "meshlet.map"), errors="replace"):
        line = line.rstrip("\n")
        if not started:
            started = line.startswith("Linker script and memory map")
            continue
        if line and not line.startswith(" "):
            m = OUTPUT_RE.match(line)
            out_section = m.group(1) if m else None
            pending = None
            continue
        if re.match(r"^ \S+$", line):  # a long input section name: the rest is on the next line
            pending = line.strip()
            continue
        m = INPUT_RE.match(line)
        if m is None or out_section is None or out_section.startswith(NOT_IN_FILE):
            pending = None
            continue
        section = m.group(1) or pending
        pending = None
        size, where = int(m.group(3), 16), m.group(4).strip()
        if section is None or size == 0 or where.startswith("*fill*") or "(" not in where \
                and not where.endswith(".o"):
            continue
        lib, src = owner(section, where, by_symbol, by_base)
        libs[lib] += size
        if src is not None:
            files[src] += size
    return libs, files


def kib(n):
    return "%.1f" % (n / 1024.0)


def main(argv):
    if len(argv) not in (2, 3):
        sys.stderr.write(__doc__)
        return 2
    build = argv[1]
    stripped = os.path.getsize(os.path.join(build, "meshlet"))
    board = cache_value(build, "ML_BOARD")
    libs, files = charge(build)
    feature_of = features(build)
    total = sum(libs.values())
    print("## %s: meshlet %d bytes (%s KiB) stripped; %s KiB of sections" %
          (board, stripped, kib(stripped), kib(total)))
    print()
    print("| library | KiB | share |")
    print("|---|---:|---:|")
    for lib, n in sorted(libs.items(), key=lambda kv: -kv[1]):
        print("| %s | %s | %.1f%% |" % (lib, kib(n), 100.0 * n / total))
    per_feature = defaultdict(int)
    per_module = defaultdict(int)
    for src, n in files.items():
        symbol = feature_of.get(src)
        if symbol is not None:
            per_feature[symbol] += n
        else:
            if src.startswith("runtime/") and src.count("/") == 2:
                module = src.split("/")[1] + "/"
            elif src.startswith("generated/"):
                module = "generated/ (nanopb messages)"
            else:
                module = src  # runtime/main.c, or a shared base name
            per_module[module] += n
    print()
    print("| meshlet's own code | KiB |")
    print("|---|---:|")
    for name, n in sorted(per_feature.items(), key=lambda kv: -kv[1]):
        print("| feature %s | %s |" % (name, kib(n)))
    for name, n in sorted(per_module.items(), key=lambda kv: -kv[1]):
        print("| %s (always) | %s |" % (name, kib(n)))
    if len(argv) == 3:
        small = os.path.getsize(os.path.join(argv[2], "meshlet"))
        print()
        print("minimal (%s): %d bytes (%s KiB) stripped; the full build is %d bytes (%s KiB, "
              "%.1f%%) larger" % (argv[2], small, kib(small), stripped - small,
                                  kib(stripped - small), 100.0 * (stripped - small) / stripped))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
