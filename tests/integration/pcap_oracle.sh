#!/bin/sh
# The pcap collector on a capture file against tshark as the oracle.
#
# tests/lib/pcapgen.py writes 3000 frames (VLAN, QinQ, IPv4 options and
# fragments, IPv6 extension headers and fragments, ARP, other EtherTypes,
# frames cut by a snap length, malformed frames of every kind) between
# three VMs by MAC (A; B with two NICs), one VM by address only (C), a
# router and the broadcast address, every remote address class with nested
# prefixes and their edges. tallyd reads the file (offline, fast-forward
# through the packets' own times, pcap and the same file as pcapng) into a
# ledger; for every NIC, class and direction the stored usage (bytes and
# packets) must equal what tshark counts on the file with the equivalent
# display filter: direction by eth.src / eth.dst (by ip/ipv6 address when
# neither MAC is a NIC's), class by the remote address (ip.dst#1 for sent,
# ip.src#1 for received) in the class's prefixes, most specific first;
# malformed = what tshark marks malformed or as an error, or an IPv6
# payload length past the frame; non-IP = neither IPv4 nor IPv6. The
# classes of each NIC must also add up to all its frames, the capture's
# received count must be capinfos' packet count, and its unattributed
# count tshark's count of the frames of no NIC.
set -eu
B=${B:-build}
TALLYD=$PWD/$B/tallyd
here=$(cd "$(dirname "$0")" && pwd)
for c in tshark capinfos sqlite3 python3; do
	command -v "$c" >/dev/null || { echo "skip: '$c' missing (scripts/deps.sh installs it)"; exit 77; }
