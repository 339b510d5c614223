#!/bin/sh
# The cgroup collector in tallyd on this machine's real cgroup tree and
# /proc: cgroups made here (unique names, removed at the end) with real
# processes in them, cat as the oracle.
#
# For each cgroup layout this host offers (v1 hierarchies: cpuacct,
# memory, blkio; a v2 tree; or hybrid: v2 unified/ beside v1):
#   - VM A: a cgroup named by its UUID with a busy loop in it; VM B: a
#     cgroup without a UUID in its name whose process carries QEMU's
#     -uuid and -name guest= on its command line;
#   - tallyd (1 s interval, a commit per cycle) reads them; A's cpu in the
#     ledger is within one interval of `cat` read right after (the counter
#     read then is at or above the stored value, and above it by no more
#     than the CPU a busy loop can use since the stored reading's time);
#   - B is identified from its command line (uuid, name);
#   - B stops (its process killed, its cgroup removed): a final reading
#     and a stopped event (v2: taken as the cgroup emptied); A goes on;
#   - the host: host.cpu between two reads of /proc/stat around it;
#   - /metrics passes promtool, and tallyd logged no warning.
# Needs root and a writable cgroup tree; else it says why and skips (77).
set -eu
. tests/lib/tallyd.sh
B=${B:-build}
TALLYD=$PWD/$B/tallyd
[ "$(id -u)" = 0 ] || { echo "skip: needs root to make cgroups" >&2; exit 77; }
command -v sqlite3 >/dev/null || { echo "skip: needs sqlite3" >&2; exit 77; }
work=$(mktemp -d /tmp/tally-cgroup-real-XXXXXX)
top=tally-it-$$
fails=0 ran=0 pids= dirs=
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	sleep 0.2
	for d in $dirs; do rmdir "$d" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
ok() { echo "ok   $*"; }
q() { sqlite3 "$work/$1/ledger.db" "$2"; }
ua=7a11e100-0000-4000-8000-0000000000aa ub=7a11e100-0000-4000-8000-0000000000bb

