# tally ledger copy (docs/ledger.md): a simulated fleet's ledger, with
# issued invoices and alert state, copied SQLite -> PostgreSQL -> SQLite:
# every usage row equal on all three (read independently of tally), the
# same invoice from each, the hash chain verifying on each (copied as it
# is), and a second copy into a target that is not empty refused (exit 1),
# nothing written; bad command lines exit 2.
TALLY=$PWD/$B/tally
TALLYD=$PWD/$B/tallyd
. tests/lib/cli.sh
pg_schema copy_$$ || exit 1
cat > "$work/fleet.yaml" <<EOC
tallyd:
  data_dir: $work/src
  interval: 60s
  clock: fast-forward
  start: 2026-10-01T00:00:00Z
  end: 2026-10-02T12:00:00Z
  log_level: error
ledger:
  commit_every: 0s
rrd:
  enabled: false
alerts:
  rules:
    - {name: Busy, meter: cpu, rate_above: 0.1, window: 5m}
collectors:
  sim:
    vms: 8
    tenants: 2
    seed: 5
    crashes_per_day: 2
EOC
"$TALLYD" -q -c "$work/fleet.yaml" || bad "tallyd"
SQ=$work/src/ledger.db
P=config/plan-example.yaml
expect 0 "issued" "$TALLY" invoice --ledger "$SQ" --period 2026-10-01 --plan "$P" --issue --allow-incomplete
expect 0 "(resource, meter, hour) are the same in both" "$TALLY" ledger copy --from "sqlite:$SQ" --to "$PG_LEDGER"
expect 0 "(resource, meter, hour) are the same in both" "$TALLY" ledger copy --from "$PG_LEDGER" --to "$work/back.db"
if python3 tests/lib/ledger_rows.py "$SQ" "$PG_LEDGER" "$work/back.db"; then
	ok "usage rows equal: SQLite, its PostgreSQL copy, and that one's SQLite copy"
else
	bad "usage rows differ between the copies"
fi
f0=$fails
for t in resources resource_attrs events series agents alerts alert_windows invoices invoice_adjustments chain chain_hours; do
	a=$(sqlite3 "$SQ" "SELECT count(*) FROM $t")
	b=$(psql -X -A -t -d "$PG_LEDGER" -c "SELECT count(*) FROM $t")
	c=$(sqlite3 "$work/back.db" "SELECT count(*) FROM $t")
	[ "$a" -gt 0 ] || [ "$t" = invoice_adjustments ] || bad "the fleet left no $t row to copy"
	[ "$a" = "$b" ] && [ "$b" = "$c" ] || bad "$t: $a rows, $b on PostgreSQL, $c back"
done
[ "$fails" = "$f0" ] && ok "every table's rows counted alike on all three"
for l in "$SQ" "$PG_LEDGER" "$work/back.db"; do
	expect 0 ": ok: " "$TALLY" ledger verify --ledger "$l"
	"$TALLY" invoice show 1 --ledger "$l" > "$work/show.$(echo "$l" | cksum | cut -d' ' -f1)" 2>&1 || bad "invoice show 1 on $l"
	"$TALLY" invoice --period 2026-10 --plan "$P" --format json --ledger "$l" > "$work/inv.json" 2>&1
	if [ -f "$work/inv0.json" ]; then cmp -s "$work/inv0.json" "$work/inv.json" || bad "invoice differs on $l"
	else cp "$work/inv.json" "$work/inv0.json"; fi
done
[ "$(ls "$work"/show.* | xargs cksum | cut -d' ' -f1 | sort -u | wc -l)" = 1 ] && ok "the issued invoice is the same on all three" || bad "the issued invoice differs"
# a target that is not empty: refused, untouched
before=$(psql -X -A -t -d "$PG_LEDGER" -c "SELECT count(*) FROM usage")
expect 1 "not empty" "$TALLY" ledger copy --from "$SQ" --to "$PG_LEDGER"
expect 1 "not empty" "$TALLY" ledger copy --from "$PG_LEDGER" --to "$work/back.db"
[ "$(psql -X -A -t -d "$PG_LEDGER" -c "SELECT count(*) FROM usage")" = "$before" ] && ok "the refused target is as it was" || bad "the refused target changed"
expect 2 "copy needs --from LEDGER and --to LEDGER" "$TALLY" ledger copy --from "$SQ"
expect 2 "not a PostgreSQL connection URI" "$TALLY" ledger copy --from "$SQ" --to "postgresql://x:port/db"
expect 2 "same ledger" "$TALLY" ledger copy --from "$SQ" --to "sqlite:$SQ"
expect 1 "no ledger here" "$TALLY" ledger copy --from "$work/none.db" --to "$work/new.db"
# a source holding what tally never writes (a quantity made text by hand):
# refused, the target left without a row
cp "$SQ" "$work/bad.db"
sqlite3 "$work/bad.db" "UPDATE usage SET quantity = 'lots' WHERE rowid IN (SELECT rowid FROM usage LIMIT 1)" 2>/dev/null ||
	sqlite3 "$work/bad.db" "UPDATE usage SET quantity = 'lots' WHERE hour_ns = (SELECT min(hour_ns) FROM usage) AND meter_id = (SELECT meter_id FROM usage LIMIT 1) AND resource_id = (SELECT resource_id FROM usage LIMIT 1)"
pg_schema copy_bad_$$ || exit 1
expect 1 "usage.quantity: a value of another type than its column's (text)" "$TALLY" ledger copy --from "$work/bad.db" --to "$PG_LEDGER"
[ "$(psql -X -A -t -d "$PG_LEDGER" -c "SELECT (SELECT count(*) FROM usage) + (SELECT count(*) FROM resources)")" = 0 ] &&
	ok "nothing of the refused copy was written" || bad "the refused copy left rows"
# tally ledger info on the copy: made by this tally (meta is the copy's own)
expect 0 "created by:   tally" "$TALLY" ledger info --ledger "$work/back.db"
expect 0 "its tables and indexes on the server" "$TALLY" ledger info --ledger "$PG_URI&options=-csearch_path%3Dcopy_$$"
# tally agents reads the agents' rows from either engine alike
"$TALLY" agents --format json --ledger "$work/back.db" > "$work/agents.sq" 2>&1 || bad "tally agents on SQLite"
"$TALLY" agents --format json --ledger "$PG_URI&options=-csearch_path%3Dcopy_$$" > "$work/agents.pg" 2>&1 || bad "tally agents on PostgreSQL"
grep -q '"agent"' "$work/agents.pg" && ok "tally agents on PostgreSQL lists the copied agents" || bad "tally agents: $(cat "$work/agents.pg")"
