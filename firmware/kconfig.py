#!/usr/bin/python3
"""Strict Kconfig driver for the build (kconfiglib, python3-kconfiglib).

kconfiglib ignores unknown symbols and out-of-range values in a defconfig with at most a
warning and exit 0; a typo in boards/NAME/defconfig would then silently build the wrong thing.
This wrapper turns every warning into a failure.

  kconfig.py defconfig KCONFIG DEFCONFIG CONFIG_OUT   write a full .config from a board fragment
  kconfig.py header    KCONFIG CONFIG HEADER_OUT      write the C header from a .config
"""
import sys

import kconfiglib


def load(kconfig_path):
    kconf = kconfiglib.Kconfig(kconfig_path, warn_to_stderr=True)
    kconf.warn_assign_undef = True
    kconf.warn_assign_override = True
    kconf.warn_assign_redun = True
    return kconf


def main(argv):
    if len(argv) != 5 or argv[1] not in ("defconfig", "header"):
        sys.stderr.write(__doc__)
        return 2
    mode, kconfig_path, src, out = argv[1:]
    kconf = load(kconfig_path)
    kconf.load_config(src)
    if kconf.warnings:
        sys.stderr.write("%s: %d Kconfig warning(s), refusing to build\n" % (src, len(kconf.warnings)))
        return 1
    if mode == "defconfig":
        kconf.write_config(out, header="# generated from %s; edit with menuconfig\n" % src)
    else:
        kconf.write_autoconf(out, header="/* generated from %s by firmware/kconfig.py */\n" % src)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
