#!/bin/sh
# make check-vm: tallyd against real QEMU guests under libvirtd
# (qemu:///system), with virsh domstats as the oracle around every step.
#
# Three tiny guests (tests/vm/common.sh) run known workloads:
#   tally-vm1  tally.cpu=30                      suspended and resumed; its
#                                                Nova project changed live
#   tally-vm2  tally.net=200000 (guest sends)    rebooted (same QEMU), then
#                                                destroyed and created again
#                                                on the same unmanaged tap
#   tally-vm3  tally.disk=262144 tally.mem=48    destroyed 0.4 s before a
#                                                read, created again on a
#                                                fresh tap
#   tally-vm4  idle                              shut down by the guest, and
#                                                stays down
# and libvirtd is restarted under the running tallyd. Checked against
# `virsh domstats` readings taken before tallyd's first read (V0), after it
# (V1), before the destroy (VD) and after tallyd stopped (VE):
#   - every counter (cpu, network both ways, disk read and write): its
#     stored usage is last value - baseline with the baseline between V0
#     and V1, over reboot, suspend and libvirtd restart (a counter counted
#     twice, or a reboot taken for a reset, breaks it); for a destroyed
#     guest, the first life ends between the last value stored before the
#     destroy and VD, and the new life counts from zero - except the
#     counters of a tap that outlived the destroy, which go on as one life;
#   - direction: the guest's sent bytes are network.outgoing (net.0.tx);
#   - memory (balloon.current) equals virsh's; memory.usage shows the
#     48 MiB the guest holds; instance is 0 while paused;
#   - events: one reboot (its 2-3 libvirt events folded), suspend, resume,
#     stop, start; the Nova change reaches resource_attrs; reasons: a
#     destroy is a shutdown from the host, a guest's poweroff one from the
#     guest;
#   - a live disk resize (no event): the capacity reaches the ledger
#     within slow_every reads, and its integral is under the truth by at
#     most the change times slow_every intervals, never above it;
#   - a pause whose edges fall between reads: the running time (the
#     instance gauge's integral) equals the time read less the pause
#     between the suspended and resumed events' own times;
#   - a destroy 0.4 s before a read, and a guest's shutdown: every series
#     of the life ends (no series left open, no StaleData for a VM that
#     stays down);
#   - the tap that outlives its QEMU: the NIC's final reading is the tap's
#     value after the destroy, and its usage over both lives is exact;
#   - libvirtd restarted: collection resumes; no usage is negative.
# Needs root, QEMU and libvirtd (tests/vm/setup.sh installs and starts
# them); without them it says why and exits 1. Only link-local addresses
# and host-only taps. About 2-3 minutes under TCG.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
B=${B:-build}
TALLYD=$PWD/$B/tallyd
[ -x "$TALLYD" ] || die "$TALLYD missing: run make first"
[ "$(id -u)" = 0 ] || die "needs root (libvirtd, QEMU, taps); run make check-vm as root"
[ -e /dev/net/tun ] || die "needs /dev/net/tun for the guests' taps"
command -v sqlite3 >/dev/null || die "needs sqlite3 (scripts/deps.sh)"
"$here/setup.sh" || die "tests/vm/setup.sh failed: no QEMU/libvirtd to test against"

work=$(mktemp -d /tmp/tally-vm-XXXXXX)
pid=
fails=0
finish() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	[ "${KEEP:-0}" = 1 ] || { tvm_cleanup; rm -rf "$work"; }
}
trap finish EXIT
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
ok() { echo "ok   $*"; }
L=$work/data/ledger.db
q() { sqlite3 "$L" "$1"; }

# snap I FILE: guest I's domstats as key=value lines
snap() { vsh domstats --raw --state --cpu-total --balloon --interface --block "$(tvm_name "$1")" |
	sed -n 's/^ *\([a-z0-9._-]*\)=\(.*\)$/\1=\2/p' > "$2"; }
