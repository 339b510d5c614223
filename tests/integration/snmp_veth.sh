#!/bin/sh
# A known number of bytes through a veth pair shows up in the ledger
# exactly. Two network namespaces made here (names with this shell's pid);
# namespace A holds one end of a veth pair, its own snmpd (Linux's counters
# of A's interfaces, net-snmp's own IF-MIB) and the tallyd that polls it;
# namespace B holds the other end and pings A: N echo requests of S bytes of
# payload are N x (14 Ethernet + 20 IP + 8 ICMP + S) bytes received by A's
# end, and as many sent back. IPv6 is off and the neighbours are static
# before the link comes up, so nothing else crosses it.
# The oracle: that sum, worked out here, and the kernel's own counters.
set -eu
B=${B:-build}
TALLYD=$PWD/$B/tallyd
. tests/lib/snmpd.sh
snmp_need snmpbulkwalk ip ping
[ "$(id -u)" = 0 ] || { echo "needs root for network namespaces"; exit 77; }
na=tsnA$$ nb=tsnB$$ va=tva$$ vb=tvb$$
work=$(mktemp -d /tmp/tally-snmp-veth-XXXXXX)
cleanup() {
	snmp_cleanup
	ip netns del "$na" 2>/dev/null
	ip netns del "$nb" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM
ip netns add "$na" || { echo "cannot create a network namespace here"; exit 77; }
ip netns add "$nb"
ip -n "$na" link add "$va" type veth peer name "$vb" netns "$nb"
for n in "$na:$va" "$nb:$vb"; do
	ns=${n%%:*} dev=${n#*:}
	ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1"
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.lo.disable_ipv6=1
	ip -n "$ns" link set lo up
done
ip -n "$na" addr add 169.254.77.1/24 dev "$va"
ip -n "$nb" addr add 169.254.77.2/24 dev "$vb"
mac_a=$(ip -n "$na" -o link show "$va" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
mac_b=$(ip -n "$nb" -o link show "$vb" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
ip -n "$na" neigh add 169.254.77.2 lladdr "$mac_b" dev "$va" nud permanent
ip -n "$nb" neigh add 169.254.77.1 lladdr "$mac_a" dev "$vb" nud permanent
ip -n "$na" link set "$va" up
ip -n "$nb" link set "$vb" up
inA() { ip netns exec "$na" "$@"; }

# snmpd and tallyd in namespace A (tests/lib/snmpd.sh runs them there)
SNMP_NS=$na
set -- $(snmp_free_ports udp tcp)
port=$1 hport=$2
snmpd_conf agent "$port"
snmpd_start agent "$port" smux
snmp_tally_yaml 1s > "$work/tally.yaml"
cat >> "$work/tally.yaml" <<EOF
      - {name: hostA, type: host, address: "127.0.0.1:$port", community: public, timeout: 200ms}
      - {name: swA, type: switch, address: "127.0.0.1:$port", community: public, timeout: 200ms}
EOF
tallyd_start "$work/tally.yaml" "$work/tallyd.log"
wait_polls() {
	snmp_wait_polls hostA "$1" "$work/tallyd.log"
	snmp_wait_polls swA "$1" "$work/tallyd.log"
}
wait_polls 2
rx0=$(inA cat "/sys/class/net/$va/statistics/rx_bytes")
N=50 S=1000
ip netns exec "$nb" ping -q -c $N -s $S -i 0.01 -W 1 169.254.77.1 >/dev/null
rx1=$(inA cat "/sys/class/net/$va/statistics/rx_bytes")
# snmpd caches the kernel's counters for a few seconds: wait until it
# serves the new value, then for two more polls
for i in $(seq 100); do
	inA snmpbulkwalk -v2c -c public -On -Oqv "udp:127.0.0.1:$port" .1.3.6.1.2.1.31.1.1.1.6 | grep -qx "$rx1" && break
	sleep 0.2
done
n=$(snmp_okpolls hostA)
wait_polls $((n + 2))
tallyd_stop "$tallyd_pid" "$work/tallyd.log"

want=$((N * (14 + 20 + 8 + S)))
L=$work/data/ledger.db
usage() { snmp_usage "$L" "$1" "$2"; }
eq "the kernel's rx_bytes of $va grew by" "$((rx1 - rx0))" "$want"
eq "hostA:$va if.incoming.bytes (a host's own ifHCInOctets)" "$(usage "hostA:$va" if.incoming.bytes)" "$want"
eq "hostA:$va if.outgoing.bytes (the echo replies)" "$(usage "hostA:$va" if.outgoing.bytes)" "$want"
eq "swA:$va if.outgoing.bytes (a switch port: what it received)" "$(usage "swA:$va" if.outgoing.bytes)" "$want"
eq "hostA:$va if.incoming.packets" "$(usage "hostA:$va" if.incoming.packets)" "$N"
[ "$fails" -eq 0 ] || { cat "$work/tallyd.log"; exit 1; }
echo "snmp_veth: all passed"
