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
#   qemu     every QEMU process but its vCPU threads (qemu_cpu() below),
#            above its idle rate (measured in the same run with nothing
#            collecting)
#   host     agent + libvirtd + qemu
# 1. per call shape (bench/lv_calls, one read-only connection, calls back
#    to back): one bulk call per stats group and the combinations tallyd
#    makes, and the per-domain calls (virDomainBlockStats per disk, which
#    tallyd and collectd make, GetBlockInfo, GetInfo, ...) and the bulk call
#    over libvirt's protocol (rpcbulk:, as tallyd makes it): the client,
#    libvirtd and QEMU per domain per round; then the QMP commands the
#    block and balloon groups send, one at a time (QEMU per command);
# 2. RUNS rounds of: idle, tallyd all-in-one (1 s interval, its default
#    groups; ledger committed every 10 s, no RRD, no alert rules, no HTTP),
#    tallyd in the agent role (what a hypervisor runs: collect, spool with
#    one fdatasync a batch, POST each batch to an aggregator and sync its
#    acknowledgement; the aggregator is another tallyd on loopback, started
#    for each window, whose CPU is shown apart and not counted: it runs on
#    another host), collectd (1 s, the same stats: cpu, vcpus, memory and its
#    stats, block counters, capacity and allocation, interfaces, state;
#    written to write_prometheus, which nobody scrapes: no disk, no network),
#    the exporter scraped once a second; each WINDOW_S seconds after a
#    warm-up, each after an idle window of its own (the idle rates it is
#    measured above). Printed: each round, then the median and the spread
#    (min..max) of the rounds, and the ratios to collectd and the exporter.
# Environment: B (build dir, default build), KEEP_GUESTS=1 leaves the guests,
# SKIP_GROUPS=1 skips part 1, ALT="block_every: 5" also runs tallyd and the
# agent with these extra libvirt keys (as tallyd-alt and agent-alt),
# AGENT_ALT="send_every: 10s" gives agent-alt these extra agent keys,
# TALLYD_BASE=path/to/tallyd also runs that binary at the defaults, all-in-one
# and agent (as tallyd-base and agent-base: a build to compare with).
# tallyd-nocommit (not run unless named in TOOLS) is the all-in-one committing
# its ledger once an hour. TOOLS="tallyd agent collectd" runs only these.
# PERF=TOOL records that tool's first window with perf (call graphs) into
# $PERF_OUT (default /tmp/tally-lvq-TOOL.perf.data).
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
	[ -n "${aggpid:-}" ] && kill "$aggpid" 2>/dev/null
	[ "${KEEP_GUESTS:-0}" = 1 ] || tvm_cleanup
	rm -rf "$work"
}
trap finish EXIT
# CPU time, in seconds with nanosecond resolution: /proc/PID/stat counts in
# clock ticks (10 ms), as much as the agent spends in a whole window, so
# processes are read from the scheduler's own nanosecond sum of each live
# thread (/proc/PID/task/TID/schedstat; a thread that exits during a window
# takes its time with it - the agents and libvirtd keep theirs).
cpu_of() { # PID...: their summed CPU seconds
	for p in "$@"; do cat "/proc/$p"/task/*/schedstat 2>/dev/null || true; done |
		awk '{ s += $1 } END { printf "%.6f\n", s / 1e9 }'
}
# The QEMU processes' CPU that answering stats can cost: their threads but
# the vCPUs'. QMP commands run on QEMU's main loop, never on a vCPU thread,
# and an idle guest's vCPU threads are most of an idle QEMU's CPU (timer
# ticks), drifting with the host's load by more than any tool costs: with
# them, "above idle" was noise (QEMU_ALL=1 counts them all the same).
# Read from the domains' `emulator` cgroups (libvirt's, with the time of
# exited threads), else from the live threads not named "CPU n/...".
qemu_cpu() {
	if [ "${QEMU_ALL:-0}" = 1 ]; then
		set -- /sys/fs/cgroup/unified/machine/qemu-*.libvirt-qemu/cpu.stat \
			/sys/fs/cgroup/machine/qemu-*.libvirt-qemu/cpu.stat \
			/sys/fs/cgroup/machine.slice/machine-qemu*.scope/cpu.stat
	else
		set -- /sys/fs/cgroup/unified/machine/qemu-*.libvirt-qemu/emulator/cpu.stat \
			/sys/fs/cgroup/machine/qemu-*.libvirt-qemu/emulator/cpu.stat \
			/sys/fs/cgroup/machine.slice/machine-qemu*.scope/libvirt/emulator/cpu.stat
	fi
	n=0
	for f in "$@"; do [ -f "$f" ] && n=$((n + 1)); done
	if [ "$n" -eq "$D" ]; then
		for f in "$@"; do [ -f "$f" ] && cat "$f"; done |
			awk '$1 == "usage_usec" { s += $2 } END { printf "%.6f\n", s / 1e6 }'
	elif [ "${QEMU_ALL:-0}" = 1 ]; then
		cpu_of $QP
	else
		for p in $QP; do
			for t in /proc/$p/task/*; do
				case $(cat "$t/comm" 2>/dev/null) in "CPU "*) ;; *) cat "$t/schedstat" 2>/dev/null || true ;; esac
			done
		done | awk '{ s += $1 } END { printf "%.6f\n", s / 1e9 }'
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
echo "qemu: $([ "${QEMU_ALL:-0}" = 1 ] && echo "every thread" || echo "every thread but the vCPUs'") of the QEMU processes, above their idle rate"

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
echo "   (us CPU per domain per round: the client, libvirtd, QEMU (but its vCPU threads) above its idle rate"
echo "   of $(awk -v r="$idle_q" -v n="$D" 'BEGIN { printf "%.0f", 1e6 * r / n }') us/s per domain; wall ms per round)"
printf '%-40s %8s %9s %9s %9s %9s\n' shape client libvirtd qemu host wall_ms
# bulk:G = one virConnectGetAllDomainStats(NOWAIT) with group G for all
# domains; the others are per-domain calls (per disk for block*)
for shape in bulk:state bulk:cpu-total bulk:interface bulk:block bulk:balloon bulk:vcpu \
	bulk:state+cpu-total+interface+block+balloon+vcpu bulk:state+interface bulk:state+interface+block \
	rpcbulk:state+interface rpcbulk:state+interface+balloon+block \
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

# ---- 2. whole host: tallyd, collectd, the exporter, each above the idle rates just before it
# The libvirt section of every tallyd config (ALT: its extra keys)
lvsec() {
	echo "collectors:"
	echo "  libvirt:"
	echo "    uri: $TALLY_URI"
	[ "$1" = alt ] && [ -n "${ALT:-}" ] && echo "    $ALT"
	true
}
for v in plain alt; do
	sfx=; [ "$v" = alt ] && sfx=-alt
	# all-in-one: the ledger (committed every 10 s and at once for what a
	# restart could not recompute), no RRD, no alert rules, no HTTP
	{ cat <<EOC
tallyd:
  agent_id: bench-qemu
  data_dir: $work/tdata
  interval: 1s
  log_level: info
rrd:
  enabled: false
EOC
	lvsec "$v"; } > "$work/tally$sfx.yaml"
	# the agent role: spool and sender, to the aggregator started for its window
	{ cat <<EOC
tallyd:
  role: agent
  agent_id: bench-qemu
  data_dir: $work/tdata
  interval: 1s
  log_level: info
agent:
  aggregator: http://127.0.0.1:AGGPORT
  token: bench-qemu-agent-token-0001
EOC
	[ "$v" = alt ] && [ -n "${AGENT_ALT:-}" ] && echo "  $AGENT_ALT"
	lvsec "$v"; } > "$work/agent$sfx.yaml"
done
# the all-in-one without the ledger's commits: committing once an hour
sed "s/^rrd:/ledger:\n  commit_every: 1h\n&/" "$work/tally.yaml" > "$work/tally-nocommit.yaml"
[ -z "${TALLYD_BASE:-}" ] || cp "$TALLYD_BASE" "$work/tallyd-base"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
aggpid=
# agg_start: a fresh aggregator (another tallyd, role aggregator) on a free
# loopback port for one window; sets aggport, aggpid
agg_start() {
	rm -rf "$work/adata"
	aggport=$(free_port)
	cat > "$work/agg.yaml" <<EOC
tallyd:
  role: aggregator
  data_dir: $work/adata
  interval: 1s
  log_level: warning
rrd:
  enabled: false
ingest: {}
http:
  port: $aggport
  tokens: [{token: bench-qemu-agent-token-0001, agent: bench-qemu}]
EOC
	"$TALLYD" -c "$work/agg.yaml" 2> "$work/agg.log" &
	aggpid=$!
	for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$aggport/metrics" && return 0; sleep 0.1; done
	die "the aggregator did not start: $(cat "$work/agg.log")"
}
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
run_agent() { # NAME: start it, warm up, measure a window, stop it; prints "agent lvd qemu secs cycles aggregator"
	bin=$TALLYD
	case $1 in *-base) bin=$work/tallyd-base ;; esac
	case $1 in
	tallyd|tallyd-alt|tallyd-nocommit|tallyd-base)
		cf=$work/tally.yaml
		case $1 in tallyd-alt) cf=$work/tally-alt.yaml ;; tallyd-nocommit) cf=$work/tally-nocommit.yaml ;; esac
		rm -rf "$work/tdata"; "$bin" -c "$cf" 2> "$work/$1.log" & ;;
	agent|agent-alt|agent-base)
		cf=$work/agent.yaml
		[ "$1" = agent-alt ] && cf=$work/agent-alt.yaml
		agg_start
		sed "s/AGGPORT/$aggport/" "$cf" > "$work/agent-run.yaml"
		rm -rf "$work/tdata"; "$bin" -c "$work/agent-run.yaml" 2> "$work/$1.log" & ;;
	collectd) collectd -f -C "$work/collectd.conf" > "$work/cd/out" 2>&1 & ;;
	exporter) prometheus-libvirt-exporter --libvirt.uri="$TALLY_URI" \
			--web.listen-address="127.0.0.1:$xport" > "$work/exp.log" 2>&1 & ;;
	esac
	apid=$!
	sleep 6
	kill -0 "$apid" 2>/dev/null || die "$1 stopped at its start: $(tail -5 "$work/$1.log" "$work/cd/out" "$work/cd/collectd.log" "$work/exp.log" 2>/dev/null)"
	if [ "$1" = exporter ]; then
		# one scrape a second, as a Prometheus with scrape_interval 1s
		: > "$work/scrapes"
		( while :; do curl -s -o /dev/null "http://127.0.0.1:$xport/metrics"; echo >> "$work/scrapes"; sleep 1; done ) &
		spid=$!
		sleep 2
	fi
	ppid=
	if [ "${PERF:-}" = "$1" ] && [ ! -f "$work/perf.done" ]; then
		perf record -q -g -F 2000 -p "$apid" -o "${PERF_OUT:-/tmp/tally-lvq-$1.perf.data}" -- sleep "$W" > /dev/null 2>&1 &
		ppid=$!
		touch "$work/perf.done"
	fi
	s0=0; [ -f "$work/scrapes" ] && s0=$(wc -l < "$work/scrapes")
	g0=0; [ -n "$aggpid" ] && g0=$(cpu_of "$aggpid")
	a0=$(cpu_of "$apid") l0=$(cpu_of "$LP") q0=$(qemu_cpu) t0=$(now)
	sleep "$W"
	a1=$(cpu_of "$apid") l1=$(cpu_of "$LP") q1=$(qemu_cpu) t1=$(now)
	g1=0; [ -n "$aggpid" ] && g1=$(cpu_of "$aggpid")
	s1=0; [ -f "$work/scrapes" ] && s1=$(wc -l < "$work/scrapes")
	[ -n "$ppid" ] && wait "$ppid" 2>/dev/null || true
	[ "$1" = exporter ] && { kill "$spid"; wait "$spid" 2>/dev/null || true; rm -f "$work/scrapes"; }
	kill "$apid"
	wait "$apid" 2>/dev/null || true
	apid=
	if [ -n "$aggpid" ]; then
		kill "$aggpid"
		wait "$aggpid" 2>/dev/null || true
		aggpid=
	fi
	# cycles: one a second (1 s interval); for the exporter the scrapes done
	echo "$a0 $a1 $l0 $l1 $q0 $q1 $t0 $t1 $1 $s0 $s1 $g0 $g1" | awk '{
		c = $9 == "exporter" ? $11 - $10 : $8 - $7
		printf "%.3f %.3f %.3f %.3f %.3f %.3f\n", $2 - $1, $4 - $3, $6 - $5, $8 - $7, c, $13 - $12 }'
}
tools="tallyd agent"
[ -n "${ALT:-}" ] && tools="$tools tallyd-alt agent-alt"
[ -z "${ALT:-}" ] && [ -n "${AGENT_ALT:-}" ] && tools="$tools agent-alt"
[ -n "${TALLYD_BASE:-}" ] && tools="$tools tallyd-base agent-base"
tools="$tools collectd exporter"
tools=${TOOLS:-$tools}
echo
echo "== whole host, $D active domains, 1 s cycles, $W s windows, $RUNS rounds"
echo "   (us CPU per domain per cycle; aggregator: the agent role's aggregator on loopback,"
echo "   another host's cost in a deployment, not counted in host). What each does a cycle"
echo "   beside reading: tallyd (all-in-one) ingests in-process and commits its SQLite ledger"
echo "   every 10 s and at once for what a restart could not recompute (no RRD, no alert rules,"
echo "   no HTTP); agent spools the batch (one fdatasync) and POSTs it (a TCP connection per"
echo "   POST: the aggregator closes each), writing acknowledgements to disk once a minute;"
echo "   collectd hands the values to write_prometheus (memory only; nobody scrapes it: no disk,"
echo "   no network); the exporter reads and formats on each scrape (curl not counted)"
printf '%-19s %5s %9s %9s %9s %9s %11s %5s\n' tool round agent libvirtd qemu host aggregator load
r=1
while [ "$r" -le "$RUNS" ]; do
	for tool in $tools; do
		# the idle rates just before each tool's window: the QEMU processes'
		# idle rate drifts with the host's load by more than a tool costs
		set -- $(window)
		irate_l=$(awk -v s="$1" -v l="$2" 'BEGIN { printf "%.6f", l / s }')
		irate_q=$(awk -v s="$1" -v q="$3" 'BEGIN { printf "%.6f", q / s }')
		set -- $(run_agent "$tool")
		awk -v ld="$(cut -d' ' -f1 /proc/loadavg)" -v t="$tool" -v r="$r" -v a="$1" -v l="$2" -v q="$3" -v w="$4" -v c="$5" -v g="$6" -v il="$irate_l" -v iq="$irate_q" -v n="$D" 'BEGIN {
			la = l - il * w; qa = q - iq * w
			printf "%-19s %5d %9.1f %9.0f %9.0f %9.0f %11.1f %5s\n", t, r, 1e6 * a / c / n, 1e6 * la / c / n, 1e6 * qa / c / n, 1e6 * (a + la + qa) / c / n, 1e6 * g / c / n, ld }'
	done
	r=$((r + 1))
done | tee "$work/rounds"
echo
echo "== medians over $RUNS rounds (min..max)"
for tool in $tools; do
	for col in 3 4 5 6 7; do
		awk -v t="$tool" -v c="$col" '$1 == t { print $c }' "$work/rounds" | sort -g |
			awk -v c="$col" '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
				f = c == 3 || c == 7 ? "%.1f (%.1f..%.1f) " : "%.0f (%.0f..%.0f) "; printf f, m, a[1], a[NR] }'
	done | awk -v t="$tool" '{ printf "%-19s agent %s %s  libvirtd %s %s  qemu %s %s  host %s %s  aggregator %s %s\n", t, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 }'
done | tee "$work/med"
# a ratio only to a peer that ran (TOOLS may leave one out)
awk 'function r(x, y) { return (y in a) && a[y] > 0 && h[y] > 0 ? sprintf("agent %.3fx, host %.3fx", a[x] / a[y], h[x] / h[y]) : "not run" }
	{ a[$1] = $3; h[$1] = $12 } END {
	for (t in a) if (t ~ /^(tallyd|agent)/)
		printf "%s / collectd: %s;  %s / exporter: %s\n", t, r(t, "collectd"), t, r(t, "exporter") }' "$work/med" | sort
echo
echo "== per round, the ratio to collectd in the same round (agent, host): the host's speed drifts"
echo "   with other load between rounds, less within one; their medians"
awk '$2 ~ /^[0-9]+$/ && NF >= 7 { a[$2, $1] = $3; h[$2, $1] = $6; rr[$2] = 1; tt[$1] = 1 } END {
	for (t in tt) {
		if (t == "collectd") continue
		n = 0; line = sprintf("%-19s", t)
		for (k in rr) if ((k, "collectd") in a && (k, t) in a && a[k, "collectd"] > 0 && h[k, "collectd"] > 0) {
			n++; ra[n] = a[k, t] / a[k, "collectd"]; rh[n] = h[k, t] / h[k, "collectd"]
		}
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) {
			if (ra[j] < ra[i]) { x = ra[i]; ra[i] = ra[j]; ra[j] = x }
			if (rh[j] < rh[i]) { x = rh[i]; rh[i] = rh[j]; rh[j] = x }
		}
		if (!n) continue
		ma = (n % 2) ? ra[(n + 1) / 2] : (ra[n / 2] + ra[n / 2 + 1]) / 2
		mh = (n % 2) ? rh[(n + 1) / 2] : (rh[n / 2] + rh[n / 2 + 1]) / 2
		printf "%s agent %.3fx (%.3f..%.3f)  host %.3fx (%.3f..%.3f)\n", line, ma, ra[1], ra[n], mh, rh[1], rh[n]
	} }' "$work/rounds" | sort
for t in tallyd agent; do
	[ -f "$work/$t.log" ] && echo "$t: $(grep -m 1 "reading [0-9]* domain(s) with" "$work/$t.log" | sed "s/.*libvirt [^ ]*: //")"
done
true
