#!/bin/sh
# A full disk in real time (issue 10, finding 7; docs/ledger.md): tallyd
# keeps metering and serving, keeps what it reads in memory, retries the
# commit with back-off, raises LedgerWriteFailing (received by a real
# Alertmanager) and tally_ledger_write_failing 1 on /metrics, and once space
# is back commits all of it. Before, it exited 1 after a few seconds.
#
# Two tallyds read the same simulated fleet (same seed and start: the
# counters are the same functions of time) from the same first tick: the
# reference on an ordinary disk, the victim with its ledger on a 2 MiB
# tmpfs that the test fills to the last byte and frees again. Both are
# stopped after the same tick: the victim's usage rows (quantity, spanned,
# covered, samples) must equal the reference's, all of them, since nothing
# was lost, and its hash chain must verify. Needs root (mount).
set -eu
B=${B:-build}
TALLY=$PWD/$B/tally
TALLYD=$PWD/$B/tallyd
for t in sqlite3 curl jq; do
	command -v $t >/dev/null || { echo "$t is not installed (scripts/deps.sh installs it)"; exit 1; }
done
work=$(mktemp -d /tmp/tally-dfrt-XXXXXX)
. tests/lib/cli.sh
. tests/lib/alertmanager.sh
[ -x "$AM" ] || { echo "prometheus-alertmanager is not installed (scripts/deps.sh installs it)"; rm -rf "$work"; exit 77; }
small_tmpfs 2m
pids=
trap 'for p in $pids; do kill -9 "$p" 2>/dev/null || true; done; umount "$small" 2>/dev/null; rm -rf "$work"' EXIT
fails=0

# ---- Alertmanager on loopback ----
am_start
pids=$apid

start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
conf() { # $1 = data dir, $2 = ledger
	cat <<EOC
tallyd:
  agent_id: dfrt
  data_dir: $1
  interval: 1s
  log_level: info
ledger:
  path: $2
  commit_every: 1s
rrd:
  enabled: false
EOC
	sim_rt "$start"
}
conf "$work/ref" "$work/ref/ledger.db" > "$work/ref.yaml"
{ conf "$work/victim" "$small/ledger.db"
  cat <<EOC
http:
  port: 0
alerts:
  alertmanager: $AMURL
  resend: 1s
  timeout: 2s
EOC
} > "$work/victim.yaml"

at_tenth 2   # just after a second boundary: both read the same first tick
"$TALLYD" -q -c "$work/ref.yaml" 2>"$work/ref.log" & ref=$!
"$TALLYD" -q -c "$work/victim.yaml" 2>"$work/victim.log" & victim=$!
pids="$apid $ref $victim"
tallyd_port "$work/victim.log" "$victim" 10 || exit 1
URL=http://127.0.0.1:$PORT
metric() { curl -sf "$URL/metrics" | sed -n "s/^$1 //p"; }
sleep 3
[ "$(metric tally_ledger_write_failing)" = 0 ] || { echo "failing before the disk is full"; exit 1; }
rows_before=$(sqlite3 "$small/ledger.db" "SELECT count(*) FROM usage")

# ---- the disk fills ----
dd if=/dev/zero of="$small/filler" bs=4096 2>/dev/null || true
echo "tmpfs full: $(df -k "$small" | tail -n 1)"
failing() { [ "$(metric tally_ledger_write_failing)" = 1 ]; }
wait_for 30 "the victim's commits fail: tally_ledger_write_failing 1" failing
lwf() { curl -sf "$AMURL/api/v2/alerts" | jq -c '.[] | select(.labels.alertname == "LedgerWriteFailing")'; }
am_has() { [ "$(lwf | wc -l)" -ge 1 ]; }
wait_for 30 "alertmanager received LedgerWriteFailing" am_has
lwf | head -n 1
# it goes on reading and serving: the data time moves, the queue grows
t1=$(metric tally_data_timestamp_seconds)
q1=$(metric tally_ingest_queue_samples)
sleep 4
t2=$(metric tally_data_timestamp_seconds)
q2=$(metric tally_ingest_queue_samples)
kill -0 "$victim" 2>/dev/null || { echo "FAIL: tallyd died on the full disk"; cat "$work/victim.log"; exit 1; }
if [ "$t2" -gt "$t1" ] && [ "$q2" -gt "$q1" ]; then
	ok "metering goes on while the disk is full (data time $t1 -> $t2, $q1 -> $q2 readings in memory)"
else
	bad "metering stopped: data time $t1 -> $t2, readings in memory $q1 -> $q2"
fi
admin=$(curl -sf "$URL/api/v1/alerts" | jq -r '.alerts[]? | select(.labels.alertname == "LedgerWriteFailing") | .state')
[ "$admin" = firing ] && ok "/api/v1/alerts: LedgerWriteFailing firing" || bad "/api/v1/alerts: LedgerWriteFailing is '$admin'"
fails_n=$(metric tally_ledger_commit_failures_total)
[ "${fails_n:-0}" -ge 2 ] && ok "$fails_n commits failed and were retried" || bad "commit failures: '$fails_n'"

# ---- space again ----
rm -f "$small/filler"
writing() { [ "$(metric tally_ledger_write_failing)" = 0 ]; }
wait_for 90 "the victim writes again: tally_ledger_write_failing 0" writing
am_clear() { [ "$(lwf | wc -l)" -eq 0 ]; }
wait_for 30 "LedgerWriteFailing resolved in alertmanager" am_clear
grep -F "written again after" "$work/victim.log" || bad "no log line for the recovery"
sleep 2

at_tenth 5   # mid-second: both have read the same last tick
kill -TERM "$ref" "$victim"
wait "$ref" || { echo "reference tallyd exited $? after SIGTERM"; exit 1; }
wait "$victim" || bad "the victim exited $? after SIGTERM"
pids=$apid

usage_rows "$work/ref/ledger.db" > "$work/ref.txt"
usage_rows "$small/ledger.db" > "$work/victim.txt"
samples=$(sqlite3 "$work/ref/ledger.db" "SELECT sum(samples) FROM usage")
[ "${samples:-0}" -gt 0 ] && [ "$rows_before" -gt 0 ] || { echo "the runs wrote nothing"; exit 1; }
if cmp -s "$work/ref.txt" "$work/victim.txt"; then
	ok "the ledger equals the undisturbed run's usage: $(wc -l < "$work/ref.txt") rows, $samples readings"
else
	bad "the ledger differs from the undisturbed run:"; diff "$work/ref.txt" "$work/victim.txt" | head
fi
if "$TALLY" ledger verify --ledger "$small/ledger.db" > "$work/verify.out" 2>&1; then
	ok "$(cat "$work/verify.out")"
else
	bad "verify: $(cat "$work/verify.out")"
fi
[ "$fails" -eq 0 ] || { echo "$fails failures"; exit 1; }
