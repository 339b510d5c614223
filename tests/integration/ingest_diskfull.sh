#!/bin/sh
# A full disk under the aggregator (issue 12): its ledger on a small tmpfs
# that the test fills to the last byte while two agents (bench/simagents)
# post a simulated fleet. The aggregator answers 503 with Retry-After,
# nothing half-committed; the agents keep their batches and wait; once the
# test frees the space, everything arrives, counted once: the ledger
# equals an all-in-one run of the same fleet, row for row, and its hash
# chain verifies. Needs root (mount); skipped (77) without.
set -eu
B=${B:-build}
TALLYD=$PWD/$B/tallyd
TALLY=$PWD/$B/tally
AGENTS=$PWD/$B/bench/simagents
command -v sqlite3 >/dev/null || { echo "sqlite3 is not installed (scripts/deps.sh installs it)"; exit 1; }
[ -x "$AGENTS" ] || { echo "$AGENTS is missing: make $B/bench/simagents"; exit 1; }
work=$(mktemp -d /tmp/tally-ingdf-XXXXXX)
. tests/lib/cli.sh
small_tmpfs 3m
apid= gpid=
trap 'set +e; [ -n "$gpid" ] && kill -9 "$gpid" 2>/dev/null; [ -n "$apid" ] && kill -9 "$apid" 2>/dev/null;
	umount "$small" 2>/dev/null; rm -rf "$work"' EXIT
fails=0
END=2026-10-01T03:00:00Z

fleet_ref "$work/ref" $END 20 2 3 9 || { echo "the all-in-one run failed"; exit 1; }

cat > "$work/agg.yaml" <<EOC
tallyd:
  role: aggregator
  data_dir: $work/agg
  log_level: info
ledger:
  path: $small/ledger.db
rrd:
  enabled: false
http:
  port: 0
  tokens:
    - {token: tok-0123456789abcdef-sim-host-0, agent: sim-host-0}
    - {token: tok-0123456789abcdef-sim-host-1, agent: sim-host-1}
EOC
"$TALLYD" -c "$work/agg.yaml" 2>"$work/agg.log" & apid=$!
tallyd_port "$work/agg.log" "$apid" 30 || exit 1
# its ledger opened (the open commits; the listener comes first): a full
# disk at the start is another test's (tallyd exits, and says to free space)
i=0
until curl -s "http://127.0.0.1:$PORT/metrics" | grep -q '^tally_ledger_write_failing '; do
	i=$((i + 1))
	[ $i -lt 300 ] || { echo "the aggregator did not open its ledger in 30 s"; cat "$work/agg.log"; exit 1; }
	sleep 0.1
done

# the disk full to the last byte before the agents start
dd if=/dev/zero of="$small/filler" bs=64k 2>/dev/null || true
dd if=/dev/zero of="$small/filler2" bs=512 2>/dev/null || true
[ "$(df --output=avail "$small" | tail -n 1 | tr -d ' ')" -eq 0 ] && ok "the tmpfs is full" || bad "the tmpfs is not full"
"$AGENTS" -u "http://127.0.0.1:$PORT" --token-prefix tok-0123456789abcdef- --vms 20 --hosts 2 --tenants 3 \
	--seed 9 --end $END --interval 10s --max-frames 64 > "$work/agents.out" 2>&1 & gpid=$!
i=0
until grep -q "refused (503)" "$work/agg.log"; do
	i=$((i + 1))
	[ $i -lt 300 ] || { bad "no 503 in 30 s"; break; }
	kill -0 "$gpid" 2>/dev/null || { bad "the agents stopped: $(cat "$work/agents.out")"; break; }
	sleep 0.1
done
ok "full disk: $(grep -m1 'refused (503)' "$work/agg.log" | sed 's/^.*ingest:/ingest:/')"
kill -0 "$apid" 2>/dev/null && ok "the aggregator runs on while its disk is full" || bad "the aggregator died"
[ "$(sqlite3 "$small/ledger.db" "SELECT count(*) FROM agents" 2>/dev/null || echo 0)" = 0 ] &&
	ok "nothing committed while the disk is full" || bad "something was committed on a full disk"
sleep 1
rm -f "$small/filler" "$small/filler2"
if wait "$gpid"; then
	ok "every batch arrived once the space was free: $(cat "$work/agents.out")"
else
	bad "the agents failed: $(cat "$work/agents.out")"
fi
gpid=
grep -q "503: " "$work/agents.out" && ok "the agents were answered 503 and waited" || bad "the agents saw no 503"
kill -TERM "$apid"
if wait "$apid"; then ok "the aggregator stopped cleanly"; else bad "the aggregator exited $?"; fi
apid=
usage_rows "$work/ref/ledger.db" > "$work/ref.rows"
usage_rows "$small/ledger.db" > "$work/agg.rows"
n=$(wc -l < "$work/ref.rows")
if [ "$n" -gt 100 ] && cmp -s "$work/ref.rows" "$work/agg.rows"; then
	ok "the aggregator's usage equals the all-in-one run's, all $n rows"
else
	bad "the ledgers differ ($n rows): $(diff "$work/ref.rows" "$work/agg.rows" | head -n 4)"
fi
for a in sim-host-0 sim-host-1; do
	r=$(sqlite3 "$small/ledger.db" "SELECT last_seq || ' ' || batches FROM agents WHERE agent = '$a'")
	[ "${r% *}" = "${r#* }" ] && [ "${r% *}" -gt 1000 ] && ok "$a: ${r% *} batches, each counted once" ||
		bad "$a: last seq and batches: $r"
done
expect 0 "ok: " "$TALLY" ledger verify --ledger "$small/ledger.db"

[ "$fails" -eq 0 ] || { echo "$fails failed"; exit 1; }
