#!/bin/sh
# The pcap collector capturing live, on a veth pair between two network
# namespaces this test creates: "vm" holds the VM's NIC (MAC
# 52:54:00:aa:00:01), "host" holds its peer, which tallyd captures on as
# the NIC's tap (the mapping names it), running as root with `user: nobody`.
#
# A raw socket sends a known number of frames of known lengths per class
# and direction (the VM to internal, peering and internet addresses, IPv4
# and IPv6, and non-IP frames; the host side to the VM from internet and
# internal sources); IPv6 is off in both namespaces so the kernel adds no
# frame of its own. Then:
#   - every (class, direction) total in the ledger, bytes and packets, is
#     exactly what was sent, and stays so (nothing counted twice);
#   - the classes of each direction add up to the peer interface's own
#     rx/tx byte and packet counters (the Ethernet header, no FCS);
#   - the capture's received count is the number of frames sent, its
#     dropped count is 0;
#   - tallyd runs as nobody with CAP_NET_RAW only (/proc/PID/status);
#   - the veth pair deleted and made again (a tap that goes and comes
#     back): the end is logged and /metrics shows the capture down
#     (tally_pcap_capture_up 0), it is opened again (by nobody, with the
#     CAP_NET_RAW it kept) and what follows counts on top.
# Then the losses: with a 64 KiB ring, tallyd is stopped (SIGSTOP) while
# 20000 frames are sent and continued: the kernel drops what the ring could
# not hold, and pcap.dropped.packets must say so: received + dropped =
# frames sent, dropped > 0, and the CaptureLoss alert rule on it fires.
# Needs root and `ip netns`; skips (77) otherwise.
set -eu
. tests/lib/tallyd.sh
B=${B:-build}
TALLYD=$PWD/$B/tallyd
. "$(dirname "$0")/../lib/pcap.sh"
for c in ip sqlite3 python3 curl; do
	command -v "$c" >/dev/null || { echo "skip: '$c' missing (scripts/deps.sh installs it)"; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "skip: needs root (network namespaces, raw sockets)"; exit 77; }
