#!/bin/sh
# make check-vm, traffic classes: the pcap collector on a real QEMU guest's
# tap agrees with the tap's own counters, frame for frame (called by
# tests/vm/run.sh; alone: flock /tmp/tally-qemu.lock sh tests/vm/pcap.sh).
#
# Guest tally-vm4 sends UDP (tally.net, 200-byte frames) to 169.254.0.1;
# the host sends frames into its tap from internet, internal and peering
# sources (to an address the guest does not have, so it answers nothing).
# The guest is paused while tallyd starts capturing on the tap and the
# tap's counters are read (B); it runs, the host sends; then it is paused
# again and, once tallyd has read every frame, the counters are read (E).
# Checked:
#   - the classes of the NIC's outgoing bytes and packets add up to the
#     tap's rx counters E - B (what the guest sent), the incoming ones to
#     its tx counters (what it was given), exactly;
#   - each class the host sent in has exactly the frames and bytes sent;
#   - the guest's traffic (to 169.254.0.1) is internal; no drops.
# Needs root, QEMU and libvirtd (tests/vm/setup.sh); exits 1 without them.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
. "$here/../lib/pcap.sh"
B=${B:-build}
TALLYD=$PWD/$B/tallyd
[ -x "$TALLYD" ] || die "$TALLYD missing: run make first"
[ "$(id -u)" = 0 ] || die "needs root (libvirtd, QEMU, taps)"
command -v sqlite3 >/dev/null || die "needs sqlite3 (scripts/deps.sh)"
"$here/setup.sh" > /dev/null || die "tests/vm/setup.sh failed: no QEMU/libvirtd to test against"
I=4
TAP=$(tvm_tap $I)
MAC=$(tvm_mac $I)
work=$(mktemp -d /tmp/tally-vmpcap-XXXXXX)
pid=
fails=0
finish() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	vsh destroy "$(tvm_name $I)" >/dev/null 2>&1 || true
	ip link del "$TAP" 2>/dev/null || true
	rm -f "$TALLY_GUEST_DIR/run/$(tvm_name $I)".*
	[ "${KEEP:-0}" = 1 ] || rm -rf "$work"
}
trap finish EXIT
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
ok() { echo "ok   $*"; }
q() { sqlite3 "$work/data/ledger.db" "$1" 2>/dev/null || true; }
ctr() { cat "/sys/class/net/$TAP/statistics/$1"; }
last() { # METER: the counter as last read
	q "SELECT coalesce(sum(s.last_value), 0) FROM series s JOIN meters m ON m.id = s.meter_id WHERE m.name = '$1'"
}
sum() { # DIRECTION UNIT: the classes' usage summed
	q "SELECT coalesce(sum(u.quantity), 0) FROM usage u JOIN meters m ON m.id = u.meter_id
	   WHERE m.name LIKE 'network.%.$1.$2' AND u.device = '$MAC'"
}
use() { # METER
	q "SELECT coalesce(sum(u.quantity), 0) FROM usage u JOIN meters m ON m.id = u.meter_id
	   WHERE m.name = '$1' AND u.device = '$MAC'"
}

log "pcap: starting $(tvm_name $I), pausing it while tallyd starts capturing on $TAP"
tvm_create $I "tally.net=40000 tally.netsize=200"
tvm_wait_ready $I 1
vsh suspend "$(tvm_name $I)" >/dev/null
cat > "$work/nics.yaml" <<EOF
- {uuid: $(tvm_uuid $I), mac: "$MAC", interface: $TAP}
EOF
{ pcap_yaml check-vm-pcap "$work/data" info "$TAP" "$work/nics.yaml"; cat <<EOF
    classes:
      internal: [169.254.0.0/16, 10.0.0.0/8]
      peering: [198.51.100.0/24]
EOF
} > "$work/t.yaml"
"$TALLYD" -c "$work/t.yaml" 2> "$work/tallyd.log" &
pid=$!
k=0
until [ "$(q "SELECT count(*) FROM series s JOIN meters m ON m.id = s.meter_id
	   WHERE m.name = 'pcap.received.packets'")" = 1 ]; do
	k=$((k + 1))
	[ "$k" -le 100 ] || die "tallyd did not start capturing: $(cat "$work/tallyd.log")"
	kill -0 "$pid" 2>/dev/null || die "tallyd died: $(cat "$work/tallyd.log")"
	sleep 0.1