val() { sed -n "s/^$2=//p" "$1"; }
# wait_for SECONDS SQL: until the query prints a non-empty, non-zero value
wait_for() {
	k=0
	while :; do
		r=$(q "$2" 2>/dev/null || true)
		[ -n "$r" ] && [ "$r" != 0 ] && return 0
		k=$((k + 1))
		[ "$k" -le $(($1 * 5)) ] || return 1
		sleep 0.2
	done
}
now_ns() { date +%s%N; }
# the ledger's view of one series: last_value|usage (total)|origin_ns
series() { # I METER DEVICE
	q "SELECT s.last_value, (SELECT total(u.quantity) FROM usage u WHERE u.resource_id = s.resource_id
	    AND u.meter_id = s.meter_id AND u.device = s.device), s.origin_ns
	  FROM series s JOIN resources r ON r.id = s.resource_id JOIN meters m ON m.id = s.meter_id
	  WHERE r.uuid = '$(tvm_uuid "$1")' AND m.name = '$2' AND s.device = '$3'"
}
# counters checked: ledger meter, device kind, virsh field
COUNTERS="cpu:-:cpu.time network.outgoing.bytes:nic:net.0.tx.bytes network.incoming.bytes:nic:net.0.rx.bytes
network.outgoing.packets:nic:net.0.tx.pkts disk.device.read.bytes:disk:block.0.rd.bytes disk.device.write.bytes:disk:block.0.wr.bytes
disk.device.write.requests:disk:block.0.wr.reqs"
dev_of() { # I KIND
	case $2 in nic) tvm_mac "$1" ;; disk) echo "vda:tvm-disk-$1" ;; *) echo "" ;; esac
}

log "cleaning up old guests; starting four (domain type $(tvm_domtype))"
tvm_cleanup
tvm_create 1 "tally.cpu=30"
tvm_create 2 "tally.net=200000"
tvm_create 3 "tally.disk=262144 tally.mem=48"
tvm_create 4 ""
for i in 1 2 3 4; do tvm_wait_ready "$i" 1; done
sleep 3 # the balloon driver reports its first stats

cat > "$work/t.yaml" <<EOC
tallyd:
  agent_id: check-vm
  data_dir: $work/data
  interval: 2s
  log_level: info
rrd:
  enabled: false
collectors:
  libvirt:
    uri: qemu:///system
    xml_refresh: 2
    # the slow groups every 20 s (the default at 2 s would be 60 cycles:
    # 2 min), so that the waits below for memory, disk sizes and vCPUs stay short
    slow_every: 10
alerts:
  stale_intervals: 2
EOC
for i in 1 2 3; do snap "$i" "$work/v0.$i"; done
"$TALLYD" -c "$work/t.yaml" 2> "$work/tallyd.log" &
pid=$!
# V1 once every checked counter of every guest has its baseline (with
# NOWAIT, a guest busy in a job answers without its block or net group)
wait_for 60 "SELECT count(*) = 28 FROM series s JOIN meters m ON m.id = s.meter_id
    WHERE m.name IN ('cpu', 'network.outgoing.bytes', 'network.incoming.bytes', 'network.outgoing.packets',
    'disk.device.read.bytes', 'disk.device.write.bytes', 'disk.device.write.requests')" ||
	die "tallyd read not every counter of four guests in 60 s: $(cat "$work/tallyd.log")"
for i in 1 2 3; do snap "$i" "$work/v1.$i"; done
log "tallyd reads the guests; steady for 8 s"
sleep 8

# --- tally-vm4: the guest powers itself off (ACPI) and stays down
log "shutting tally-vm4 down from inside the guest (ACPI power button)"
t_4=$(now_ns)
vsh shutdown "$(tvm_name 4)" >/dev/null

# --- reboot: the same QEMU, counters go on; 2-3 libvirt events, one for us
log "rebooting tally-vm2"
vsh reboot "$(tvm_name 2)" >/dev/null
tvm_wait_ready 2 2

