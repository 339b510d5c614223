#!/bin/sh
# The exporters against real parts: a 100-VM simulated fleet fast-forwarded
# through two hours (reboots and stops included) by a tallyd that keeps
# serving, then
# - promtool check metrics on its /metrics scrape, and the OpenMetrics form;
# - a real Prometheus server on loopback scrapes it, and its query API
#   returns our series with the values the ledger holds, read with the
#   sqlite3 CLI (the oracle: the counters must equal the sum of the usage
#   rows, whatever resets the VMs' counters went through);
# - tenant isolation through every endpoint and query parameter;
# - malformed requests and tokens get JSON 4xx answers;
# - check_tally's exit codes against the running tallyd.
set -eu
B=${B:-build}
TALLYD=$PWD/$B/tallyd
CHECK=$PWD/$B/check_tally
TALLY=$PWD/$B/tally
for t in promtool prometheus sqlite3 jq curl perl; do
	command -v $t >/dev/null || { echo "$t is not installed (scripts/deps.sh installs it)"; exit 77; }
done
work=$(mktemp -d /tmp/tally-exporters-XXXXXX)
tpid="" ppid_=""
cleanup() {
	[ -n "$tpid" ] && kill "$tpid" 2>/dev/null && wait "$tpid" 2>/dev/null
	[ -n "$ppid_" ] && kill "$ppid_" 2>/dev/null && wait "$ppid_" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
fails=0
. tests/lib/cli.sh
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }

ADMIN=admin-0123456789abcdef
T1=tenant01-0123456789abcdef
T2=tenant02-0123456789abcdef
END_S=1790820000        # 2026-10-01T02:00:00Z
STALE_S=180             # 3 intervals of 60 s
cat > "$work/t.yaml" <<EOC
tallyd:
  agent_id: exp
  data_dir: $work/d
  interval: 60s
  clock: fast-forward
  start: 2026-10-01T00:00:00Z
  end: 2026-10-01T02:00:00Z
  log_level: info
rrd:
  enabled: false
http:
  address: 127.0.0.1
  port: 0
  serve_after_end: true
  tokens:
    - token: $ADMIN
      admin: true
    - token: $T1
      tenant: tenant-01
    - token: $T2
      tenant: tenant-02
collectors:
  sim:
    vms: 100
    tenants: 4
    hosts: 3
    disks: 2
    nics: 1
    seed: 5
    reboots_per_day: 16
    stops_per_day: 6
    migrations_per_day: 0
EOC
"$TALLYD" -c "$work/t.yaml" 2>"$work/tallyd.log" &
tpid=$!
wait_serving "$work/tallyd.log" "$tpid"
URL=http://127.0.0.1:$PORT
L=$work/d/ledger.db
q() { sqlite3 "$L" "$1"; }
# get TOKEN PATH [curl args]: body in $work/body, status in $code
get() {
	tok=$1 path=$2; shift 2
	if [ -n "$tok" ]; then
		code=$(curl -s -o "$work/body" -w '%{http_code}' -H "Authorization: Bearer $tok" "$@" "$URL$path")
	else
		code=$(curl -s -o "$work/body" -w '%{http_code}' "$@" "$URL$path")
	fi
}

# ---- the oracle, from the ledger ----
fresh_since=$(( (END_S - STALE_S) * 1000000000 ))
q "SELECT count(*) FROM resources" > "$work/n_res"
n_fresh=$(q "SELECT count(*) FROM resources WHERE last_seen_ns >= $fresh_since")
n_stale=$(q "SELECT count(*) FROM resources WHERE last_seen_ns < $fresh_since")
[ "$(cat "$work/n_res")" -eq 100 ] || bad "ledger has $(cat "$work/n_res") resources, not 100"
[ "$n_stale" -gt 0 ] || bad "no VM stopped for longer than stale_after: the stale path is untested"
resets=$(q "SELECT count(*) FROM events WHERE type = 'rebooted'")
[ "$resets" -gt 0 ] || bad "no reboot in the period: the counter-reset path is untested"
echo "fleet: 100 VMs, $n_fresh fresh, $n_stale stale, $resets reboots"
# counters per (uuid, device) in base units: the sum of the usage rows
counter_oracle() { # meter
	q "SELECT r.uuid, u.device, sum(u.quantity) FROM usage u JOIN resources r ON r.id = u.resource_id
	   JOIN meters m ON m.id = u.meter_id WHERE m.name = '$1' AND r.last_seen_ns >= $fresh_since
	   GROUP BY r.uuid, u.device ORDER BY r.uuid, u.device" | tr '|' ' '
}
gauge_oracle() { # meter: the last value of each series
	q "SELECT r.uuid, s.device, s.last_value FROM series s JOIN resources r ON r.id = s.resource_id
	   JOIN meters m ON m.id = s.meter_id WHERE m.name = '$1' AND r.last_seen_ns >= $fresh_since
	   ORDER BY r.uuid, s.device" | tr '|' ' '
}

