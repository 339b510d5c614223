#!/bin/sh
# make check-vm, part 2: the cgroup collector on real QEMU guests under
# libvirtd, beside the libvirt collector (run.sh calls it; alone:
# flock /tmp/tally-qemu.lock sh tests/vm/cgroup.sh, as root).
#
# Two guests of its own (tests/vm/common.sh): tally-vm4 burns 50 % of its
# vCPU, tally-vm5 sends 200000 B/s on its tap. Two tallyds read them at the
# same 2 s ticks:
#   A: libvirt (billing) + cgroup (vm_meters: check) -> its /metrics has the
#      cross-check, tally_source_divergence_ratio;
#   B: cgroup alone (vm_meters: bill) -> a ledger of its own.
# Checked:
#   - A: every guest's cpu and NIC counters compared (checks counted), the
#     busy guest's cpu divergence small, nothing of the checks billed (A's
#     ledger has one cpu series per guest);
#   - CPU: libvirt's cpu.time (A) and the guest's cgroup (B) agree within
#     one interval's worth of one vCPU (they read the same cgroup counter,
#     at different instants);
#   - taps: with tally-vm5 paused (no traffic), libvirt's and the cgroup's
#     readings of its NIC counters are equal to the byte and packet, and so
#     are tally-vm4's (no traffic at all);
#   - tally-vm4 destroyed: B records a stop with its final readings.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
B=${B:-build}
TALLYD=$PWD/$B/tallyd
[ -x "$TALLYD" ] || die "$TALLYD missing: run make first"
[ "$(id -u)" = 0 ] || die "needs root"
command -v sqlite3 >/dev/null || die "needs sqlite3"
work=$(mktemp -d /tmp/tally-vmcg-XXXXXX)
pa= pb=
fails=0
finish() {
	[ -n "$pa" ] && kill "$pa" 2>/dev/null
	[ -n "$pb" ] && kill "$pb" 2>/dev/null
	for i in 4 5; do
		vsh destroy "$(tvm_name "$i")" >/dev/null 2>&1 || true
		rm -f "$TALLY_GUEST_DIR/run/$(tvm_name "$i")".*
		[ -e "/sys/class/net/$(tvm_tap "$i")" ] && ip link del "$(tvm_tap "$i")" 2>/dev/null || true
	done
	[ "${KEEP:-0}" = 1 ] || rm -rf "$work"
}
trap finish EXIT
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
ok() { echo "ok   $*"; }
qa() { sqlite3 "$work/a/ledger.db" "$1"; }
qb() { sqlite3 "$work/b/ledger.db" "$1"; }
last() { # LEDGER UUID METER DEVICE -> "value ns"
	sqlite3 "$work/$1/ledger.db" "SELECT s.last_value || ' ' || s.last_ns FROM series s JOIN resources r ON
	    r.id = s.resource_id JOIN meters m ON m.id = s.meter_id WHERE r.uuid = '$2' AND m.name = '$3'
	    AND s.device = '$4' AND s.agent = 'vmcg-$1'"
}

log "cgroup: starting tally-vm4 (cpu) and tally-vm5 (net)"
for i in 4 5; do vsh destroy "$(tvm_name "$i")" >/dev/null 2>&1 || true; done
tvm_create 4 "tally.cpu=50"
tvm_create 5 "tally.net=200000"
for i in 4 5; do tvm_wait_ready "$i" 1; done

cat > "$work/a.yaml" <<EOC
tallyd:
  agent_id: vmcg-a
  data_dir: $work/a
  interval: 2s
ledger:
  commit_every: 0s
rrd:
  enabled: false
http:
  port: 0
collectors:
  libvirt:
    uri: qemu:///system
  cgroup:
    host: false
EOC
sed -e 's/vmcg-a/vmcg-b/' -e "s|$work/a|$work/b|" -e '/^http:/,/port: 0/d' -e '/libvirt:/,/uri:/d' \
	-e 's/    host: false/    host: false\n    vm_meters: bill/' "$work/a.yaml" > "$work/b.yaml"
"$TALLYD" -c "$work/a.yaml" 2> "$work/a.log" &
pa=$!
"$TALLYD" -c "$work/b.yaml" 2> "$work/b.log" &
pb=$!
u4=$(tvm_uuid 4) u5=$(tvm_uuid 5) m4=$(tvm_mac 4) m5=$(tvm_mac 5)
k=0
until [ "$(qb "SELECT count(*) FROM series s JOIN resources r ON r.id = s.resource_id JOIN meters m ON m.id = s.meter_id
    WHERE r.uuid IN ('$u4', '$u5') AND m.name IN ('cpu', 'network.outgoing.bytes')" 2>/dev/null || echo 0)" = 4 ]; do
	k=$((k + 1)); [ $k -lt 300 ] || die "tallyd B (cgroup) did not read both guests' cpu and tap in 30 s: $(cat "$work/b.log")"
	sleep 0.1
done
ok "the cgroup collector found both guests, their UUIDs from QEMU's -uuid and their taps by MAC"
sleep 14

