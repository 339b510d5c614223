#!/bin/sh
# A full disk stops ingest with an error and loses nothing already committed.
# tallyd fast-forwards a fleet into a ledger on a 3 MiB tmpfs until the disk
# is full: it must exit 1 naming the ledger and the full disk. The ledger it
# leaves must pass SQLite's integrity check, and when it is moved to a disk
# with room, tallyd resumes it and ends with exactly the ledger of a run that
# never hit the wall. Needs root (mount); skips with a message otherwise.
set -eu
B=${B:-build}
TALLYD=$PWD/$B/tallyd
work=$(mktemp -d /tmp/tally-diskfull-XXXXXX)
. tests/lib/cli.sh
small_tmpfs 3m
trap 'umount "$small" 2>/dev/null; rm -rf "$work"' EXIT

conf() { # $1 = ledger path, $2 = commit_every (the ledger's contents do not
	 # depend on it: tests/integration/crash.sh shows commit points do not matter)
	cat <<EOC
tallyd:
  agent_id: diskfull
  data_dir: $work/data
  interval: 60s
  clock: fast-forward
  start: 2026-10-01T00:00:00Z
  end: 2026-10-08T00:00:00Z
  log_level: error
ledger:
  path: $1
  commit_every: $2
rrd:
  enabled: false
collectors:
  sim:
    vms: 20
    hosts: 2
    seed: 5
    loss: 0.02
    reboots_per_day: 1
    stops_per_day: 0.5
    migrations_per_day: 0.5
EOC
}
conf "$small/ledger.db" 0s > "$work/full.yaml"
conf "$work/ref.db" 1s > "$work/ref.yaml"
conf "$work/moved.db" 1s > "$work/moved.yaml"

"$TALLYD" -q -c "$work/ref.yaml"

if "$TALLYD" -q -c "$work/full.yaml" 2>"$work/err"; then rc=0; else rc=$?; fi
cat "$work/err"
[ "$rc" -eq 1 ] || { echo "tallyd exited $rc on a full disk, expected 1"; exit 1; }
grep -q "$small/ledger.db" "$work/err" || { echo "the error does not name the ledger"; exit 1; }
grep -qi "full" "$work/err" || { echo "the error does not say the disk is full"; exit 1; }

# what was committed is intact
cp "$small/ledger.db" "$work/moved.db"
[ -f "$small/ledger.db-wal" ] && cp "$small/ledger.db-wal" "$work/moved.db-wal"
ok=$(sqlite3 "$work/moved.db" "PRAGMA integrity_check")
[ "$ok" = ok ] || { echo "ledger left by the full disk is damaged: $ok"; exit 1; }
committed=$(sqlite3 "$work/moved.db" "SELECT count(*) FROM usage")
[ "$committed" -gt 0 ] || { echo "nothing was committed before the disk filled: test too small"; exit 1; }
echo "committed before the disk filled: $committed usage rows"

# and it resumes to the same ledger as the run that had room
"$TALLYD" -q -c "$work/moved.yaml"
usage_rows "$work/ref.db" > "$work/ref.txt"
usage_rows "$work/moved.db" > "$work/moved.txt"
cmp -s "$work/ref.txt" "$work/moved.txt" || { echo "resumed ledger differs:"; diff "$work/ref.txt" "$work/moved.txt" | head; exit 1; }
echo "resumed ledger equals the reference: $(wc -l < "$work/ref.txt") usage rows"