# ---- promtool on the scrape ----
get "$ADMIN" /metrics
cp "$work/body" "$work/metrics.txt"
[ "$code" = 200 ] || bad "/metrics: $code"
if promtool check metrics < "$work/metrics.txt" > "$work/promtool.out" 2>&1; then
	ok "promtool check metrics: clean ($(grep -vc '^#' "$work/metrics.txt") samples)"
else
	bad "promtool check metrics: $(head -n 5 "$work/promtool.out")"
fi
# build info and the standard process metrics, against the VERSION file and
# tallyd's own /proc entries read here
m() { sed -n "s/^$1 //p" "$work/metrics.txt"; }
grep -q "^tally_build_info{version=\"$(cat VERSION)\",revision=\"[0-9a-f]*+\{0,1\}\"} 1\$" "$work/metrics.txt" &&
	ok "tally_build_info: version $(cat VERSION)" || bad "tally_build_info: $(grep '^tally_build_info' "$work/metrics.txt")"
want_max=$(awk '/^Max open files/ { print $4 }' "/proc/$tpid/limits")
[ "$(m process_max_fds)" = "$want_max" ] && ok "process_max_fds $want_max" ||
	bad "process_max_fds $(m process_max_fds), /proc/$tpid/limits says $want_max"
fds=$(ls "/proc/$tpid/fd" | wc -l)
awk -v a="$(m process_open_fds)" -v b="$fds" 'BEGIN { exit !(a > 0 && a - b <= 3 && b - a <= 3) }' &&
	ok "process_open_fds $(m process_open_fds) (/proc: $fds)" || bad "process_open_fds $(m process_open_fds), /proc: $fds"
rss=$(awk '/^VmRSS/ { print $2 * 1024 }' "/proc/$tpid/status")
awk -v a="$(m process_resident_memory_bytes)" -v b="$rss" 'BEGIN { exit !(a > 0.8 * b && a < 1.25 * b) }' &&
	ok "process_resident_memory_bytes within 20 % of VmRSS" ||
	bad "process_resident_memory_bytes $(m process_resident_memory_bytes), VmRSS $rss"
start=$(awk -v tck="$(getconf CLK_TCK)" -v bt="$(awk '/^btime/ { print $2 }' /proc/stat)" \
	'{ sub(/^.*\) /, ""); printf "%.2f", bt + $20 / tck }' "/proc/$tpid/stat")
awk -v a="$(m process_start_time_seconds)" -v b="$start" 'BEGIN { exit !(a - b < 0.02 && b - a < 0.02) }' &&
	ok "process_start_time_seconds $start" || bad "process_start_time_seconds $(m process_start_time_seconds), /proc: $start"
n_cpu=$(grep -c '^tally_cpu_seconds_total{' "$work/metrics.txt" || true)
[ "$n_cpu" -eq "$n_fresh" ] && ok "one cpu series per fresh VM ($n_cpu)" || bad "$n_cpu cpu series for $n_fresh fresh VMs"
grep -q "^tally_stale_resources $n_stale\$" "$work/metrics.txt" && ok "tally_stale_resources $n_stale" ||
	bad "tally_stale_resources: $(grep '^tally_stale_resources' "$work/metrics.txt"), ledger: $n_stale"
# no timestamps: every sample line is "name{labels} value"
if grep -v '^#' "$work/metrics.txt" | awk '{ sub(/^[^{ ]*(\{[^}]*\})?/, ""); if (NF != 1) exit 1 }'; then
	ok "no sample carries a timestamp"
else
	bad "a sample line has more than a value"
fi
code=$(curl -s -o "$work/om.txt" -D "$work/om.hdr" -w '%{http_code}' -H "Authorization: Bearer $ADMIN" \
	-H 'Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' "$URL/metrics")
