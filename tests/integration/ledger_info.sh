#!/bin/sh
# Which tally made and last wrote a ledger (schemas/migrations/006-meta.sql,
# `tally ledger info`). The expected version is read from the VERSION file
# and the expected revision from git, not from tally: a ledger tallyd
# creates names this build as created_by and written_by; a ledger of
# schema 5 (before the meta table) that tallyd migrates says upgraded_by
# and "not recorded" for its creator; a missing file, a file that is not a
# ledger and a ledger from a newer schema are clear errors, exit 1.
set -eu
B=${B:-build}
TALLY=$PWD/$B/tally
TALLYD=$PWD/$B/tallyd
command -v sqlite3 >/dev/null || { echo "sqlite3 CLI missing (scripts/deps.sh installs it)"; exit 1; }
work=$(mktemp -d /tmp/tally-info-XXXXXX)
trap 'rm -rf "$work"' EXIT
. tests/lib/cli.sh
fails=0

version=$(cat VERSION)
rev=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
# the schema this build writes (ledger/ledger_id.h)
schema=$(sed -n 's/^#define LEDGER_SCHEMA_VERSION \([0-9]*\).*/\1/p' ledger/ledger_id.h)

sim_ledger "$work/a" 2026-10-01T06:00:00Z 3 1 7
L=$work/a/ledger.db
expect 0 "schema:       $schema" "$TALLY" ledger info --ledger "$L"
out=$work/out
# created and written by this build: "VERSION (REVISION[+])"
for k in "created by" "written by"; do
	line=$(grep "^$k:" "$out" || true)
	case $line in
	*"tally $version ($rev"*) ok "$k names $version and $rev" ;;
	*) bad "$k: '$line' does not name tally $version ($rev...)" ;;
	esac
done
grep -q "^upgraded by:" "$out" && bad "a new ledger says it was upgraded"
# the simulated fleet ran from 00:00 to 06:00: hours 00:00 to 06:00, the
# last holding only the readings taken at 06:00 (a row counts its samples)
expect 0 "usage:        hours from 2026-10-01T00:00:00Z to 2026-10-01T06:00:00Z" "$TALLY" ledger info --ledger "$L"

# a schema 5 ledger (no meta table) that tallyd opens is upgraded, and says so
sim_ledger "$work/b" 2026-10-01T02:00:00Z 2 1 8
L5=$work/b/ledger.db
# (and what the versions after 6 added: schemas/migrations/007-...)
sqlite3 "$L5" "DROP TABLE meta; ALTER TABLE agents DROP COLUMN spool_id;
  ALTER TABLE agents DROP COLUMN spool_first_seq; ALTER TABLE agents DROP COLUMN contact_ns;
  ALTER TABLE agents DROP COLUMN spool_batches; ALTER TABLE agents DROP COLUMN spool_bytes;
  DROP TABLE credit_notes; DROP TABLE usage_events; DROP TABLE charges;
  PRAGMA user_version = 5;"
expect 1 "let tallyd migrate it first" "$TALLY" ledger info --ledger "$L5"
cat > "$work/b.yaml" <<EOC
tallyd:
  data_dir: $work/b
  interval: 60s
  clock: fast-forward
  start: 2026-10-01T02:00:00Z
  end: 2026-10-01T03:00:00Z
  log_level: error
rrd:
  enabled: false
collectors:
  sim:
    vms: 2
    tenants: 1
    seed: 8
EOC
"$TALLYD" -q -c "$work/b.yaml" || bad "tallyd on the schema 5 ledger failed"
expect 0 "created by:   tally (before 0.9.0: not recorded)" "$TALLY" ledger info --ledger "$L5"
grep -q "^upgraded by:  tally $version ($rev" "$work/out" && ok "upgraded by names this build" ||
	bad "upgraded by: $(grep upgraded "$work/out" || echo missing)"
[ "$(sqlite3 "$L5" 'PRAGMA user_version')" = "$schema" ] && ok "migrated to schema $schema" || bad "not migrated"

# refusals
expect 1 "no ledger here" "$TALLY" ledger info --ledger "$work/none.db"
printf 'not a database' > "$work/junk.db"
expect 1 "not a tally ledger" "$TALLY" ledger info --ledger "$work/junk.db"
cp "$L" "$work/new.db"
sqlite3 "$work/new.db" "PRAGMA user_version = $((schema + 1))"
expect 1 "upgrade tally" "$TALLY" ledger info --ledger "$work/new.db"
expect 2 "expected info, check, verify or copy" "$TALLY" ledger infos --ledger "$L"

[ "$fails" -eq 0 ] || { echo "$fails failed"; exit 1; }
