#!/bin/sh
# bench/ledger_checks.sh TALLYD TALLY DIR [RUNS]: what the ledger's checks
# cost on a month of 1000 VMs with 10 meters (7,440,000 usage rows, as
# bench_invoice builds them), the figures docs/ledger.md quotes:
#   - SQLite's own CLI, `PRAGMA integrity_check` and `quick_check` (the
#     floor: the peer these are measured beside);
#   - `tally ledger check` (the same integrity_check through tally);
#   - the upgrade of a ledger without a hash chain: tallyd opens it, runs
#     the full check and seals every hour (one pass over the usage);
#   - `tally ledger verify` (the chain recomputed from the whole usage).
# Medians of RUNS (default 3). Nothing is asserted. Needs the sqlite3 CLI.
set -eu
TALLYD=$1 TALLY=$2 dir=$3 runs=${4:-3}
mkdir -p "$dir/d"
L=$dir/d/ledger.db

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
secs() { # COMMAND...: wall seconds it took
	t0=$(date +%s%N)
	"$@" > /dev/null 2>&1 || true
	echo "$(( $(date +%s%N) - t0 ))" | awk '{ printf "%.2f\n", $1 / 1e9 }'
}
runs_of() { i=0; while [ $i -lt "$runs" ]; do secs "$@"; i=$((i + 1)); done | median; }

cat > "$dir/t.yaml" <<EOC
tallyd:
  agent_id: bench
  data_dir: $dir/d
  interval: 60s
  clock: fast-forward
  start: 2026-10-01T00:00:00Z
  end: 2026-10-01T00:01:00Z
  log_level: info
rrd:
  enabled: false
collectors:
  sim:
    vms: 1
EOC
# a ledger as the previous schema wrote it: no chain
"$TALLYD" -q -c "$dir/t.yaml" 2>/dev/null
sqlite3 "$L" > /dev/null <<'EOS'
PRAGMA synchronous = OFF;
BEGIN;
DELETE FROM usage; DELETE FROM series;
DROP TABLE chain_hours; DROP TABLE chain;
WITH RECURSIVE v(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM v WHERE i < 1000),
 m(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM m WHERE j < 10),
 h(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM h WHERE k < 743)
INSERT INTO usage (resource_id, meter_id, device, hour_ns, quantity, spanned_ns, covered_ns, samples)
SELECT i, j, '', 1790812800000000000 + k * 3600000000000,
       CASE WHEN j IN (2, 3, 4, 8) THEN 3600.0 * (1 + i % 4) ELSE (i * 7919 + k * 104729 + j) * 1000 END,
       3600000000000, 3600000000000, 360 FROM v, m, h;
PRAGMA user_version = 4;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
EOS
echo "ledger: $(sqlite3 "$L" "SELECT count(*) FROM usage") usage rows, $(( $(stat -c %s "$L") / 1000000 )) MB"
echo "sqlite3 CLI integrity_check (peer):  $(runs_of sqlite3 "$L" "PRAGMA integrity_check") s"
echo "sqlite3 CLI quick_check (peer):      $(runs_of sqlite3 "$L" "PRAGMA quick_check") s"
echo "tally ledger check:                  $(runs_of "$TALLY" ledger check --ledger "$L") s"
t=$(secs "$TALLYD" -c "$dir/t.yaml")
echo "tallyd upgrading it (full check + sealing $(sqlite3 "$L" "SELECT hours FROM chain WHERE id = 1") hours): $t s"
echo "tally ledger verify:                 $(runs_of "$TALLY" ledger verify --ledger "$L") s"
"$TALLY" ledger verify --ledger "$L" | cut -c1-160
