#!/bin/sh
# Steps of the wall clock during a real-time run (docs/clock.md). Two
# tallyds read the same simulated fleet (same seed and start: its counters
# are the same functions of the time that passes) from the same first tick,
# at a 1 s interval with max_gap 3 s: one undisturbed, the reference; the
# other under an LD_PRELOAD shim built here, which adds an offset, read from
# a file the test changes, to CLOCK_REALTIME only (clock_gettime,
# gettimeofday, time, and absolute CLOCK_REALTIME sleeps), as an NTP step
# would; CLOCK_MONOTONIC is left alone. (A time namespace offsets only
# MONOTONIC and BOOTTIME, so it cannot step the wall clock; faketime is not
# needed for this.) The wall clock of the second one steps forward 20
# minutes, then back 10 minutes. Both are stopped after the same tick.
# What must hold for the stepped run:
# - it logs each step once, and /metrics counts them
#   (tally_clock_steps_total 2, 1200 s skipped, data time 600 s ahead);
# - no silence: no silent/heard events, and `tally sla` (a class with a 1 s
#   grace) finds no downtime and no incident;
# - usage equals the truth: every series' total (counters exactly, gauges
#   integrated over time to the millisecond) and its spanned and covered
#   time equal the reference's, so the 20 minutes skipped were not billed
#   and no growth went missing or was counted twice;
# - its readings are stamped 1200 s after the reference's (data time
#   followed the forward step, not the backward one: never back).
# Before the fix the forward step made every VM silent for 20 minutes (a
# 1200 s interval > max_gap: downtime, gauges integrated over it) and the
# backward one stopped the readings until the wall clock came back.
set -eu
. tests/lib/tallyd.sh
B=${B:-build}
TALLYD=$PWD/$B/tallyd
TALLY=$PWD/$B/tally
for t in sqlite3 jq curl cc; do
	command -v $t >/dev/null || { echo "$t is not installed (scripts/deps.sh installs it)"; exit 77; }
done
work=$(mktemp -d /tmp/tally-clockstep-XXXXXX)
pids=
trap 'for p in $pids; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }

# ---- the shim: CLOCK_REALTIME + the offset (ns) in $CLOCKSHIM_FILE ----
cat > "$work/shim.c" <<'EOC'
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long offset_ns(void)
{
	static const char *path;
	char buf[32];
	long long v = 0;
	if (!path && !(path = getenv("CLOCKSHIM_FILE")))
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		v = strtoll(buf, NULL, 10);
	}
	return v;
}

static void add(struct timespec *ts, long long ns)
{
	long long t = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + ns;
	ts->tv_sec = t / 1000000000LL;
	ts->tv_nsec = t % 1000000000LL;
}

static int realtime(clockid_t c)
{
	return c == CLOCK_REALTIME || c == CLOCK_REALTIME_COARSE;
}

int clock_gettime(clockid_t c, struct timespec *ts)
{
	int rc = (int)syscall(SYS_clock_gettime, c, ts);
	if (rc == 0 && realtime(c))
		add(ts, offset_ns());
	return rc;
}

int gettimeofday(struct timeval *tv, void *tz)
{
	struct timespec ts;
	(void)tz;
	if (clock_gettime(CLOCK_REALTIME, &ts))
		return -1;
	tv->tv_sec = ts.tv_sec;
	tv->tv_usec = ts.tv_nsec / 1000;
	return 0;
}

time_t time(time_t *t)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (t)
		*t = ts.tv_sec;
	return ts.tv_sec;
}

int clock_nanosleep(clockid_t c, int flags, const struct timespec *req, struct timespec *rem)
{
	struct timespec r = *req;
	if (realtime(c) && (flags & TIMER_ABSTIME))
		add(&r, -offset_ns());
	long rc = syscall(SYS_clock_nanosleep, c, flags, &r, rem);
	return rc < 0 ? -(int)rc : (int)rc;
}
EOC
cc -shared -fPIC -O1 -o "$work/clockshim.so" "$work/shim.c"
echo 0 > "$work/offset"
# the shim works: date under it is 20 minutes ahead
now=$(date +%s)
shifted=$(echo 1200000000000 > "$work/offset"; CLOCKSHIM_FILE=$work/offset LD_PRELOAD=$work/clockshim.so date +%s)
echo 0 > "$work/offset"
[ $((shifted - now)) -ge 1199 ] && [ $((shifted - now)) -le 1201 ] && ok "the shim steps date by 1200 s" ||
	{ echo "the shim does not work: $now -> $shifted"; exit 1; }

start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
conf() { # DATA_DIR
	cat <<EOC
tallyd:
  agent_id: clockstep
  data_dir: $1
  interval: 1s
  log_level: info
ledger:
  max_gap: 3s
rrd:
  enabled: false
http:
  port: 0
collectors:
  sim:
    vms: 4
    tenants: 2
    hosts: 2
    seed: 11
    start: $start
    reboots_per_day: 0
    stops_per_day: 0
    migrations_per_day: 0
EOC
}
conf "$work/ref" > "$work/ref.yaml"
conf "$work/step" > "$work/step.yaml"

# start both just after a second boundary: the same first tick
while [ "$(date +%N | cut -c1)" != 2 ]; do sleep 0.05; done
"$TALLYD" -c "$work/ref.yaml" 2> "$work/ref.log" & ref=$!
# under ASan (make check SANITIZE=1) the shim comes before ASan's runtime
CLOCKSHIM_FILE=$work/offset LD_PRELOAD=$work/clockshim.so \
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
	"$TALLYD" -c "$work/step.yaml" 2> "$work/step.log" & step=$!
