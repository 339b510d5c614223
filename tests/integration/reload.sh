#!/bin/sh
# SIGHUP reads the config again (daemon/reload.h, docs/config.md
# "Reloading"), while a real-time simulated fleet is metered:
#   - an invalid new config is refused with one log line naming
#     file:line:col, and tallyd goes on with the running one (its token
#     still works);
#   - a valid one with a new token, a new alert rule, log level warning
#     and a new interval is taken: the new token is accepted and the old
#     one refused (401), the rule's alert appears on /api/v1/alerts, and
#     the interval (which needs a restart) is named in the log and not
#     applied;
#   - the ledger is exactly that of a tallyd beside it that was never
#     signalled (the same ticks: both start and stop at the same tenth of
#     a second).
# Exit 0 pass, else fail.
set -eu
B=${B:-build}
TALLYD=$PWD/$B/tallyd
for t in sqlite3 curl; do
	command -v $t >/dev/null || { echo "$t is not installed (scripts/deps.sh installs it)"; exit 1; }
done
work=$(mktemp -d /tmp/tally-reload-XXXXXX)
. tests/lib/cli.sh
pids=
trap 'for p in $pids; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
fails=0

OLD=old-token-0123456789abcdef
NEW=new-token-fedcba9876543210
start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
conf() { # $1 = name, $2 = token, $3 = interval, $4 = log level, $5 = extra alert rules
	cat <<EOC
tallyd:
  agent_id: reload
  data_dir: $work/$1
  interval: $3
  log_level: $4
ledger:
  commit_every: 1s
rrd:
  enabled: false
http:
  port: 0
  tokens:
    - token: $2
      admin: true
alerts:
  vm_down: true
$5
EOC
	sim_rt "$start"
}
RULE='  rules:
    - name: BusyCPU
      meter: cpu
      rate_above: 0
      for: 0s'
conf ref "$OLD" 1s info "" > "$work/ref.yaml"
conf hup "$OLD" 1s info "" > "$work/hup.yaml"

at_tenth 2
"$TALLYD" -q -c "$work/ref.yaml" 2>"$work/ref.log" & ref=$!
"$TALLYD" -q -c "$work/hup.yaml" 2>"$work/hup.log" & hup=$!
pids="$ref $hup"
tallyd_port "$work/hup.log" "$hup" 10 || exit 1
url=http://127.0.0.1:$PORT
code() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" "$url/api/v1/alerts"; }
# wait_log N TEXT: until the reloaded tallyd's log has TEXT N times (5 s)
wait_log() {
	i=0
	until [ "$(grep -c "$2" "$work/hup.log")" -ge "$1" ]; do
		i=$((i + 1)); [ $i -lt 50 ] || return 1
		sleep 0.1
	done
}
[ "$(code "$OLD")" = 200 ] && ok "the first token reads /api/v1/alerts" || bad "the first token: $(code "$OLD")"

# SIGUSR1 and SIGUSR2 (a logrotate habit: tallyd has no log file) are ignored
kill -USR1 "$hup"; kill -USR2 "$hup"
[ "$(code "$OLD")" = 200 ] && kill -0 "$hup" 2>/dev/null && ok "tallyd survives SIGUSR1 and SIGUSR2" ||
	{ bad "tallyd died on SIGUSR1 or SIGUSR2"; exit 1; }

# an invalid config: refused, the running one stays
sed 's/log_level: info/log_level: chatty/' "$work/hup.yaml" > "$work/hup.yaml.new" && mv "$work/hup.yaml.new" "$work/hup.yaml"
kill -HUP "$hup"
wait_log 1 "reload: " || true
kill -0 "$hup" 2>/dev/null && ok "tallyd survives SIGHUP with an invalid config" || { bad "tallyd died on SIGHUP"; cat "$work/hup.log"; exit 1; }
n=$(grep -c "reload: .*hup.yaml:5:14: key 'log_level'.*the running config stays" "$work/hup.log" || true)
[ "$n" = 1 ] && ok "the invalid config is refused in one log line naming file:line:col" ||
	bad "no (or not one) refusal line: $(grep reload "$work/hup.log")"
[ "$(code "$OLD")" = 200 ] && ok "after the refusal the running token still works" || bad "running token: $(code "$OLD")"

# a valid one: new token, a new rule, warning; a new interval (restart only)
conf hup "$NEW" 2s warning "$RULE" > "$work/hup.yaml"
kill -HUP "$hup"
wait_log 1 "reload: .* read again" || bad "the valid config was not taken in 5 s"
grep -q "reload: tallyd.interval changed in .*hup.yaml: not applied, that needs a restart" "$work/hup.log" &&
	ok "the new interval is named as needing a restart" || bad "no restart line: $(grep reload "$work/hup.log")"
[ "$(code "$NEW")" = 200 ] && ok "the new token is accepted" || bad "new token: $(code "$NEW")"
[ "$(code "$OLD")" = 401 ] && ok "the old token is refused (401)" || bad "old token: $(code "$OLD")"
i=0
until curl -s -H "Authorization: Bearer $NEW" "$url/api/v1/alerts" | grep -q '"alertname": *"BusyCPU"'; do
	i=$((i + 1)); [ $i -lt 60 ] || { bad "the new rule's alert did not appear in 6 s"; break; }
	sleep 0.1
done
[ $i -lt 60 ] && ok "the new alert rule is evaluated (BusyCPU on /api/v1/alerts)"

# both stop mid-second: the same ticks read; the ledgers hold the same usage
at_tenth 5
kill -TERM "$ref" "$hup"
wait "$ref" || bad "the reference tallyd exited $?"
wait "$hup" || bad "the reloaded tallyd exited $?"
pids=
# the listener's closing line is info: said under the reference's level,
# not under the reloaded one's (warning)
grep -q "http: .* connections accepted" "$work/ref.log" && ! grep -q "http: .* connections accepted" "$work/hup.log" &&
	ok "the new log level (warning) is in force" || bad "the info line at stop is not as the levels say"
usage_rows "$work/ref/ledger.db" > "$work/ref.txt"
usage_rows "$work/hup/ledger.db" > "$work/hup.txt"
rows=$(wc -l < "$work/ref.txt")
if [ "$rows" -gt 0 ] && cmp -s "$work/ref.txt" "$work/hup.txt"; then
	ok "the reloaded ledger equals the undisturbed one ($rows usage rows)"
else
	bad "the ledgers differ ($rows rows in the reference): $(diff "$work/ref.txt" "$work/hup.txt" | head -n 5)"
fi
echo "reload: $fails failed"
[ "$fails" -eq 0 ]
