#!/bin/sh
# bench/libvirt_qemu.sh: what collecting costs the whole host on real QEMU
# guests, tallyd beside collectd 5.12 (virt plugin) and
# prometheus-libvirt-exporter in the same run.
#
#   flock /tmp/tally-qemu.lock sh bench/libvirt_qemu.sh [N] [WINDOW_S] [RUNS]
#
# Root; uses the real-QEMU tier's guests (tests/vm/common.sh: tally-vm1..N,
# idle, link-local only; default N=16) and its setup (tests/vm/setup.sh).
# Every other domain on the host counts too: all tools read all active
# domains, so costs are divided by the number of active domains.
#
# Costs are CPU time (the scheduler's nanosecond sums, cpu_of() below) per
# domain per collection cycle, in microseconds:
#   agent    the collecting process (tallyd, collectd, the exporter)
#   libvirtd the daemon answering its calls
#   qemu     every QEMU process, above its idle rate (measured in the same
#            run with nothing collecting)
#   host     agent + libvirtd + qemu
# 1. per call shape (bench/lv_calls, one read-only connection, calls back
#    to back): one bulk call per stats group and the combinations tallyd
#    makes, and the per-domain calls (virDomainBlockStats per disk, which
#    tallyd and collectd make, GetBlockInfo, GetInfo, ...): the client,
#    libvirtd and QEMU per domain per round; then the QMP commands the
#    block and balloon groups send, one at a time (QEMU per command);
# 2. RUNS rounds of: idle, tallyd (1 s interval, its default groups),
#    collectd (1 s, the same stats: cpu, vcpus, memory and its stats, block
#    counters, capacity and allocation, interfaces, state), the exporter
#    scraped once a second; each WINDOW_S seconds after a warm-up. Printed:
#    each round, then the median and the spread (min..max) of the rounds,
#    and the ratios to collectd and the exporter.
# Environment: B (build dir, default build), KEEP_GUESTS=1 leaves the guests,
# SKIP_GROUPS=1 skips part 1, ALT="block_every: 5" also runs tallyd with
# these extra libvirt keys (as tallyd-alt, and tallyd-alt-nocommit), TALLYD_BASE=path/to/tallyd also
# runs that binary at the defaults (as tallyd-base: a build to compare
# with). tallyd-nocommit is tallyd committing its ledger once an hour: the
# agent's cost without the ledger's commits, which an agent role does not
# make. TOOLS="tallyd collectd" runs only these.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/tests/vm/common.sh"
N=${1:-16} W=${2:-20} RUNS=${3:-3}
B=${B:-build}
TALLYD=$here/$B/tallyd
[ "$(id -u)" = 0 ] || die "needs root"
[ -x "$TALLYD" ] || die "$TALLYD missing: run make first"
command -v collectd >/dev/null || die "collectd missing (apt-get install collectd-core)"
command -v prometheus-libvirt-exporter >/dev/null || die "prometheus-libvirt-exporter missing"
TALLY_SKIP_APT=${TALLY_SKIP_APT:-0} "$here/tests/vm/setup.sh" >&2 || die "tests/vm/setup.sh failed"