pids="$ref $step"
sleep 3.3
echo 1200000000000 > "$work/offset"     # forward 20 minutes
sleep 3.3
echo 600000000000 > "$work/offset"      # back 10 minutes
sleep 3.3
kill -0 "$step" 2>/dev/null || { echo "the stepped tallyd died"; cat "$work/step.log"; exit 1; }
tallyd_port "$work/step.log" "$step" || exit 1
port=$PORT
curl -sf "http://127.0.0.1:$port/metrics" > "$work/metrics.txt" || bad "no /metrics from the stepped tallyd"
# stop both in the middle of a second: both have read the same last tick
while [ "$(date +%N | cut -c1)" != 5 ]; do sleep 0.05; done
kill -TERM "$ref" "$step"
wait "$ref" || bad "reference tallyd exited $? after SIGTERM"
wait "$step" || bad "stepped tallyd exited $? after SIGTERM"
pids=

# ---- what the operator sees: the log and /metrics ----
n=$(grep -c "clock: the wall clock stepped forward by 1200.000 s; data time follows it" "$work/step.log" || true)
[ "$n" -eq 1 ] && ok "log: the forward step, once" || bad "log: forward step said $n times: $(grep clock: "$work/step.log")"
n=$(grep -c "clock: the wall clock stepped back by 600.000 s; data time runs on at the real rate, 600.000 s ahead" "$work/step.log" || true)
[ "$n" -eq 1 ] && ok "log: the backward step, once" || bad "log: backward step said $n times: $(grep clock: "$work/step.log")"
n=$(grep -c "clock:" "$work/ref.log" || true)
[ "$n" -eq 0 ] || bad "the reference saw a step: $(grep clock: "$work/ref.log")"
m() { sed -n "s/^$1 //p" "$work/metrics.txt"; }
[ "$(m tally_clock_steps_total)" = 2 ] && [ "$(m tally_clock_skipped_seconds_total)" = 1200 ] &&
	[ "$(m tally_clock_ahead_seconds)" = 600 ] && ok "/metrics: 2 steps, 1200 s skipped, 600 s ahead" ||
	bad "/metrics: steps '$(m tally_clock_steps_total)' skipped '$(m tally_clock_skipped_seconds_total)' ahead '$(m tally_clock_ahead_seconds)'"

# ---- no silence, no downtime ----
q() { sqlite3 "$1" "$2"; }
for d in ref step; do
	n=$(q "$work/$d/ledger.db" "SELECT count(*) FROM events WHERE type IN ('silent', 'heard')")
	[ "$n" -eq 0 ] && ok "$d: no silent/heard events" || bad "$d: $n silent/heard events"
done
cat > "$work/plan.yaml" <<'EOP'
plan: clockstep
currency: EUR
versions:
  - from: 2026-01-01
    prices:
      - {meter: instance, unit: instance-hour, price: 0.05}
sla:
  grace: 1s
  classes:
    - name: all
      target: 99.9%
      credits:
        - {below: 99.9%, credit: 10%}
EOP
from=$(date -u -d "$start - 1 hour" +%Y-%m-%dT%H:00:00Z)
to=$(date -u -d "$start + 2 hours" +%Y-%m-%dT%H:00:00Z)
"$TALLY" sla --ledger "$work/step/ledger.db" --plan "$work/plan.yaml" --from "$from" --to "$to" \
	--format json > "$work/sla.json"
got=$(jq -c '[(.vms | length), ([.vms[].downtime_seconds] | add), ([.vms[].incidents | length] | add)]' "$work/sla.json")
[ "$got" = "[4,0,0]" ] && ok "tally sla: 4 VMs, no downtime, no incident" || bad "tally sla: [VMs, downtime, incidents] = $got"

# ---- usage equals the truth (the undisturbed run) ----
totals() {
	sqlite3 "$1" <<'EOS'
.mode list
SELECT r.uuid, m.name, u.device,
       CASE m.kind WHEN 'gauge' THEN printf('%.3f', sum(u.quantity)) ELSE sum(u.quantity) END,
       sum(u.spanned_ns), sum(u.covered_ns)
  FROM usage u JOIN resources r ON r.id = u.resource_id JOIN meters m ON m.id = u.meter_id
  GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
EOS
}
totals "$work/ref/ledger.db" > "$work/ref.txt"
totals "$work/step/ledger.db" > "$work/step.txt"
series=$(wc -l < "$work/ref.txt")
[ "$series" -ge 40 ] || bad "the reference has only $series series"
spanned=$(q "$work/ref/ledger.db" "SELECT max(spanned_ns) / 1000000000 FROM (SELECT sum(spanned_ns) AS spanned_ns
	FROM usage GROUP BY resource_id, meter_id, device)")
[ "$spanned" -ge 8 ] || bad "the reference spans only $spanned s"
if cmp -s "$work/ref.txt" "$work/step.txt"; then
	ok "all $series series: totals, spanned and covered time equal to the undisturbed run (${spanned} s)"
else
	bad "totals differ from the undisturbed run:"
	diff "$work/ref.txt" "$work/step.txt" | head -10
fi
lr=$(q "$work/ref/ledger.db" "SELECT max(last_ns) FROM series")
ls=$(q "$work/step/ledger.db" "SELECT max(last_ns) FROM series")
[ $((ls - lr)) -eq 1200000000000 ] && ok "the stepped run's last reading is stamped 1200 s later" ||
	bad "last readings: reference $lr, stepped $ls (difference $((ls - lr)) ns, want 1200 s)"

[ "$fails" -eq 0 ] || { echo "$fails failed"; exit 1; }
echo "all clock step checks passed"