# --- A: the cross-check
port=$(sed -n 's/.*http: listening on 127.0.0.1 port \([0-9]*\).*/\1/p' "$work/a.log")
curl -sf "http://127.0.0.1:$port/metrics" > "$work/a.prom" || fail "no /metrics from tallyd A"
compared=$(sed -n 's/^tally_source_checks_total{result="compared"} //p' "$work/a.prom")
[ "${compared:-0}" -ge 10 ] && ok "A compared $compared intervals of cgroup readings with libvirt's" ||
	fail "A compared ${compared:-no} intervals"
for spec in "$u4 cpu" "$u5 cpu" "$u5 network.outgoing.bytes" "$u5 network.incoming.packets"; do
	set -- $spec
	grep -q "^tally_source_divergence_ratio{uuid=\"$1\".*meter=\"$2\"" "$work/a.prom" &&
		ok "A: divergence of $2 of $1 on /metrics" || fail "A: no divergence of $2 of $1 on /metrics"
done
d4=$(sed -n "s/^tally_source_divergence_ratio{uuid=\"$u4\".*meter=\"cpu\"} //p" "$work/a.prom")
awk -v d="$d4" 'BEGIN { exit !(d != "" && d < 0.2) }' && ok "tally-vm4 (busy): cpu divergence $d4 over the last interval" ||
	fail "tally-vm4 (busy): cpu divergence '${d4:-none}', want < 0.2"
n=$(qa "SELECT count(*) FROM series s JOIN meters m ON m.id = s.meter_id JOIN resources r ON r.id = s.resource_id
    WHERE m.name = 'cpu' AND r.uuid IN ('$u4', '$u5')")
[ "$n" = 2 ] && ok "A bills one cpu series per guest (the checks are never billed)" || fail "A has $n cpu series for two guests"

# --- CPU: libvirt (A) against the cgroup (B): the same counter
for i in 4 5; do
	u=$(tvm_uuid "$i")
	a=$(last a "$u" cpu "") b=$(last b "$u" cpu "")
	awk -v a="${a% *}" -v ta="${a#* }" -v b="${b% *}" -v tb="${b#* }" 'BEGIN {
		dt = ta > tb ? ta - tb : tb - ta; d = a > b ? a - b : b - a
		# one vCPU, for the time between the two readings plus one 2 s interval
		exit !(a > 0 && b > 0 && d <= dt + 2e9) }' &&
		ok "tally-vm$i cpu: libvirt ${a% *} ns, cgroup ${b% *} ns (read at ${a#* }, ${b#* }): within one interval" ||
		fail "tally-vm$i cpu: libvirt '$a', cgroup '$b' (value, read at): more apart than one interval"
done

# --- taps: paused, the counters stand still, both read them exactly
vsh suspend "$(tvm_name 5)" >/dev/null
sleep 7
for i in 4 5; do
	u=$(tvm_uuid "$i") mac=$(tvm_mac "$i")
	for m in network.outgoing.bytes network.incoming.bytes network.outgoing.packets network.incoming.packets; do
		a=$(last a "$u" "$m" "$mac") b=$(last b "$u" "$m" "$mac")
		[ -n "$a" ] && [ "${a% *}" = "${b% *}" ] && ok "tally-vm$i $m: libvirt ${a% *} = cgroup ${b% *}" ||
			fail "tally-vm$i $m: libvirt '${a% *}', cgroup '${b% *}'"
	done
done
sent=$(last b "$u5" network.outgoing.bytes "$m5")
awk -v s="${sent% *}" 'BEGIN { exit !(s > 1000000) }' && ok "tally-vm5 sent ${sent% *} B: network.outgoing (the tap's rx)" ||
	fail "tally-vm5 sent '${sent% *}' B, want > 1 MB in ~20 s at 200000 B/s"
vsh resume "$(tvm_name 5)" >/dev/null

# --- a stop: B's final readings and event
t_d=$(date +%s%N)
vsh destroy "$(tvm_name 4)" >/dev/null
k=0
until [ "$(qb "SELECT count(*) FROM events e JOIN resources r ON r.id = e.resource_id WHERE r.uuid = '$u4'
    AND e.type = 'stopped'")" = 1 ]; do
	k=$((k + 1)); [ $k -lt 100 ] || break
	sleep 0.1
done
fin=$(qb "SELECT count(*) FROM series s JOIN resources r ON r.id = s.resource_id WHERE r.uuid = '$u4' AND (s.flags & 1) = 1")
ev=$(qb "SELECT reason FROM events e JOIN resources r ON r.id = e.resource_id WHERE r.uuid = '$u4' AND e.type = 'stopped'")
[ -n "$ev" ] && [ "$fin" -ge 5 ] && ok "tally-vm4 destroyed: B recorded a stop ($ev) and $fin final readings" ||
	fail "tally-vm4 destroyed: B's stop event '$ev', $fin final readings"
for p in "$pa" "$pb"; do
	kill -TERM "$p"
	wait "$p" || fail "a tallyd exited $? after SIGTERM"
done
pa= pb=
neg=$(qb "SELECT count(*) FROM usage WHERE quantity < 0")
[ "$neg" = 0 ] && ok "B: no negative usage" || fail "B: $neg negative usage rows"
w=$(grep -c "warning" "$work/b.log" || true)
[ "$w" = 0 ] && ok "B logged no warning" || fail "B logged: $(grep warning "$work/b.log" | head -n 3)"
echo "check-vm cgroup: $fails failure(s)"
[ "$fails" -eq 0 ]