# at_phase MS: sleep until MS milliseconds after one of tallyd's ticks (at
# multiples of the 2 s interval)
at_phase() {
	sleep "$(date +%s%N | awk -v p="$1" '{ ms = int(substr($1, 1, length($1) - 6)) % 2000
		d = (p - ms + 4000) % 2000; if (d < 100) d += 2000; printf "%.3f", d / 1000 }')"
}
# --- suspend: instance 0 while paused; both edges between two reads
log "suspending tally-vm1 0.7 s after a read, resuming 1.7 s after another"
at_phase 700
vsh suspend "$(tvm_name 1)" >/dev/null
t_s=$(now_ns)
if wait_for 30 "SELECT s.last_value = 0 FROM series s JOIN resources r ON r.id = s.resource_id
    JOIN meters m ON m.id = s.meter_id WHERE r.uuid = '$(tvm_uuid 1)' AND m.name = 'instance'
    AND s.last_ns > $t_s"; then
	ok "paused tally-vm1: instance 0 in the ledger (virsh: $(vsh domstate "$(tvm_name 1)"))"
else
	fail "paused tally-vm1: instance not 0 in the ledger after 30 s"
fi
at_phase 1700
vsh resume "$(tvm_name 1)" >/dev/null

# --- Nova metadata changed live: the project moves
log "moving tally-vm1 to project tvm-project-moved"
vsh metadata "$(tvm_name 1)" --live --uri "$NOVA_NS" --key nova --set \
	"<instance><name>$(tvm_name 1)</name><flavor name='m1.tvm'/><owner><user uuid='tvm-user'>u</user><project uuid='tvm-project-moved'>p</project></owner></instance>"
if wait_for 30 "SELECT count(*) FROM resource_attrs a JOIN resources r ON r.id = a.resource_id
    WHERE r.uuid = '$(tvm_uuid 1)' AND a.tenant = 'tvm-project-moved'"; then
	hist=$(q "SELECT group_concat(tenant, ' -> ') FROM (SELECT a.tenant FROM resource_attrs a JOIN resources r
	    ON r.id = a.resource_id WHERE r.uuid = '$(tvm_uuid 1)' ORDER BY a.since_ns)")
	[ "$hist" = "tvm-project-a -> tvm-project-moved" ] && ok "tally-vm1 tenant history: $hist" ||
		fail "tally-vm1 tenant history '$hist', want 'tvm-project-a -> tvm-project-moved'"
else
	fail "the Nova project change of tally-vm1 did not reach resource_attrs in 30 s"
fi

# --- a live disk resize: no event says it (libvirt 9.0, QEMU 7.2), so the
# capacity takes the new size at the next slow cycle (slow_every, 10 reads
# of 2 s here): the billed integral is under the truth by at most the
# change times 20 s, never above it (docs/libvirt.md)
log "growing tally-vm1's disk from 64 MiB to 80 MiB while it runs"
t_r0=$(now_ns)
vsh blockresize "$(tvm_name 1)" vda 80M >/dev/null
t_r1=$(now_ns)
if wait_for 40 "SELECT s.last_value = 83886080 FROM series s JOIN resources r ON r.id = s.resource_id
    JOIN meters m ON m.id = s.meter_id WHERE r.uuid = '$(tvm_uuid 1)' AND m.name = 'disk.device.capacity'"; then
	ok "tally-vm1 disk.device.capacity 83886080 in the ledger after a live resize"
else
	fail "tally-vm1 disk.device.capacity not 83886080 in the ledger 40 s after a live resize"
fi

