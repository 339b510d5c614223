# tests/vm/common.sh: names, identities and guest handling for the real-QEMU
# tier (make check-vm), sourced by setup.sh and run.sh. Adapted from the
# development hypervisor rig, with names of our own so the tier never
# touches that rig's guests.
#
# Guest i (1..9): domain tally-vm<i>, UUID 7a11e100-0000-4000-8000-<i in 12
# hex digits>, MAC 52:54:00:7a:12:0<i>, host-only tap tvmtap<i> (type
# ethernet, unmanaged, no address, IPv6 off), guest address 169.254.2.<i>
# (link-local only), 1 vCPU, 128 MiB, a 64 MiB qcow2 disk vda with serial
# tvm-disk-<i>, a virtio balloon with 2 s stats, Nova metadata (namespace
# 1.1) with project tvm-project-<a|b> by the parity of i. Nothing leaves the
# host: the guest sends its UDP to 169.254.0.1 through a fixed neighbour
# entry and the tap has no uplink.

TALLY_GUEST_DIR=${TALLY_GUEST_DIR:-/var/tmp/tally-guest}
TALLY_URI=qemu:///system
NOVA_NS=http://openstack.org/xmlns/libvirt/nova/1.1

log() { echo "check-vm: $*" >&2; }
# tvm_daemon CMD...: start a daemon (libvirtd -d, virtlogd -d) with no
# descriptor above 2: under `flock LOCK make check-vm` the lock's
# descriptor would otherwise live on in the daemon and hold the lock for
# good, for every other user of the rig (flock(1) gives it a low number;
# dash's redirections take one digit, and its own script descriptor is 10
# or above)
tvm_daemon() {
	(
		for _fd in $(ls /proc/$$/fd 2>/dev/null; ls /proc/self/fd 2>/dev/null); do
			case $_fd in [3-9]) eval "exec $_fd>&-" ;; esac
		done
		exec "$@"
	)
}
die() { echo "check-vm: error: $*" >&2; exit 1; }
vsh() { virsh -q -c "$TALLY_URI" "$@"; }

tvm_name() { echo "tally-vm$1"; }
tvm_uuid() { printf '7a11e100-0000-4000-8000-%012x\n' "$1"; }
tvm_mac() { printf '52:54:00:7a:12:%02x\n' "$1"; }
tvm_tap() { echo "tvmtap$1"; }
tvm_project() { if [ $(($1 % 2)) = 1 ]; then echo tvm-project-a; else echo tvm-project-b; fi; }

# kvm when /dev/kvm is usable (and not the pagetable-based kvm_pvm, on
# which a stock kernel does not get through its decompressor), else TCG
tvm_domtype() {
	if [ -n "${TALLY_DOMAIN_TYPE:-}" ]; then
		echo "$TALLY_DOMAIN_TYPE"
	elif [ -d /sys/module/kvm_pvm ] && [ ! -d /sys/module/kvm_intel ] && [ ! -d /sys/module/kvm_amd ]; then
		echo qemu
	elif [ -w /dev/kvm ] && vsh domcapabilities --virttype kvm >/dev/null 2>&1; then
		echo kvm
	else
		echo qemu
	fi
}

# A fresh unmanaged tap: its counters start at 0 with the guest's life, as
# a libvirt-managed tap's would (an old tap would carry its counts over).
tvm_tap_fresh() {
	_tap=$(tvm_tap "$1")
	if [ -e "/sys/class/net/$_tap" ]; then ip link del "$_tap"; fi
	ip tuntap add dev "$_tap" mode tap vnet_hdr || die "cannot create tap $_tap"
	sysctl -q -w "net.ipv6.conf.$_tap.disable_ipv6=1" 2>/dev/null || true
	ip link set "$_tap" address "$(tvm_mac "$1" | sed 's/^52/fe/')"
	ip link set "$_tap" up
}

# tvm_create I WORKLOAD: (re)create guest I's disk, console and XML and start
# it as a transient domain
tvm_create() {
	# no 'local' in POSIX sh: names of our own, not to clobber the caller's
	_i=$1 _work=$2
	_name=$(tvm_name "$_i")
	_run=$TALLY_GUEST_DIR/run
	mkdir -p "$_run"
	rm -f "$_run/$_name.qcow2"
	qemu-img create -q -f qcow2 "$_run/$_name.qcow2" 64M
	: > "$_run/$_name.console"
	tvm_tap_fresh "$_i"
	cat > "$_run/$_name.xml" <<EOF
<domain type='$(tvm_domtype)'>
  <name>$_name</name>
  <uuid>$(tvm_uuid "$_i")</uuid>
  <metadata>
    <nova:instance xmlns:nova="$NOVA_NS">
      <nova:name>$_name</nova:name>
      <nova:flavor name="m1.tvm"><nova:memory>128</nova:memory><nova:vcpus>1</nova:vcpus></nova:flavor>
      <nova:owner>
        <nova:user uuid="tvm-user">tvm-user</nova:user>
        <nova:project uuid="$(tvm_project "$_i")">$(tvm_project "$_i")</nova:project>
      </nova:owner>
    </nova:instance>
  </metadata>
  <memory unit='MiB'>128</memory>
  <currentMemory unit='MiB'>128</currentMemory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$TALLY_GUEST_DIR/vmlinuz</kernel>
    <initrd>$TALLY_GUEST_DIR/initrd.gz</initrd>
    <cmdline>console=ttyS0 ipv6.disable=1 quiet panic=-1 tally.ip=169.254.2.$_i $_work</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='$_run/$_name.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <serial>tvm-disk-$_i</serial>
    </disk>
    <interface type='ethernet'>
      <target dev='$(tvm_tap "$_i")' managed='no'/>
      <mac address='$(tvm_mac "$_i")'/>
      <model type='virtio'/>
    </interface>
    <serial type='file'><source path='$_run/$_name.console' append='on'/><target port='0'/></serial>
    <console type='file'><source path='$_run/$_name.console' append='on'/><target type='serial' port='0'/></console>
    <memballoon model='virtio'><stats period='2'/></memballoon>
  </devices>
</domain>
EOF
	vsh create "$_run/$_name.xml" >/dev/null || die "cannot start $_name (see $_run/$_name.xml)"
}

# tvm_wait_ready I COUNT: until the guest's console shows its COUNT-th boot
# ("tally: ready"); a liveness bound of 300 s, TCG boots take ~15 s
tvm_wait_ready() {
	_f=$TALLY_GUEST_DIR/run/$(tvm_name "$1").console
	_k=0
	while [ "$(grep -c 'tally: ready' "$_f" 2>/dev/null || true)" -lt "$2" ]; do
		_k=$((_k + 1))
		[ "$_k" -le 300 ] || die "$(tvm_name "$1") did not boot (#$2) within 300 s; see $_f"
		sleep 1
	done
}

# destroy every tally-vm guest and remove its files and tap
tvm_cleanup() {
	for _name in $(vsh list --all --name 2>/dev/null | grep -E '^tally-vm[0-9]+$' || true); do
		vsh destroy "$_name" >/dev/null 2>&1 || true
		vsh undefine "$_name" >/dev/null 2>&1 || true
	done
	rm -f "$TALLY_GUEST_DIR"/run/tally-vm*
	for _t in /sys/class/net/tvmtap*; do
		if [ -e "$_t" ]; then ip link del "${_t##*/}" 2>/dev/null || true; fi
	done
}
