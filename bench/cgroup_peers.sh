#!/bin/sh
# The cgroup collector and collectd 5.12's cgroups plugin on the same tree,
# in the same run: N real, empty cgroup v1 cgroups made here under this
# host's cpuacct, memory and blkio hierarchies (tally-bench-PID/vm-UUID.scope,
# removed at the end).
#
# collectd's cgroups plugin reads cgroup v1 only: it looks for a mount of
# type "cgroup" with the cpuacct option and reads cpuacct.stat two levels
# below it (so it cannot read a v2 tree at all: make bench's fake v2 tree
# is ours alone). Here both read the same real v1 cgroups:
#   - bench_cgroup (in-process, read() only): `check` reads one file per VM
#     (cpuacct.usage), as collectd reads one (cpuacct.stat); `bill` reads
#     cpuacct.usage, memory.stat (every slow_every cycles) and two blkio
#     files;
#   - tallyd (`check`: cpuacct.usage only, nothing billed; then `bill`,
#     ledger and all) and collectd (cgroups plugin, no writer), each at a
#     1 s interval, their CPU (utime + stime of the
#     whole process) over 5 s windows after a warm-up, as the peer harness
#     measures collectd: us per VM per cycle, median over the windows.
# collectd runs only with PEERS=DIR (a writable copy of the peer benchmark harness, for
# its lib/common.sh), serialised with other peer runs by
# flock /tmp/tally-peers.lock.
# usage: cgroup_peers.sh B N WORKDIR
set -eu
B=$1 n=$2 work=$3
[ "$(id -u)" = 0 ] || { echo "(cgroup peers: not root: cannot make cgroups; skipped)"; exit 0; }
root=/sys/fs/cgroup
hier() { for d in "$root/$1" "$root"/*,"$1" "$root"/"$1",*; do [ -d "$d" ] && { echo "$d"; return; }; done; }
cpu=$(hier cpuacct) mem=$(hier memory) blk=$(hier blkio)
if [ -z "$cpu" ] || [ -z "$mem" ] || [ -z "$blk" ] || [ -e "$root/cgroup.controllers" ]; then
	echo "(cgroup peers: $root is not a cgroup v1 host with cpuacct, memory and blkio: collectd's cgroups"
	echo " plugin reads v1 only, so there is nothing to compare it on here; skipped)"
	exit 0
fi
top=tally-bench-$$
mkdir -p "$work"
cleanup() {
	[ -n "${tpid:-}" ] && kill "$tpid" 2>/dev/null || true
	[ -n "${cpid:-}" ] && kill "$cpid" 2>/dev/null || true
	for h in "$cpu" "$mem" "$blk"; do
		[ -d "$h/$top" ] || continue
		find "$h/$top" -mindepth 1 -maxdepth 1 -type d -exec rmdir {} + 2>/dev/null || true
		rmdir "$h/$top" 2>/dev/null || true
	done
}
trap cleanup EXIT
i=0
for h in "$cpu" "$mem" "$blk"; do mkdir "$h/$top"; done
while [ "$i" -lt "$n" ]; do
	s=$(printf 'vm-7a11e100-0000-4000-8000-%012x.scope' "$i")
	mkdir "$cpu/$top/$s" "$mem/$top/$s" "$blk/$top/$s"
	i=$((i + 1))
done
echo "$n empty v1 cgroups under $cpu/$top (and memory, blkio)"
"$B/bench/bench_cgroup" tree "$root" "$top/*.scope" 1 check 20 2>/dev/null
"$B/bench/bench_cgroup" tree "$root" "$top/*.scope" 1 bill 20 2>/dev/null

tck=$(getconf CLK_TCK)
pcpu() { awk -v t="$tck" '{ sub(/^.*\) /, ""); printf "%.3f\n", ($12 + $13) / t }' "/proc/$1/stat"; }
now() { date +%s.%N; }
# windows PID LABEL FILE: CPU per VM per cycle (1 s interval) over 6
# windows of 5 s, printed; the median also into FILE
windows() {
	c0=$(pcpu "$1") w0=$(now) wins=
	k=0
	while [ "$k" -lt 6 ]; do
		sleep 5
		c1=$(pcpu "$1") w1=$(now)
		wins="$wins $(awk -v a="$c0" -v b="$c1" -v x="$w0" -v y="$w1" -v n="$n" 'BEGIN { printf "%.2f", 1e6 * (b - a) / (y - x) / n }')"
		c0=$c1 w0=$w1 k=$((k + 1))
	done
	echo "$wins" | tr ' ' '\n' | sort -g | awk -v l="$2" -v n="$n" -v f="$3" 'NF { a[++k] = $1 }
		END { m = (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
		      printf "%s: %d cgroups, CPU per VM per cycle median %.2f us (min %.2f, max %.2f over %d windows of 5 s)\n", l, n, m, a[1], a[k], k
		      print m > f }'
}

cat > "$work/t.yaml" <<EOC
tallyd:
  agent_id: bench-cgroup
  data_dir: $work/data
  interval: 1s
  log_level: warning
rrd:
  enabled: false
collectors:
  cgroup:
    root: $root
    version: 1
    scopes: ['$top/*.scope']
    host: false
EOC
# daemon MODE LABEL FILE: tallyd with the cgroup collector in MODE
daemon() {
	sed "s/^    host: false/    host: false\n    vm_meters: $1/" "$work/t.yaml" > "$work/t-$1.yaml"
	rm -rf "$work/data"
	"$B/tallyd" -c "$work/t-$1.yaml" 2>"$work/tallyd-$1.log" &
	tpid=$!
	sleep 5
	windows "$tpid" "$2" "$3"
	kill "$tpid"
	wait "$tpid" 2>/dev/null || true
	tpid=
}
# check: one file per VM (cpuacct.usage), the readings ignored by the
# aggregator (no libvirt to compare with): collection alone, as collectd's
daemon check "tallyd cgroup (check: cpuacct.usage, nothing billed, 1 s interval)" "$work/m.check"
daemon bill "tallyd cgroup (bill: cpu, memory, blkio into the ledger, 1 s interval)" "$work/m.tallyd"

if [ -z "${PEERS:-}" ]; then
	echo "(collectd 5.12 cgroups plugin: PEERS=/tmp/peers make bench measures it here and now)"
	exit 0
fi
command -v collectd >/dev/null || { echo "(collectd not installed: $PEERS/install.sh)"; exit 0; }
cat > "$work/collectd.conf" <<EOC
Hostname "bench"
FQDNLookup false
Interval 1
BaseDir "$work"
PIDFile "$work/collectd.pid"
PluginDir "/usr/lib/collectd"
TypesDB "/usr/share/collectd/types.db"
LoadPlugin logfile
<Plugin logfile>
  LogLevel "info"
  File "$work/collectd.log"
</Plugin>
LoadPlugin cgroups
<Plugin cgroups>
  CGroup "/^vm-.*\\\\.scope\$/"
</Plugin>
EOC
# one peer run at a time on this machine
exec 9>/tmp/tally-peers.lock
flock 9
collectd -f -C "$work/collectd.conf" >"$work/collectd.out" 2>&1 &
cpid=$!
sleep 5
windows "$cpid" "collectd 5.12 cgroups plugin (cpuacct.stat, no writer, 1 s interval)" "$work/m.collectd"
kill "$cpid"
wait "$cpid" 2>/dev/null || true
cpid=
flock -u 9
grep -i "error\|warn" "$work/collectd.log" | sed 's/^\[[^]]*\] //' | sort | uniq -c | head -3 || true
awk -v a="$(cat "$work/m.check")" -v c="$(cat "$work/m.tallyd")" -v b="$(cat "$work/m.collectd")" \
	'BEGIN { if (b > 0) printf "ratio to collectd, CPU per VM per cycle (medians): tallyd check %.2f, tallyd bill %.2f\n", a / b, c / b }'