# --- the vCPU counts, read every slow cycle by virDomainGetInfo asked at
# once over libvirt's protocol: each running guest's against virsh's
for i in 1 2 3; do
	vc=$(vsh vcpucount --live --current "$(tvm_name "$i")") || { fail "virsh vcpucount $(tvm_name "$i")"; continue; }
	if wait_for 40 "SELECT s.last_value = $vc FROM series s JOIN resources r ON r.id = s.resource_id
	    JOIN meters m ON m.id = s.meter_id WHERE r.uuid = '$(tvm_uuid "$i")' AND m.name = 'vcpus'"; then
		ok "$(tvm_name "$i") vcpus $vc in the ledger, as virsh says"
	else
		fail "$(tvm_name "$i") vcpus not $vc in the ledger (virsh's) within 40 s"
	fi
done

# --- destroy and create again: a new QEMU, cpu and disk counters from
# zero; tally-vm3 gets a fresh tap (its NIC counters restart too), tally-vm2
# keeps its unmanaged tap, whose counters go on across the restart
log "destroying tally-vm2 (keeps its tap) and tally-vm3 (fresh tap), creating both again"
# each right after a committed read (the next is an interval away), so that
# no read of tallyd falls between the virsh reading VD and the destroy: the
# first life's end is then its last stored value (above), or a read taken
# while the destroy went on, which can only be above VD
t_d=$(now_ns)
for i in 2 3; do
	t_sync=$(now_ns)
	wait_for 20 "SELECT count(*) FROM series s JOIN resources r ON r.id = s.resource_id JOIN meters m ON m.id = s.meter_id
	    WHERE r.uuid = '$(tvm_uuid "$i")' AND m.name = 'cpu' AND s.last_ns > $t_sync" || die "tallyd stopped reading tally-vm$i"
	for spec in $COUNTERS; do
		m=${spec%%:*} r=${spec#*:} kind=${r%%:*}
		echo "$m $(series "$i" "$m" "$(dev_of "$i" "$kind")")" >> "$work/life1.$i"
	done
	snap "$i" "$work/vd.$i"
	# tally-vm3: 0.4 s before a read, so that the read meets the destroy
	# (NOWAIT answers for a dying domain lack groups)
	[ "$i" = 3 ] && at_phase 1600
	vsh destroy "$(tvm_name "$i")" >/dev/null
	# the tap (unmanaged) outlives QEMU: its counters now, the truth of
	# the NIC's final reading (libvirt's guest view: tap rx = outgoing)
	tap=/sys/class/net/$(tvm_tap "$i")/statistics
	echo "network.outgoing.bytes $(cat $tap/rx_bytes)
network.incoming.bytes $(cat $tap/tx_bytes)
network.outgoing.packets $(cat $tap/rx_packets)" > "$work/tap.$i"
done
# the first life's end: the final reading tallyd stored at the stop event
# (series.flags: 1 = has a reading, on every row; 2 = ended by a final
# reading, schemas/ledger.sql). A read during the destroy (QEMU takes a
# second or two to die under TCG) may still add to the first life: its end
# is the final reading's value, not the last one stored before the destroy
for i in 2 3; do
	wait_for 30 "SELECT count(*) FROM series s JOIN resources r ON r.id = s.resource_id JOIN meters m ON m.id = s.meter_id
	    WHERE r.uuid = '$(tvm_uuid "$i")' AND m.name = 'cpu' AND (s.flags & 2) = 2 AND s.last_ns >= $t_d" ||
		fail "tally-vm$i: no final reading stored for its stop"
	for spec in $COUNTERS; do
		m=${spec%%:*} r=${spec#*:} kind=${r%%:*}
		echo "$m $(series "$i" "$m" "$(dev_of "$i" "$kind")")" >> "$work/end1.$i"
	done
	# every series of the life ended with the stop (the final reading)
	open=$(q "SELECT count(*) || ' of ' || (SELECT count(*) FROM series s2 JOIN resources r2 ON r2.id = s2.resource_id
	    WHERE r2.uuid = '$(tvm_uuid "$i")') FROM series s JOIN resources r ON r.id = s.resource_id
	    WHERE r.uuid = '$(tvm_uuid "$i")' AND (s.flags & 2) = 0")
	case $open in
	"0 of "1[6-9]* | "0 of "[2-9][0-9]*) ok "tally-vm$i destroyed: every series ended ($open open)" ;;
	*) fail "tally-vm$i destroyed: $open series left open (want 0 of 16 or more)" ;;
	esac
	while read -r m v; do
		got=$(awk -v m="$m" '$1 == m { split($2, a, "|"); print a[1] }' "$work/end1.$i")
		[ "$got" = "$v" ] && ok "tally-vm$i $m: final reading $got = the tap's counter after the destroy" ||
			fail "tally-vm$i $m: final reading $got, the tap's counter after the destroy $v"
	done < "$work/tap.$i"
