#!/bin/bash
# tests/vm/setup.sh: prepare this host for make check-vm (tests/vm/run.sh
# calls it first): real QEMU guests under libvirtd. Adapted from the
# development hypervisor rig's setup.
#
# Idempotent and quick once done. Must run as root. Steps:
#   1. install the Debian packages (libvirt, QEMU, a C compiler, cpio):
#      scripts/deps.sh vm
#   2. create the users, directories and qemu.conf settings libvirtd needs in
#      a container-like host, then start virtlogd and libvirtd if not running
#   3. build the guest kernel + initramfs into $TALLY_GUEST_DIR
#      (default /var/tmp/tally-guest) from the Debian cloud kernel and
#      busybox-static packages (downloaded, never installed)
# Environment:
#   TALLY_GUEST_DIR    cache directory (default /var/tmp/tally-guest)
#   TALLY_KERNEL_PKG   kernel package (default linux-image-6.1.0-56-cloud-amd64)
#   TALLY_SKIP_APT=1   do not run apt-get install (packages already present)
#   TALLY_REBUILD=1    rebuild the initramfs even if it is up to date
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"

kernel_pkg=${TALLY_KERNEL_PKG:-linux-image-6.1.0-56-cloud-amd64}

[ "$(id -u)" = 0 ] || die "must run as root (libvirtd and taps need it)"

# 1. packages: the list is in scripts/deps.sh ---------------------------------
if [ "${TALLY_SKIP_APT:-0}" != 1 ]; then
	sh "$here/../../scripts/deps.sh" vm || die "cannot install what check-vm needs (scripts/deps.sh vm)"
fi

# 2. libvirtd prerequisites ---------------------------------------------------
mkdir -p /var/log/libvirt /var/run/libvirt /var/lib/libvirt
getent group kvm >/dev/null || groupadd -r kvm
# the qemu driver resolves its built-in default group before reading qemu.conf
getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
getent passwd libvirt-qemu >/dev/null ||
	useradd -r -g kvm -d /var/lib/libvirt libvirt-qemu
conf=/etc/libvirt/qemu.conf
# Debian ships qemu.conf in libvirt-daemon-system (systemd units and all);
# libvirtd runs with the keys below and defaults for the rest
[ -f "$conf" ] || { mkdir -p /etc/libvirt && : >"$conf"; }
conf_changed=0
for kv in 'user = "root"' 'group = "root"' 'dynamic_ownership = 0' \
	'security_driver = "none"' 'swtpm_user = "root"' 'swtpm_group = "root"'; do
	key=${kv%% *}
	if ! grep -qx "$kv" "$conf"; then
		sed -i "/^[[:space:]]*$key[[:space:]]*=/d" "$conf"
		echo "$kv" >>"$conf"
		conf_changed=1
	fi
done

pid_alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
pidfile_pid() { [ -f "$1" ] && tr -dc '0-9' <"$1" || true; }

if ! pid_alive "$(pidfile_pid /run/virtlogd.pid)" && ! pgrep -x virtlogd >/dev/null; then
	log "starting virtlogd"
	tvm_daemon virtlogd -d
fi
lv_pid=$(pidfile_pid /run/libvirtd.pid)
if pid_alive "$lv_pid" && [ "$conf_changed" = 1 ]; then
	log "qemu.conf changed: restarting libvirtd (pid $lv_pid)"
	kill "$lv_pid"
	for _ in $(seq 50); do pid_alive "$lv_pid" || break; sleep 0.2; done
	pid_alive "$lv_pid" && die "libvirtd pid $lv_pid did not exit"
fi
if ! pid_alive "$(pidfile_pid /run/libvirtd.pid)"; then
	log "starting libvirtd"
	tvm_daemon libvirtd -d
fi
for _ in $(seq 50); do
	virsh -c "$TALLY_URI" version >/dev/null 2>&1 && break
	sleep 0.2
done
virsh -c "$TALLY_URI" version >/dev/null || die "libvirtd does not answer on $TALLY_URI"

