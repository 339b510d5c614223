#!/bin/sh
# Install the Debian 12 packages tally's build, tests, demo and benchmarks
# need. Does nothing (and needs no root) when they are all installed.
set -eu
# One package a line, so that changes merge line by line.
PKGS="
build-essential
pkg-config
libsqlite3-dev
sqlite3
libpq-dev
postgresql
libyaml-dev
librrd-dev
rrdtool
libjansson-dev
check
libvirt-dev
libvirt-clients
libxml2-dev
libssl-dev
openssl
libmicrohttpd-dev
libgnutls28-dev
libcurl4-openssl-dev
curl
libsnmp-dev
python3
python3-jsonschema
jq
chromium
poppler-utils
fonts-dejavu-core
libreoffice-calc-nogui
prometheus
prometheus-alertmanager
snmpd
snmp
iputils-ping
collectd-core
libprotobuf-c1
mandoc
groff-base
man-db
bsdextrautils
systemd
debhelper
dpkg-dev
lintian
fakeroot
adduser
util-linux
nagios4-core
icinga2-bin
icinga2-common
libpcap-dev
tshark
iproute2
pmacct
clang
libclang-rt-14-dev
"
# `deps.sh vm`: also what make check-vm needs (tests/vm: QEMU, libvirtd, a
# static build of the guest's load generator, the initramfs tools), and what
# bench/libvirt_qemu.sh compares with on those guests
[ "${1:-}" = vm ] && PKGS="$PKGS qemu-system-x86 qemu-utils libvirt-daemon
libvirt-daemon-driver-qemu gcc libc6-dev cpio iproute2 procps xz-utils
prometheus-libvirt-exporter"
missing=""
for p in $PKGS; do
	s=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$s" = "installed" ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing"
if [ "$(id -u)" != 0 ]; then
	echo "deps: need root to install:$missing (run: sudo apt-get install$missing)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# tshark's wireshark-common asks whether non-root users may capture: no
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -q || { echo "deps: apt-get update failed" >&2; exit 1; }
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