done
for i in 2 3; do
	cp "$TALLY_GUEST_DIR/run/$(tvm_name "$i").xml" "$work/vm$i.xml"
	: > "$TALLY_GUEST_DIR/run/$(tvm_name "$i").console"
done
tvm_tap_fresh 3
vsh create "$work/vm2.xml" >/dev/null
vsh create "$work/vm3.xml" >/dev/null
for i in 2 3; do
	tvm_wait_ready "$i" 1
	wait_for 30 "SELECT count(*) FROM series s JOIN resources r ON r.id = s.resource_id JOIN meters m ON m.id = s.meter_id
	    WHERE r.uuid = '$(tvm_uuid "$i")' AND m.name = 'cpu' AND s.origin_ns > $t_d" ||
		fail "tally-vm$i's new life is not counted from its start (origin after the destroy)"
done

# --- libvirtd restarted under tallyd: collection resumes
lvpid=$(tr -dc '0-9' < /run/libvirtd.pid 2>/dev/null || true)
if [ -n "$lvpid" ] && kill -0 "$lvpid" 2>/dev/null; then
	log "restarting libvirtd (pid $lvpid) under tallyd"
	kill "$lvpid"
	k=0
	while kill -0 "$lvpid" 2>/dev/null; do
		k=$((k + 1)); [ "$k" -le 100 ] || die "libvirtd pid $lvpid did not stop"; sleep 0.1
	done
	sleep 3 # tallyd meets a dead connection
	t_r=$(now_ns)
	tvm_daemon libvirtd -d
	if wait_for 60 "SELECT count(DISTINCT s.resource_id) = 3 FROM series s JOIN meters m ON m.id = s.meter_id
	    WHERE m.name = 'cpu' AND s.last_ns > $t_r"; then
		ok "libvirtd restarted: all three guests read again"
	else
		fail "libvirtd restarted: collection did not resume in 60 s"
	fi
else
	fail "no running libvirtd found by /run/libvirtd.pid: cannot restart it"
fi
sleep 4
kill -TERM "$pid"
if wait "$pid"; then rc=0; else rc=$?; fi
pid=
[ "$rc" -eq 0 ] || fail "tallyd exited $rc after SIGTERM"
for i in 1 2 3; do snap "$i" "$work/ve.$i"; done

