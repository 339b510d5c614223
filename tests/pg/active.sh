# Active-active (docs/ledger.md, "PostgreSQL"): two aggregators (tallyd,
# role aggregator) on one PostgreSQL ledger, and three agent ids (one agent
# tallyd, the simulated fleet on three hosts, a spool and a sender per id)
# given both aggregators' URLs (4 batches a request, so that delivering
# takes long enough to kill aggregators under it). The agents spool two days of their fleet
# while neither aggregator runs, then deliver it while the aggregators are
# killed with kill -9 at random instants, in turn (never both down at
# once), at least 20 times, each started again at once, after PostgreSQL
# itself was stopped and started under them (ingest answers 503, the agents
# keep their batches and send them again): the agents fail
# over from one to the other and back, each aggregator taking batches of
# agents the other one moved on meanwhile. The ledger must equal, row for
# row, the ground truth: an all-in-one run of the same fleet into SQLite
# (usage with its coverage and samples, the series' last readings, the
# agents' seqs and batch counts, events, resources, attributes); its hash
# chain must verify; and what each aggregator's /metrics shows is printed.
TALLY=$PWD/$B/tally
TALLYD=$PWD/$B/tallyd
. tests/lib/cli.sh
. tests/lib/agent.sh
pg_schema active_$$ || exit 1
pa=$(pg_free_port) pb=$(pg_free_port)
aa_pids=
trap 'for p in $aa_pids; do kill -9 "$p" 2>/dev/null; done' EXIT
END=2026-10-03T00:00:00Z
for x in a b; do
	port=$pa
	[ "$x" = b ] && port=$pb
	cat > "$work/agg-$x.yaml" <<EOC
tallyd:
  role: aggregator
  agent_id: aggregator-$x
  data_dir: $work/agg-$x
  interval: 10s
  log_level: info
ledger:
  url: "$PG_LEDGER"
rrd:
  enabled: false
http:
  address: 127.0.0.1
  port: $port
  tokens:
    - {token: agent-token-0123456789-0, agent: sim-host-0}
    - {token: agent-token-0123456789-1, agent: sim-host-1}
    - {token: agent-token-0123456789-2, agent: sim-host-2}
    - {token: admin-token-0123456789, admin: true}
EOC
done
agent_conf "$work/ag" "[http://127.0.0.1:$pa, http://127.0.0.1:$pb]" "$END" "  connect_timeout: 1s
  max_frames: 4
  tokens:
    - {agent: sim-host-0, token: agent-token-0123456789-0}
    - {agent: sim-host-1, token: agent-token-0123456789-1}
    - {agent: sim-host-2, token: agent-token-0123456789-2}" "http:
  port: 0" > "$work/ag.yaml"
# the ground truth: the same fleet all-in-one, into SQLite
agent_conf "$work/ref" "http://127.0.0.1:1" "$END" | sed -e '/^  role: agent/d' -e '/^agent:/,/^collectors:/{/^collectors:/!d}' \
	> "$work/ref.yaml"
printf 'rrd:\n  enabled: false\n' >> "$work/ref.yaml"
"$TALLYD" -q -c "$work/ref.yaml" 2> "$work/ref.log" || { bad "the reference run failed: $(tail -n 3 "$work/ref.log")"; exit 1; }

agg_start() { # a|b
	n0=$(grep -c "listening" "$work/agg-$1.log" 2>/dev/null || true)
	"$TALLYD" -c "$work/agg-$1.yaml" 2>> "$work/agg-$1.log" &
	eval "pid_$1=\$!"
	for i in $(seq 1 200); do
		[ "$(grep -c "listening" "$work/agg-$1.log" 2>/dev/null || true)" -gt "${n0:-0}" ] && return 0
		eval "kill -0 \$pid_$1" 2>/dev/null || break
		sleep 0.05
	done
	bad "aggregator $1 did not start: $(tail -n 3 "$work/agg-$1.log")"
	exit 1
}
agent_metric() {
	p=$(sed -n 's/.*http: listening on .* port \([0-9]*\).*/\1/p' "$work/ag.log" | tail -n 1)
	curl -s "http://127.0.0.1:$p/metrics" 2>/dev/null | awk -v n="$1" 'index($0, n "{") == 1 { s += $NF } END { print s + 0 }'
}

