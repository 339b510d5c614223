#!/bin/sh
# The monitoring starter kit in monitoring/, against real parts:
# - promtool checks the rules and a config made from scrape.yml;
# - a real Prometheus scrapes a running tallyd (the simulated fleet, real
#   time) and a tallyd in the agent role (its aggregator a stand-in of the
#   ingest protocol, tests/lib/ingest_stub.py) and evaluates every recording and alerting rule (all healthy,
#   every recorded series present) and every query of the Grafana dashboard
#   and its tenant variable (each returns data);
# - nagios4 -v accepts a config holding monitoring/nagios/tally.cfg, and the
#   commands it defines, expanded, get OK from check_tally against tallyd;
# - icinga2 daemon -C accepts monitoring/icinga2/tally.conf.
set -u
. tests/lib/tallyd.sh
B=${B:-build}
for t in promtool prometheus jq curl python3 nagios4 icinga2; do
	command -v "$t" >/dev/null || { echo "FAIL: $t is missing (scripts/deps.sh installs it)"; exit 1; }
done
work=$(mktemp -d /tmp/tally-monitoring-XXXXXX)
tpid="" ppid_="" apid="" STUB_PID=""
cleanup() {
	[ -n "$tpid" ] && kill "$tpid" 2>/dev/null && wait "$tpid" 2>/dev/null
	[ -n "$apid" ] && kill "$apid" 2>/dev/null && wait "$apid" 2>/dev/null
	[ -n "$STUB_PID" ] && kill "$STUB_PID" 2>/dev/null && wait "$STUB_PID" 2>/dev/null
	[ -n "$ppid_" ] && kill "$ppid_" 2>/dev/null && wait "$ppid_" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }

promtool check rules monitoring/prometheus/rules.yml > "$work/rules.out" 2>&1 &&
	ok "promtool check rules: $(grep -o '[0-9]* rules found' "$work/rules.out")" || bad "promtool check rules: $(cat "$work/rules.out")"

cat > "$work/t.yaml" <<EOC
tallyd:
  agent_id: mon
  data_dir: $work/d
  interval: 1s
  log_level: warning
rrd:
  enabled: false
http:
  port: 0
collectors:
  sim:
    vms: 12
    tenants: 3
    hosts: 2
    seed: 3
alerts: {}
EOC
"$B/tallyd" -c "$work/t.yaml" 2>"$work/tallyd.log" &
tpid=$!
tallyd_port "$work/tallyd.log" "$tpid" 10 || { bad "tallyd does not serve"; exit 1; }
TPORT=$PORT
# an agent, shipping to the stand-in, for the agent rules and panels
. tests/lib/agent.sh
stub_start stub || { bad "the ingest stand-in does not start"; exit 1; }
cat > "$work/a.yaml" <<EOC
tallyd:
  role: agent
  agent_id: mon-agent
  data_dir: $work/a
  interval: 1s
  log_level: warning
agent:
  aggregator: http://127.0.0.1:$STUB_PORT
http:
  port: 0
collectors:
  sim:
    vms: 4
    seed: 5
alerts: {}
EOC
"$B/tallyd" -c "$work/a.yaml" 2>"$work/agent.log" &
apid=$!
tallyd_port "$work/agent.log" "$apid" 10 || { bad "the agent does not serve"; exit 1; }
APORT=$PORT PORT=$TPORT
ppp=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# the shipped scrape job, aimed at this tallyd and scraped every second
python3 - "$PORT', '127.0.0.1:$APORT" monitoring/prometheus/scrape.yml monitoring/prometheus/rules.yml > "$work/prometheus.yml" <<'EOP'
import sys
port, scrape, rules = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(scrape).read().replace("127.0.0.1:9464", "127.0.0.1:" + port).replace("scrape_interval: 15s", "scrape_interval: 1s")
print("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - " + rules)
print(text)
EOP
sed -i "s|  - monitoring/|  - $PWD/monitoring/|" "$work/prometheus.yml"
promtool check config "$work/prometheus.yml" > "$work/cfg.out" 2>&1 && ok "promtool check config with scrape.yml" ||
	bad "promtool check config: $(cat "$work/cfg.out")"
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
	--web.listen-address="127.0.0.1:$ppp" > "$work/prom.log" 2>&1 &
ppid_=$!
P=http://127.0.0.1:$ppp
q() { curl -s --get --data-urlencode "query=$1" "$P/api/v1/query"; }
# up, and enough scrapes for 30 s rate windows
n=0
for _ in $(seq 1 120); do
	n=$(q 'count_over_time(up{job="tally"}[1m])' | jq -r '.data.result[0].value[1] // 0')
	[ "$n" -ge 12 ] 2>/dev/null && break
	sleep 0.5
done
[ "$(q 'up{job="tally"}' | jq -r '.data.result[0].value[1]')" = 1 ] && ok "Prometheus scrapes tallyd ($n scrapes)" ||
	{ bad "Prometheus does not scrape tallyd: $(tail -n 3 "$work/prom.log")"; exit 1; }
sleep 3   # a few rule evaluations

# every rule healthy, every recorded series present
curl -s "$P/api/v1/rules" > "$work/rules.json"
nr=$(jq '[.data.groups[].rules[]] | length' "$work/rules.json")
unhealthy=$(jq -r '[.data.groups[].rules[] | select(.health != "ok") | .name] | join(" ")' "$work/rules.json")
[ "$nr" -eq 17 ] && [ -z "$unhealthy" ] && ok "Prometheus evaluates all $nr rules, all healthy" ||
	bad "rules: $nr loaded, unhealthy: $unhealthy"
