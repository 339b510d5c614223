#!/bin/sh
# A firing windowed rate alert across restarts of a real-time tallyd,
# checked through a real Alertmanager (prometheus-alertmanager on
# 127.0.0.1, a high port, its own config and data dir):
# - a simulated fleet of 3 VMs, each using 5-95 % of its vCPUs; the rule
#   HighCPU (cpu rate above 0.01 CPU-seconds per second over a 5 s window,
#   for 2 s) fires for every VM;
# - once Alertmanager holds the 3 alerts, tallyd is stopped with SIGTERM
#   and started again committing every cycle (so a resolution would reach
#   Alertmanager at once), then killed with SIGKILL (between two commits:
#   commit_every 3 s) and started again;
# - meanwhile a poller reads Alertmanager's active alerts every 0.2 s.
# What must hold: every poll shows the same 3 alerts, each with the
# fingerprint and startsAt it had before the first restart (a resolution
# would drop it from the active list, a second page would come with a new
# startsAt), Alertmanager heard from each restarted tallyd (an alert's
# endsAt, a lease of 4 x resend, moved on), and the ledger's alerts table
# still says firing with the first startsAt. Before the fix, the window was
# empty after a restart and read 0: every alert resolved at the first cycle
# and fired again 2 s later.
# No durations are asserted: waits are bounded polls.
set -eu
B=${B:-build}
TALLYD=$PWD/$B/tallyd
. tests/lib/alertmanager.sh
for t in sqlite3 jq curl; do
	command -v $t >/dev/null || { echo "$t is not installed (scripts/deps.sh installs it)"; exit 77; }
done
[ -x "$AM" ] || { echo "prometheus-alertmanager is not installed (scripts/deps.sh installs it)"; exit 77; }
work=$(mktemp -d /tmp/tally-alertrestart-XXXXXX)
tpid="" apid="" ppid_=""
cleanup() {
	[ -n "$ppid_" ] && kill "$ppid_" 2>/dev/null && wait "$ppid_" 2>/dev/null
	[ -n "$tpid" ] && kill "$tpid" 2>/dev/null && wait "$tpid" 2>/dev/null
	[ -n "$apid" ] && kill "$apid" 2>/dev/null && wait "$apid" 2>/dev/null
	if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }

