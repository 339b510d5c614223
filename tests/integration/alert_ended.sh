#!/bin/sh
# Alerts of VMs whose life ended without a final reading (a collector that
# read a domain in the middle of its destroy: the final reading is lost,
# the stop event still comes). The simulated fleet loses every final
# reading (collectors.sim.final_loss: 1) while its 6 VMs stop and start
# again over 12 hours, fast-forwarded at a 60 s interval. The oracle is the
# ledger's events table (what the sim reported), read with sqlite3:
# - StaleData (after 3 intervals without a reading) is never raised: every
#   silence of a VM is a stop, which ended its life (before the fix every
#   stop longer than 3 minutes raised it, and it stayed firing);
# - the rule BigVCPU (vcpus above 0) is, per VM, resolved at the VM's last
#   stop when its last event is a stop, else firing since the first tick
#   after its last start (the first tick of the period when it never
#   stopped).
set -eu
B=${B:-build}
TALLYD=$PWD/$B/tallyd
command -v sqlite3 >/dev/null || { echo "sqlite3 is not installed (scripts/deps.sh installs it)"; exit 77; }
work=$(mktemp -d /tmp/tally-alertended-XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }

cat > "$work/t.yaml" <<EOC
tallyd:
  agent_id: alert-ended
  data_dir: $work/d
  interval: 60s
  clock: fast-forward
  start: 2026-10-01T00:00:00Z
  end: 2026-10-01T12:00:00Z
  log_level: error
rrd:
  enabled: false
collectors:
  sim:
    vms: 6
    hosts: 1
    seed: 5
    final_loss: 1
    reboots_per_day: 0
    stops_per_day: 12
    migrations_per_day: 0
alerts:
  stale_intervals: 3
  rules:
    - {name: BigVCPU, meter: vcpus, above: 0}
EOC
"$TALLYD" -q -c "$work/t.yaml"
q() { sqlite3 "$work/d/ledger.db" "$1"; }

stops=$(q "SELECT count(*) FROM events WHERE type = 'stopped'")
finals=$(q "SELECT count(*) FROM series WHERE flags & 2")  # SERIES_ENDED
[ "$stops" -ge 6 ] && ok "$stops stops in the period" || bad "only $stops stops: choose another seed"
[ "$finals" -eq 0 ] && ok "no series ended by a final reading" || bad "$finals series ended by a final reading"
# the silences the stops made are longer than StaleData's 3 minutes
long=$(q "SELECT count(*) FROM events s WHERE s.type = 'stopped' AND coalesce((SELECT min(time_ns)
	FROM events t WHERE t.resource_id = s.resource_id AND t.type = 'started' AND t.time_ns > s.time_ns),
	(SELECT max(last_time_ns) FROM agents)) - s.time_ns > 240000000000")
[ "$long" -ge 1 ] && ok "$long stops longer than 4 minutes" || bad "no stop long enough to go stale"

n=$(q "SELECT count(*) FROM alerts WHERE rule = 'StaleData'")
[ "$n" -eq 0 ] && ok "StaleData never raised" ||
	bad "StaleData raised: $(q "SELECT subject, state, fired_ns FROM alerts WHERE rule = 'StaleData'")"

# per VM: its last start or stop, and the first tick after a start
q "SELECT r.uuid, coalesce((SELECT type || ' ' || time_ns FROM events e WHERE e.resource_id = r.id
	AND e.type IN ('started', 'stopped') ORDER BY time_ns DESC LIMIT 1), 'none 0')
	FROM resources r ORDER BY r.uuid" | tr '|' ' ' > "$work/last.txt"
[ "$(wc -l < "$work/last.txt")" -eq 6 ] || bad "$(wc -l < "$work/last.txt") VMs in the ledger, want 6"
first_tick=$(( $(date -u -d 2026-10-01T00:00:00Z +%s) * 1000000000 ))
while read -r uuid type t; do
	case $type in
	stopped) want="resolved|$t" ;;
	started) want="firing|$(( (t / 60000000000 + 1) * 60000000000 ))" ;;
	*) want="firing|$first_tick" ;;
	esac
	got=$(q "SELECT state || '|' || CASE state WHEN 'resolved' THEN resolved_ns ELSE fired_ns END
		FROM alerts WHERE rule = 'BigVCPU' AND subject = '$uuid'")
	[ "$got" = "$want" ] && ok "$uuid: last $type: BigVCPU $got" || bad "$uuid: last $type: BigVCPU '$got', want $want"
done < "$work/last.txt"

[ "$fails" -eq 0 ] || { echo "$fails failed"; exit 1; }
echo "all ended-life alert checks passed"