id nobody >/dev/null 2>&1 || { echo "skip: no user 'nobody' to drop to"; exit 77; }
NSV=tpl$$v NSH=tpl$$h VA=tpv$$a VB=tpv$$b
ip netns add "$NSV" 2>/dev/null || { echo "skip: cannot create a network namespace here"; exit 77; }
work=$(mktemp -d /tmp/tally-pcaplive-XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill -CONT "$pid" 2>/dev/null && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	ip netns del "$NSV" 2>/dev/null
	ip netns del "$NSH" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
pcap_veth "$NSV" "$NSH" "$VA" "$VB"

UA=6b0f3c2a-0000-4000-8000-0000000000aa
cat > "$work/nics.yaml" <<EOF
- {uuid: $UA, mac: "52:54:00:aa:00:01", interface: $VB, tenant: acme}
EOF
chown nobody "$work"

# start BUFFER: tallyd capturing on $VB, 1 s interval, committing every cycle
start() {
	rm -rf "$work/data"
	mkdir "$work/data"
	chown nobody "$work/data"
	{ pcap_yaml live "$work/data" info "$VB" "$work/nics.yaml"; cat <<EOF
    buffer_size: $1
    user: nobody
    classes:
      internal: [10.0.0.0/8, "fd00::/8"]
      peering: [198.51.100.0/24]
alerts:
  rules:
    - {name: CaptureLoss, meter: pcap.dropped.packets, rate_above: 0, severity: critical}
http:
  port: 0
EOF
	} > "$work/tally.yaml"
	ip netns exec "$NSH" "$TALLYD" -c "$work/tally.yaml" > "$work/log" 2>&1 &
	pid=$!
	wait_q 20 "SELECT count(*) FROM series s JOIN meters m ON m.id = s.meter_id
		   WHERE m.name = 'pcap.received.packets'" 1 || { cat "$work/log"; exit 1; }
}
q() { sqlite3 "$work/data/ledger.db" "$1" 2>/dev/null || true; }
# wait_q SECONDS SQL VALUE: until the query prints VALUE
wait_q() {
	k=0
	while [ "$(q "$2")" != "$3" ]; do
		k=$((k + 1))
		[ "$k" -le $(($1 * 10)) ] || return 1
		kill -0 "$pid" 2>/dev/null || { echo "tallyd died"; cat "$work/log"; exit 1; }
		sleep 0.1
	done
}
# the counter of a series as last read: its last value
last() { # METER DEVICE
	q "SELECT s.last_value FROM series s JOIN meters m ON m.id = s.meter_id
	   WHERE m.name = '$1' AND s.device = '$2'"
}
usage() { # METER DEVICE: what the ledger counted
	q "SELECT coalesce(sum(u.quantity), 0) FROM usage u JOIN meters m ON m.id = u.meter_id
	   WHERE m.name = '$1' AND u.device = '$2'"
}

# send NS IFACE SPEC...: frames through a raw socket, each SPEC
# count:length:kind:remote, kind ip4|ip6|nonip; the frame's MACs by side
cat > "$work/send.py" <<'EOF'
import ipaddress, socket, struct, sys
iface, side = sys.argv[1], sys.argv[2]
vm, host = bytes.fromhex("525400aa0001"), bytes.fromhex("02aa00000001")
src, dst = (vm, host) if side == "vm" else (host, vm)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
for spec in sys.argv[3:]:
    n, length, kind, remote = spec.split(":", 3)
    n, length = int(n), int(length)
    if kind == "ip4":
        local, rem = socket.inet_aton("192.0.2.10"), socket.inet_aton(remote)
        a, b = (local, rem) if side == "vm" else (rem, local)
        l3 = struct.pack(">BBHHHBBH4s4s", 0x45, 0, length - 14, 1, 0, 64, 253, 0, a, b)
        et = 0x0800
    elif kind == "ip6":
        local, rem = ipaddress.IPv6Address("2001:db8::10").packed, ipaddress.IPv6Address(remote).packed
        a, b = (local, rem) if side == "vm" else (rem, local)
        l3 = struct.pack(">IHBB", 6 << 28, length - 54, 59, 64) + a + b
        et = 0x86dd
    else:
        l3, et = b"", 0x88b5
    f = dst + src + struct.pack(">H", et) + l3
    f += bytes(length - len(f))
    for _ in range(n):
        s.send(f)
EOF
send() { ns=$1; shift; ip netns exec "$ns" python3 "$work/send.py" "$@"; }

start 4194304
st=$(cat "/proc/$pid/status")
uid=$(echo "$st" | sed -n 's/^Uid:[[:space:]]*\([0-9]*\).*/\1/p')
capeff=$(echo "$st" | sed -n 's/^CapEff:[[:space:]]*//p')
[ "$uid" = "$(id -u nobody)" ] && echo "ok   tallyd runs as nobody" || fail "tallyd runs as uid $uid, not nobody"
# CAP_NET_RAW is bit 13
[ "$capeff" = 0000000000002000 ] && echo "ok   its only capability is CAP_NET_RAW" ||
	fail "tallyd's effective capabilities are $capeff, not CAP_NET_RAW alone"

# the peer's own counters, as a tap's: what it received is what the VM sent
ctr() { ip netns exec "$NSH" cat "/sys/class/net/$VB/statistics/$1"; }
rx0=$(ctr rx_bytes) tx0=$(ctr tx_bytes) rxp0=$(ctr rx_packets) txp0=$(ctr tx_packets)
# what the VM sends and receives, by class (bytes = frames x length)
send "$NSV" "$VA" vm 1000:100:ip4:10.1.2.3 300:1514:ip6:fd00::7 700:200:ip4:198.51.100.9 \
	500:1514:ip4:8.8.8.8 250:64:ip6:2001:4860::8888 300:60:nonip:-
send "$NSH" "$VB" host 400:64:ip4:1.1.1.1 300:1000:ip4:10.9.9.9 50:90:nonip:-
M=52:54:00:aa:00:01
exp() { # METER VALUE
	got=$(usage "$1" "$M")
	[ "$got" = "$2" ] || { fail "$1: $got, sent $2"; return; }
	echo "ok   $1 = $2"
}
# wait for the last frame to be read, then two more cycles: a counter that
# went on growing would show
wait_q 30 "SELECT s.last_value FROM series s JOIN meters m ON m.id = s.meter_id
	   WHERE m.name = 'pcap.received.packets'" 3800 || fail "received: $(last pcap.received.packets "$VB") of 3800 frames"
sleep 2.5
exp network.internal.outgoing.bytes $((1000 * 100 + 300 * 1514))
exp network.internal.outgoing.packets 1300
exp network.peering.outgoing.bytes $((700 * 200))
exp network.peering.outgoing.packets 700
exp network.internet.outgoing.bytes $((500 * 1514 + 250 * 64))
exp network.internet.outgoing.packets 750
exp network.nonip.outgoing.bytes $((300 * 60))
exp network.nonip.outgoing.packets 300
exp network.internet.incoming.bytes $((400 * 64))
exp network.internet.incoming.packets 400
exp network.internal.incoming.bytes $((300 * 1000))
exp network.internal.incoming.packets 300
exp network.nonip.incoming.bytes $((50 * 90))
exp network.nonip.incoming.packets 50
[ "$(usage network.malformed.outgoing.bytes "$M")" = 0 ] || fail "malformed frames counted"
# the classes of a direction add up to the interface's own counters
sum() { # DIRECTION UNIT
	q "SELECT sum(u.quantity) FROM usage u JOIN meters m ON m.id = u.meter_id
	   WHERE m.name LIKE 'network.%.$1.$2' AND u.device = '$M'"
}
for x in "outgoing bytes rx_bytes $rx0" "outgoing packets rx_packets $rxp0" "incoming bytes tx_bytes $tx0" \
	 "incoming packets tx_packets $txp0"; do
	set -- $x
	want=$(($(ctr "$3") - $4))
	[ "$(sum "$1" "$2")" = "$want" ] && echo "ok   the classes of $1 $2 add up to $VB's $3 ($want)" ||
		fail "the classes of $1 $2 add up to $(sum "$1" "$2"), $VB's $3 counted $want"
done
[ "$(usage network.peering.incoming.bytes "$M")" = 0 ] || fail "peering incoming counted"
[ "$(last pcap.dropped.packets "$VB")" = 0 ] && echo "ok   no packet dropped" ||
	fail "the kernel dropped $(last pcap.dropped.packets "$VB") packets at this rate"
[ "$(last pcap.unattributed.packets "$VB")" = 0 ] || fail "unattributed frames on the tap"

# the tap goes away and comes back (a VM started again on a fresh tap): the
# capture ends, tallyd says so, opens it again once it is back (as nobody,
# with the CAP_NET_RAW it kept for this) and counts on from where it was
r1=$(last pcap.received.packets "$VB")
ip -n "$NSV" link del "$VA"
# wait_log TEXT: until tallyd's log has it (10 s at most)
wait_log() {
	k=0
	until grep -q "$1" "$work/log"; do
		k=$((k + 1))
		[ "$k" -le 100 ] || return 1
		sleep 0.1
	done
}
wait_log "capture on $VB ended" || fail "the end of the capture on $VB was not said: $(tail -n 3 "$work/log")"
# while it is gone, /metrics says so
tallyd_port "$work/log" "" 1 || fail "tallyd said no port"
port=$PORT
up() { ip netns exec "$NSH" curl -sf "http://127.0.0.1:$port/metrics" |
	sed -n "s/^tally_pcap_capture_up{interface=\"$VB\"} //p"; }
[ "$(up)" = 0 ] && echo "ok   /metrics: tally_pcap_capture_up 0 while $VB is gone" ||
	fail "/metrics: tally_pcap_capture_up is '$(up)' while $VB is gone"
pcap_pair "$NSV" "$NSH" "$VA" "$VB"
wait_log "capturing on $VB again" || fail "the capture on $VB was not opened again: $(tail -n 3 "$work/log")"
k=0
until [ "$(up)" = 1 ]; do
	k=$((k + 1))
	[ "$k" -le 50 ] || { fail "/metrics: tally_pcap_capture_up is '$(up)' after $VB came back"; break; }
	sleep 0.1
done
send "$NSV" "$VA" vm 100:100:ip4:10.1.2.3
wait_q 30 "SELECT s.last_value FROM series s JOIN meters m ON m.id = s.meter_id
	   WHERE m.name = 'pcap.received.packets'" $((r1 + 100)) ||
	fail "after the tap came back: received $(last pcap.received.packets "$VB"), want $((r1 + 100))"
sleep 2.5
exp network.internal.outgoing.packets 1400
exp network.internal.outgoing.bytes $((1100 * 100 + 300 * 1514))
kill "$pid"
wait "$pid" || fail "tallyd exited $? on SIGTERM"
pid=

# losses: a 64 KiB ring, tallyd stopped while 20000 frames go by
start 65536
r0=$(last pcap.received.packets "$VB")
kill -STOP "$pid"
send "$NSV" "$VA" vm 20000:60:ip4:8.8.8.8
kill -CONT "$pid"
wait_q 30 "SELECT (SELECT s.last_value FROM series s JOIN meters m ON m.id = s.meter_id
	   WHERE m.name = 'pcap.received.packets') + (SELECT s.last_value FROM series s JOIN meters m
	   ON m.id = s.meter_id WHERE m.name = 'pcap.dropped.packets')" $((r0 + 20000)) ||
	fail "received $(last pcap.received.packets "$VB") + dropped $(last pcap.dropped.packets "$VB") is not $((r0 + 20000))"
d=$(last pcap.dropped.packets "$VB")
[ "${d:-0}" -gt 0 ] && echo "ok   $d of 20000 frames dropped, and counted" || fail "no drop counted with a full ring"
wait_q 10 "SELECT state FROM alerts WHERE rule = 'CaptureLoss'" firing &&
	echo "ok   the CaptureLoss alert fires" || fail "no CaptureLoss alert: $(q 'SELECT rule, state FROM alerts')"
grep -q "kernel dropped" "$work/log" && echo "ok   the drop is logged" || fail "the drop is not logged"
[ "$fails" -eq 0 ] || exit 1
echo "pcap live: exact"
