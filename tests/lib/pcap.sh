# tests/lib/pcap.sh: shared by the pcap collector's scripts (sourced, not
# run): tests/integration/pcap_live.sh, tests/vm/pcap.sh, bench/pcap.sh.

# pcap_veth NSV NSH VA VB: namespaces NSV ("the VM") and NSH ("the host")
# joined by a veth pair, VA (MAC 52:54:00:aa:00:01, the VM's NIC) in NSV and
# VB (02:aa:00:00:00:01, its tap) in NSH, both up, IPv6 off so the kernel
# sends nothing of its own; NSH's loopback up. NSV must exist already (the caller creates it
# first, to learn whether namespaces work here).
pcap_veth() {
	ip netns add "$2"
	for _ns in "$1" "$2"; do
		ip netns exec "$_ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	done
	ip -n "$2" link set lo up   # tallyd's HTTP listener there
	pcap_pair "$@"
}

# pcap_pair NSV NSH VA VB: the veth pair alone (again, after it was deleted)
pcap_pair() {
	ip link add "$3" netns "$1" address 52:54:00:aa:00:01 type veth peer name "$4" netns "$2" \
		address 02:aa:00:00:00:01
	ip -n "$1" link set "$3" up
	ip -n "$2" link set "$4" up
}

# pcap_yaml AGENT DATA_DIR LOG_LEVEL IFACE MAPPING: a tallyd config that
# captures on IFACE every second and commits every cycle; the caller
# appends the rest of the collectors.pcap map (four spaces in).
pcap_yaml() {
	cat <<EOC
tallyd:
  agent_id: $1
  data_dir: $2
  interval: 1s
  log_level: $3
ledger:
  commit_every: 0s
rrd:
  enabled: false
collectors:
  pcap:
    interfaces: [$4]
    mapping: $5
EOC
}