if [ "$code" = 200 ] && [ "$(tail -n 1 "$work/om.txt")" = "# EOF" ] &&
   grep -qi '^content-type: application/openmetrics-text; version=1.0.0' "$work/om.hdr" &&
   grep -q '^# TYPE tally_cpu_seconds counter$' "$work/om.txt" && grep -q '^tally_cpu_seconds_total{' "$work/om.txt"; then
	ok "OpenMetrics when asked: its content type, counter families without _total, # EOF at the end"
else
	bad "OpenMetrics answer: $code, last line '$(tail -n 1 "$work/om.txt")'"
fi
grep -qi '^content-type: text/plain; version=0.0.4' "$work/om.hdr" && bad "OpenMetrics asked, text given" || true

# ---- a real Prometheus scrapes tallyd; its query API against the ledger ----
PPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/prom.yml" <<EOC
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: tally
    authorization:
      type: Bearer
      credentials: $ADMIN
    static_configs:
      - targets: ['127.0.0.1:$PORT']
EOC
prometheus --config.file="$work/prom.yml" --storage.tsdb.path="$work/prom" \
	--web.listen-address="127.0.0.1:$PPORT" > "$work/prom.log" 2>&1 &
ppid_=$!
pq() { # PromQL labels: "label-values... value" lines, sorted
	curl -s --get --data-urlencode "query=$1" "http://127.0.0.1:$PPORT/api/v1/query" > "$work/pq.json" || return 1
	jq -r --arg l "$2" '.data.result[] | ([($l | split(","))[] as $k | (.metric[$k] // "")] + [.value[1]])
		| join(" ")' "$work/pq.json" | sort
}
i=0
until [ "$(pq 'count(tally_cpu_seconds_total)' x 2>/dev/null | awk '{ print $NF }')" = "$n_fresh" ]; do
	i=$((i + 1))
	if [ $i -ge 120 ] || ! kill -0 "$ppid_" 2>/dev/null; then
		bad "Prometheus did not scrape $n_fresh cpu series in 60 s"; tail -n 20 "$work/prom.log"; break
	fi
	sleep 0.5
