# Install and package rules (firmware/README.md, "Install and packages"), included from the
# top-level CMakeLists.txt.
#
#   cmake --install build/BOARD --prefix /usr [DESTDIR=...]   the files, in their places
#   cmake --build build/BOARD --target package                  meshlet_VERSION_ARCH.deb
#
# Layout (prefix /usr, as the .deb has it):
#   /usr/bin/meshlet
#   /etc/meshlet/meshlet.ini                  CMAKE_INSTALL_FULL_SYSCONFDIR; a conffile in the .deb
#   /lib/systemd/system/meshlet.service       ML_SYSTEMD_UNITDIR
#   /usr/share/meshlet/init/openwrt/meshlet   the procd script (/etc/init.d/meshlet on OpenWrt)
#   /usr/share/meshlet/init/busybox/inittab.meshlet
#   /usr/share/doc/meshlet/                   README, config and fleet docs, copyright
# The init files name the installed paths: they are rewritten here for another prefix.
if(ML_FUZZ)
  return()
endif()
# A gateway's files live under /usr (and /etc): that is the default prefix, not /usr/local. Set
# -DCMAKE_INSTALL_PREFIX at configure time for another: the paths inside the init files and the
# absolute ones (etc, the unit) follow it; DESTDIR is honoured by every rule.
# (Once per build directory: also one configured before this file existed, where CMake's
# /usr/local was put in the cache as the default.)
if(NOT DEFINED CACHE{ML_INSTALL_PREFIX_CHOSEN})
  if(CMAKE_INSTALL_PREFIX_INITIALIZED_TO_DEFAULT OR CMAKE_INSTALL_PREFIX STREQUAL "/usr/local")
    set(CMAKE_INSTALL_PREFIX /usr CACHE PATH "Install prefix" FORCE)
  endif()
  set(ML_INSTALL_PREFIX_CHOSEN ON CACHE INTERNAL "install.cmake chose the default prefix")
endif()
include(GNUInstallDirs)

if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(ml_unitdir_default "/lib/systemd/system")
else()
  set(ml_unitdir_default "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
endif()
set(ML_SYSTEMD_UNITDIR "${ml_unitdir_default}" CACHE PATH "Where meshlet.service is installed")

set(ml_bin "${CMAKE_INSTALL_FULL_BINDIR}/meshlet")
set(ml_ini "${CMAKE_INSTALL_FULL_SYSCONFDIR}/meshlet/meshlet.ini")
set(ml_initdir "${CMAKE_CURRENT_SOURCE_DIR}/firmware/init")
set(ml_gen_init "${CMAKE_BINARY_DIR}/firmware/init")
foreach(f systemd/meshlet.service openwrt/meshlet.init busybox/inittab.meshlet)
  file(READ "${ml_initdir}/${f}" text)
  string(REPLACE "/usr/bin/meshlet" "${ml_bin}" text "${text}")
  string(REPLACE "/etc/meshlet/meshlet.ini" "${ml_ini}" text "${text}")
  file(CONFIGURE OUTPUT "${ml_gen_init}/${f}" CONTENT "${text}" @ONLY)
endforeach()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             "${ml_initdir}/systemd/meshlet.service" "${ml_initdir}/openwrt/meshlet.init"
             "${ml_initdir}/busybox/inittab.meshlet")

