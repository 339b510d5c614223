#!/bin/sh
# The pcap collector's figures (issue 16), beside pmacct's pmacctd on the
# same file in the same run. Nothing here is asserted.
#
# Offline: a capture file of PACKETS 64-byte frames of 10,000 VMs (by MAC)
# with 1,000 prefixes in each of the internal and peering classes
# (bench_pcap gen). Ours: bench_pcap run (configure, init, one read that
# counts every frame), packets/s over the read, median of 5 runs. pmacctd
# does the equivalent work: aggregate src_mac, dst_mac, src_as, dst_as
# with the same prefixes as a networks_file whose "AS" is the class
# (pmacctd_as: file), print plugin into a CSV file, median of 3 runs. It
# is run with pcap_savefile_wait: without it pmacctd stops its plugin at
# the end of the file, whatever the plugin has not processed yet is lost
# (half the packets here; pmacct issue 900); with it the core waits for
# the plugin, and counts the last buffer twice (the sum of its PACKETS
# column is printed beside the frames in the file). Its rate is the frames
# over the time the core took to read the file (its startup delay off) and
# over the CPU time of its core and plugin processes.
#
# Live: tallyd (1 capture thread, 64 MiB ring) in a network namespace
# captures on one end of a veth pair, as a VM's tap; bench/pcap_send puts
# LIVE 64-byte frames on the other end as fast as it can (sendmmsg, qdisc
# bypassed; SENDERS=2 splits them over two processes at once), 3 times: the
# stream's rate (every frame over the longest sender's time), the frames
# tallyd read and the kernel's drops (pcap.dropped.packets) each time.
# Needs root.
#
# usage: [SENDERS=N] bench/pcap.sh [PACKETS [LIVE]]   (B= the build directory)
set -eu
B=${B:-build}
. tests/lib/pcap.sh
N=${1:-4000000}
LIVE=${2:-2000000}
# the file in memory when /dev/shm can hold it: both readers then measure
# their work, not the disk's
base=/tmp
[ -d /dev/shm ] && [ "$(df -Pk /dev/shm | awk 'NR == 2 { print $4 }')" -gt $((N / 8 + 1048576)) ] && base=/dev/shm
work=$(mktemp -d "$base/tally-benchpcap-XXXXXX")
NSV=tbp$$v NSH=tbp$$h VA=tbv$$a VB=tbv$$b
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	ip netns del "$NSV" 2>/dev/null || true
	ip netns del "$NSH" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "== pcap offline: $N frames of 64 bytes, 10000 VMs, 1000 prefixes per class, one core"
"$B/bench/bench_pcap" gen "$work" "$N" 10000 1000
"$B/bench/bench_pcap" run "$work" 5 | tee "$work/ours"
ours=$(sed -n 's/^tally_pcap_median_mpps \([0-9.]*\).*/\1/p' "$work/ours")
ours_cpu=$(sed -n 's/^tally_pcap_median_cpu_mpps \([0-9.]*\).*/\1/p' "$work/ours")

if command -v pmacctd >/dev/null; then
	cat > "$work/pm.conf" <<EOF
daemonize: false
pcap_savefile: $work/frames.pcap
pcap_savefile_wait: true
pcap_savefile_delay: 1
aggregate: src_mac, dst_mac, src_as, dst_as
pmacctd_as: file
networks_file: $work/networks.lst
plugins: print
print_output: csv
print_output_file: $work/pm.out
print_output_file_append: true
print_refresh_time: 3600
print_cache_entries: 65537
plugin_pipe_size: 2048000000
plugin_buffer_size: 204800
EOF
	: > "$work/pm.rates"
	: > "$work/pm.cpurates"
	for r in 1 2 3; do
		rm -f "$work/pm.out"
		t0=$(date +%s%N)
		pmacctd -f "$work/pm.conf" > "$work/pm.log" 2>&1 &
		pid=$!
		# the core's and plugin's CPU, in clock ticks
		cpu() {
			t=0
			for p in $pid $(pgrep -P "$pid"); do
				v=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || true)
				t=$((t + ${v:-0}))
			done
			echo "$t"
		}
		k=0
		until grep -q "finished reading" "$work/pm.log"; do
			k=$((k + 1))
			[ "$k" -lt 3000 ] || { echo "pmacctd did not finish in 10 min"; break; }
			sleep 0.2
		done
		t1=$(date +%s%N)
		prev=-1 same=0
		while [ "$same" -lt 3 ]; do
			c=$(cpu)
			if [ "$c" = "$prev" ]; then same=$((same + 1)); else same=0; fi
			prev=$c
			sleep 1
		done
		kill -INT "$pid"
		wait "$pid" || true
		pid=
		counted=$(awk -F, '$5 ~ /^[0-9]+$/ { s += $5 } END { print s + 0 }' "$work/pm.out")
		hz=$(getconf CLK_TCK)
		wall=$(awk -v n="$N" -v ns=$((t1 - t0 - 1000000000)) 'BEGIN { printf "%.3f", n / (ns / 1e3) }')
		percpu=$(awk -v n="$N" -v cpu="$c" -v hz="$hz" 'BEGIN { printf "%.3f", n / (cpu / hz) / 1e6 }')
		echo "$wall" >> "$work/pm.rates"
		echo "$percpu" >> "$work/pm.cpurates"
		awk -v r="$r" -v n="$N" -v k="$counted" -v ns=$((t1 - t0 - 1000000000)) -v cpu="$c" -v hz="$hz" \
			-v w="$wall" -v pc="$percpu" 'BEGIN {
			printf "pmacctd run %d: counted %d of %d frames; read in %.3f s: %.2f M packets/s;" \
			       " cpu %.2f s: %.2f M packets per cpu-second\n", r, k, n, ns / 1e9, w, cpu / hz, pc }'
	done
	pm=$(median < "$work/pm.rates")
	pmc=$(median < "$work/pm.cpurates")
	awk -v a="$ours" -v b="$pm" -v ac="$ours_cpu" -v bc="$pmc" 'BEGIN {
		printf "pmacctd_median_mpps %.2f; tally / pmacctd = %.1f\n", b, a / b
		printf "pmacctd_median_cpu_mpps %.2f (packets per cpu-second); tally / pmacctd = %.1f\n", bc, ac / bc }'
