# PostgreSQL stopped and started again under a running real-time tallyd
# (docs/ledger.md, "PostgreSQL"): its commits fail while the server is
# away (tally_ledger_write_failing 1 on /metrics, the failures counted),
# metering goes on with everything kept in memory, the connection is made
# again at the next retry, and all of it is committed: the ledger then
# equals, row for row, that of a reference tallyd reading the same
# simulated fleet from the same ticks into an SQLite file undisturbed, and
# its hash chain verifies.
TALLY=$PWD/$B/tally
TALLYD=$PWD/$B/tallyd
. tests/lib/cli.sh
pg_schema restart_$$ || exit 1
rs_pids=
trap 'for p in $rs_pids; do kill -9 "$p" 2>/dev/null; done' EXIT
start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
rs_conf() { # $1 = data dir, $2 = ledger line
	cat <<EOC
tallyd:
  agent_id: rs
  data_dir: $1
  interval: 1s
  log_level: info
ledger:
  $2
  commit_every: 1s
  statement_timeout: 5s
rrd:
  enabled: false
EOC
	sim_rt "$start"
}
rs_conf "$work/ref" "path: $work/ref/ledger.db" > "$work/ref.yaml"
{ rs_conf "$work/victim" "url: \"$PG_LEDGER\""
  printf 'http:\n  port: 0\n'; } > "$work/victim.yaml"
at_tenth 2
"$TALLYD" -q -c "$work/ref.yaml" 2>"$work/ref.log" & ref=$!
"$TALLYD" -q -c "$work/victim.yaml" 2>"$work/victim.log" & victim=$!
rs_pids="$ref $victim"
tallyd_port "$work/victim.log" "$victim" 20 || exit 1
URL=http://127.0.0.1:$PORT
metric() { curl -sf "$URL/metrics" | sed -n "s/^$1 //p"; }
sleep 3
[ "$(metric tally_ledger_write_failing)" = 0 ] && ok "writing before the restart" || bad "failing before the restart"

pg_down || exit 1
failing() { [ "$(metric tally_ledger_write_failing)" = 1 ]; }
wait_for 30 "commits fail while the server is away: tally_ledger_write_failing 1" failing
sleep 3
kill -0 "$victim" 2>/dev/null && ok "tallyd goes on without its database" || { bad "tallyd died"; cat "$work/victim.log"; exit 1; }
pg_up || exit 1
writing() { [ "$(metric tally_ledger_write_failing)" = 0 ]; }
wait_for 90 "committed again once the server is back: tally_ledger_write_failing 0" writing
n=$(metric tally_ledger_commit_failures_total)
[ "${n:-0}" -ge 1 ] && ok "$n failed commits, retried" || bad "no failed commit counted ('$n')"
grep -F "written again after" "$work/victim.log" >/dev/null && ok "the recovery is logged" || bad "no log line for the recovery"
sed -n '/cannot/{p;q}' "$work/victim.log"
sleep 2
at_tenth 5
kill -TERM "$ref" "$victim"
wait "$ref" || bad "the reference exited $?"
wait "$victim" || bad "the victim exited $?"
rs_pids=
if python3 tests/lib/ledger_rows.py "$work/ref/ledger.db" "$PG_LEDGER"; then
	ok "nothing lost: the ledger equals the undisturbed run's"
else
	bad "the ledger differs from the undisturbed run's"
fi
expect 0 ": ok: " "$TALLY" ledger verify --ledger "$PG_LEDGER"
