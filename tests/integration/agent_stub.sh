#!/bin/sh
# The agent role against a stand-in of the aggregator's ingest endpoint
# (tests/lib/ingest_stub.py: the protocol of schemas/batch-wire.md, written
# from that document; a mock, because what is tested here is the agent's
# side: the real aggregator's end-to-end tests are agent_e2e.sh).
#
# The reference is an undisturbed agent run of a simulated fleet: every
# batch (agent id, seq, data time, samples, events, metadata) the stand-in
# committed. Then the same fleet again, with
#   - the stand-in failing on its own: a 500 every 7th request, the answer
#     lost after the commit every 5th, a 503 with Retry-After every 11th;
#   - kill -9 of the agent at random instants, at least 20 times;
#   - a torn spool tail (the start of a frame after the last whole one,
#     as a crash in the middle of an append leaves it), cut at restart;
# and what the stand-in committed must be exactly the reference: each
# batch once, none lost, none twice. Last, the agent restarted with a new
# spool directory: the stand-in refuses (409 spool), the agent says so in
# a clear log line and on /metrics, and nothing more is committed. Then
# agent.send_every: the same reference with a tenth of the syncs, run
# through and with kill -9s.
set -eu
B=${B:-build}
TALLYD=$PWD/$B/tallyd
[ -x "$TALLYD" ] || { echo "no $TALLYD: run make first"; exit 1; }
command -v python3 >/dev/null || { echo "python3 missing (scripts/deps.sh installs it)"; exit 1; }
work=$(mktemp -d /tmp/tally-agentstub-$$-XXXXXX)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
. tests/lib/agent.sh
. tests/lib/tallyd.sh
END=2026-10-04T00:00:00Z

# ---- the reference --------------------------------------------------------
stub_start ref --token agent-token-0123456789
pids="$pids $STUB_PID"
agent_conf "$work/ref" "http://127.0.0.1:$STUB_PORT" "$END" > "$work/ref.yaml"
t0=$(date +%s%N)
"$TALLYD" -c "$work/ref.yaml" 2> "$work/ref.log" || { echo "reference agent failed"; cat "$work/ref.log"; exit 1; }
ref_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
kill "$STUB_PID"
cut -d" " -f1-6 "$work/ref.rec" | sort > "$work/ref.sorted"
n=$(wc -l < "$work/ref.sorted")
# 3 days at 60 s: 4321 cycles, each host with VMs sends a batch per cycle
[ "$n" -gt 10000 ] || { echo "reference has only $n batches"; exit 1; }
echo "reference: $n batches in $ref_ms ms"

# ---- faults, kills, a torn tail ------------------------------------------
stub_start flt --token agent-token-0123456789 --fault 500:7 --fault lost:5 --fault 503:11
pids="$pids $STUB_PID"
url="http://127.0.0.1:$STUB_PORT"
agent_conf "$work/flt" "$url" "$END" > "$work/flt.yaml"
max_ms=$(( ref_ms / 25 )); [ "$max_ms" -lt 40 ] && max_ms=40
kills=0 runs=0
while [ "$kills" -lt 22 ] && [ "$runs" -lt 200 ]; do
	runs=$((runs + 1))
	"$TALLYD" -q -c "$work/flt.yaml" 2>> "$work/flt.log" &
	pid=$!
	ms=$(( $(od -An -N2 -tu2 /dev/urandom) % max_ms + 5 ))
	sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
	if kill -9 "$pid" 2>/dev/null; then
		wait "$pid" 2>/dev/null || true
		kills=$((kills + 1))
	else
		wait "$pid" || { echo "the agent failed on run $runs"; tail "$work/flt.log"; exit 1; }
		echo "run $runs finished before its kill"
		break
	fi
done
echo "killed the agent $kills times in $runs runs"
[ "$kills" -ge 20 ] || { echo "only $kills kills: the run was too short"; exit 1; }