# the agents spool while no aggregator runs
"$TALLYD" -c "$work/ag.yaml" 2>> "$work/ag.log" &
agent=$!
aa_pids=$agent
for i in $(seq 1 600); do
	[ "$(agent_metric tally_agent_spool_batches)" -ge 8000 ] && break
	sleep 0.1
done
spooled=$(agent_metric tally_agent_spool_batches)
[ "$spooled" -ge 8000 ] || { bad "the agents spooled only $spooled batches"; exit 1; }
ok "the three agents spooled $spooled batches with no aggregator up"

agg_start a
agg_start b
aa_pids="$agent $pid_a $pid_b"
# PostgreSQL goes away under them: their commits fail, ingest answers 503,
# the agents keep their batches and try again; it comes back
agg_metric() { # a|b NAME{LABELS}
	port=$pa
	[ "$1" = b ] && port=$pb
	curl -s -H "Authorization: Bearer admin-token-0123456789" "http://127.0.0.1:$port/metrics" 2>/dev/null |
		awk -v n="$2" 'index($0, n " ") == 1 { print $NF }'
}
sleep 0.5
pg_down || exit 1
n503() {
	_a=$(agg_metric a 'tally_ingest_requests_total{status="503"}')
	_b=$(agg_metric b 'tally_ingest_requests_total{status="503"}')
	[ "$(( ${_a:-0} + ${_b:-0} ))" -gt 0 ]
}
wait_for 60 "without PostgreSQL the aggregators answer 503: the agents keep their batches" n503 ||
	{ tail -n 5 "$work/agg-a.log" "$work/agg-b.log" "$work/ag.log"; agg_metric a 'tally_ingest_requests_total{status="200"}'; }
sleep 1
kill -0 "$agent" 2>/dev/null && ok "the agents wait, nothing acknowledged that is not committed" || bad "the agent stopped"
pg_up || exit 1
kills=0 victim=a
while [ "$kills" -lt 24 ] && kill -0 "$agent" 2>/dev/null; do
	ms=$(( $(od -An -N2 -tu2 /dev/urandom) % 400 + 100 ))
	sleep "0.$(printf '%03d' "$ms")"
	eval "kill -9 \$pid_$victim; wait \$pid_$victim 2>/dev/null"
	kills=$((kills + 1))
	agg_start "$victim"
	aa_pids="$agent $pid_a $pid_b"
	[ "$victim" = a ] && victim=b || victim=a
done
[ "$kills" -ge 20 ] && ok "killed the aggregators $kills times with kill -9, in turn" ||
	bad "the agents were done after $kills kills: lengthen the period"
for i in $(seq 1 1200); do
	kill -0 "$agent" 2>/dev/null || break
	sleep 0.1
done
wait "$agent" && ok "the agents delivered everything and stopped" || bad "the agent exited $?: $(tail -n 3 "$work/ag.log")"
# what each aggregator's /metrics shows (docs/ledger.md)
for x in a b; do
	port=$pa
	[ "$x" = b ] && port=$pb
	curl -s -H "Authorization: Bearer admin-token-0123456789" "http://127.0.0.1:$port/metrics" > "$work/metrics-$x" 2>/dev/null
	echo "aggregator $x (since its last start): $(grep -E "^tally_ledger_resyncs_total|^tally_ledger_commit_failures_total|^tally_ingest_batches_total|^tally_samples_ingested_total" "$work/metrics-$x" | tr "\n" " ")"
done
res=$(cat "$work"/agg-*.log | grep -c "taken again from the ledger" || true)
grep -h "taken again from the ledger" "$work"/agg-*.log | head -n 2
for x in a b; do
	eval "kill \$pid_$x; wait \$pid_$x" || bad "aggregator $x did not stop cleanly"
done
aa_pids=
if python3 tests/lib/ledger_rows.py --all "$work/ref/ledger.db" "$PG_LEDGER"; then
	ok "the two aggregators' ledger equals the all-in-one ground truth, row for row ($res times an aggregator took an agent again from the ledger)"
else
	bad "the ledger differs from the ground truth"
fi
expect 0 ": ok: " "$TALLY" ledger verify --ledger "$PG_LEDGER"
