# Byte-identical reports from both engines: the same simulated fleet
# (12 VMs, 3 tenants, crashes) fast-forwarded over two days by tallyd into
# an SQLite file and into a PostgreSQL schema. Every usage row is compared
# by name (resource, meter, device, hour; quantities exactly: a gauge's
# binary64 read back with 17 digits on both sides), then tally usage,
# invoice (all formats, --detail) and sla must print the same bytes from
# either ledger, and tally ledger verify must pass on both.
TALLY=$PWD/$B/tally
TALLYD=$PWD/$B/tallyd
. tests/lib/cli.sh
pg_schema same_$$ || exit 1
ident_cfg() {
	cat > "$work/$1.yaml" <<EOC
tallyd:
  data_dir: $work/$1
  interval: 60s
  clock: fast-forward
  start: 2026-10-01T00:00:00Z
  end: 2026-10-03T00:00:00Z
  log_level: error
$2
rrd:
  enabled: false
collectors:
  sim:
    vms: 12
    tenants: 3
    seed: 11
    crashes_per_day: 3
EOC
}
ident_cfg sq ""
ident_cfg pg "ledger:
  url: \"$PG_LEDGER\""
"$TALLYD" -q -c "$work/sq.yaml" || bad "tallyd on SQLite"
"$TALLYD" -q -c "$work/pg.yaml" || bad "tallyd on PostgreSQL"
SQ=$work/sq/ledger.db

if python3 tests/lib/ledger_rows.py --all "$SQ" "$PG_LEDGER"; then ok "every row equal on both engines"; else bad "the ledgers differ"; fi

same() {
	"$TALLY" "$@" --ledger "$SQ" > "$work/a.out" 2>&1; ra=$?
	"$TALLY" "$@" --ledger "$PG_LEDGER" > "$work/b.out" 2>&1; rb=$?
	if [ "$ra" -eq 0 ] && [ "$rb" -eq 0 ] && [ -s "$work/a.out" ] && cmp -s "$work/a.out" "$work/b.out"; then
		ok "identical ($(wc -c < "$work/a.out") bytes): tally $*"
	else
		bad "tally $* differs (exit $ra / $rb):"; diff "$work/a.out" "$work/b.out" | head -n 10
	fi
}
P=config/plan-example.yaml
same usage --from 2026-10-01 --to 2026-10-02
same usage --from 2026-10-01 --to 2026-10-02 --by resource --format csv
same usage --from 2026-10-01T05:00:00Z --to 2026-10-02T17:00:00Z --by hour --format json
same usage --from 2026-10 --to 2026-10 --meter vcpus --format json
same invoice --period 2026-10 --plan "$P"
same invoice --period 2026-10 --plan "$P" --format csv --detail
same invoice --period 2026-10 --plan "$P" --format json --detail
same invoice --period 2026-10 --plan "$P" --format html --rrd "$work/none"
same invoice --period 2026-10 --plan "$P" --combined
same sla --period 2026-10 --plan "$P"
same sla --period 2026-10 --plan "$P" --format json
for l in "$SQ" "$PG_LEDGER"; do
	expect 0 ": ok: " "$TALLY" ledger verify --ledger "$l"
done
