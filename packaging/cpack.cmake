# Debian package (CPack DEB): `cmake --build build --target package` makes build/scepproxy_VERSION-1_ARCH.deb.
#
# What goes where (Debian conventions, as nginx/haproxy/pgbouncer do):
#   /usr/sbin/scepproxy                    a daemon and administrator's tool (its commands need
#                                          root or the scepproxy user), so sbin
#   /etc/scepproxy/scepproxy.yaml          conffile: dpkg keeps the administrator's edits on upgrade
#   /lib/systemd/system/scepproxy.service  the unit (Debian 12's systemd unit directory)
#   /usr/share/doc/scepproxy/              copyright, changelog.Debian.gz, the operator's guide, example config,
#                                          Grafana dashboard and Prometheus alert rules
# The maintainer scripts in packaging/debian/ create the scepproxy user, /var/lib/scepproxy
# and the admin API token (postinst) and delete data on purge only (postrm).

set(SCEPPROXY_DOC_DIR share/doc/scepproxy)
set(SCEPPROXY_PACKAGING_DIR ${PROJECT_SOURCE_DIR}/packaging)

install(FILES ${SCEPPROXY_PACKAGING_DIR}/debian/scepproxy.yaml DESTINATION /etc/scepproxy)
install(FILES ${SCEPPROXY_PACKAGING_DIR}/systemd/scepproxy.service DESTINATION /lib/systemd/system)
install(FILES ${SCEPPROXY_PACKAGING_DIR}/debian/copyright ${PROJECT_SOURCE_DIR}/LICENSE
              ${SCEPPROXY_PACKAGING_DIR}/README.md
              ${PROJECT_SOURCE_DIR}/conf/scepproxy.example.yaml ${PROJECT_SOURCE_DIR}/conf/scepproxy.minimal.yaml
        DESTINATION ${SCEPPROXY_DOC_DIR})
install(FILES ${SCEPPROXY_PACKAGING_DIR}/grafana/scepproxy-dashboard.json DESTINATION ${SCEPPROXY_DOC_DIR}/grafana)
install(FILES ${SCEPPROXY_PACKAGING_DIR}/prometheus/scepproxy-alerts.yml DESTINATION ${SCEPPROXY_DOC_DIR}/prometheus)

# Debian's changelog.Debian.gz: one entry for this version, dated at configure time (or
# SOURCE_DATE_EPOCH, which string(TIMESTAMP) honours, for reproducible builds).
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_PACKAGE_CONTACT "scepproxy maintainers <maintainers@users.noreply.h-seed-645a6707.example>")
string(TIMESTAMP SCEPPROXY_CHANGELOG_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
configure_file(${SCEPPROXY_PACKAGING_DIR}/debian/changelog.in ${CMAKE_CURRENT_BINARY_DIR}/changelog.Debian @ONLY)
execute_process(COMMAND gzip -9nf ${CMAKE_CURRENT_BINARY_DIR}/changelog.Debian COMMAND_ERROR_IS_FATAL ANY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/changelog.Debian.gz DESTINATION ${SCEPPROXY_DOC_DIR})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME scepproxy)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "SCEP proxy for devices enrolling with NDES or an RFC 8894 CA")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "scepproxy sits in a DMZ between managed devices and a Microsoft NDES (or any RFC 8894\n"
    "SCEP) server that stays off the Internet. Devices use a SCEP URL carrying an enrollment\n"
    "token; the proxy resolves the token to its upstream CA, checks that the device is\n"
    "enrolled and compliant (SQLite, PostgreSQL or an MDM webhook), and forwards\n"
    "GetCACert, GetCACaps and PKIOperation without decrypting them. An admin API issues\n"
    "tokens with fresh NDES challenge passwords; Prometheus metrics, systemd unit.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)  # symbols stay in the build tree; the package carries the stripped daemon

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # scepproxy_0.1.0-1_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies from dpkg-shlibdeps; adduser for postinst (not Essential).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${SCEPPROXY_PACKAGING_DIR}/debian/conffiles
    ${SCEPPROXY_PACKAGING_DIR}/debian/postinst
    ${SCEPPROXY_PACKAGING_DIR}/debian/prerm
    ${SCEPPROXY_PACKAGING_DIR}/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
