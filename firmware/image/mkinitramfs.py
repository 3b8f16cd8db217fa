#!/usr/bin/python3
"""Two steps of build.sh that no host tool does here (the host has neither modinfo nor cpio):

  mkinitramfs.py modules KDIR NAME...   the .ko files to load, dependencies first, one path
                                        (relative to KDIR) a line. KDIR is a kernel's
                                        lib/modules/VERSION; dependencies are read from each
                                        module's .modinfo "depends=" field, as modprobe would.
  mkinitramfs.py cpio DIR OUT           DIR packed as a gzip'd newc cpio archive (the format the
                                        kernel unpacks into its root file system), every entry
                                        owned by root, with fixed times so the same tree gives
                                        the same bytes.
"""

import gzip
import os
import stat
import sys
from pathlib import Path


def die(msg):
    sys.stderr.write(f"mkinitramfs: ERROR: {msg}\n")
    sys.exit(1)


def module_index(kdir):
    """module name → path relative to kdir, for every .ko under kdir/kernel. Names use '_'
    (the kernel treats '-' and '_' in module names alike)."""
    index = {}
    for path in Path(kdir, "kernel").rglob("*.ko"):
        index[path.name[:-3].replace("-", "_")] = path.relative_to(kdir)
    return index


def depends_of(path):
    """The module's depends= list, from the NUL-separated key=value strings of .modinfo."""
    data = path.read_bytes()
    at = data.find(b"\0depends=")
    if at < 0:
        return []
    value = data[at + len(b"\0depends="):data.index(b"\0", at + 1)].decode()
    return [d.replace("-", "_") for d in value.split(",") if d]


def modules(kdir, names):
    index = module_index(kdir)
    builtin = set()
    builtin_file = Path(kdir, "modules.builtin")
    if builtin_file.is_file():
        builtin = {Path(l.strip()).name[:-3].replace("-", "_")
                   for l in builtin_file.read_text().splitlines() if l.strip()}
    order, seen = [], set()

    def visit(name, chain):
        name = name.replace("-", "_")
        if name in seen or name in builtin:
            return
        if name in chain:
            die(f"module dependency loop: {' -> '.join(chain + [name])}")
        if name not in index:
            die(f"module {name} is neither in {kdir}/kernel nor built in (modules.builtin)")
        for dep in depends_of(Path(kdir, index[name])):
            visit(dep, chain + [name])
        seen.add(name)
        order.append(index[name])

    for n in names:
        visit(n, [])
    print("\n".join(str(p) for p in order))


# newc: "070701", then 13 fields of 8 hex digits, the name (NUL-terminated) and the data, each
# padded to 4 bytes.
def _entry(out, ino, mode, size, nlink, name, data=b""):
    name_b = name.encode() + b"\0"
    hdr = "070701" + "".join(f"{v:08x}" for v in (
        ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name_b), 0))
    out.write(hdr.encode() + name_b)
    out.write(b"\0" * (-(110 + len(name_b)) % 4))
    out.write(data)
    out.write(b"\0" * (-len(data) % 4))


def pack(src, dst):
    entries = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        for n in sorted(dirnames) + sorted(filenames):
            entries.append(Path(dirpath, n))
    with open(dst, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                               compresslevel=9) as out:
        ino = 1
        for p in entries:
            rel = str(p.relative_to(src))
            st = p.lstat()
            ino += 1
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(p).encode()
                _entry(out, ino, stat.S_IFLNK | 0o777, len(target), 1, rel, target)
            elif stat.S_ISDIR(st.st_mode):
                _entry(out, ino, stat.S_IFDIR | stat.S_IMODE(st.st_mode), 0, 2, rel)
            elif stat.S_ISREG(st.st_mode):
                data = p.read_bytes()
                _entry(out, ino, stat.S_IFREG | stat.S_IMODE(st.st_mode), len(data), 1, rel,
                       data)
            else:
                die(f"{p}: only files, directories and symbolic links go into the image")
        _entry(out, 0, 0, 0, 1, "TRAILER!!!")


def main(argv):
    if len(argv) >= 3 and argv[1] == "modules":
        modules(argv[2], argv[3:])
    elif len(argv) == 4 and argv[1] == "cpio":
        pack(argv[2], argv[3])
    else:
        die("usage: mkinitramfs.py modules KDIR NAME... | cpio DIR OUT")


if __name__ == "__main__":
    main(sys.argv)
