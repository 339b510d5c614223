#!/bin/sh
# Alerting against a real Alertmanager (prometheus-alertmanager on 127.0.0.1,
# a high port, its own config and data dir):
# - config mistakes in `alerts:` are exit 2 with file:line:col (tallyd -n);
# - a probe run (no alerts) fast-forwards a 2-VM simulated fleet that crashes
#   VMs; the ledger's events table (what the sim reported, read with sqlite3)
#   gives the first crash T1 of a VM and its restart T2;
# - run A stops mid-crash (serving on): Alertmanager's own API must show one
#   active VMDown alert for that VM with the right labels and startsAt = T1;
#   /api/v1/alerts shows it to the admin and the VM's tenant only;
# - run B restarts tallyd mid-crash: Alertmanager must still hold exactly
#   one such alert, with the same fingerprint and startsAt (no second page),
#   and must have heard from B (the alert's lease, endsAt, moves on);
# - run C goes past the restart: the alert must leave Alertmanager's active
#   list. Firing alerts are sent with endsAt = now + 4 x resend (4 min here),
#   so within the bounded wait only tallyd's resolution can end it;
# - run E with a rate plan (http.plan) whose SLA class promises 99.999 %:
#   Alertmanager must receive SLABurn for the VM, starting when the crash
#   used up the month's error budget (worked out here from the ledger's
#   first sight and crash time), still active after the VM is back, seen by
#   its tenant only; `tally sla` says the VM is below its target;
# - run D with Alertmanager gone: the period is still ingested, the alert
#   fires in tallyd, the failed POSTs are retried, counted and logged.
# No durations are asserted: waits are bounded polls.
set -eu
B=${B:-build}
TALLYD=$PWD/$B/tallyd
. tests/lib/alertmanager.sh
for t in sqlite3 jq curl promtool; do
	command -v $t >/dev/null || { echo "$t is not installed (scripts/deps.sh installs it)"; exit 77; }
done
[ -x "$AM" ] || { echo "prometheus-alertmanager is not installed (scripts/deps.sh installs it)"; exit 77; }
work=$(mktemp -d /tmp/tally-alerts-XXXXXX)
tpid="" apid=""
cleanup() {
	[ -n "$tpid" ] && kill "$tpid" 2>/dev/null && wait "$tpid" 2>/dev/null
	[ -n "$apid" ] && kill "$apid" 2>/dev/null && wait "$apid" 2>/dev/null
	if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
fails=0
. tests/lib/cli.sh
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }

# ---- config mistakes: exit 2, file:line:col ----
check_cfg() { # NAME WANT FRAGMENT (alerts section on stdin)
	{ printf 'tallyd:\n  interval: 10s\ncollectors:\n  sim: {}\n'; cat; } > "$work/$1.yaml"
	if "$TALLYD" -n -c "$work/$1.yaml" > "$work/out" 2>&1; then got=0; else got=$?; fi
	if [ "$got" -eq "$2" ] && grep -qF -- "$3" "$work/out"; then ok "$1: $(cat "$work/out")"
	else bad "$1: exit $got (want $2): $(cat "$work/out") (want '$3')"; fi
}
check_cfg unknown_meter 2 "unknown_meter.yaml:8:14: key 'meter': unknown meter 'cpu.util'" <<'Y'
alerts:
  rules:
    - name: HighCPU
      meter: cpu.util
      rate_above: 0.9
Y
check_cfg unknown_key 2 "unknown_key.yaml:9:7: unknown key 'window_size' in 'rules'" <<'Y'
alerts:
  rules:
    - name: HighCPU
      meter: cpu
      window_size: 5m
      rate_above: 0.9
Y
check_cfg gauge_rate 2 "gauge_rate.yaml:9:7: key 'rate_above': meter 'memory' is a gauge; use above or below" <<'Y'
alerts:
  rules:
    - name: BigVM
      meter: memory
      rate_above: 1
Y
check_cfg reserved_label 2 "key 'labels': 'tenant' is set by tally itself" <<'Y'
alerts:
  rules:
    - name: HighCPU
      meter: cpu
      rate_above: 0.9
      labels: {tenant: x}
Y
check_cfg good 0 "good.yaml: ok" <<'Y'
alerts:
  alertmanager: http://127.0.0.1:9093/
  resend: 30s
  rules:
    - {name: HighCPU, meter: cpu, rate_above: 0.9, for: 2m, severity: warning, labels: {team: ops}}
    - {name: LowMemory, meter: memory, below: 1e9, annotations: {runbook: "https://wiki/x"}}