work=$(mktemp -d /tmp/tally-lvq-XXXXXX)
cp "$TALLYD" "$work/tallyd" # the binary of this run, whatever make does meanwhile
TALLYD=$work/tallyd
apid=
finish() {
	[ -n "$apid" ] && kill "$apid" 2>/dev/null
	[ "${KEEP_GUESTS:-0}" = 1 ] || tvm_cleanup
	rm -rf "$work"
}
trap finish EXIT
# CPU time, in seconds with nanosecond resolution: /proc/PID/stat counts in
# clock ticks (10 ms), as much as the agent spends in a whole window, so
# processes are read from the scheduler's own nanosecond sum of each live
# thread (/proc/PID/task/TID/schedstat; a thread that exits during a window
# takes its time with it - the agents and libvirtd keep theirs), and the
# QEMU processes from their domains' cgroup (cpu.stat usage_usec, the
# counter libvirt's cpu.time is; it keeps the time of exited threads), or
# their threads where there is no such cgroup
cpu_of() { # PID...: their summed CPU seconds
	for p in "$@"; do cat "/proc/$p"/task/*/schedstat 2>/dev/null || true; done |
		awk '{ s += $1 } END { printf "%.6f\n", s / 1e9 }'
}
qemu_cpu() {
	set -- /sys/fs/cgroup/unified/machine/qemu-*.libvirt-qemu/cpu.stat \
		/sys/fs/cgroup/machine/qemu-*.libvirt-qemu/cpu.stat \
		/sys/fs/cgroup/machine.slice/machine-qemu*.scope/cpu.stat
	n=0
	for f in "$@"; do [ -f "$f" ] && n=$((n + 1)); done
	if [ "$n" -eq "$D" ]; then
		for f in "$@"; do [ -f "$f" ] && cat "$f"; done |
			awk '$1 == "usage_usec" { s += $2 } END { printf "%.6f\n", s / 1e6 }'
	else
		cpu_of $QP
	fi
}
now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", a - b }'; }
lvd_pid() { tr -dc '0-9' < /run/libvirtd.pid; }
qemu_pids() { for f in /run/libvirt/qemu/*.pid; do [ -f "$f" ] && tr -dc '0-9' < "$f" && echo; done; }
active() { vsh list --name | grep -c . ; }

log "starting $N idle guests"
tvm_cleanup
i=1
while [ "$i" -le "$N" ]; do tvm_create "$i" ""; i=$((i + 1)); done
i=1
while [ "$i" -le "$N" ]; do tvm_wait_ready "$i" 1; i=$((i + 1)); done
sleep 5 # balloon stats populated, boots settled
D=$(active)
QP=$(qemu_pids | tr '\n' ' ')
LP=$(lvd_pid)
echo "host: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); libvirt $(virsh -v), $(qemu-system-x86_64 --version | head -n 1);" \
	"domain type $(tvm_domtype); $D active domains ($N ours)"

# window CMD...: run CMD in the background for W s; prints "secs lvd qemu"
# (CPU seconds over the window) into $work/win
idle_rate=0
window() {
	l0=$(cpu_of "$LP") q0=$(qemu_cpu) t0=$(now)
	sleep "$W"
	l1=$(cpu_of "$LP") q1=$(qemu_cpu) t1=$(now)
	echo "$t0 $t1 $l0 $l1 $q0 $q1" | awk '{ printf "%.3f %.3f %.3f\n", $2 - $1, $4 - $3, $6 - $5 }'
}

# ---- 1. per stats group and per call
# bench/lv_calls makes one shape of call back to back over one read-only
# connection (ROUNDS_1 rounds over every domain); libvirtd's and QEMU's
# CPU is read around it, and lv_calls reports its own (the client's share:
# encoding, decoding, freeing)
[ "${SKIP_GROUPS:-0}" = 1 ] || {
LVC=$work/lv_calls
cp "$here/$B/bench/lv_calls" "$LVC" || die "$B/bench/lv_calls missing: run make bench first"
set -- $(window)
idle_q=$(awk -v s="$1" -v q="$3" 'BEGIN { printf "%.6f", q / s }')
R1=${ROUNDS_1:-60}
echo
echo "== per call shape: $R1 rounds over $D domains, calls back to back (bench/lv_calls)"
echo "   (us CPU per domain per round: the client, libvirtd, QEMU above its idle rate"
echo "   of $(awk -v r="$idle_q" -v n="$D" 'BEGIN { printf "%.0f", 1e6 * r / n }') us/s per domain; wall ms per round)"
printf '%-40s %8s %9s %9s %9s %9s\n' shape client libvirtd qemu host wall_ms
# bulk:G = one virConnectGetAllDomainStats(NOWAIT) with group G for all
# domains; the others are per-domain calls (per disk for block*)
for shape in bulk:state bulk:cpu-total bulk:interface bulk:block bulk:balloon bulk:vcpu \
	bulk:state+cpu-total+interface+block+balloon+vcpu bulk:state+interface bulk:state+interface+block \
	bulk:state+interface,blockstats bulk:state+interface+balloon+block,info \
	blockstats blockinfo info cpustats memstats; do
	l0=$(cpu_of "$LP") q0=$(qemu_cpu) t0=$(now)
	out=$(timeout 300 "$LVC" "$TALLY_URI" "$shape" "$R1" 2>&1 || true)
	l1=$(cpu_of "$LP") q1=$(qemu_cpu) t1=$(now)
	cc=$(echo "$out" | sed -n 's/.* failed 0 .*client_cpu_s \([0-9.]*\).*/\1/p')
	[ -n "$cc" ] || { echo "$shape: $out"; continue; }
	awk -v g="$shape" -v n="$D" -v R="$R1" -v c="$cc" -v l="$(sub "$l1" "$l0")" -v q="$(sub "$q1" "$q0")" \
		-v w="$(sub "$t1" "$t0")" -v r="$idle_q" 'BEGIN { k = R * n; qa = q - r * w
		printf "%-40s %8.1f %9.0f %9.0f %9.0f %9.2f\n", g, 1e6 * c / k, 1e6 * l / k, 1e6 * qa / k, 1e6 * (c + l + qa) / k, 1000 * w / R }'