# 3. guest kernel + initramfs -------------------------------------------------
mkdir -p "$TALLY_GUEST_DIR/cache" "$TALLY_GUEST_DIR/run"
cache=$TALLY_GUEST_DIR/cache
stamp_src=$(cat "$here/guest/init" "$here/guest/tally-load.c" "$0" | md5sum | cut -d' ' -f1)
stamp="$kernel_pkg $stamp_src"
if [ "${TALLY_REBUILD:-0}" != 1 ] && [ -f "$TALLY_GUEST_DIR/vmlinuz" ] &&
	[ -f "$TALLY_GUEST_DIR/initrd.gz" ] &&
	[ "$(cat "$TALLY_GUEST_DIR/stamp" 2>/dev/null)" = "$stamp" ]; then
	log "guest image up to date in $TALLY_GUEST_DIR"
	exit 0
fi

(cd "$cache" && for p in "$kernel_pkg" busybox-static; do
	ls ./"${p}"_*.deb >/dev/null 2>&1 && continue
	log "downloading $p"
	# apt warns when the _apt user cannot write here; the download still works
	apt-get download "$p" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true
	ls ./"${p}"_*.deb >/dev/null 2>&1 || die "apt-get download $p failed (a kernel ABI the mirror no longer has? set TALLY_KERNEL_PKG to the one linux-image-cloud-amd64 depends on)"
done)

x=$cache/extract
rm -rf "$x"
mkdir -p "$x"
for deb in "$cache/${kernel_pkg}"_*.deb "$cache"/busybox-static_*.deb; do
	dpkg -x "$deb" "$x"
done
kver=$(ls "$x/lib/modules")
[ -n "$kver" ] && [ -f "$x/boot/vmlinuz-$kver" ] || die "no kernel found in $kernel_pkg"
# The initramfs only carries the drivers it loads; they must be modules here.
for opt in VIRTIO VIRTIO_PCI VIRTIO_NET VIRTIO_BLK VIRTIO_BALLOON ACPI_BUTTON INPUT_EVDEV; do
	grep -q "^CONFIG_$opt=m" "$x/boot/config-$kver" ||
		die "CONFIG_$opt is not a module in $kver; adjust guest/init"
done

root=$cache/initramfs
rm -rf "$root"
mkdir -p "$root/bin" "$root/lib/modules" "$root/proc" "$root/sys" "$root/dev" "$root/tmp"
cp "$x/bin/busybox" "$root/bin/busybox"
for app in $("$root/bin/busybox" --list); do
	[ "$app" = busybox ] || ln -sf busybox "$root/bin/$app"
done
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci \
	failover net_failover virtio_net virtio_blk virtio_balloon button evdev; do
	f=$(find "$x/lib/modules/$kver/kernel" -name "$m.ko*" | head -n 1)
	[ -n "$f" ] || die "module $m not found in $kernel_pkg"
	case "$f" in
	*.ko) cp "$f" "$root/lib/modules/$m.ko" ;;
	*.ko.xz) xz -dc "$f" >"$root/lib/modules/$m.ko" ;;
	*.ko.zst) zstd -qdc "$f" >"$root/lib/modules/$m.ko" ;;
	*) die "unsupported module compression: $f" ;;
	esac
done
cc -static -O2 -Wall -Wextra -o "$root/bin/tally-load" "$here/guest/tally-load.c" ||
	die "cannot build guest/tally-load.c statically (needs gcc and libc6-dev)"
strip "$root/bin/tally-load" 2>/dev/null || true
cp "$here/guest/init" "$root/init"
chmod 755 "$root/init" "$root/bin/tally-load"
(cd "$root" && find . | sort | cpio -o -H newc --quiet -R 0:0) | gzip -9 >"$TALLY_GUEST_DIR/initrd.gz.tmp"
mv "$TALLY_GUEST_DIR/initrd.gz.tmp" "$TALLY_GUEST_DIR/initrd.gz"
cp "$x/boot/vmlinuz-$kver" "$TALLY_GUEST_DIR/vmlinuz"
echo "$stamp" >"$TALLY_GUEST_DIR/stamp"
log "guest kernel $kver and initramfs ($(du -k "$TALLY_GUEST_DIR/initrd.gz" | cut -f1) KiB) in $TALLY_GUEST_DIR"