# --- the counters against virsh
for i in 1 2 3; do
	for spec in $COUNTERS; do
		m=${spec%%:*} r=${spec#*:} kind=${r%%:*} field=${r#*:}
		s=$(series "$i" "$m" "$(dev_of "$i" "$kind")")
		[ -n "$s" ] || { fail "tally-vm$i: no $m series (device '$(dev_of "$i" "$kind")')"; continue; }
		v0=$(val "$work/v0.$i" "$field") v1=$(val "$work/v1.$i" "$field") ve=$(val "$work/ve.$i" "$field")
		# one life: tally-vm1, and tally-vm2's NIC (its tap outlived the destroy)
		if [ "$i" = 1 ] || { [ "$i" = 2 ] && [ "$kind" = nic ]; }; then
			# one life: tally-vm1; and tally-vm2's NIC, whose tap went on
			# across the restart of its domain: its tail was read from the
			# tap at the stop and the new life continued from there, so the
			# usage is the last value less a baseline taken between V0 and V1
			res=$(echo "$s" | awk -F'|' -v v0="$v0" -v v1="$v1" -v ve="$ve" '{
				last = $1; use = $2; base = last - use
				if (use < 0) { print "negative usage " use; exit }
				if (base < v0 || base > v1) { printf "baseline %.0f (last %.0f - usage %.0f) outside virsh %s .. %s\n", base, last, use, v0, v1; exit }
				if (last > ve) { printf "last value %.0f above virsh %s after\n", last, ve; exit }
				printf "OK usage %.0f = %.0f - %.0f (virsh %s .. %s before, %s after)\n", use, last, base, v0, v1, ve }')
		else
			l1=$(awk -v m="$m" '$1 == m { split($2, a, "|"); print a[1] }' "$work/life1.$i")
			e1=$(awk -v m="$m" '$1 == m { split($2, a, "|"); print a[1] }' "$work/end1.$i")
			vd=$(val "$work/vd.$i" "$field")
			res=$(echo "$s" | awk -F'|' -v v0="$v0" -v v1="$v1" -v ve="$ve" -v l1="$l1" -v e1="$e1" -v vd="$vd" '{
				last = $1; use = $2; life1 = use - last
				# life 1 = its end e1 - its baseline in [v0, v1]; e1 is the last
				# value stored before the destroy, or one read during it (>= VD)
				if (use < 0 || last < 0) { print "negative usage " use; exit }
				if (e1 != l1 && e1 < vd) { printf "first life ends at %.0f: neither its last value before the destroy %.0f nor above virsh %s\n", e1, l1, vd; exit }
				if (life1 < e1 - v1 || life1 > e1 - v0) { printf "first life counted %.0f, its end %.0f less virsh %s .. %s is %.0f .. %.0f\n", life1, e1, v1, v0, e1 - v1, e1 - v0; exit }
				if (last > ve) { printf "second life %.0f above virsh %s after\n", last, ve; exit }
				printf "OK usage %.0f = first life %.0f (ends at %.0f, virsh %s before the destroy; baseline virsh %s .. %s) + second life from zero %.0f (virsh %s after)\n", use, life1, e1, vd, v0, v1, last, ve }')
		fi
		case "$res" in
		OK*) ok "tally-vm$i $m: ${res#OK }" ;;
		*) fail "tally-vm$i $m: $res" ;;
		esac
	done
done

# direction: tally-vm2 sends, receives nothing (no host traffic into the tap)
out=$(series 2 network.outgoing.bytes "$(tvm_mac 2)" | cut -d'|' -f2)
in=$(series 2 network.incoming.bytes "$(tvm_mac 2)" | cut -d'|' -f2)
awk -v o="$out" -v i="$in" 'BEGIN { exit !(o > 1000000 && o > 100 * i) }' &&
	ok "tally-vm2 sent $out bytes = network.outgoing, received $in" ||
	fail "tally-vm2 direction: outgoing $out, incoming $in (it sends 200000 B/s, receives nothing)"

# memory: balloon.current exactly; tally-vm3 holds 48 MiB
for i in 1 2 3; do
	mem=$(series "$i" memory "" | cut -d'|' -f1)
	want=$(($(val "$work/ve.$i" balloon.current) * 1024))
	awk -v a="$mem" -v b="$want" 'BEGIN { exit !(a == b) }' && ok "tally-vm$i memory $mem = virsh balloon.current x 1024" ||
		fail "tally-vm$i memory $mem, virsh balloon.current x 1024 = $want"
done
u3=$(series 3 memory.usage "" | cut -d'|' -f1)
awk -v u="$u3" 'BEGIN { exit !(u >= 48 * 1048576 && u <= 128 * 1048576) }' &&
	ok "tally-vm3 memory.usage $u3 holds its 48 MiB" || fail "tally-vm3 memory.usage $u3, want 48 MiB .. 128 MiB"