done | tee "$work/groups"
# the QMP commands libvirt 9's block and balloon groups send, one at a time
# through virsh qemu-monitor-command (QEMU's CPU only: the command's path
# through libvirtd is not the stats path's)
echo
echo "== QMP commands one at a time (qemu-monitor-command; QEMU us per domain per command)"
for c in '{"execute":"query-status"}' '{"execute":"query-blockstats"}' \
	'{"execute":"query-blockstats","arguments":{"query-nodes":true}}' \
	'{"execute":"query-named-block-nodes","arguments":{"flat":true}}' '{"execute":"query-balloon"}'; do
	: > "$work/cmds"
	k=0
	while [ "$k" -lt 20 ]; do
		i=1
		while [ "$i" -le "$N" ]; do echo "qemu-monitor-command $(tvm_name "$i") '$c'" >> "$work/cmds"; i=$((i + 1)); done
		k=$((k + 1))
	done
	calls=$(wc -l < "$work/cmds")
	q0=$(qemu_cpu) t0=$(now)
	virsh -q -c "$TALLY_URI" < "$work/cmds" > /dev/null 2>&1 || true
	q1=$(qemu_cpu) t1=$(now)
	awk -v g="$(echo "$c" | sed 's/.*"execute":"\([^"]*\)".*/\1/')$(echo "$c" | grep -q query-nodes && echo ' (query-nodes)' || true)" \
		-v c="$calls" -v q="$(sub "$q1" "$q0")" -v w="$(sub "$t1" "$t0")" -v r="$idle_q" 'BEGIN {
		printf "%-40s %9.0f\n", g, 1e6 * (q - r * w) / c }'
done | tee -a "$work/groups"
}

# ---- 2. whole host: tallyd, collectd, the exporter, each with the idle rate of its round
cat > "$work/tally.yaml" <<EOC
tallyd:
  agent_id: bench-qemu
  data_dir: $work/tdata
  interval: 1s
  log_level: info
rrd:
  enabled: false
collectors:
  libvirt:
    uri: $TALLY_URI
EOC
sed "s/^    uri: .*/&\n    ${ALT:-}/" "$work/tally.yaml" > "$work/tally-alt.yaml"
# the agent without the ledger's commits (what the agent role will not do):
# the defaults, committing once an hour
sed "s/^rrd:/ledger:\n  commit_every: 1h\n&/" "$work/tally.yaml" > "$work/tally-nocommit.yaml"
sed "s/^rrd:/ledger:\n  commit_every: 1h\n&/" "$work/tally-alt.yaml" > "$work/tally-alt-nocommit.yaml"
[ -z "${TALLYD_BASE:-}" ] || cp "$TALLYD_BASE" "$work/tallyd-base"
cat > "$work/collectd.conf" <<EOC
Hostname "bench"
FQDNLookup false
Interval 1
BaseDir "$work/cd"
PIDFile "$work/cd/collectd.pid"
PluginDir "/usr/lib/collectd"
TypesDB "/usr/share/collectd/types.db"
LoadPlugin logfile
<Plugin logfile>
  LogLevel "info"
  File "$work/cd/collectd.log"
</Plugin>
LoadPlugin virt
<Plugin virt>
  Connection "$TALLY_URI"
  RefreshInterval 60
  HostnameFormat "uuid"
  ReportBlockDevices true
  ExtraStats "disk_allocation disk_capacity domain_state"
</Plugin>
LoadPlugin write_prometheus
<Plugin write_prometheus>
  Host "127.0.0.1"
  Port "$(( 20000 + $$ % 20000 ))"
</Plugin>
EOC
mkdir -p "$work/cd"
xport=$(( 40000 + $$ % 20000 ))
run_agent() { # NAME: start it, warm up, measure a window, stop it; prints "agent lvd qemu secs cycles"
	case $1 in
	tallyd) rm -rf "$work/tdata"; "$TALLYD" -c "$work/tally.yaml" 2> "$work/tallyd.log" & ;;
	tallyd-alt) rm -rf "$work/tdata"; "$TALLYD" -c "$work/tally-alt.yaml" 2> "$work/tallyd-alt.log" & ;;
	tallyd-nocommit) rm -rf "$work/tdata"; "$TALLYD" -c "$work/tally-nocommit.yaml" 2> "$work/tallyd-nocommit.log" & ;;
	tallyd-alt-nocommit) rm -rf "$work/tdata"; "$TALLYD" -c "$work/tally-alt-nocommit.yaml" 2> "$work/tallyd-alt-nocommit.log" & ;;
	tallyd-base) rm -rf "$work/tdata"; "$work/tallyd-base" -c "$work/tally.yaml" 2> "$work/tallyd-base.log" & ;;
	collectd) collectd -f -C "$work/collectd.conf" > "$work/cd/out" 2>&1 & ;;
	exporter) prometheus-libvirt-exporter --libvirt.uri="$TALLY_URI" \
			--web.listen-address="127.0.0.1:$xport" > "$work/exp.log" 2>&1 & ;;
	esac
	apid=$!
	sleep 6
	if [ "$1" = exporter ]; then
		# one scrape a second, as a Prometheus with scrape_interval 1s
		: > "$work/scrapes"
		( while :; do curl -s -o /dev/null "http://127.0.0.1:$xport/metrics"; echo >> "$work/scrapes"; sleep 1; done ) &
		spid=$!
		sleep 2
	fi
	s0=0; [ -f "$work/scrapes" ] && s0=$(wc -l < "$work/scrapes")
	a0=$(cpu_of "$apid") l0=$(cpu_of "$LP") q0=$(qemu_cpu) t0=$(now)
	sleep "$W"
	a1=$(cpu_of "$apid") l1=$(cpu_of "$LP") q1=$(qemu_cpu) t1=$(now)
	s1=0; [ -f "$work/scrapes" ] && s1=$(wc -l < "$work/scrapes")
	[ "$1" = exporter ] && { kill "$spid"; wait "$spid" 2>/dev/null || true; rm -f "$work/scrapes"; }
	kill "$apid"
	wait "$apid" 2>/dev/null || true
	apid=
	# cycles: one a second (1 s interval); for the exporter the scrapes done
	echo "$a0 $a1 $l0 $l1 $q0 $q1 $t0 $t1 $1 $s0 $s1" | awk '{
		c = $9 == "exporter" ? $11 - $10 : $8 - $7
		printf "%.3f %.3f %.3f %.3f %.3f\n", $2 - $1, $4 - $3, $6 - $5, $8 - $7, c }'
}
tools="tallyd tallyd-nocommit"
[ -n "${ALT:-}" ] && tools="$tools tallyd-alt tallyd-alt-nocommit"
[ -n "${TALLYD_BASE:-}" ] && tools="$tools tallyd-base"
tools="$tools collectd exporter"
tools=${TOOLS:-$tools}
echo
echo "== whole host, $D active domains, 1 s cycles, $W s windows, $RUNS rounds"
printf '%-19s %5s %9s %9s %9s %9s   (us CPU per domain per cycle)\n' tool round agent libvirtd qemu host
r=1
while [ "$r" -le "$RUNS" ]; do
	set -- $(window)
	irate_l=$(awk -v s="$1" -v l="$2" 'BEGIN { printf "%.6f", l / s }')
	irate_q=$(awk -v s="$1" -v q="$3" 'BEGIN { printf "%.6f", q / s }')
	for tool in $tools; do
		set -- $(run_agent "$tool")
		awk -v t="$tool" -v r="$r" -v a="$1" -v l="$2" -v q="$3" -v w="$4" -v c="$5" -v il="$irate_l" -v iq="$irate_q" -v n="$D" 'BEGIN {
			la = l - il * w; qa = q - iq * w
			printf "%-19s %5d %9.0f %9.0f %9.0f %9.0f\n", t, r, 1e6 * a / c / n, 1e6 * la / c / n, 1e6 * qa / c / n, 1e6 * (a + la + qa) / c / n }'
	done
	r=$((r + 1))
done | tee "$work/rounds"
echo
echo "== medians over $RUNS rounds (min..max)"
for tool in $tools; do
	for col in 3 4 5 6; do
		awk -v t="$tool" -v c="$col" '$1 == t { print $c }' "$work/rounds" | sort -g |
			awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.0f (%.0f..%.0f) ", m, a[1], a[NR] }'
	done | awk -v t="$tool" '{ printf "%-19s agent %s %s  libvirtd %s %s  qemu %s %s  host %s %s\n", t, $1, $2, $3, $4, $5, $6, $7, $8 }'
done | tee "$work/med"
awk '{ a[$1] = $3; h[$1] = $12 } END {
	for (t in a) if (t ~ /^tallyd/)
		printf "%s / collectd: agent %.3fx, host %.3fx;  %s / exporter: agent %.3fx, host %.3fx\n",
			t, a[t] / a["collectd"], h[t] / h["collectd"], t, a[t] / a["exporter"], h[t] / h["exporter"] }' "$work/med"
echo "tallyd: $(grep -m 1 "reading [0-9]* domain(s) with" "$work/tallyd.log" | sed "s/.*libvirt [^ ]*: //")"
