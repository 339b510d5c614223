#!/bin/sh
# tallyd with the libvirt collector on a test-driver fleet, measured the way
# the peer harness (PEERS=DIR, bench-collectd.sh) measures collectd's virt plugin, so the
# two figures compare: 1 s interval, a warm-up, then the daemon's CPU
# (utime + stime from /proc/PID/stat, all threads) over 5 s windows, as
# microseconds per domain per cycle (median, min, max of the windows); and
# the daemon's peak RSS (VmHWM). Unlike collectd with write_prometheus,
# tallyd also keeps every reading's usage in its SQLite ledger: it commits
# every ledger.commit_every (10 s by default in real time) and at once when
# a cycle brings what a restart could not recompute (docs/config.md); the
# commits of the whole run are printed beside the cycles.
# usage: libvirt_daemon.sh TALLYD NODE_XML WORKDIR [WINDOWS]
set -eu
tallyd=$1 node=$2 dir=$3 nwin=${4:-6}
n=$(grep -c '<domain ' "$node")
mkdir -p "$dir"
cat > "$dir/t.yaml" <<EOC
tallyd:
  agent_id: bench-libvirt
  data_dir: $dir/data
  interval: 1s
  log_level: warning
rrd:
  enabled: false
collectors:
  libvirt:
    uri: 'test://$node'
EOC
"$tallyd" -c "$dir/t.yaml" 2>"$dir/log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
tck=$(getconf CLK_TCK)
cpu() { awk -v t="$tck" '{ sub(/^.*\) /, ""); printf "%.3f\n", ($12 + $13) / t }' "/proc/$pid/stat"; }
now() { date +%s.%N; }
sleep 5 # first sight: every domain's XML, the ledger's first rows
c0=$(cpu) w0=$(now) wins=
cs=$c0 ws=$w0
k=0
while [ "$k" -lt "$nwin" ]; do
	sleep 5
	c1=$(cpu) w1=$(now)
	wins="$wins $(awk -v a="$c0" -v b="$c1" -v x="$w0" -v y="$w1" -v n="$n" 'BEGIN { printf "%.2f", 1e6 * (b - a) / (y - x) / n }')"
	c0=$c1 w0=$w1 k=$((k + 1))
done
hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")
# the mean over all windows too: with a commit every 10 s, windows with and
# without one differ, and their median can fall on either side
mean=$(awk -v a="$cs" -v b="$c0" -v x="$ws" -v y="$w0" -v n="$n" 'BEGIN { printf "%.2f", 1e6 * (b - a) / (y - x) / n }')
kill -TERM "$pid"
wait "$pid" || true
trap - EXIT
cycles=$(sqlite3 "$dir/data/ledger.db" "SELECT max(last_seq) FROM agents" 2>/dev/null || echo '?')
commits=$(sed -n 's/.* \([0-9]*\) commits,.*/\1/p' "$dir/log" | tail -n 1)
echo "$wins" | tr ' ' '\n' | sort -g | awk -v n="$n" -v hwm="$hwm" -v cy="$cycles" -v co="${commits:-?}" -v mean="$mean" '
	NF { a[++k] = $1 }
	END { m = (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
	      printf "tallyd libvirt: %d domains, CPU per cycle median %.2f us per domain (%.1f ms per cycle; min %.2f, max %.2f us over %d windows of 5 s), %s cycles in %s commits\n", n, m, m * n / 1000, a[1], a[k], k, cy, co
	      printf "tallyd libvirt: CPU per cycle mean %.2f us per domain over the %d windows\n", mean, k
	      printf "tallyd libvirt: peak RSS %.1f MiB\n", hwm / 1024 }'
