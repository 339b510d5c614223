#!/bin/sh
# make bench, issue 15: one poll of 20 SNMP targets with 200 interfaces in
# all, wall time and CPU, beside snmpbulkwalk run one target after another
# and beside collectd 5.12's snmp plugin, on the same targets in the same
# run. Nothing is asserted: medians are printed, with the ratios.
#
# The targets: a network namespace made here (its name has this shell's
# pid) with 9 veth ends besides lo (10 interfaces), and 5 snmpd instances
# in it listening on 4 ports each = 20 targets of 10 interfaces. Every
# poller runs inside the namespace, on its loopback.
#   tally:        build/bench/bench_snmp (the collector's read(): every
#                 target's ifXTable/ifTable columns, concurrently)
#   snmpbulkwalk: ifXTable then ifTable of each target, one after another
#                 (2 processes per target; their CPU is the children's)
#   collectd:     the daemon, 1 s interval, its snmp plugin collecting
#                 octets, packets, errors and discards of every target (it
#                 walks with GETNEXT, one row per request); CPU per
#                 interval (`collectd -T` runs no read callback in 5.12)
# usage: bench/snmp.sh [ROUNDS]   (root: needs a network namespace)
set -eu
B=${B:-build}
ROUNDS=${1:-15}
for t in snmpd snmpbulkwalk python3 ip; do
	command -v $t >/dev/null || { echo "snmp bench: $t is not installed (scripts/deps.sh)"; exit 0; }
done
[ "$(id -u)" = 0 ] || { echo "snmp bench: needs root (a network namespace)"; exit 0; }
ns=tbench$$
work=$(mktemp -d /tmp/tally-bench-snmp-XXXXXX)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
	ip netns del "$ns" 2>/dev/null
	ip netns del "${ns}p" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
nsx() { ip netns exec "$ns" "$@"; }
# 9 interfaces besides lo: veth ends whose peers go to a second namespace
ip netns add "${ns}p"
for i in 1 2 3 4 5 6 7 8 9; do
	ip -n "$ns" link add "bv$i" type veth peer name "bp$i" netns "${ns}p"
	ip -n "$ns" link set "bv$i" up