# a torn tail: with the stand-in away (a port nobody answers), let the
# agent spool a while, kill it, and write the start of a frame after the
# last whole one of a segment
kill "$STUB_PID"; wait "$STUB_PID" 2>/dev/null || true
"$TALLYD" -q -c "$work/flt.yaml" 2>> "$work/flt.log" &
pid=$!
sleep 0.3
kill -9 "$pid"; wait "$pid" 2>/dev/null || true
seg=$(ls "$work"/flt/spool/sim-host-0/*.seg 2>/dev/null | tail -n 1)
[ -n "$seg" ] || { echo "no segment to tear"; exit 1; }
dd if="$seg" bs=1 skip=48 count=40 2>/dev/null >> "$seg"
stub_start flt --token agent-token-0123456789 --fault 500:7 --fault lost:5 --fault 503:11
pids="$pids $STUB_PID"
sed -i "s|$url|http://127.0.0.1:$STUB_PORT|" "$work/flt.yaml"
"$TALLYD" -c "$work/flt.yaml" 2>> "$work/flt.log" || { echo "the agent failed to finish"; tail "$work/flt.log"; exit 1; }
grep -q "agent sim-host-0: cut 40 bytes from the end of the spool" "$work/flt.log" ||
	{ echo "the torn tail was not cut and said"; grep "cut" "$work/flt.log"; exit 1; }
cut -d" " -f1-6 "$work/flt.rec" | sort > "$work/flt.sorted"
if ! cmp -s "$work/ref.sorted" "$work/flt.sorted"; then
	echo "what the aggregator got differs from the reference (< reference, > after faults):"
	diff "$work/ref.sorted" "$work/flt.sorted" | head -20
	exit 1
fi
echo "after $kills kills, a torn tail and the stand-in's faults: the same $n batches, each once"
grep -q "HTTP 500" "$work/flt.log" && grep -q "HTTP 503" "$work/flt.log" ||
	{ echo "the faults were not met"; exit 1; }

# ---- a new spool for a known agent ----------------------------------------
agent_conf "$work/flt" "http://127.0.0.1:$STUB_PORT" "$END" "  spool:
    dir: $work/other-spool" "http:
  port: 0" > "$work/new.yaml"
"$TALLYD" -c "$work/new.yaml" 2> "$work/new.log" &
pid=$!
pids="$pids $pid"
wait_log "$work/new.log" "from another spool: two agents share an id, or the agent's spool was lost" 30 ||
	{ echo "no clear error for a new spool"; tail "$work/new.log"; exit 1; }
tallyd_port "$work/new.log" "$pid"
grep "from another spool" "$work/new.log" | head -n 1
ok=0
for i in $(seq 1 50); do
	curl -s "http://127.0.0.1:$PORT/metrics" > "$work/metrics.txt" || true
	grep -q '^tally_agent_refused{agent="sim-host-0"} 1$' "$work/metrics.txt" && { ok=1; break; }
	sleep 0.2
done
[ "$ok" -eq 1 ] || { echo "/metrics does not say the agent is refused"; grep tally_agent "$work/metrics.txt" | head; exit 1; }
grep -q '^tally_agent_sends_total{agent="sim-host-0",result="refused"} [1-9]' "$work/metrics.txt" ||
	{ echo "no refused sends counted"; exit 1; }
grep -q '^tally_samples_ingested' "$work/metrics.txt" && { echo "an agent shows ingest figures"; exit 1; }
if command -v promtool >/dev/null; then
	promtool check metrics < "$work/metrics.txt" > "$work/promtool.out" 2>&1 ||
		{ echo "promtool check metrics:"; cat "$work/promtool.out"; exit 1; }
fi
kill "$pid"; wait "$pid" || { echo "the agent did not stop cleanly on SIGTERM"; exit 1; }
cut -d" " -f1-6 "$work/flt.rec" | sort | cmp -s - "$work/ref.sorted" || { echo "the new spool's batches were committed"; exit 1; }
echo "a new spool for a known agent: refused, said, nothing committed"

# ---- agent.send_every: routine batches synced and sent with later ones -----
# 10 min of data time at 60 s cycles: a batch of routine readings waits for
# the sync of a later one, up to 10 cycles; whatever a later reading does
# not cover (events, first and final readings, resets) is synced at once.
# Run through, the stand-in must get exactly the reference, with far fewer
# syncs; then again with kill -9 at random instants (the batches written but
# not synced are in the page cache, synced when the spool is opened again):
# still exactly the reference.
ref_syncs=$(sed -n 's/.* \([0-9]*\) fsyncs, .*/\1/p' "$work/ref.log")
for run in sev sevk; do
	stub_start $run --token agent-token-0123456789
	pids="$pids $STUB_PID"
	agent_conf "$work/$run" "http://127.0.0.1:$STUB_PORT" "$END" "  send_every: 10m" > "$work/$run.yaml"
	kills=0
	while [ $run = sevk ] && [ "$kills" -lt 6 ]; do
		"$TALLYD" -q -c "$work/$run.yaml" 2>> "$work/$run.log" &
		pid=$!
		ms=$(( $(od -An -N2 -tu2 /dev/urandom) % max_ms + 5 ))
		sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
		kill -9 "$pid" 2>/dev/null || break
		wait "$pid" 2>/dev/null || true
		kills=$((kills + 1))
	done
	wait "$pid" 2>/dev/null || true
	"$TALLYD" -c "$work/$run.yaml" 2>> "$work/$run.log" || { echo "the $run agent failed"; tail "$work/$run.log"; exit 1; }
	kill "$STUB_PID"; wait "$STUB_PID" 2>/dev/null || true
	cut -d" " -f1-6 "$work/$run.rec" | sort > "$work/$run.sorted"
	if ! cmp -s "$work/ref.sorted" "$work/$run.sorted"; then
		echo "with send_every ($run, $kills kills), the aggregator got other batches (< reference, > send_every):"
		diff "$work/ref.sorted" "$work/$run.sorted" | head -20
		exit 1
	fi
done
sev_syncs=$(sed -n 's/.* \([0-9]*\) fsyncs, .*/\1/p' "$work/sev.log")
[ -n "$ref_syncs" ] && [ -n "$sev_syncs" ] && [ "$((sev_syncs * 3))" -lt "$ref_syncs" ] ||
	{ echo "send_every: $sev_syncs syncs, against $ref_syncs a batch at a time: not a third"; exit 1; }
echo "send_every 10m: the same $n batches, each once, with $sev_syncs syncs (a batch at a time: $ref_syncs);" \
	"again after $kills kills"
