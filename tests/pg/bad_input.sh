# What an operator gets wrong with a PostgreSQL ledger, through the
# programs: each a clear message naming what is wrong, exit 2 for a config
# or command line that cannot be right, 1 for what is wrong at run time
# (the database, the role, the ledger's version), and a password given in
# the URI in no message.
TALLY=$PWD/$B/tally
TALLYD=$PWD/$B/tallyd
. tests/lib/cli.sh
q=${PG_URI#*\?}
bi_cfg() {
	cat > "$work/c.yaml" <<EOC
tallyd:
  data_dir: $work/d
  interval: 60s
  clock: fast-forward
  start: 2026-10-01T00:00:00Z
  end: 2026-10-01T01:00:00Z
  log_level: error
ledger:
$1
rrd:
  enabled: false
collectors:
  sim:
    vms: 2
EOC
}
# config errors: exit 2, file:line:col and the key
bi_cfg '  url: "postgresql://h:notaport/db"'
expect 2 "c.yaml:9:8: key 'url': postgresql://h:notaport/db: not a PostgreSQL connection URI: port 'notaport' is not a number" "$TALLYD" -n -c "$work/c.yaml"
bi_cfg "  url: \"postgresql:///tally?$q&sslmode=sometimes\""
expect 2 "sslmode 'sometimes' is not one of disable" "$TALLYD" -c "$work/c.yaml"
bi_cfg "  url: \"mysql://h/db\""
expect 2 "key 'url': mysql: not a ledger location" "$TALLYD" -c "$work/c.yaml"
bi_cfg "  url: \"$PG_URI\"
  path: $work/x.db"
expect 2 "give ledger.path or ledger.url, not both" "$TALLYD" -c "$work/c.yaml"
bi_cfg "  url: \"$PG_URI\"
  statement_timeout: 2h"
expect 2 "statement_timeout" "$TALLYD" -c "$work/c.yaml"

# run-time errors: exit 1, what is wrong named; the password never shown
bi_cfg "  url: \"postgresql://tally:hunter2@/nosuchdb_$$?$q\""
expect 1 'database "nosuchdb_'"$$"'" does not exist' "$TALLYD" -q -c "$work/c.yaml"
grep -q hunter2 "$work/out" "$work/err" && bad "the password is in tallyd's message" || ok "no password in the message"
expect 1 "createdb" "$TALLY" usage --from 2026-10 --to 2026-10 --ledger "postgresql://tally:hunter2@/nosuchdb_$$?$q"
grep -q hunter2 "$work/out" "$work/err" && bad "the password is in tally's message" || ok "no password in tally's message"
expect 1 "role \"nobody_$$\" does not exist" "$TALLY" invoice --period 2026-10 --plan config/plan-example.yaml --ledger "postgresql:///tally?$q&user=nobody_$$"
pg_schema bi_$$ || exit 1
expect 1 "no ledger here (schema 'bi_$$' is empty" "$TALLY" sla --period 2026-10 --plan config/plan-example.yaml --ledger "$PG_LEDGER"
psql -X -q -c "CREATE ROLE bi_ro_$$ LOGIN" >/dev/null
expect 1 "role 'bi_ro_$$' may not use schema bi_$$ (GRANT USAGE ON SCHEMA bi_$$ TO bi_ro_$$)" "$TALLY" ledger verify --ledger "$PG_LEDGER&user=bi_ro_$$"
bi_cfg "  url: \"$PG_LEDGER\""
"$TALLYD" -q -c "$work/c.yaml" || bad "tallyd on a new schema"
psql -X -q -c "GRANT USAGE ON SCHEMA bi_$$ TO bi_ro_$$; GRANT SELECT ON ALL TABLES IN SCHEMA bi_$$ TO bi_ro_$$" >/dev/null
bi_cfg "  url: \"$PG_LEDGER&user=bi_ro_$$\""
expect 1 "the role lacks privileges a writer needs on schema 'bi_$$': meters (INSERT)" "$TALLYD" -q -c "$work/c.yaml"
expect 0 ": ok: " "$TALLY" ledger verify --ledger "$PG_LEDGER&user=bi_ro_$$"
psql -X -q -d "$PG_LEDGER" -c "UPDATE tally_ledger SET version = 42" >/dev/null
bi_cfg "  url: \"$PG_LEDGER\""
expect 1 "ledger schema version 42 is newer than this tally knows" "$TALLYD" -q -c "$work/c.yaml"
expect 1 "ledger schema version 42, this tally reads version" "$TALLY" usage --from 2026-10 --to 2026-10 --ledger "$PG_LEDGER"
[ "$(psql -X -A -t -d "$PG_LEDGER" -c "SELECT version FROM tally_ledger")" = 42 ] && ok "the newer ledger was not changed" || bad "the newer ledger was changed"
psql -X -q -c "DROP OWNED BY bi_ro_$$; DROP ROLE bi_ro_$$" >/dev/null
# no server at all
expect 1 "cannot connect to the ledger" "$TALLY" usage --from 2026-10 --to 2026-10 --ledger "postgresql:///tally?host=$work&port=1"