done
ports=$(nsx python3 -c '
import socket
s = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(20)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')
set -- $ports
for k in 1 2 3 4 5; do
	addrs="udp:127.0.0.1:$1,udp:127.0.0.1:$2,udp:127.0.0.1:$3,udp:127.0.0.1:$4"
	shift 4
	mkdir -p "$work/s$k"
	printf 'agentaddress %s\nrocommunity public 127.0.0.1\n' "$addrs" > "$work/s$k/snmpd.conf"
	SNMP_PERSISTENT_DIR=$work/s$k MIBS= ip netns exec "$ns" snmpd -f -C -I -smux -c "$work/s$k/snmpd.conf" \
		-LF 0-4 "$work/s$k/log" &
	pids="$pids $!"
done
for p in $ports; do
	for i in $(seq 50); do
		nsx snmpget -v2c -c public -t 0.2 -r 0 "udp:127.0.0.1:$p" .1.3.6.1.2.1.1.3.0 >/dev/null 2>&1 && break
		sleep 0.1
	done
done
nif=0
for p in $ports; do
	n=$(MIBS= nsx snmpbulkwalk -v2c -c public -On "udp:127.0.0.1:$p" .1.3.6.1.2.1.31.1.1.1.1 | wc -l)
	nif=$((nif + n))
done
echo "20 targets (5 snmpd x 4 ports) in namespace $ns, $nif interfaces in all; $ROUNDS rounds, medians"

out=$(nsx "$B/bench/bench_snmp" "$ROUNDS" $ports)
echo "$out" | grep -v '^RESULT'
set -- $(echo "$out" | sed -n 's/^RESULT tally //p')
t_wall=$1 t_cpu=$2

# snmpbulkwalk, one target after another; CPU = the children's user + sys
set -- $(MIBS= nsx python3 - "$ROUNDS" $ports <<'EOF'
import os, resource, subprocess, sys, time
rounds, ports = int(sys.argv[1]), sys.argv[2:]
walls, cpus = [], []
def child():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
for _ in range(rounds):
    c0, w0 = child(), time.monotonic()
    for p in ports:
        for oid in (".1.3.6.1.2.1.31.1.1.1", ".1.3.6.1.2.1.2.2.1"):
            subprocess.run(["snmpbulkwalk", "-v2c", "-c", "public", "-On", "-Cr25", "udp:127.0.0.1:" + p, oid],
                           stdout=subprocess.DEVNULL, check=True)
    walls.append(time.monotonic() - w0)
    cpus.append(child() - c0)
walls.sort(); cpus.sort()
print("%.6f %.6f %.6f %.6f" % (walls[len(walls) // 2], cpus[len(cpus) // 2], walls[0], walls[-1]))
EOF
)
w_wall=$1 w_cpu=$2
printf 'snmpbulkwalk, 20 targets one after another (ifXTable + ifTable each): wall median %.2f ms (min %.2f, max %.2f), CPU median %.2f ms\n' \
	"$(echo "$1 * 1000" | bc -l)" "$(echo "$3 * 1000" | bc -l)" "$(echo "$4 * 1000" | bc -l)" "$(echo "$2 * 1000" | bc -l)"

# collectd 5.12's snmp plugin, if installed: the daemon with a 1 s interval
# and its default 5 read threads, the csv writer for its values. CPU per
# interval from /proc; collectd does not time its reads, so the wall time
# printed is the spread of its values' timestamps within one interval (a
# lower bound of its poll).
c_wall="" c_cpu=""
if [ -x /usr/sbin/collectd ] && [ -e /usr/lib/collectd/snmp.so ]; then
	{
		printf 'Hostname "bench"\nFQDNLookup false\nInterval 1\nBaseDir "%s"\nPIDFile "%s/collectd.pid"\n' "$work" "$work"
		printf 'PluginDir "/usr/lib/collectd"\nTypesDB "/usr/share/collectd/types.db"\n'
		printf 'LoadPlugin logfile\n<Plugin logfile>\n  File "%s/collectd.log"\n</Plugin>\n' "$work"
		printf 'LoadPlugin csv\n<Plugin csv>\n  DataDir "%s/csv"\n</Plugin>\n' "$work"
		printf 'LoadPlugin snmp\n<Plugin snmp>\n'
		for d in "if_octets 1 .6 .10" "if_packets 1 .7 .11" "if_errors 0 .14 .20" "if_dropped 0 .13 .19"; do
			set -- $d
			tab=".1.3.6.1.2.1.2.2.1"
			[ "$2" = 1 ] && tab=".1.3.6.1.2.1.31.1.1.1"
			printf '  <Data "%s">\n    Type "%s"\n    Table true\n    TypeInstanceOID ".1.3.6.1.2.1.31.1.1.1.1"\n' "$1" "$1"
			printf '    Values "%s%s" "%s%s"\n  </Data>\n' "$tab" "$3" "$tab" "$4"
		done
		k=0
		for p in $ports; do
			k=$((k + 1))
			printf '  <Host "t%d">\n    Address "udp:127.0.0.1:%s"\n    Version 2\n    Community "public"\n' "$k" "$p"
			printf '    Collect "if_octets" "if_packets" "if_errors" "if_dropped"\n  </Host>\n'
		done
		printf '</Plugin>\n'
	} > "$work/collectd.conf"
	lock=""
	command -v flock >/dev/null && lock="flock /tmp/tally-peers.lock"
	set -- $(MIBS= $lock ip netns exec "$ns" python3 - "$ROUNDS" "$work/collectd.conf" "$work/csv" <<'EOF2'
import glob, os, signal, subprocess, sys, time
rounds, conf, csv = int(sys.argv[1]), sys.argv[2], sys.argv[3]
p = subprocess.Popen(["collectd", "-f", "-C", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
def cpu():
    f = open("/proc/%d/stat" % p.pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
time.sleep(3)                       # start-up and the first (baseline) reads
c0, w0 = cpu(), time.monotonic()
time.sleep(rounds)
c1, w1 = cpu(), time.monotonic()
p.send_signal(signal.SIGTERM); p.wait()
ts = []
for f in glob.glob(csv + "/*/*/*"):
    for line in open(f):
        if line[:1].isdigit():
            ts.append(float(line.split(",")[0]))
ts.sort()
spans, start, prev = [], None, None
for t in ts:
    if prev is None or t - prev > 0.5:
        if start is not None:
            spans.append(prev - start)
        start = t
    prev = t
spans = sorted(spans[1:]) or [0.0]
print("%.6f %.6f %.6f %.6f" % (spans[len(spans) // 2], (c1 - c0) / (w1 - w0), spans[0], spans[-1]))
EOF2
)
	c_wall=$1 c_cpu=$2
	printf 'collectd 5.12 snmp plugin (daemon, 1 s interval, 5 read threads): CPU per interval %.2f ms; spread of its value timestamps in one interval: median %.2f ms (min %.2f, max %.2f)\n' \
		"$(echo "$2 * 1000" | bc -l)" "$(echo "$1 * 1000" | bc -l)" "$(echo "$3 * 1000" | bc -l)" "$(echo "$4 * 1000" | bc -l)"
else
	echo "collectd 5.12 snmp plugin: not installed (apt-get install collectd-core), left out"
fi
printf 'ratios: tally / sequential snmpbulkwalk: wall %.3f, CPU %.3f (target: wall < 0.5, CPU <= 1)\n' \
	"$(echo "$t_wall / $w_wall" | bc -l)" "$(echo "$t_cpu / $w_cpu" | bc -l)"
[ -n "$c_cpu" ] && printf 'ratios: tally / collectd snmp: CPU %.3f (wall: tally %.2f ms against a spread of %.2f ms)\n' \
	"$(echo "$t_cpu / $c_cpu" | bc -l)" "$(echo "$t_wall * 1000" | bc -l)" "$(echo "$c_wall * 1000" | bc -l)"
exit 0