done
up=$(pq 'up{job="tally"}' x | awk '{ print $NF }')
[ "$up" = 1 ] && ok "Prometheus scrapes tallyd with the admin token (up = 1)" || bad "up{job=tally} = '$up'"
# compare: oracle lines "uuid device base" vs prometheus "uuid device value"; scale: value * div = base
compare() { # what promql-metric meter scale
	what=$1 metric=$2 meter=$3 scale=$4 kind=$5
	if [ "$kind" = counter ]; then counter_oracle "$meter"; else gauge_oracle "$meter"; fi > "$work/want"
	pq "$metric" uuid,device | sort > "$work/got"
	if [ ! -s "$work/want" ]; then bad "$what: the ledger oracle is empty"; return; fi
	if awk -v s="$scale" 'NR == FNR { w[$1 " " ($3 == "" ? "" : $2)] = $NF; n++; next }
		{ k = $1 " " (NF == 3 ? $2 : ""); if (!(k in w)) { print "extra " k; bad = 1; next }
		  v = $NF * s; d = v - w[k]; if (d < 0) d = -d; m = w[k] < 0 ? -w[k] : w[k];
		  if (d > 1e-12 * m + 1e-9) { print "differs " k ": " v " vs " w[k]; bad = 1 } seen++ }
		END { if (seen != n) { print seen " of " n " series"; bad = 1 } exit bad }' \
		"$work/want" "$work/got" > "$work/cmp.out"; then
		ok "$what: Prometheus has the ledger's value for all $(wc -l < "$work/want") series"
	else
		bad "$what: $(head -n 5 "$work/cmp.out")"
	fi
}
compare "cpu seconds (sum of deltas through reboots)" tally_cpu_seconds_total cpu 1e9 counter
compare "disk read bytes per device" tally_disk_read_bytes_total disk.device.read.bytes 1 counter
compare "disk write requests per device" tally_disk_write_requests_total disk.device.write.requests 1 counter
compare "network outgoing packets per NIC" tally_network_outgoing_packets_total network.outgoing.packets 1 counter
compare "vcpus" tally_vcpus vcpus 1 gauge
compare "memory bytes" tally_memory_bytes memory 1 gauge
compare "disk capacity per device" tally_disk_capacity_bytes disk.device.capacity 1 gauge
# a reboot resets the VM's counters; ours must not go down: for every VM that
# rebooted, the exposed cpu is at least what its last life alone used
# (which is what its raw counter reads now)
rebooted=$(q "SELECT r.uuid FROM events e JOIN resources r ON r.id = e.resource_id WHERE e.type = 'rebooted'
  AND r.last_seen_ns >= $fresh_since LIMIT 1")
if [ -n "$rebooted" ]; then
	raw=$(q "SELECT s.last_value FROM series s JOIN resources r ON r.id = s.resource_id JOIN meters m
	  ON m.id = s.meter_id WHERE r.uuid = '$rebooted' AND m.name = 'cpu'")
	sum=$(q "SELECT sum(u.quantity) FROM usage u JOIN resources r ON r.id = u.resource_id JOIN meters m
	  ON m.id = u.meter_id WHERE r.uuid = '$rebooted' AND m.name = 'cpu'")
	got=$(pq "tally_cpu_seconds_total{uuid=\"$rebooted\"}" x | awk '{ printf "%.0f", $NF * 1e9 }')
	diff=$((got - sum))
	if [ "$sum" -gt "$raw" ] && [ "${diff#-}" -le 1 ]; then
		ok "rebooted VM: exposed cpu ${got} ns = usage sum $sum ns > raw counter $raw ns"
	else
		bad "rebooted VM $rebooted: exposed $got, usage sum $sum, raw counter $raw"
	fi
fi

# ---- tenant isolation ----
t1_uuid=$(q "SELECT uuid FROM resources WHERE tenant = 'tenant-01' AND last_seen_ns >= $fresh_since LIMIT 1")
t2_uuid=$(q "SELECT uuid FROM resources WHERE tenant = 'tenant-02' AND last_seen_ns >= $fresh_since LIMIT 1")
t1_fresh=$(q "SELECT count(*) FROM resources WHERE tenant = 'tenant-01' AND last_seen_ns >= $fresh_since")
t1_all=$(q "SELECT count(*) FROM resources WHERE tenant = 'tenant-01'")
get "$T1" /metrics
others=$(grep -v '^#' "$work/body" | grep -vc 'tenant="tenant-01"' || true)
mine=$(grep -c '^tally_cpu_seconds_total{.*tenant="tenant-01"' "$work/body" || true)
[ "$code" = 200 ] && [ "$others" -eq 0 ] && [ "$mine" -eq "$t1_fresh" ] &&
	ok "/metrics with tenant-01's token: its $mine VMs only, no self-metrics" ||
	bad "/metrics for tenant-01: $code, $others foreign lines, $mine of $t1_fresh VMs"
get "$T1" /api/v1/resources
n=$(jq '.resources | length' "$work/body"); foreign=$(jq '[.resources[] | select(.tenant != "tenant-01")] | length' "$work/body")
[ "$code" = 200 ] && [ "$foreign" -eq 0 ] && [ "$n" -eq "$t1_all" ] &&
	ok "/api/v1/resources with tenant-01's token: its $n resources only" ||
	bad "/api/v1/resources for tenant-01: $code, $n resources ($t1_all expected), $foreign foreign"
get "$ADMIN" /api/v1/resources
n=$(jq '.resources | length' "$work/body")
[ "$n" -eq 100 ] && ok "/api/v1/resources with the admin token: all 100" || bad "admin sees $n resources"
expect() { # want-code description token path [curl args]
	want=$1 what=$2; shift 2
	get "$@"
	if [ "$code" = "$want" ] && jq -e '.error | type == "string"' "$work/body" > /dev/null 2>&1; then
		ok "$what: $code $(cat "$work/body")"
	else
		bad "$what: got $code $(head -c 200 "$work/body"), want $want with a JSON error"
	fi
}
expect 404 "tenant-01 reads tenant-02's VM" "$T1" "/api/v1/resources/$t2_uuid"
expect 404 "tenant-01 lists tenant-02" "$T1" "/api/v1/resources?tenant=tenant-02"
expect 404 "tenant-01 asks tenant-02's usage" "$T1" "/api/v1/usage?from=2026-10-01&to=2026-10-01&tenant=tenant-02"
expect 404 "tenant-01 asks a tenant-02 VM's usage" "$T1" "/api/v1/usage?from=2026-10-01&to=2026-10-01&resource=$t2_uuid"
expect 404 "tenant-02 reads tenant-01's VM" "$T2" "/api/v1/resources/$t1_uuid"
get "$T1" "/api/v1/resources/$t1_uuid"
[ "$code" = 200 ] && [ "$(jq -r .resource.tenant "$work/body")" = tenant-01 ] &&
	ok "tenant-01 reads its own VM" || bad "tenant-01's own VM: $code"
get "$ADMIN" "/api/v1/resources/$t2_uuid"
[ "$code" = 200 ] && ok "the admin reads tenant-02's VM" || bad "admin, tenant-02's VM: $code"
get "$T1" "/api/v1/usage?from=2026-10-01&to=2026-10-01&by=resource"
foreign=$(jq '[.rows[] | select(.tenant != "tenant-01")] | length' "$work/body")
ours=$(jq '[.rows[] | select(.meter == "cpu") | .base_quantity | tonumber] | add' "$work/body")
want=$(q "SELECT sum(u.quantity) FROM usage u JOIN resources r ON r.id = u.resource_id JOIN meters m
  ON m.id = u.meter_id WHERE m.name = 'cpu' AND r.tenant = 'tenant-01'")
[ "$code" = 200 ] && [ "$foreign" -eq 0 ] && [ "$ours" = "$want" ] &&
	ok "/api/v1/usage with tenant-01's token: its rows only, cpu $ours ns = the ledger's sum" ||
	bad "/api/v1/usage for tenant-01: $code, $foreign foreign rows, cpu $ours vs $want"
/usr/bin/python3 -c 'import json, sys, jsonschema; jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))' \
	"$work/body" schemas/usage.schema.json && ok "/api/v1/usage is valid against schemas/usage.schema.json" ||
	bad "/api/v1/usage does not match schemas/usage.schema.json"

# ---- malformed requests and tokens: JSON 4xx ----
expect 401 "no token" "" /metrics
expect 401 "unknown token" "nope-0123456789abcdef" /api/v1/resources
expect 401 "a token's prefix" "${ADMIN%?}" /api/v1/resources
get "" /api/v1/resources -H "Authorization: Basic YWRtaW46YWRtaW4="
[ "$code" = 401 ] && ok "basic auth refused: 401" || bad "basic auth: $code"
expect 400 "usage without from" "$ADMIN" "/api/v1/usage?to=2026-10"
expect 400 "usage with a bad time" "$ADMIN" "/api/v1/usage?from=yesterday&to=2026-10"
expect 400 "usage not on whole hours" "$ADMIN" "/api/v1/usage?from=2026-10-01T00:30:00Z&to=2026-10"
expect 400 "usage from after to" "$ADMIN" "/api/v1/usage?from=2026-11&to=2026-10"
expect 400 "usage of an unknown meter" "$ADMIN" "/api/v1/usage?from=2026-10&to=2026-10&meter=cpu.time"
expect 400 "usage by day" "$ADMIN" "/api/v1/usage?from=2026-10&to=2026-10&by=day"
expect 400 "an unknown parameter" "$ADMIN" "/api/v1/usage?from=2026-10&to=2026-10&tenat=tenant-01"
expect 400 "a tenant token's unknown parameter" "$T1" "/api/v1/resources?tenants=tenant-02"
expect 404 "an unknown VM" "$ADMIN" /api/v1/resources/00000000-0000-0000-0000-000000000000
expect 404 "/api/v1/sla without http.plan" "$ADMIN" "/api/v1/sla?period=2026-10"
expect 404 "/api/v1/alerts is not served" "$ADMIN" /api/v1/alerts
expect 404 "an invoice that was never issued" "$T1" /api/v1/invoices/1
expect 404 "a path below a resource" "$ADMIN" "/api/v1/resources/$t1_uuid/x"
expect 405 "POST" "$ADMIN" /api/v1/resources -X POST
expect 405 "DELETE" "$ADMIN" "/api/v1/resources/$t1_uuid" -X DELETE
expect 413 "a GET with a body" "$ADMIN" /api/v1/resources -X GET --data-binary "x=1"
long=$(head -c 3000 /dev/zero | tr '\0' a)
expect 414 "a 3000-byte URL" "$ADMIN" "/api/v1/resources/$long"
code=$(head -c 40000 /dev/zero | tr '\0' a | curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' a)" "$URL/metrics" || true)
case $code in 4*) ok "a 20 kB header: $code" ;; *) bad "a 20 kB header: $code" ;; esac
kill -0 "$tpid" && ok "tallyd is still serving after the bad requests" || bad "tallyd died"

# ---- check_tally against the running tallyd ----
chk() { # want-exit description args...
	want=$1 what=$2; shift 2
	if "$CHECK" -p "$PORT" "$@" > "$work/chk" 2>&1; then got=0; else got=$?; fi
	lines=$(wc -l < "$work/chk"); bytes=$(wc -c < "$work/chk")
	if [ "$got" -eq "$want" ] && [ "$lines" -eq 1 ] && [ "$bytes" -lt 1024 ]; then
		ok "check_tally $what: exit $got: $(cat "$work/chk")"
	else
		bad "check_tally $what: exit $got (want $want), $lines lines, $bytes bytes: $(cat "$work/chk")"
	fi
}
vc=$(q "SELECT CAST(s.last_value AS INTEGER) FROM series s JOIN resources r ON r.id = s.resource_id JOIN meters m
  ON m.id = s.meter_id WHERE r.uuid = '$t1_uuid' AND m.name = 'vcpus'")
export TALLY_TOKEN=$ADMIN
chk 0 "vcpus exactly on both edges of $vc:$vc" -r "$t1_uuid" -m vcpus -w "$vc:$vc" -c "$vc:$vc"
chk 1 "vcpus above the warning range ~:$((vc - 1))" -r "$t1_uuid" -m vcpus -w "~:$((vc - 1))" -c "~:$vc"
chk 2 "vcpus inside @$vc:$((vc + 1))" -r "$t1_uuid" -m vcpus -w 1000 -c "@$vc:$((vc + 1))"
chk 0 "vcpus outside @$((vc + 1)):100" -r "$t1_uuid" -m vcpus -c "@$((vc + 1)):100"
mem=$(q "SELECT CAST(s.last_value AS INTEGER) FROM series s JOIN resources r ON r.id = s.resource_id JOIN meters m
  ON m.id = s.meter_id WHERE r.uuid = '$t1_uuid' AND m.name = 'memory'")
chk 2 "memory below $((mem + 1)):" -r "$t1_uuid" -m memory -c "$((mem + 1)):"
grep -q "'memory'=${mem}B;;$((mem + 1)):;0;" "$work/chk" && ok "perfdata 'memory'=${mem}B;;$((mem + 1)):;0;" ||
	bad "perfdata: $(cat "$work/chk")"
# a counter's rate: for a VM without any event in the last hour, the sim's
# constant cpu rate is the ledger's cpu usage of that hour / 3600 s, and the
# API's rate over the last interval must be the same number
H1=$(( (END_S - 3600) * 1000000000 ))
calm=$(q "SELECT r.uuid FROM resources r WHERE r.last_seen_ns >= $fresh_since AND NOT EXISTS
  (SELECT 1 FROM events e WHERE e.resource_id = r.id AND e.time_ns >= $H1 - 60000000000) LIMIT 1")
rate=$(q "SELECT u.quantity / 3600 FROM usage u JOIN resources r ON r.id = u.resource_id JOIN meters m
  ON m.id = u.meter_id WHERE r.uuid = '$calm' AND m.name = 'cpu' AND u.hour_ns = $H1 AND u.quantity % 3600 = 0")
if [ -n "$rate" ]; then
	cores=$(awk -v r="$rate" 'BEGIN { printf "%.9f", r / 1e9 }')
	chk 0 "cpu rate exactly on the edges of $cores:$cores cores" -r "$calm" -m cpu -w "$cores:$cores" -c "$cores:$cores"
	chk 2 "cpu rate inside @$cores:$cores" -r "$calm" -m cpu -c "@$cores:$cores"
else
	bad "no VM without events in the last hour, or its hour's cpu is not a whole rate: cannot check rates"
fi
now=$(date +%s)
age=$((now - END_S))
chk 2 "data age (~${age} s) over 60 s" -m age -w 30 -c 60
chk 0 "data age under 10^10 s" -m age -w 1e10 -c 1e10
stale_uuid=$(q "SELECT uuid FROM resources WHERE last_seen_ns < $fresh_since LIMIT 1")
chk 2 "a stale VM's age over $((age + 150)) s" -r "$stale_uuid" -m age -c "~:$((age + 150))"
chk 0 "a fresh VM's age under $((age + 150)) s" -r "$t1_uuid" -m age -c "~:$((age + 150))"
chk 3 "an unknown VM" -r 00000000-0000-0000-0000-000000000000 -m vcpus
chk 3 "a meter the VM lacks" -r "$t1_uuid" -m if.incoming.bytes
chk 3 "no such meter" -r "$t1_uuid" -m cpu.time
chk 3 "a malformed range" -r "$t1_uuid" -m vcpus -w 10:5
chk 3 "a wrong token" -T nope-0123456789abcdef -r "$t1_uuid" -m vcpus
chk 3 "tenant-02's token on tenant-01's VM" -T "$T2" -r "$t1_uuid" -m vcpus
chk 0 "tenant-01's token on its VM" -T "$T1" -r "$t1_uuid" -m vcpus -c "$vc:$vc"
unset TALLY_TOKEN
# a server that accepts and never answers: -t ends in UNKNOWN
# (on a port the kernel picks: tests running at once never collide)
perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0,
  Listen => 5) or die; $| = 1; print $s->sockport, "\n"; $c = $s->accept; sleep 20' > "$work/sport" &
spid=$!
for _ in $(seq 50); do [ -s "$work/sport" ] && break; sleep 0.1; done
SPORT=$(cat "$work/sport")
if "$CHECK" -p "$SPORT" -t 1 -m age > "$work/chk" 2>&1; then got=0; else got=$?; fi
kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null || true
[ "$got" -eq 3 ] && grep -q "within 1 s" "$work/chk" && ok "check_tally -t 1 on a silent server: exit 3: $(cat "$work/chk")" ||
	bad "check_tally -t 1 on a silent server: exit $got: $(cat "$work/chk")"
if "$CHECK" -p 1 -m age > "$work/chk" 2>&1; then got=0; else got=$?; fi
[ "$got" -eq 3 ] && ok "check_tally on a closed port: exit 3" || bad "closed port: exit $got"
# --help and --version: exit 0 (the current Monitoring Plugins practice),
# on stdout, for every program; -v adds the request after the status line
for prog in "$CHECK" "$TALLYD" "$TALLY"; do
	for opt in -h --help -V --version; do
		if "$prog" $opt > "$work/chk" 2>"$work/chk.err"; then got=0; else got=$?; fi
		[ "$got" -eq 0 ] && [ -s "$work/chk" ] && [ ! -s "$work/chk.err" ] &&
			ok "$(basename "$prog") $opt: exit 0 on stdout" || bad "$(basename "$prog") $opt: exit $got"
	done
	"$prog" --version | grep -q " $(cat VERSION) (" || bad "$(basename "$prog") --version: $("$prog" --version)"
done
"$CHECK" --help | grep -q -- "--warning RANGE" || bad "check_tally --help lists no long options"
if "$CHECK" -p 1 -m age -v > "$work/chk" 2>&1; then got=0; else got=$?; fi
[ "$got" -eq 3 ] && [ "$(wc -l < "$work/chk")" -eq 2 ] && sed -n 2p "$work/chk" | grep -q "^GET http://127.0.0.1:1/" &&
	ok "check_tally -v: the request on a second line" || bad "check_tally -v: exit $got: $(cat "$work/chk")"

kill -TERM "$tpid"
if wait "$tpid"; then ok "tallyd stopped cleanly on SIGTERM"; else bad "tallyd exited $? on SIGTERM"; fi
tpid=""

# ---- the http section of the config: mistakes named with file:line:col ----
for c in "address: 0.0.0.0|'0.0.0.0' is not loopback; outside loopback the API needs 'tokens'" \
	 "address: localhost|'localhost' is not a numeric IPv4 or IPv6 address" \
	 "port: 70000|key 'port': 70000 is out of range" \
	 "tokens: [{token: short, admin: true}]|key 'token': at least 16 characters" \
	 "tokens: [{token: 0123456789abcdef0, admin: true, tenant: x}]|a token needs exactly one of 'admin: true', a 'tenant', an 'agent' or a 'source'" \
	 "tokens: [{token: 0123456789abcdef0}]|a token needs exactly one of 'admin: true', a 'tenant', an 'agent' or a 'source'" \
	 "tokens: [{token: 0123456789abcdef0, agent: h1, tenant: x}]|a token needs exactly one of" \
	 "tokens: [{token: 0123456789abcdef0, agent: h1}, {token: 0123456789abcdef1, agent: h1}]|key 'agent': 'h1' has a token already" \
	 "address: 0.0.0.0\\n  tokens: [{token: 0123456789abcdef0, agent: h1}]|needs 'tokens' (admin or tenant: agents' and sources' tokens read nothing)" \
	 "address: 0.0.0.0\\n  tokens: [{token: 0123456789abcdef0, source: rgw}]|needs 'tokens' (admin or tenant" \
	 "tokens: [{token: 0123456789abcdef0, source: rgw, agent: h1}]|a token needs exactly one of" \
	 "tokens: [{token: 0123456789abcdef0, source: 'r gw'}]|key 'source': 'r gw' is not a source's name" \
	 "tls_cert: /etc/hostname|TLS needs both 'tls_cert' and 'tls_key'" \
	 "tls_client_ca: /etc/hostname|client certificates need TLS" \
	 "tls_cert: /nonexistent/cert.pem\\n  tls_key: /etc/hostname|key 'tls_cert': cannot read '/nonexistent/cert.pem'" \
	 "tokens: [{token: 0123456789abcdef0, admin: true}, {token: 0123456789abcdef0, tenant: x}]|given twice" \
	 "prot: 1|unknown key 'prot' in 'http'" \
	 "head_timeout: 50ms|key 'head_timeout': 50ms is out of range 0.1s..60s" \
	 "max_connections: 8|key 'max_connections': 8 is out of range 16..65536" \
	 "max_connections_per_address: 2000|key 'max_connections_per_address': 2000 is out of range 1..1024" \
	 "auth_failures_total: 0|key 'auth_failures_total': 0 is out of range 1..1000000"; do
	printf 'collectors:\n  sim: {}\nhttp:\n  %b\n' "${c%%|*}" > "$work/n.yaml"
	if "$TALLYD" -n -c "$work/n.yaml" > "$work/n.out" 2>&1; then got=0; else got=$?; fi
	if [ "$got" -eq 2 ] && grep -qF "n.yaml:4:" "$work/n.out" && grep -qF -- "${c#*|}" "$work/n.out"; then
		ok "tallyd -n refuses http '${c%%|*}': $(cat "$work/n.out")"
	else
		bad "tallyd -n with http '${c%%|*}': exit $got: $(cat "$work/n.out")"
	fi
done
printf 'collectors:\n  sim: {}\nhttp:\n  address: "::1"\n  port: 9999\n' > "$work/n.yaml"
"$TALLYD" -n -c "$work/n.yaml" > /dev/null 2>&1 && ok "tallyd -n accepts http on ::1 without tokens" || bad "::1 refused"

# ---- real time: fresh data is OK for check_tally's age, the snapshot follows each cycle ----
cat > "$work/rt.yaml" <<EOC
tallyd:
  agent_id: rt
  data_dir: $work/rt
  interval: 1s
  log_level: info
http:
  port: 0
collectors:
  sim:
    vms: 3
    start: $(date -u +%Y-%m-%dT%H:%M:%SZ)
EOC
"$TALLYD" -c "$work/rt.yaml" 2> "$work/rt.log" &
tpid=$!
tallyd_port "$work/rt.log" "$tpid" 10 || bad "real-time tallyd did not listen in 10 s"
i=0
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/metrics")" = 200 ]; do
	i=$((i + 1)); [ $i -lt 100 ] || { bad "real-time tallyd served no snapshot in 10 s"; break; }
	sleep 0.1
done
c1=$(curl -s "http://127.0.0.1:$PORT/metrics" | sed -n 's/^tally_collection_cycles_total //p')
i=0
while :; do # the next cycles publish new snapshots (bounded wait, no timing asserted)
	sleep 0.5
	c2=$(curl -s "http://127.0.0.1:$PORT/metrics" | sed -n 's/^tally_collection_cycles_total //p')
	i=$((i + 1)); { [ "$c2" -gt $((c1 + 1)) ] || [ $i -ge 30 ]; } && break
done
[ "$c2" -gt "$c1" ] && ok "real time: the exposed cycle count follows ingest ($c1 -> $c2)" ||
	bad "real time: cycles $c1 -> $c2"
chk 0 "age of real-time data under 60 s" -m age -w 30 -c 60
kill -TERM "$tpid"
if wait "$tpid"; then ok "real-time tallyd stopped cleanly"; else bad "real-time tallyd exited $?"; fi
tpid=""
echo "exporters: $fails failed"
[ "$fails" -eq 0 ]