Y

# ---- the oracle: a probe run without alerts, read from its ledger ----
fleet() { # DATA_DIR END [extra sections]
	cat <<EOC
tallyd:
  agent_id: alerts-test
  data_dir: $1
  interval: 10s
  clock: fast-forward
  start: 2026-10-01T00:00:00Z
  end: $2
  log_level: info
rrd:
  enabled: false
collectors:
  sim:
    vms: 2
    tenants: 2
    seed: 1
    reboots_per_day: 0
    stops_per_day: 0
    migrations_per_day: 0
    crashes_per_day: 12
EOC
}
fleet "$work/probe" 2026-10-01T06:00:00Z > "$work/probe.yaml"
"$TALLYD" -q -c "$work/probe.yaml"
PL=$work/probe/ledger.db
row=$(sqlite3 "$PL" "SELECT r.uuid, r.name, r.tenant, e.time_ns FROM events e JOIN resources r
	ON r.id = e.resource_id WHERE e.type = 'crashed' ORDER BY e.time_ns LIMIT 1")
[ -n "$row" ] || { echo "the probe run has no crash: choose another seed"; exit 1; }
UUID=$(echo "$row" | cut -d'|' -f1)
VNAME=$(echo "$row" | cut -d'|' -f2)
VTENANT=$(echo "$row" | cut -d'|' -f3)
T1_NS=$(echo "$row" | cut -d'|' -f4)
T2_NS=$(sqlite3 "$PL" "SELECT min(e.time_ns) FROM events e JOIN resources r ON r.id = e.resource_id
	WHERE r.uuid = '$UUID' AND e.type = 'started' AND e.time_ns > $T1_NS")
[ -n "$T2_NS" ] || { echo "the crashed VM does not restart in the probe period"; exit 1; }
T1=$((T1_NS / 1000000000)) T2=$((T2_NS / 1000000000))
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
END_A=$(( T1 - T1 % 10 + 60 ))
END_B=$(( END_A + 120 ))
END_C=$(( T2 - T2 % 10 + 60 ))
[ "$END_B" -lt "$T2" ] || { echo "the crash is shorter than runs A and B need: choose another seed"; exit 1; }
echo "probe: $VNAME ($UUID, $VTENANT) crashed at $(iso $T1), started at $(iso $T2)"

# ---- Alertmanager on loopback ----
am_start

ADMIN=admin-0123456789abcdef
TOK0=tenant00-0123456789abcdef
TOK1=tenant01-0123456789abcdef
DATA=$work/d PLAN_LINE=
start_tallyd() { # END_SECONDS LOGNAME
	{ fleet "$DATA" "$(iso "$1")"
	  cat <<EOC
http:
  port: 0
  $PLAN_LINE
  serve_after_end: true
  tokens:
    - {token: $ADMIN, admin: true}
    - {token: $TOK0, tenant: tenant-00}
    - {token: $TOK1, tenant: tenant-01}
alerts:
  alertmanager: $AMURL
  resend: 1m
  timeout: 5s
EOC
	} > "$work/t.yaml"
: > "$work/$2"
	"$TALLYD" -c "$work/t.yaml" 2>>"$work/$2" &
	tpid=$!
	wait_serving "$work/$2" "$tpid"
	URL=http://127.0.0.1:$PORT
}
stop_tallyd() {
	kill "$tpid"
	wait "$tpid" || { bad "tallyd did not stop cleanly"; }
	tpid=""
}
# the VMDown alerts for our VM in Alertmanager's active list, as JSON lines
am_alerts() {
	curl -sf "$AMURL/api/v2/alerts" | jq -c --arg u "$UUID" \
		'.[] | select(.labels.alertname == "VMDown" and .labels.uuid == $u)'
}
# wait_for DESCRIPTION COMMAND: poll COMMAND (true/false) up to 30 s
wait_for() {
	what=$1; shift
	i=0
	until "$@"; do
		i=$((i + 1))
		[ $i -lt 300 ] || { bad "$what: still not so after 30 s"; return 1; }
		sleep 0.1
	done
	ok "$what"
}
have_alert() { [ "$(am_alerts | wc -l)" -ge 1 ]; }
no_alert() { [ "$(am_alerts | wc -l)" -eq 0 ]; }

# ---- run A: stops mid-crash ----
start_tallyd "$END_A" a.log
wait_for "run A: alertmanager received VMDown for $VNAME" have_alert || true
am_alerts > "$work/a.json"
[ "$(wc -l < "$work/a.json")" -eq 1 ] || bad "run A: $(wc -l < "$work/a.json") VMDown alerts for the VM, want 1"
a=$(head -n 1 "$work/a.json")
want_labels=$(jq -cn --arg u "$UUID" --arg n "$VNAME" --arg t "$VTENANT" \
	'{alertname: "VMDown", severity: "critical", uuid: $u, name: $n, tenant: $t}')
got_labels=$(echo "$a" | jq -c '.labels | {alertname, severity, uuid, name, tenant}')
[ "$got_labels" = "$want_labels" ] && ok "run A: labels $got_labels" || bad "run A: labels $got_labels, want $want_labels"
echo "$a" | jq -e '.labels.host | startswith("sim-host-")' > /dev/null && ok "run A: host label" ||
	bad "run A: host label: $(echo "$a" | jq -c .labels)"
starts_a=$(echo "$a" | jq -r '.startsAt | sub("\\.0+Z$"; "Z")')
[ "$starts_a" = "$(iso $T1)" ] && ok "run A: startsAt $starts_a = the crash" ||
	bad "run A: startsAt $starts_a, want the crash $(iso $T1)"
[ "$(echo "$a" | jq -r .status.state)" = active ] && ok "run A: active" || bad "run A: state $(echo "$a" | jq -c .status)"
fp_a=$(echo "$a" | jq -r .fingerprint)
ends_a=$(echo "$a" | jq -r .endsAt)
echo "$a" | jq -e '.generatorURL | test("/api/v1/alerts$")' > /dev/null && ok "run A: generatorURL" ||
	bad "run A: generatorURL $(echo "$a" | jq -r .generatorURL)"

# our own API: the admin and the VM's tenant see it, the other tenant does not
other=$([ "$VTENANT" = tenant-00 ] && echo "$TOK1" || echo "$TOK0")
mine=$([ "$VTENANT" = tenant-00 ] && echo "$TOK0" || echo "$TOK1")
sel='[.alerts[] | select(.labels.alertname == "VMDown" and .labels.uuid == $u and .state == "firing")] | length'
n=$(curl -sf -H "Authorization: Bearer $ADMIN" "$URL/api/v1/alerts" | jq --arg u "$UUID" "$sel")
[ "$n" = 1 ] && ok "/api/v1/alerts: admin sees it" || bad "/api/v1/alerts: admin sees $n"
n=$(curl -sf -H "Authorization: Bearer $mine" "$URL/api/v1/alerts" | jq --arg u "$UUID" "$sel")
[ "$n" = 1 ] && ok "/api/v1/alerts: its tenant sees it" || bad "/api/v1/alerts: its tenant sees $n"
n=$(curl -sf -H "Authorization: Bearer $other" "$URL/api/v1/alerts" | jq --arg u "$UUID" "$sel")
[ "$n" = 0 ] && ok "/api/v1/alerts: the other tenant does not" || bad "/api/v1/alerts: the other tenant sees $n"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $other" "$URL/api/v1/alerts?tenant=$VTENANT")
[ "$code" = 404 ] && ok "/api/v1/alerts?tenant=<other>: 404" || bad "/api/v1/alerts?tenant=<other>: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/v1/alerts")
[ "$code" = 401 ] && ok "/api/v1/alerts without a token: 401" || bad "/api/v1/alerts without a token: $code"
# /metrics counts the same committed alerts, in a form promtool accepts
curl -sf -H "Authorization: Bearer $ADMIN" "$URL/metrics" > "$work/metrics.txt"
if promtool check metrics < "$work/metrics.txt" > "$work/promtool.out" 2>&1; then ok "promtool check metrics: clean"
else bad "promtool check metrics: $(cat "$work/promtool.out")"; fi
want=$(curl -sf -H "Authorization: Bearer $ADMIN" "$URL/api/v1/alerts" | jq '[.alerts[] | select(.state == "firing")] | length')
got=$(sed -n 's/^tally_alerts{state="firing"} //p' "$work/metrics.txt")
[ -n "$want" ] && [ "$got" = "$want" ] && ok "/metrics: tally_alerts{state=\"firing\"} $got, as /api/v1/alerts" ||
	bad "/metrics: tally_alerts firing '$got', /api/v1/alerts $want"
grep -q '^tally_alertmanager_posts_total{result="failed"} ' "$work/metrics.txt" && ok "/metrics: the sender's POSTs" ||
	bad "/metrics: no tally_alertmanager_posts_total"
stop_tallyd

# ---- run B: a restart mid-crash ----
start_tallyd "$END_B" b.log
grep -q "resuming after the last committed cycle" "$work/b.log" || bad "run B did not resume"
moved() { [ "$(am_alerts | jq -r .endsAt | head -n 1)" != "$ends_a" ]; }
wait_for "run B: alertmanager heard from the restarted tallyd" moved || true
am_alerts > "$work/b.json"
[ "$(wc -l < "$work/b.json")" -eq 1 ] && ok "run B: still one VMDown alert for the VM" ||
	bad "run B: $(wc -l < "$work/b.json") VMDown alerts for the VM, want 1"
b=$(head -n 1 "$work/b.json")
[ "$(echo "$b" | jq -r .fingerprint)" = "$fp_a" ] && ok "run B: same fingerprint $fp_a" ||
	bad "run B: fingerprint $(echo "$b" | jq -r .fingerprint), want $fp_a"
starts_b=$(echo "$b" | jq -r '.startsAt | sub("\\.0+Z$"; "Z")')
[ "$starts_b" = "$(iso $T1)" ] && ok "run B: same startsAt" || bad "run B: startsAt $starts_b, want $(iso $T1)"
stop_tallyd

# ---- run C: past the restart ----
start_tallyd "$END_C" c.log
wait_for "run C: the VM started again and the alert is resolved in alertmanager" no_alert || true
n=$(curl -sf -H "Authorization: Bearer $ADMIN" "$URL/api/v1/alerts" | jq --arg u "$UUID" "$sel")
[ "$n" = 0 ] && ok "/api/v1/alerts: no longer firing" || bad "/api/v1/alerts: still $n firing"
# what tallyd keeps: resolved at the start event, the same startsAt
st=$(sqlite3 "$work/d/ledger.db" "SELECT state, fired_ns, resolved_ns FROM alerts WHERE rule = 'VMDown'
	AND subject = '$UUID'")
[ "$st" = "resolved|$T1_NS|$T2_NS" ] && ok "ledger: resolved, [$T1_NS, $T2_NS]" ||
	bad "ledger alert state '$st', want 'resolved|$T1_NS|$T2_NS'"
stop_tallyd
kill -0 "$apid" 2>/dev/null && ok "alertmanager still running" || bad "alertmanager died"

# ---- run E: SLABurn, from the SLA the invoices use ----
# A plan whose class promises 99.999 %: the VM's error budget for October is
# 10 ppm of its expected time projected to the month's end (it runs or is
# down, never stopped: from its first sight to 11-01), rounded down to the
# nanosecond; the crash at T1 is its first downtime, so the budget is gone
# at T1 + budget + 1 ns. Worked out here from the probe's ledger, not asked
# of tally. After the restart at T2 the VM runs again (VMDown resolves) but
# the month's budget stays spent: SLABurn stays active.
cat > "$work/plan.yaml" <<'EOP'
plan: sla-burn-test
currency: EUR
versions:
  - from: 2026-01-01
    prices:
      - {meter: instance, unit: instance-hour, price: 0.05}
sla:
  grace: 5m
  classes:
    - name: tight
      target: 99.999%
      credits:
        - {below: 99.999%, credit: 10%}
EOP
FIRST_NS=$(sqlite3 "$PL" "SELECT first_seen_ns FROM resources WHERE uuid = '$UUID'")
NOV_NS=$(( $(date -u -d 2026-11-01T00:00:00Z +%s) * 1000000000 ))
BUDGET_NS=$(( (NOV_NS - FIRST_NS) * 10 / 1000000 ))
CROSS_NS=$(( T1_NS + BUDGET_NS + 1 ))
frac=$(printf '%09d' $((CROSS_NS % 1000000000)) | sed 's/0*$//')
WANT_BURN=$(date -u -d "@$((CROSS_NS / 1000000000))" +%Y-%m-%dT%H:%M:%S)${frac:+.$frac}Z
# Alertmanager's API shows times to the millisecond
WANT_BURN_MS=$(date -u -d "@$((CROSS_NS / 1000000000))" +%Y-%m-%dT%H:%M:%S).$(printf '%03d' $((CROSS_NS % 1000000000 / 1000000)))Z
[ "$CROSS_NS" -lt "$T2_NS" ] || { echo "the crash is shorter than the budget: choose another seed"; exit 1; }
echo "run E: budget $BUDGET_NS ns of $((NOV_NS - FIRST_NS)) ns expected: SLABurn from $WANT_BURN"
burn_alerts() {
	curl -sf "$AMURL/api/v2/alerts" | jq -c --arg u "$UUID" \
		'.[] | select(.labels.alertname == "SLABurn" and .labels.uuid == $u)'
}
have_burn() { [ "$(burn_alerts | wc -l)" -ge 1 ]; }
DATA=$work/e PLAN_LINE="plan: $work/plan.yaml"
start_tallyd "$END_C" e.log
wait_for "run E: alertmanager received SLABurn for $VNAME" have_burn || true
burn_alerts > "$work/e.json"
[ "$(wc -l < "$work/e.json")" -eq 1 ] || bad "run E: $(wc -l < "$work/e.json") SLABurn alerts for the VM, want 1"
e=$(head -n 1 "$work/e.json")
got=$(echo "$e" | jq -r .startsAt)
[ "$got" = "$WANT_BURN_MS" ] && ok "run E: SLABurn startsAt $got = T1 + budget + 1 ns, to the ms" ||
	bad "run E: SLABurn startsAt $got, want $WANT_BURN_MS"
got=$(echo "$e" | jq -c '.labels | {alertname, severity, sla_class, tenant}')
want=$(jq -cn --arg t "$VTENANT" '{alertname: "SLABurn", severity: "critical", sla_class: "tight", tenant: $t}')
[ "$got" = "$want" ] && ok "run E: labels $got" || bad "run E: labels $got, want $want"
[ "$(echo "$e" | jq -r .status.state)" = active ] && ok "run E: still active after the VM started again" ||
	bad "run E: state $(echo "$e" | jq -c .status)"
burn_sel='[.alerts[] | select(.labels.alertname == "SLABurn" and .labels.uuid == $u and .state == "firing")] | length'
n=$(curl -sf -H "Authorization: Bearer $mine" "$URL/api/v1/alerts" | jq --arg u "$UUID" "$burn_sel")
[ "$n" = 1 ] && ok "/api/v1/alerts: its tenant sees SLABurn" || bad "/api/v1/alerts: its tenant sees $n SLABurn"
got=$(curl -sf -H "Authorization: Bearer $mine" "$URL/api/v1/alerts" |
	jq -r --arg u "$UUID" '.alerts[] | select(.labels.alertname == "SLABurn" and .labels.uuid == $u) | .startsAt')
[ "$got" = "$WANT_BURN" ] && ok "/api/v1/alerts: startsAt $got, to the ns" || bad "/api/v1/alerts: startsAt $got, want $WANT_BURN"
n=$(curl -sf -H "Authorization: Bearer $other" "$URL/api/v1/alerts" | jq --arg u "$UUID" "$burn_sel")
[ "$n" = 0 ] && ok "/api/v1/alerts: the other tenant does not" || bad "/api/v1/alerts: the other tenant sees $n SLABurn"
stop_tallyd
# the report the credits come from agrees: below the target for October
br=$("$PWD/$B/tally" sla --ledger "$work/e/ledger.db" --plan "$work/plan.yaml" --period 2026-10 --format json |
	jq -r --arg u "$UUID" '.vms[] | select(.resource == $u) | .breached')
[ "$br" = true ] && ok "tally sla: the VM is below its target" || bad "tally sla: breached '$br', want true"
DATA=$work/d PLAN_LINE=

# ---- run D: Alertmanager unreachable: ingest goes on, failures are counted ----
# a port nothing listens on: Alertmanager's, after stopping it
kill "$apid"; wait "$apid" 2>/dev/null || true
apid=""
rm -rf "$work/d"
start_tallyd "$END_A" d.log   # reaching "serving" means the whole period was ingested
failures() { curl -sf -H "Authorization: Bearer $ADMIN" "$URL/api/v1/alerts" | jq .sender.failures; }
retried() { [ "$(failures)" -ge 2 ]; }
wait_for "run D: the period was ingested and the failed POST was retried" retried || true
n=$(curl -sf -H "Authorization: Bearer $ADMIN" "$URL/api/v1/alerts" | jq --arg u "$UUID" "$sel")
[ "$n" = 1 ] && ok "run D: the alert is firing in tallyd meanwhile" || bad "run D: $n firing"
grep -q "cannot reach alertmanager" "$work/d.log" && ok "run D: said in the log" || bad "run D: nothing in the log"
stop_tallyd

[ "$fails" -eq 0 ] || { echo "$fails failed"; exit 1; }
echo "all alerting checks passed"