# events
ev() { q "SELECT count(*) FROM events e JOIN resources r ON r.id = e.resource_id WHERE r.uuid = '$(tvm_uuid "$1")' AND e.type = '$2'"; }
[ "$(ev 2 rebooted)" -eq 1 ] && ok "tally-vm2: one reboot event" || fail "tally-vm2: $(ev 2 rebooted) reboot events, want 1"
[ "$(ev 1 suspended)" -eq 1 ] && [ "$(ev 1 resumed)" -ge 1 ] && ok "tally-vm1: suspended and resumed" ||
	fail "tally-vm1: $(ev 1 suspended) suspended, $(ev 1 resumed) resumed events"
for i in 2 3; do
	[ "$(ev "$i" stopped)" -eq 1 ] && [ "$(ev "$i" started)" -eq 1 ] && ok "tally-vm$i: stopped and started" ||
		fail "tally-vm$i: $(ev "$i" stopped) stopped, $(ev "$i" started) started events"
done
# reasons: a destroy is a shutdown the host asked for; a poweroff in the guest one it asked for
reasons() { q "SELECT group_concat(e.type || '/' || e.reason, ' ') FROM (SELECT e.type, e.reason FROM events e
    JOIN resources r ON r.id = e.resource_id WHERE r.uuid = '$(tvm_uuid "$1")' AND e.type IN ('shutdown', 'stopped')
    ORDER BY e.time_ns, e.id) e"; }
for i in 2 3; do
	[ "$(reasons "$i")" = "shutdown/host stopped/destroyed" ] && ok "tally-vm$i: $(reasons "$i")" ||
		fail "tally-vm$i: events '$(reasons "$i")', want 'shutdown/host stopped/destroyed'"
done
[ "$(reasons 4)" = "shutdown/guest stopped/shutdown" ] && ok "tally-vm4: $(reasons 4)" ||
	fail "tally-vm4: events '$(reasons 4)', want 'shutdown/guest stopped/shutdown'"
# tally-vm4 stayed down: every series ended, never StaleData
open4=$(q "SELECT count(*) FROM series s JOIN resources r ON r.id = s.resource_id WHERE r.uuid = '$(tvm_uuid 4)' AND (s.flags & 2) = 0")
all4=$(q "SELECT count(*) FROM series s JOIN resources r ON r.id = s.resource_id WHERE r.uuid = '$(tvm_uuid 4)'")
[ "$open4" = 0 ] && [ "$all4" -ge 14 ] && ok "tally-vm4 shut down: all $all4 series ended" ||
	fail "tally-vm4 shut down: $open4 of $all4 series left open"
stale=$(q "SELECT count(*) FROM alerts WHERE rule = 'StaleData' AND subject = '$(tvm_uuid 4)' AND state <> 'resolved'")
[ "$stale" = 0 ] && ok "tally-vm4 down for $(( ($(now_ns) - t_4) / 1000000000 )) s: no StaleData" ||
	fail "tally-vm4: StaleData $(q "SELECT state FROM alerts WHERE rule = 'StaleData' AND subject = '$(tvm_uuid 4)'") for a VM that was shut down"