done
work=$(mktemp -d /tmp/tally-pcaporacle-XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

python3 "$here/../lib/pcapgen.py" mix "$work/mix.pcap" 7 3000 1790000000
tshark -r "$work/mix.pcap" -F pcapng -w "$work/mix.pcapng" 2>/dev/null

UA=6b0f3c2a-0000-4000-8000-00000000000a
UB=6b0f3c2a-0000-4000-8000-00000000000b
UC=6b0f3c2a-0000-4000-8000-00000000000c
cat > "$work/nics.yaml" <<EOF
- {uuid: $UA, mac: "52:54:00:0A:00:01", tenant: acme, name: vm-a}
- {uuid: $UB, mac: "52:54:00:0b:00:01", tenant: acme, name: vm-b}
- {uuid: $UB, mac: "52:54:00:0b:00:02"}
- uuid: $UC
  mac: "52:54:00:0c:00:01"
  ips: [192.0.2.50, "2001:db8:c::50"]
EOF

# run FILE [END]: tallyd over the file up to END (default: past the last
# packet) into $work/data; prints uuid|meter|device|usage of every series
# with usage
run() {
	cat > "$work/tally.yaml" <<EOF
tallyd:
  agent_id: oracle
  data_dir: $work/data
  interval: 60s
  clock: fast-forward
  start: 2026-09-21T14:00:00Z
  end: ${2:-2026-09-21T17:00:00Z}
  log_level: warning
rrd:
  enabled: false
collectors:
  pcap:
    file: $1
    mapping: $work/nics.yaml
    classes:
      internal: [10.0.0.0/8, 172.16.0.0/12, 198.51.100.128/25, "fd00::/8"]
      peering: [198.51.100.0/24, 10.1.2.0/24, "2001:db8:100::/48", "fd00:1::/32"]
EOF
	"$TALLYD" -q -c "$work/tally.yaml"
	sqlite3 "$work/data/ledger.db" "SELECT r.uuid, m.name, u.device, sum(u.quantity)
		FROM usage u JOIN resources r ON r.id = u.resource_id JOIN meters m ON m.id = u.meter_id
		GROUP BY 1, 2, 3 HAVING sum(u.quantity) != 0 ORDER BY 1, 2, 3" | sed 's/\.0$//'
}

# the oracle: the same lines from tshark's counts
python3 - "$work/mix.pcap" "$UA" "$UB" "$UC" > "$work/expected" <<'EOF'
import subprocess, sys
f, ua, ub, uc = sys.argv[1:5]
nics = [(ua, "52:54:00:0a:00:01"), (ub, "52:54:00:0b:00:01"), (ub, "52:54:00:0b:00:02")]
macs = "{" + ", ".join(m for _, m in nics + [(uc, "52:54:00:0c:00:01")]) + "}"
MAL = "(_ws.malformed || _ws.expert.severity == error || ipv6.plen_exceeds_framing)"
def cls(v4, v6):
    # most specific first: 10.1.2.0/24 (peering) in 10/8 (internal),
    # 198.51.100.128/25 (internal) in 198.51.100.0/24 (peering), fd00:1::/32
    # (peering) in fd00::/8 (internal)
    internal = (f"((ip && {v4} in {{10.0.0.0/8, 172.16.0.0/12}} && !({v4} in {{10.1.2.0/24}}))"
                f" || (ip && {v4} in {{198.51.100.128/25}})"
                f" || (ipv6 && {v6} in {{fd00::/8}} && !({v6} in {{fd00:1::/32}})))")
    peering = (f"((ip && {v4} in {{198.51.100.0/24}} && !({v4} in {{198.51.100.128/25}}))"
               f" || (ip && {v4} in {{10.1.2.0/24}})"
               f" || (ipv6 && {v6} in {{2001:db8:100::/48, fd00:1::/32}}))")
    ipish = "(ip || ipv6)"
    return {
        "malformed": MAL,
        "nonip": f"(!{MAL} && !{ipish})",
        "internal": f"(!{MAL} && {internal})",
        "peering": f"(!{MAL} && {peering})",
        "internet": f"(!{MAL} && {ipish} && !{internal} && !{peering})",
    }
def count(flt):
    out = subprocess.run(["tshark", "-r", f, "-Y", flt, "-T", "fields", "-e", "frame.len"],
                         capture_output=True, text=True, check=True).stdout.split()
    return sum(int(x) for x in out), len(out)
def put(uuid, dev, direction, sel, remote):
    tot_b = tot_p = 0
    for c, flt in cls(*remote).items():
        b, p = count(f"({sel}) && {flt}")
        tot_b += b
        tot_p += p
        if p:
            print(f"{uuid}|network.{c}.{direction}.bytes|{dev}|{b}")
            print(f"{uuid}|network.{c}.{direction}.packets|{dev}|{p}")
    # every frame of the NIC in exactly one class
    b, p = count(sel)
    if (b, p) != (tot_b, tot_p):
        sys.exit(f"oracle: classes of {dev} {direction} do not add up: {tot_b}/{tot_p} of {b}/{p}")
for uuid, m in nics:
    put(uuid, m, "outgoing", f"eth.src == {m}", ("ip.dst#1", "ipv6.dst#1"))
    put(uuid, m, "incoming", f"eth.dst == {m}", ("ip.src#1", "ipv6.src#1"))
nomac = f"!(eth.src in {macs}) && !(eth.dst in {macs})"
put(uc, "52:54:00:0c:00:01", "outgoing", f"{nomac} && (ip.src#1 == 192.0.2.50 || ipv6.src#1 == 2001:db8:c::50)",
    ("ip.dst#1", "ipv6.dst#1"))
put(uc, "52:54:00:0c:00:01", "incoming", f"{nomac} && (ip.dst#1 == 192.0.2.50 || ipv6.dst#1 == 2001:db8:c::50)",
    ("ip.src#1", "ipv6.src#1"))
_, un = count(f"{nomac} && !(ip.src#1 == 192.0.2.50 || ipv6.src#1 == 2001:db8:c::50"
              " || ip.dst#1 == 192.0.2.50 || ipv6.dst#1 == 2001:db8:c::50)")
total = subprocess.run(["capinfos", "-c", "-M", "-T", f], capture_output=True, text=True,
                       check=True).stdout.split()[-1]
print(f"oracle:pcap|pcap.received.packets|mix|{total}")
print(f"oracle:pcap|pcap.unattributed.packets|mix|{un}")
EOF
sort -o "$work/expected" "$work/expected"
n=$(wc -l < "$work/expected")
[ "$n" -ge 40 ] || fail "the oracle found only $n series: the generated file lacks variety"

grep -q '|network.malformed.outgoing.bytes|' "$work/expected" &&
	grep -q '|network.nonip.incoming.bytes|' "$work/expected" &&
	grep -q '|network.peering.incoming.bytes|52:54:00:0c' "$work/expected" ||
	fail "the generated file lacks malformed, non-IP or by-address frames"
check() { # NAME: $work/got against the oracle
	if diff "$work/expected" "$work/got" > "$work/diff"; then
		echo "ok   $1: $n series equal tshark's counts"
	else
		fail "$1: stored usage differs from tshark's (< tshark, > tally):"
		cat "$work/diff"
	fi
}
for f in mix.pcap mix.pcapng; do
	rm -rf "$work/data"
	run "$work/$f" | sed "s/|$f|/|mix|/" | sort > "$work/got"
	check "$f"
done
# resumed: a run that stopped at 15:00 (a killed fast-forward) is run again
# to the end on the same ledger; it goes on from the counters the ledger
# holds and comes to the same totals, none counted twice
rm -rf "$work/data"
run "$work/mix.pcap" 2026-09-21T15:00:00Z > /dev/null
run "$work/mix.pcap" | sed "s/|mix.pcap|/|mix|/" | sort > "$work/got"
check "mix.pcap, resumed at 15:00"
[ "$fails" -eq 0 ] && echo "pcap oracle: all equal" || exit 1