install(TARGETS meshlet RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
install(FILES config/meshlet.ini DESTINATION "${CMAKE_INSTALL_FULL_SYSCONFDIR}/meshlet"
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES "${ml_gen_init}/systemd/meshlet.service" DESTINATION "${ML_SYSTEMD_UNITDIR}")
install(PROGRAMS "${ml_gen_init}/openwrt/meshlet.init"
        DESTINATION "${CMAKE_INSTALL_DATADIR}/meshlet/init/openwrt" RENAME meshlet)
install(FILES "${ml_gen_init}/busybox/inittab.meshlet"
        DESTINATION "${CMAKE_INSTALL_DATADIR}/meshlet/init/busybox")
install(FILES README.md DESTINATION "${CMAKE_INSTALL_DOCDIR}")
install(FILES config/README.md DESTINATION "${CMAKE_INSTALL_DOCDIR}" RENAME config.md)
install(FILES firmware/README.md DESTINATION "${CMAKE_INSTALL_DOCDIR}" RENAME firmware.md)
install(FILES runtime/fleet/README.md DESTINATION "${CMAKE_INSTALL_DOCDIR}" RENAME fleet.md)
install(FILES runtime/admin/README.md DESTINATION "${CMAKE_INSTALL_DOCDIR}" RENAME admin.md)
# meshlet is static by design (one binary to flash): tell lintian so.
install(FILES firmware/deb/lintian-overrides
        DESTINATION "${CMAKE_INSTALL_DATADIR}/lintian/overrides" RENAME meshlet)
# Debian's place for the license (a .deb without it is broken): LICENSE's, and the libraries'.
install(FILES firmware/deb/copyright DESTINATION "${CMAKE_INSTALL_DOCDIR}")
# A changelog Debian's tools accept, gzip'd without a time stamp (reproducible).
set(ml_changelog "${CMAKE_BINARY_DIR}/firmware/changelog")
string(TIMESTAMP ml_date "%a, %d %b %Y %H:%M:%S +0000" UTC)
file(WRITE "${ml_changelog}"
     "meshlet (${ML_VERSION}) unstable; urgency=medium\n\n"
     "  * Built from the meshlet sources (firmware/install.cmake).\n\n"
     " -- meshlet maintainers <meshlet-maintainers@users.noreply.github.com>  ${ml_date}\n")
install(CODE "execute_process(COMMAND gzip -9nc \"${ml_changelog}\"
                  OUTPUT_FILE \"${CMAKE_BINARY_DIR}/firmware/changelog.gz\")")
install(FILES "${CMAKE_BINARY_DIR}/firmware/changelog.gz"
        DESTINATION "${CMAKE_INSTALL_DOCDIR}")

# ---- .deb (CPack) --------------------------------------------------------------------------------
# The board's toolchain decides the architecture: CMAKE_SYSTEM_PROCESSOR as Debian names it.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
  set(ml_deb_arch arm64)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^arm")
  set(ml_deb_arch armhf)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(ml_deb_arch amd64)
else()
  set(ml_deb_arch "${CMAKE_SYSTEM_PROCESSOR}")
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME meshlet)
set(CPACK_PACKAGE_VERSION "${ML_VERSION}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# Stage through DESTDIR: the absolute destinations (/etc, /lib/systemd) must land in the package,
# never in the building machine's /etc.
set(CPACK_SET_DESTDIR ON)
set(CPACK_PACKAGE_CONTACT "meshlet maintainers <meshlet-maintainers@users.noreply.github.com>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "gRPC service-mesh proxy for edge gateways")
# The extended description only: CPack puts the summary on the first line itself.
string(CONCAT CPACK_DEBIAN_PACKAGE_DESCRIPTION
       "meshlet is one static binary: an HTTP/2 gRPC proxy with a per-call balancer,\n"
       "health checks, retries and an admin endpoint, and a client of a fleet\n"
       "controller that pushes its configuration. It runs under systemd\n"
       "(Type=notify), OpenWrt's procd and BusyBox init.")
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE "${ml_deb_arch}")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS OFF) # static: no shared libraries to depend on
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${CMAKE_CURRENT_SOURCE_DIR}/firmware/deb/conffiles"
    "${CMAKE_CURRENT_SOURCE_DIR}/firmware/deb/postinst"
    "${CMAKE_CURRENT_SOURCE_DIR}/firmware/deb/prerm"
    "${CMAKE_CURRENT_SOURCE_DIR}/firmware/deb/postrm")
set(CPACK_RESOURCE_FILE_LICENSE "${CMAKE_CURRENT_SOURCE_DIR}/LICENSE")
set(CPACK_PACKAGE_DIRECTORY "${CMAKE_BINARY_DIR}/package")
include(CPack)
