#!/bin/sh
# One writer per ledger (DESIGN.md; ledger/ledger.h): a second tallyd
# started on a ledger that a running tallyd writes is refused at once, exit
# 1, naming the holder's pid and host; the first goes on, and its ledger
# ends equal to that of a run that was alone (before the lock, both ran
# and every usage was counted twice). Readers (tally usage) and tally
# invoice --issue are not kept out. Both clocks:
# - fast-forward: A fast-forwards 20 days of a fleet; it is paused
#   (SIGSTOP) as soon as it holds the lock, so that B surely tries while A
#   is in the middle of its run; B is refused twice, A continues (SIGCONT)
#   and its ledger must equal a lone run's;
# - real time: a reference tallyd and A read the same simulated fleet from
#   the same first tick; B tries twice while they run, tally usage and
#   tally invoice --issue read and write A's ledger meanwhile; both are
#   stopped after the same tick and A's usage must equal the reference's.
set -eu
B=${B:-build}
TALLY=$PWD/$B/tally
TALLYD=$PWD/$B/tallyd
command -v sqlite3 >/dev/null || { echo "sqlite3 CLI missing (scripts/deps.sh installs it)"; exit 1; }
work=$(mktemp -d /tmp/tally-lock-XXXXXX)
pids=
trap 'for p in $pids; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
. tests/lib/cli.sh
fails=0
host=$(hostname)

ff_conf() { # $1 = ledger
	cat <<EOC
tallyd:
  agent_id: lock
  data_dir: $work/ff
  interval: 60s
  clock: fast-forward
  start: 2026-10-01T00:00:00Z
  end: 2026-10-21T00:00:00Z
  log_level: info
ledger:
  path: $1
rrd:
  enabled: false
collectors:
  sim:
    vms: 30
    hosts: 2
    seed: 3
    reboots_per_day: 1
    stops_per_day: 0.5
EOC
}

# second_refused LEDGER CONFIG HOLDER-PID: a second tallyd on LEDGER exits 1
# naming the holder (and its lock file), and the holder lives on. That the
# refused one leaves the ledger's bytes alone is in tests/unit/test_ledger.c:
# here the holder is writing them.
second_refused() {
	t0=$(date +%s%N)
	# (a timeout: without the lock, a second real-time tallyd would run on)
	if timeout 20 "$TALLYD" -q -c "$2" >"$work/b.out" 2>"$work/b.err"; then rc=0; else rc=$?; fi
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	if [ "$rc" -ne 1 ] || ! grep -qF "pid $3 on host $host" "$work/b.err" || ! grep -qF "$1.lock" "$work/b.err"; then
		echo "FAIL: second tallyd on $1: exit $rc (want 1 naming pid $3 on $host): $(cat "$work/b.err")"
		fails=$((fails + 1))
	else
		echo "ok   second tallyd refused in $ms ms: $(cat "$work/b.err")"
	fi
	kill -0 "$3" 2>/dev/null || { echo "FAIL: the holder $3 died"; fails=$((fails + 1)); }
}

# ---- fast-forward ----
ff_conf "$work/ff/ref.db" > "$work/ref.yaml"
ff_conf "$work/ff/a.db" > "$work/a.yaml"
t0=$(date +%s%N)
"$TALLYD" -q -c "$work/ref.yaml"
echo "a lone fast-forward run takes $(( ($(date +%s%N) - t0) / 1000000 )) ms"

"$TALLYD" -q -c "$work/a.yaml" 2>"$work/a.log" & a=$!
pids=$a
i=0
until [ -s "$work/ff/a.db" ]; do   # created after the lock is taken
	i=$((i + 1)); [ $i -lt 1000 ] || { echo "tallyd A never made its ledger"; cat "$work/a.log"; exit 1; }
	kill -0 "$a" 2>/dev/null || { echo "tallyd A died before it made its ledger"; cat "$work/a.log"; exit 1; }
	sleep 0.01
done
kill -STOP "$a"
second_refused "$work/ff/a.db" "$work/a.yaml" "$a"
second_refused "$work/ff/a.db" "$work/a.yaml" "$a"
kill -CONT "$a"
wait "$a" || { echo "FAIL: tallyd A exited $?"; fails=$((fails + 1)); }
pids=
# the lock went with A: the next writer resumes (nothing left to do)
expect 0 "" "$TALLYD" -q -c "$work/a.yaml"
usage_rows "$work/ff/ref.db" > "$work/ref.txt"
usage_rows "$work/ff/a.db" > "$work/a.txt"
[ -s "$work/ref.txt" ] || { echo "the reference run wrote no usage"; exit 1; }
if cmp -s "$work/ref.txt" "$work/a.txt"; then
	echo "ok   fast-forward: the ledger equals a lone run ($(wc -l < "$work/ref.txt") usage rows)"
else
	echo "FAIL: fast-forward ledger differs from a lone run:"; diff "$work/ref.txt" "$work/a.txt" | head
	fails=$((fails + 1))
fi

# ---- real time ----
start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
rt_conf() { # $1 = data dir
	cat <<EOC
tallyd:
  agent_id: lockrt
  data_dir: $1
  interval: 1s
  log_level: warning
rrd:
  enabled: false
EOC
	sim_rt "$start"
}
rt_conf "$work/rtref" > "$work/rtref.yaml"
rt_conf "$work/rta" > "$work/rta.yaml"
at_tenth 2   # just after a second boundary: both read the same first tick
"$TALLYD" -q -c "$work/rtref.yaml" & ref=$!
"$TALLYD" -q -c "$work/rta.yaml" & a=$!
pids="$ref $a"
sleep 1.5
second_refused "$work/rta/ledger.db" "$work/rta.yaml" "$a"
sleep 1.5
second_refused "$work/rta/ledger.db" "$work/rta.yaml" "$a"
# readers and the issuing of invoices do not wait for the writer
month=$(date -u +%Y-%m)
expect 0 "tenant-" "$TALLY" usage --ledger "$work/rta/ledger.db" --from "$month" --to "$month"
expect 0 "INVOICE" "$TALLY" invoice --ledger "$work/rta/ledger.db" --plan "$PWD/config/plan-example.yaml" \
	--period "$month" --issue --allow-incomplete
sleep 1
at_tenth 5
kill -TERM "$ref" "$a"
wait "$ref" || { echo "reference tallyd exited $? after SIGTERM"; exit 1; }
wait "$a" || { echo "FAIL: tallyd A exited $? after SIGTERM"; fails=$((fails + 1)); }
pids=
usage_rows "$work/rtref/ledger.db" > "$work/rtref.txt"
usage_rows "$work/rta/ledger.db" > "$work/rta.txt"
seqs=$(sqlite3 "$work/rta/ledger.db" "SELECT sum(last_seq) || ' ' || sum(batches) FROM agents")
cpu=$(sqlite3 "$work/rtref/ledger.db" "SELECT sum(quantity) FROM usage u JOIN meters m ON m.id = u.meter_id
  WHERE m.name = 'cpu'")
[ "${cpu:-0}" -gt 0 ] || { echo "no cpu usage in the reference ledger"; exit 1; }
if cmp -s "$work/rtref.txt" "$work/rta.txt"; then
	echo "ok   real time: the ledger equals the undisturbed run (cpu $cpu ns; seqs and batches $seqs)"
else
	echo "FAIL: real-time ledger differs from the undisturbed run:"; diff "$work/rtref.txt" "$work/rta.txt" | head
	fails=$((fails + 1))
fi
[ "$fails" -eq 0 ] || { echo "$fails failures"; exit 1; }