done
r0=$(last pcap.received.packets)
rxb=$(ctr rx_bytes) rxp=$(ctr rx_packets) txb=$(ctr tx_bytes) txp=$(ctr tx_packets) txd=$(ctr tx_dropped)

log "pcap: the guest runs 6 s; the host sends it 300 + 200 + 100 frames"
vsh resume "$(tvm_name $I)" >/dev/null
cat > "$work/send.py" <<'EOF'
import socket, struct, sys, time
tap, mac = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", ""))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((tap, 0))
for spec in sys.argv[3:]:
    n, length, src = spec.split(":")
    l3 = struct.pack(">BBHHHBBH4s4s", 0x45, 0, int(length) - 14, 1, 0, 64, 253, 0,
                     socket.inet_aton(src), socket.inet_aton("169.254.9.9"))
    f = mac + bytes.fromhex("02000000aa01") + b"\x08\x00" + l3
    f += bytes(int(length) - len(f))
    for k in range(int(n)):
        s.send(f)
        if k % 20 == 19:
            time.sleep(0.01)   # a TCG guest reads its queue slowly
EOF
python3 "$work/send.py" "$TAP" "$MAC" 300:90:8.8.8.8 200:1000:10.1.1.1 100:1514:198.51.100.7
sleep 4
vsh suspend "$(tvm_name $I)" >/dev/null
sleep 1
rxb=$(($(ctr rx_bytes) - rxb)) rxp=$(($(ctr rx_packets) - rxp))
txb=$(($(ctr tx_bytes) - txb)) txp=$(($(ctr tx_packets) - txp)) txd=$(($(ctr tx_dropped) - txd))
k=0
until [ "$(($(last pcap.received.packets) - r0))" -ge $((rxp + txp + txd)) ]; do
	k=$((k + 1))
	[ "$k" -le 100 ] || break
	sleep 0.2
done
sleep 2 # two more reads: a count still growing would show
[ "$txd" -eq 0 ] || fail "the tap dropped $txd frames on their way to the guest (the guest was slow)"
[ "$rxp" -gt 50 ] && ok "the guest sent $rxp frames ($rxb bytes) through its tap" ||
	fail "the guest sent only $rxp frames: its workload did not run"
for x in "outgoing bytes $rxb rx_bytes" "outgoing packets $rxp rx_packets" "incoming bytes $txb tx_bytes" \
	 "incoming packets $txp tx_packets"; do
	set -- $x
	got=$(sum "$1" "$2")
	[ "$got" = "$3" ] && ok "classes of $1 $2 add up to the tap's $4: $3" ||
		fail "classes of $1 $2 add up to $got, the tap's $4 counted $3"
done
[ "$(use network.internal.outgoing.bytes)" = "$rxb" ] && ok "all the guest sent (to 169.254.0.1) is internal" ||
	fail "internal outgoing $(use network.internal.outgoing.bytes) of $rxb bytes sent"
for x in "internet 300 90" "internal 200 1000" "peering 100 1514"; do
	set -- $x
	b=$(use "network.$1.incoming.bytes") p=$(use "network.$1.incoming.packets")
	[ "$b" = $(($2 * $3)) ] && [ "$p" = "$2" ] && ok "$1 incoming: $p frames, $b bytes, as sent" ||
		fail "$1 incoming: $p frames, $b bytes; sent $2 x $3 bytes"
done
[ "$(last pcap.dropped.packets)" = 0 ] && ok "no capture drops" || fail "capture drops: $(last pcap.dropped.packets)"
kill -TERM "$pid"
wait "$pid" || fail "tallyd exited $? on SIGTERM"
pid=
echo "check-vm pcap: $fails failure(s)"
[ "$fails" -eq 0 ]