# the pause: running time = time read less the pause, at the events' own times
pause=$(q "SELECT (SELECT min(e.time_ns) FROM events e JOIN resources r ON r.id = e.resource_id WHERE r.uuid = '$(tvm_uuid 1)' AND e.type = 'resumed')
    - (SELECT min(e.time_ns) FROM events e JOIN resources r ON r.id = e.resource_id WHERE r.uuid = '$(tvm_uuid 1)' AND e.type = 'suspended')")
run=$(q "SELECT total(u.quantity) || ' ' || total(u.spanned_ns) FROM usage u JOIN resources r ON r.id = u.resource_id
    JOIN meters m ON m.id = u.meter_id WHERE r.uuid = '$(tvm_uuid 1)' AND m.name = 'instance'")
res=$(echo "$run" | awk -v p="$pause" '{ want = ($2 - p) / 1e9
	if ($1 - want > 0.001 || want - $1 > 0.001) printf "running %.3f s, want %.3f s (read %.3f s less the pause %.3f s)", $1, want, $2 / 1e9, p / 1e9
	else printf "OK running %.3f s = read %.3f s less the pause %.3f s between its events", $1, $2 / 1e9, p / 1e9 }')
case $res in OK*) ok "tally-vm1 ${res#OK }" ;; *) fail "tally-vm1 $res" ;; esac
# the resized disk: its capacity integral against the truth, 64 MiB until
# the resize (between t_r0 and t_r1) and 80 MiB after, over the series' span
cap=$(q "SELECT total(u.quantity) || ' ' || total(u.spanned_ns) || ' ' || (SELECT s.last_ns FROM series s
    WHERE s.resource_id = u.resource_id AND s.meter_id = u.meter_id) FROM usage u JOIN resources r ON r.id = u.resource_id
    JOIN meters m ON m.id = u.meter_id WHERE r.uuid = '$(tvm_uuid 1)' AND m.name = 'disk.device.capacity'")
res=$(echo "$cap" | awk -v r0="$t_r0" -v r1="$t_r1" '{ billed = $1; last = $3; first = $3 - $2
	mib = 1048576; lo = (64 * mib * (r1 - first) + 80 * mib * (last - r1)) / 1e9
	hi = (64 * mib * (r0 - first) + 80 * mib * (last - r0)) / 1e9; bound = 16 * mib * 20
	if (billed > hi + 1) printf "billed %.0f byte-s, above the truth %.0f .. %.0f", billed, lo, hi
	else if (billed < lo - bound - 1) printf "billed %.0f byte-s, more than 16 MiB x 20 s under the truth %.0f .. %.0f", billed, lo, hi
	else printf "OK billed %.0f byte-s: the truth %.0f .. %.0f less %.1f s of the 16 MiB (at most 20 s)", billed, lo, hi, (hi - billed) / (16 * mib) }')
case $res in OK*) ok "tally-vm1 disk.device.capacity ${res#OK }" ;; *) fail "tally-vm1 disk.device.capacity $res" ;; esac
neg=$(q "SELECT count(*) FROM usage WHERE quantity < 0")
[ "$neg" -eq 0 ] && ok "no negative usage" || fail "$neg negative usage rows"
grep -q 'reading again' "$work/tallyd.log" && ok "tallyd said it reads again after the libvirtd restart" ||
	fail "tallyd did not say it reads again after the libvirtd restart"
# the readings above came by the bulk call and the per-disk calls over
# libvirt's protocol (collectors/libvirt_rpc.c), not the library's calls,
# and so did the vCPU counts (virDomainGetInfo): each guest's, against
# virsh's (checked while the guests ran, above)
grep -q "the bulk stats call, per-disk calls and vCPU counts asked over libvirt's protocol" "$work/tallyd.log" &&
	ok "tallyd asked the bulk call, the per-disk calls and the vCPU counts over libvirt's protocol" ||
	fail "tallyd did not ask them over libvirt's protocol: $(grep -m 2 'protocol' "$work/tallyd.log")"

# the cgroup collector beside libvirt, on guests of its own (tests/vm/cgroup.sh)
tvm_cleanup
sh "$here/cgroup.sh" || fails=$((fails + 1))
# traffic classes: the pcap collector on a guest's tap (a guest of its own)
sh "$here/pcap.sh" || fail "tests/vm/pcap.sh: the pcap collector disagrees with a guest's tap"

echo "check-vm: $fails failure(s)"
[ "$fails" -eq 0 ]