else
	echo "(pmacctd not installed: scripts/deps.sh installs pmacct)"
fi

echo
echo "== pcap live: 64-byte frames on a veth pair as fast as this host sends them, 1 capture thread"
if [ "$(id -u)" != 0 ] || ! ip netns add "$NSV" 2>/dev/null; then
	echo "(skipped: needs root and network namespaces)"
	exit 0
fi
pcap_veth "$NSV" "$NSH" "$VA" "$VB"
echo "- {uuid: 6b0f3c2a-0000-4000-8000-0000000000aa, mac: '52:54:00:aa:00:01', interface: $VB}" > "$work/nics.yaml"
{ pcap_yaml bench-live "$work/live" warning "$VB" "$work/nics.yaml"; cat <<EOF
    buffer_size: 67108864
    classes:
      internal: [10.0.0.0/8]
EOF
} > "$work/live.yaml"
ip netns exec "$NSH" "$B/tallyd" -c "$work/live.yaml" 2> "$work/live.log" &
pid=$!
val() {
	sqlite3 "$work/live/ledger.db" "SELECT coalesce(sum(s.last_value), 0) FROM series s JOIN meters m
		ON m.id = s.meter_id WHERE m.name = '$1'" 2>/dev/null || echo 0
}
k=0
until [ "$(sqlite3 "$work/live/ledger.db" "SELECT count(*) FROM series" 2>/dev/null || echo 0)" -gt 0 ]; do
	k=$((k + 1))
	[ "$k" -lt 200 ] || { echo "tallyd did not start"; cat "$work/live.log"; exit 1; }
	sleep 0.1
done
: > "$work/live.rates"
for r in 1 2 3; do
	r0=$(val pcap.received.packets) d0=$(val pcap.dropped.packets)
	# SENDERS processes at once (default 1; on 2 cores a second one only
	# takes the capture thread's core)
	: > "$work/send"
	s=0 senders=
	while [ "$s" -lt "${SENDERS:-1}" ]; do
		ip netns exec "$NSV" "$B/bench/pcap_send" "$VA" $((LIVE / ${SENDERS:-1})) >> "$work/send" &
		senders="$senders $!"
		s=$((s + 1))
	done
	for p in $senders; do wait "$p"; done
	cat "$work/send"
	k=0
	while :; do
		rr=$(val pcap.received.packets) dd=$(val pcap.dropped.packets)
		[ $((rr - r0 + dd - d0)) -ge "$LIVE" ] && break
		k=$((k + 1))
		[ "$k" -lt 300 ] || break
		sleep 0.1
	done
	echo "live run $r: tallyd read $((rr - r0)) of $LIVE frames, kernel drops $((dd - d0))"
	# the stream's rate: every frame over the longest sender's time
	sed -n 's/^sent \([0-9]*\) frames of 64 bytes in \([0-9.]*\) s.*/\1 \2/p' "$work/send" |
		awk '{ n += $1; if ($2 > t) t = $2 } END { printf "%.0f\n", n / t }' >> "$work/live.rates"
done
echo "live_median_stream_pps $(median < "$work/live.rates") (${SENDERS:-1} sender(s): the stream the capture kept up with)"