# one_version NAME ROOT VERSION CPUFILE DIRS...: the cgroups are made in
# every directory of DIRS (the v1 hierarchies, the v2 tree); the first
# holds CPUFILE (cpuacct.usage or cpu.stat), cat's oracle
one_version() {
	name=$1 root=$2 ver=$3 cpuf=$4
	top=tally-it-$$-$1
	shift 4
	hs="$*" first=$1
	for h in $hs; do
		mkdir "$h/$top" "$h/$top/vm-$ua.scope" "$h/$top/machine-qemu-vmb.scope" || {
			echo "skip $name: cannot make cgroups under $h"; return 0; }
		dirs="$h/$top/vm-$ua.scope $h/$top/machine-qemu-vmb.scope $h/$top $dirs"
	done
	sh -c 'while :; do :; done' &
	pa=$!
	# one process, no children (they would stay in the cgroup): it waits
	# on a FIFO nobody writes to
	mkfifo "$work/fifo-$name"
	sh -c 'exec 3<>"$0"; read -r x <&3' "$work/fifo-$name" -uuid "$ub" -name guest=vm-b,debug-threads=on -smp 1 -m 64 &
	pb=$!
	pids="$pids $pa $pb"
	for h in $hs; do
		echo "$pa" > "$h/$top/vm-$ua.scope/cgroup.procs"
		echo "$pb" > "$h/$top/machine-qemu-vmb.scope/cgroup.procs"
	done
	mkdir -p "$work/$name"
	cat > "$work/$name.yaml" <<EOC
tallyd:
  agent_id: real-$$
  data_dir: $work/$name
  interval: 1s
ledger:
  commit_every: 0s
rrd:
  enabled: false
http:
  port: 0
collectors:
  cgroup:
    root: $root
    version: $ver
    scopes: ['$top/*.scope']
EOC
	"$TALLYD" -c "$work/$name.yaml" 2> "$work/$name.log" &
	pid=$!
	pids="$pids $pid"
	k=0
	until [ "$(q "$name" "SELECT count(*) FROM resources WHERE uuid IN ('$ua', '$ub')" 2>/dev/null || echo 0)" = 2 ]; do
		k=$((k + 1)); [ $k -lt 100 ] || { fail "$name: tallyd did not read both cgroups in 10 s: $(cat "$work/$name.log")"; return 0; }
		sleep 0.1
	done
	sleep 3
	# A's cpu: the stored reading, then the counter itself
	cpu_file=$first/$top/vm-$ua.scope/$cpuf
	read_cpu() { if [ "$cpuf" = cpu.stat ]; then awk '$1 == "usage_usec" { printf "%.0f\n", $2 * 1000 }' "$cpu_file"; else cat "$cpu_file"; fi; }
	row=$(q "$name" "SELECT s.last_value || ' ' || s.last_ns FROM series s JOIN resources r ON r.id = s.resource_id
	    JOIN meters m ON m.id = s.meter_id WHERE r.uuid = '$ua' AND m.name = 'cpu'")
	cat_ns=$(read_cpu)
	now=$(date +%s%N)   # after the read: starting date and cat can take a loaded host 10 ms and more
	l=${row% *} t=${row#* }
	awk -v l="$l" -v t="$t" -v c="$cat_ns" -v now="$now" 'BEGIN {
		# a busy loop uses at most one CPU: c - l <= now - t (+ 10 ms of jiffies and clock)
		exit !(c >= l && c - l <= now - t + 1e7) }' &&
		ok "$name: A's cpu in the ledger $l ns; cat $cat_ns ns read $(( (now - t) / 1000000 )) ms after it" ||
		fail "$name: A's cpu in the ledger $l ns (read at $t), cat $cat_ns ns at $now: not within one interval"
	usage=$(q "$name" "SELECT sum(u.quantity) FROM usage u JOIN resources r ON r.id = u.resource_id
	    JOIN meters m ON m.id = u.meter_id WHERE r.uuid = '$ua' AND m.name = 'cpu'")
	# a loaded 2-core machine gives the loop a share, but surely 0.2 s of 3
	[ "${usage:-0}" -gt 200000000 ] && ok "$name: A used ${usage} ns of CPU in ~3 s (a busy loop)" ||
		fail "$name: A's cpu usage ${usage:-none}, want > 0.2 s in ~3 s of a busy loop"
	if [ "$ver" != 2 ]; then   # memory from v1's memory.stat
		mr=$(q "$name" "SELECT count(*) FROM series s JOIN resources r ON r.id = s.resource_id JOIN meters m
		    ON m.id = s.meter_id WHERE r.uuid = '$ua' AND m.name = 'memory.resident'")
		[ "$mr" = 1 ] && ok "$name: A's memory.resident from v1's memory.stat" || fail "$name: no memory.resident of A"
	fi
	nb=$(q "$name" "SELECT name FROM resources WHERE uuid = '$ub'")
	[ "$nb" = vm-b ] && ok "$name: B identified from its command line (-uuid, -name guest=vm-b)" ||
		fail "$name: B's name '$nb', want vm-b"
	# the host, between two reads of /proc/stat
	hz=$(getconf CLK_TCK)
	busy() { awk -v hz="$hz" '$1 == "cpu" { printf "%.0f\n", ($2 + $3 + $4 + $7 + $8) * (1000000000 / hz) }' /proc/stat; }
	h0=$(busy)
	sleep 1.5
	h1=$(busy)
	hv=$(q "$name" "SELECT s.last_value FROM series s JOIN resources r ON r.id = s.resource_id JOIN meters m
	    ON m.id = s.meter_id WHERE r.uuid = 'real-$$' AND r.type = 'host' AND m.name = 'host.cpu'")
	awk -v h="$hv" -v a="$h0" -v b="$h1" 'BEGIN { exit !(h >= a - 2e9 && h <= b) }' &&
		ok "$name: host.cpu $hv ns within an interval of /proc/stat ($h0 .. $h1)" ||
		fail "$name: host.cpu ${hv:-none}, /proc/stat $h0 .. $h1"
	# /metrics
	port=
	tallyd_port "$work/$name.log" "" 1 && port=$PORT
	if [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/metrics" > "$work/$name.prom"; then
		grep -q "^tally_host_cpu_seconds_total{" "$work/$name.prom" && grep -q "uuid=\"$ua\"" "$work/$name.prom" &&
			ok "$name: /metrics has the host and the VMs" || fail "$name: /metrics lacks the host or VM A"
		if command -v promtool >/dev/null; then
			promtool check metrics < "$work/$name.prom" > "$work/$name.promtool" 2>&1 &&
				ok "$name: promtool check metrics" || fail "$name: promtool: $(head -n 3 "$work/$name.promtool")"
		fi
	else
		fail "$name: no /metrics (port '$port')"
	fi
	# B stops: its process goes, then its cgroup
	t_stop=$(date +%s%N)
	kill "$pb"
	wait "$pb" 2>/dev/null || true
	sleep 0.2
	for h in $hs; do rmdir "$h/$top/machine-qemu-vmb.scope"; done
	k=0
	until [ "$(q "$name" "SELECT count(*) FROM events e JOIN resources r ON r.id = e.resource_id
	    WHERE r.uuid = '$ub' AND e.type = 'stopped'")" = 1 ]; do
		k=$((k + 1)); [ $k -lt 50 ] || break
		sleep 0.1
	done
	fin=$(q "$name" "SELECT count(*) FROM series s JOIN resources r ON r.id = s.resource_id WHERE r.uuid = '$ub'
	    AND (s.flags & 1) = 1 AND s.last_ns < $t_stop + 2000000000")
	ev=$(q "$name" "SELECT reason FROM events e JOIN resources r ON r.id = e.resource_id WHERE r.uuid = '$ub'
	    AND e.type = 'stopped'")
	# v2 trees say when a cgroup empties (cgroup.events): the final reading
	# is taken then; v1 has no such notice: the last read's values, ended
	want=cgroup-removed
	[ "$ver" = 1 ] || want=cgroup-emptied
	[ "$ev" = "$want" ] && [ "${fin:-0}" -ge 2 ] && ok "$name: B stopped: event ($ev) and $fin final readings" ||
		fail "$name: B stopped: event '$ev' (want $want), $fin final readings"
	sleep 1.2
	alive=$(q "$name" "SELECT max(s.last_ns) > $t_stop FROM series s JOIN resources r ON r.id = s.resource_id
	    WHERE r.uuid = '$ua'")
	[ "$alive" = 1 ] && ok "$name: A still read after B stopped" || fail "$name: A not read after B stopped"
	kill -TERM "$pid"
	wait "$pid" || fail "$name: tallyd exited $? after SIGTERM"
	# but a step of the wall clock: this machine's own (a virtual machine
	# paused or snapshotted by its host steps it), said as it should be
	warn=$(grep "warning\|error" "$work/$name.log" | grep -vc "clock: the wall clock stepped" || true)
	[ "$warn" = 0 ] && ok "$name: no warning logged" || fail "$name: tallyd logged: $(grep "warning\|error" "$work/$name.log" | grep -v "clock: the wall clock stepped" | head -n 3)"
	kill "$pa" 2>/dev/null || true
	ran=$((ran + 1))
}

if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
	one_version v2 /sys/fs/cgroup 2 cpu.stat /sys/fs/cgroup
else
	hier() { for d in /sys/fs/cgroup/$1 /sys/fs/cgroup/*,$1 /sys/fs/cgroup/$1,*; do [ -d "$d" ] && { echo "$d"; return; }; done; }
	ca=$(hier cpuacct) me=$(hier memory) bl=$(hier blkio)
	[ -n "$ca" ] && [ -n "$me" ] && [ -n "$bl" ] && one_version v1 /sys/fs/cgroup 1 cpuacct.usage "$ca" "$me" "$bl"
	# a hybrid host: its v2 tree has cpu.stat and PSI even without
	# controllers (auto takes it: there libvirt's VMs are listed)
	u=/sys/fs/cgroup/unified
	[ -e $u/cgroup.procs ] && [ -n "$me" ] && [ -n "$bl" ] && one_version hybrid /sys/fs/cgroup auto cpu.stat $u "$me" "$bl"
fi
[ "$ran" -gt 0 ] || { echo "skip: no cgroup tree here that root can write" >&2; exit 77; }
echo "cgroup_real: $fails failure(s)"
[ "$fails" -eq 0 ]