am_start
start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
conf() { # COMMIT_EVERY
	cat > "$work/t.yaml" <<EOC
tallyd:
  agent_id: alert-restart
  data_dir: $work/d
  interval: 1s
  log_level: info
ledger:
  commit_every: $1
rrd:
  enabled: false
collectors:
  sim:
    vms: 3
    tenants: 1
    hosts: 1
    seed: 3
    start: $start
    reboots_per_day: 0
    stops_per_day: 0
    migrations_per_day: 0
alerts:
  alertmanager: $AMURL
  resend: 5s
  rules:
    - {name: HighCPU, meter: cpu, rate_above: 0.01, window: 5s, for: 2s}
EOC
}
start_tallyd() { # LOGNAME
	"$TALLYD" -c "$work/t.yaml" 2>>"$work/$1" &
	tpid=$!
}
# the HighCPU alerts in Alertmanager's active list: "uuid fingerprint startsAt endsAt" lines
am_high() {
	curl -sf "$AMURL/api/v2/alerts" | jq -r '.[] | select(.labels.alertname == "HighCPU") |
		"\(.labels.uuid) \(.fingerprint) \(.startsAt) \(.endsAt)"' | sort
}
wait_for() { # DESCRIPTION COMMAND: poll COMMAND up to 30 s
	what=$1; shift
	i=0
	until "$@"; do
		i=$((i + 1))
		[ $i -lt 300 ] || { bad "$what: still not so after 30 s"; return 1; }
		kill -0 "$tpid" 2>/dev/null || { bad "$what: tallyd died"; cat "$work"/*.log; exit 1; }
		sleep 0.1
	done
	ok "$what"
}
three() { [ "$(am_high | wc -l)" -eq 3 ]; }
# Alertmanager heard from the tallyd started last: every lease moved past
# what it was when that tallyd started
moved() {
	am_high > "$work/now.txt"
	[ "$(wc -l < "$work/now.txt")" -eq 3 ] || return 1
	! grep -qxF -f "$work/before.txt" "$work/now.txt"
}
# enough cycles of the new tallyd for a resolution to have reached
# Alertmanager: its data time moves 4 s on in the ledger's agents table
cycles_on() {
	t=$(sqlite3 "$work/d/ledger.db" "SELECT max(last_time_ns) FROM agents" 2>/dev/null || echo 0)
	[ "${t:-0}" -ge "$1" ]
}

conf 3s
start_tallyd run1.log
wait_for "HighCPU fires for the 3 VMs" three
am_high | cut -d' ' -f1-3 > "$work/first.txt"
cat "$work/first.txt"
st0=$(sqlite3 "$work/d/ledger.db" "SELECT subject, state, fired_ns FROM alerts WHERE rule = 'HighCPU'
	ORDER BY subject")

# poll Alertmanager until the end
( while :; do am_high | cut -d' ' -f1-3 | tr '\n' ';'; echo; sleep 0.2; done ) > "$work/polls.txt" 2>/dev/null &
ppid_=$!

restart() { # HOW LOGNAME COMMIT_EVERY
	am_high > "$work/before.txt"
	t0=$(sqlite3 "$work/d/ledger.db" "SELECT max(last_time_ns) FROM agents")
	kill "-$1" "$tpid"
	if wait "$tpid" 2>/dev/null; then rc=0; else rc=$?; fi
	[ "$1" = KILL ] || [ "$rc" -eq 0 ] || bad "tallyd exited $rc after SIGTERM"
	tpid=""
	conf "$3"
	start_tallyd "$2"
	wait_for "after SIG$1: alertmanager heard from the new tallyd" moved || true
	wait_for "after SIG$1: the new tallyd ran 4 s of cycles" cycles_on $((t0 + 4000000000)) || true
	grep -q "resuming after the last committed cycle" "$work/$2" && ok "after SIG$1: resumed" ||
		bad "after SIG$1: did not resume: $(cat "$work/$2")"
}
restart TERM run2.log 0s
restart KILL run3.log 3s
sleep 1
kill "$ppid_"; wait "$ppid_" 2>/dev/null || true
ppid_=""

want=$(tr '\n' ';' < "$work/first.txt")
n=$(wc -l < "$work/polls.txt")
[ "$n" -ge 10 ] || bad "only $n polls of alertmanager"
other=$(grep -cvxF "$want" "$work/polls.txt" || true)
[ "$other" -eq 0 ] && ok "all $n polls: the same 3 alerts, fingerprints and startsAt" ||
	bad "$other of $n polls differ from the first: $(grep -vxF "$want" "$work/polls.txt" | sort | uniq -c | head -5)"
am_high | cut -d' ' -f1-3 > "$work/last.txt"
cmp -s "$work/first.txt" "$work/last.txt" && ok "alertmanager: one alert per VM, as first sent" ||
	bad "alertmanager now: $(cat "$work/last.txt"), first: $(cat "$work/first.txt")"
kill -TERM "$tpid"
wait "$tpid" || bad "tallyd did not stop cleanly"
tpid=""
st1=$(sqlite3 "$work/d/ledger.db" "SELECT subject, state, fired_ns FROM alerts WHERE rule = 'HighCPU'
	ORDER BY subject")
[ "$st1" = "$st0" ] && [ "$(echo "$st1" | grep -c '|firing|')" -eq 3 ] &&
	ok "ledger: still firing with the first startsAt" || bad "ledger: '$st1', was '$st0'"
rows=$(sqlite3 "$work/d/ledger.db" "SELECT count(*) FROM alert_windows")
[ "$rows" -gt 0 ] && ok "ledger: $rows window readings kept" || bad "ledger: no window readings"

[ "$fails" -eq 0 ] || { echo "$fails failed"; exit 1; }
echo "all alert restart checks passed"
