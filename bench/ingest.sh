#!/bin/sh
# Aggregator ingest over the network (issue 12): one tallyd of `role:
# aggregator` on loopback, and bench/simagents posting a simulated fleet of
# AGENTS hosts (VMS VMs in all, 100 per host by default) at a 10 s interval
# in fast-forward, every batch acknowledged only once committed.
#
#   sustained   PERIOD of the fleet (1 h: 361 cycles), each agent sending what
#               it has waiting as the agent's sender does (up to 1024 frames
#               or 4 MiB per request, at most 128 batches waiting): median of
#               RUNS runs
#   one batch   5 min of the fleet, one batch per request (what an agent
#               sends in real time, when nothing waits): the stress case of
#               the commit per request; one run
# each over plain HTTP and over TLS (a test CA made here, P-256). Printed:
# samples/s acknowledged, the lag from a batch's encoding to its
# acknowledgement (median), the aggregator's CPU (user + system over the
# run's wall time) and peak RSS. Targets (issue 12): >= 500,000 samples/s,
# TLS at least half of it.
#
# usage: sh bench/ingest.sh [B [AGENTS [VMS [RUNS]]]]
set -eu
B=${1:-${B:-build}}
AGENTS=${2:-100}
VMS=${3:-10000}
RUNS=${4:-3}
PERIOD=${PERIOD:-2026-10-01T01:00:00Z}
TALLYD=$PWD/$B/tallyd
SIM=$PWD/$B/bench/simagents
work=$(mktemp -d /tmp/tally-bench-ingest-XXXXXX)
apid=
trap '[ -n "$apid" ] && kill -9 "$apid" 2>/dev/null; rm -rf "$work"' EXIT
. tests/lib/tallyd.sh

(cd "$work" && exec >openssl.log 2>&1 &&
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 \
		-subj /CN=bench-ca &&
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key -out srv.csr -subj /CN=agg &&
	printf 'subjectAltName=IP:127.0.0.1\n' > srv.ext &&
	openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile srv.ext -out srv.pem) ||
	{ echo "openssl failed: $(cat "$work/openssl.log")"; exit 1; }

# conf TLS: the aggregator's config (every agent's token; loopback hosts all
# agents on one address, so the per-address connection bound is raised)
conf() {
	cat <<EOC
tallyd:
  role: aggregator
  data_dir: $work/agg
  log_level: warning
rrd:
  enabled: false
http:
  port: 0
  max_connections_per_address: 1024
EOC
	[ "$1" = tls ] && printf '  tls_cert: %s/srv.pem\n  tls_key: %s/srv.key\n' "$work" "$work"
	echo "  tokens:"
	i=0
	while [ $i -lt "$AGENTS" ]; do
		echo "    - {token: bench-token-0123456789-sim-host-$i, agent: sim-host-$i}"
		i=$((i + 1))
	done
}

# one MODE(plain|tls) END SIMAGENTS-ARGS...: a fresh aggregator, one run;
# prints "samples/s lag cpu% rss_MiB"
one() {
	mode=$1 end=$2
	shift 2
	rm -rf "$work/agg"
	conf "$mode" > "$work/agg.yaml"
	"$TALLYD" -q -c "$work/agg.yaml" 2>"$work/agg.log" & apid=$!
	tallyd_port "$work/agg.log" "$apid" 30 >/dev/null 2>&1 || { echo "the aggregator did not start"; cat "$work/agg.log"; exit 1; }
	if [ "$mode" = tls ]; then url=https://127.0.0.1:$PORT; ca="--ca $work/ca.pem"; else url=http://127.0.0.1:$PORT; ca=; fi
	c0=$(awk '{print $14 + $15}' "/proc/$apid/stat")
	t0=$(date +%s.%N)
	# shellcheck disable=SC2086
	"$SIM" -u "$url" $ca --token-prefix bench-token-0123456789- --vms "$VMS" --hosts "$AGENTS" --tenants 50 \
		--seed 3 --end "$end" "$@" > "$work/sim.out" 2>&1 || { echo "simagents failed:"; cat "$work/sim.out"; exit 1; }
	t1=$(date +%s.%N)
	c1=$(awk '{print $14 + $15}' "/proc/$apid/stat")
	rss=$(awk '/VmHWM/ {print $2}' "/proc/$apid/status")
	kill -TERM "$apid"
	wait "$apid" || true
	apid=
	rate=$(sed -n 's/.* \([0-9][0-9]*\) samples\/s;.*/\1/p' "$work/sim.out")
	lag=$(sed -n 's/.*median \([0-9.]*\) s,.*/\1/p' "$work/sim.out")
	tck=$(getconf CLK_TCK)
	echo "$rate $lag $(echo "$c0 $c1 $t0 $t1 $tck" | awk '{printf "%.0f", ($2 - $1) / $5 / ($4 - $3) * 100}') $((rss / 1024))"
}

median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

echo "   $AGENTS agents, $VMS VMs in all ($((VMS / AGENTS)) per agent), 10 s interval, fast-forward, RRD off"
for mode in plain tls; do
	: > "$work/runs"
	r=0
	while [ $r -lt "$RUNS" ]; do
		one "$mode" "$PERIOD" --backlog 128 >> "$work/runs"
		r=$((r + 1))
	done
	printf '%-6s sustained (to %s, the sender'"'"'s batching): samples/s median %s (min %s, max %s, %s runs);' \
		"$mode" "$PERIOD" "$(cut -d' ' -f1 "$work/runs" | median)" "$(cut -d' ' -f1 "$work/runs" | sort -n | head -n 1)" \
		"$(cut -d' ' -f1 "$work/runs" | sort -n | tail -n 1)" "$RUNS"
	printf ' lag median %s s; aggregator CPU %s%% of a core, peak RSS %s MiB\n' \
		"$(cut -d' ' -f2 "$work/runs" | median)" "$(cut -d' ' -f3 "$work/runs" | median)" "$(cut -d' ' -f4 "$work/runs" | median)"
	set -- $(one "$mode" 2026-10-01T00:05:00Z --max-frames 1)
	printf '%-6s one batch per request (5 min of the fleet): samples/s %s; lag median %s s; aggregator CPU %s%%, peak RSS %s MiB\n' \
		"$mode" "$1" "$2" "$3" "$4"
done
echo "(targets: >= 500000 samples/s, TLS >= 250000; the one-batch case is bound by the commit"
echo " per request: every series' usage and state rows written, and the touched hours hashed again)"