for rec in $(jq -r '.data.groups[].rules[] | select(.type == "recording") | .name' "$work/rules.json"); do
	c=$(q "$rec" | jq '.data.result | length')
	[ "$c" -gt 0 ] && ok "recorded $rec: $c series" || bad "recording rule $rec has no data"
done
firing=$(jq -r '[.data.groups[].rules[] | select(.type == "alerting" and .state == "firing") | .name] | join(" ")' "$work/rules.json")
[ -z "$firing" ] && ok "no tally health alert fires on a healthy tallyd" || bad "alerts firing on a healthy tallyd: $firing"

# every dashboard query, with the variables as Grafana fills them
jq -r '.panels[].targets[].expr' monitoring/grafana/tally-dashboard.json > "$work/exprs"
np=$(wc -l < "$work/exprs")
while IFS= read -r e; do
	x=$(printf '%s' "$e" | sed -e 's/\$tenant/.*/g' -e 's/\$__rate_interval/30s/g')
	r=$(q "$x")
	st=$(echo "$r" | jq -r .status) c=$(echo "$r" | jq '.data.result | length')
	[ "$st" = success ] && [ "$c" -gt 0 ] && ok "dashboard: $e ($c series)" || bad "dashboard query returns no data: $e: $r"
done < "$work/exprs"
[ "$np" -ge 10 ] || bad "only $np dashboard queries"
vals=$(curl -s --get --data-urlencode 'match[]=tally_vcpus' "$P/api/v1/label/tenant/values" | jq '.data | length')
[ "$vals" -eq 3 ] && ok "dashboard variable tenant: 3 values (3 tenants)" || bad "tenant variable: $vals values"

# Nagios: the objects file in a whole config nagios4 -v accepts
mkdir -p "$work/nagios/spool" "$work/nagios/log"
cat > "$work/nagios/nagios.cfg" <<EOC
log_file=$work/nagios/log/nagios.log
cfg_file=/etc/nagios4/objects/commands.cfg
cfg_file=/etc/nagios4/objects/templates.cfg
cfg_file=/etc/nagios4/objects/timeperiods.cfg
cfg_file=/etc/nagios4/objects/contacts.cfg
cfg_file=$work/nagios/plugins.cfg
cfg_file=$PWD/monitoring/nagios/tally.cfg
resource_file=$work/nagios/resource.cfg
status_file=$work/nagios/status.dat
temp_file=$work/nagios/nagios.tmp
temp_path=$work/nagios
lock_file=$work/nagios/nagios.lock
check_result_path=$work/nagios/spool
object_cache_file=$work/nagios/objects.cache
precached_object_file=$work/nagios/objects.precache
nagios_user=root
nagios_group=root
illegal_macro_output_chars=\`~\$&|'"<>
EOC
echo "\$USER1\$=$PWD/$B" > "$work/nagios/resource.cfg"
# what monitoring-plugins' own config defines on a real Nagios host
cat > "$work/nagios/plugins.cfg" <<'EOC'
define command {
    command_name    check-host-alive
    command_line    /usr/lib/nagios/plugins/check_ping -H '$HOSTADDRESS$' -w 5000,100% -c 5000,100% -p 1
}
EOC
if nagios4 -v "$work/nagios/nagios.cfg" > "$work/nagios.out" 2>&1; then
	ok "nagios4 -v: $(grep -E 'Total (Warnings|Errors)' "$work/nagios.out" | tr -s ' ' | tr '\n' ' ')"
else
	bad "nagios4 -v: $(grep -iE 'error' "$work/nagios.out" | head -n 5)"
fi
# Icinga 2: the CheckCommand and the apply rule validate and apply to a host
# that has vars.tally_port
mkdir -p "$work/icinga"
chmod 755 "$work" "$work/icinga"   # icinga2 reads its config as its own user
cat > "$work/icinga/icinga2.conf" <<EOC
include <itl>
include <plugins>
const PluginDir = "$PWD/$B"
object Host "hv01" {
  address = "127.0.0.1"
  check_command = "dummy"
  vars.tally_port = $PORT
}
object Host "other" {
  address = "127.0.0.2"
  check_command = "dummy"
}
include "$PWD/monitoring/icinga2/tally.conf"
EOC
if icinga2 daemon -C -c "$work/icinga/icinga2.conf" > "$work/icinga.out" 2>&1 &&
	grep -q 'Instantiated 1 Service' "$work/icinga.out"; then
	ok "icinga2 daemon -C: the CheckCommand validates, the service applies to the one host with tally_port"
else
	bad "icinga2: $(grep -iE 'critical|error|Instantiated' "$work/icinga.out" | head -n 5)"
fi
# the commands as Nagios would expand them for the sample services
awk '/command_name/ { n = $2 } /command_line/ { sub(/^[ \t]*command_line[ \t]*/, ""); print n "\t" $0 }' \
	monitoring/nagios/tally.cfg > "$work/cmds"
for svc in "check_tally_age!$PORT!60!300" "check_tally_alerts!$PORT!0!5"; do
	name=${svc%%!*}
	line=$(awk -F '\t' -v n="$name" '$1 == n { print $2 }' "$work/cmds")
	args=${svc#*!}
	i=1
	IFS='!'
	for a in $args; do line=$(echo "$line" | sed "s|\\\$ARG$i\\\$|$a|g"); i=$((i + 1)); done
	unset IFS
	line=$(echo "$line" | sed -e "s|\\\$USER1\\\$|$PWD/$B|" -e 's|\$HOSTADDRESS\$|127.0.0.1|')
	if out=$(sh -c "$line"); then ok "$name as expanded: $out"; else bad "$name: exit $?: $out ($line)"; fi
done
[ "$fails" -eq 0 ]
