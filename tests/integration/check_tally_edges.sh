#!/bin/sh
# check_tally where it cannot tell: the exit code is the number (0 OK,
# 1 WARNING, 2 CRITICAL, 3 UNKNOWN, the Monitoring Plugins guidelines), so
# a figure tallyd does not have must be UNKNOWN, never OK with a made-up 0.
#
# - a counter read once has no rate yet (no interval to take it over): the
#   API says "rate": null and check_tally is UNKNOWN, while a gauge read at
#   that same tick is known (its value from the ledger, read with sqlite3);
# - a server on loopback that answers 200 with JSON of another shape than
#   tallyd's (python3, the answer written here for each case): a count that
#   is not there is not 0;
# - a name from tallyd (a VM's, chosen by its tenant; an alert's) with a
#   '|' in it: the guidelines make the first '|' the start of the perfdata,
#   so the status text must not hold one, or Nagios graphs the name;
# - perfdata values are plain decimals (the guidelines: value, min and max
#   in class [-0-9.]): no exponent for an idle VM's cpu or a huge gauge;
# - an availability that is not a number ("n/a" was read as 0 %) or is
#   past 100 % is UNKNOWN; a -H that would make another URL (a '/', '@')
#   is refused before anything is asked (it asked port 80 of the host).
set -eu
B=${B:-build}
TALLYD=$PWD/$B/tallyd
CHECK=$PWD/$B/check_tally
for t in sqlite3 jq curl python3; do
	command -v $t >/dev/null || { echo "$t is not installed (scripts/deps.sh installs it)" >&2; exit 77; }
done
work=$(mktemp -d /tmp/tally-chkedges-XXXXXX)
tpid="" fpid=""
cleanup() {
	# a killed child's wait says 143: under set -e that would be the
	# script's exit status, after every check passed
	[ -n "$tpid" ] && kill "$tpid" 2>/dev/null && { wait "$tpid" 2>/dev/null || true; }
	[ -n "$fpid" ] && kill "$fpid" 2>/dev/null && { wait "$fpid" 2>/dev/null || true; }
	rm -rf "$work"
}
trap cleanup EXIT
fails=0
. tests/lib/cli.sh

# chk WANT-EXIT FRAGMENT args...: check_tally exits WANT-EXIT, prints one
# line under 1 KiB, and FRAGMENT is in it
chk() {
	want=$1 frag=$2; shift 2
	if "$CHECK" "$@" > "$work/chk" 2>&1; then got=0; else got=$?; fi
	lines=$(wc -l < "$work/chk"); bytes=$(wc -c < "$work/chk")
	if [ "$got" -eq "$want" ] && [ "$lines" -eq 1 ] && [ "$bytes" -lt 1024 ] && grep -qF -- "$frag" "$work/chk"; then
		ok "check_tally $*: exit $got: $(cat "$work/chk")"
	else
		bad "check_tally $*: exit $got (want $want with '$frag'), $lines lines: $(cat "$work/chk")"
	fi
}

# ---- one tick only: every counter is a baseline, no rate ----
# interval 60 s, the period 30 s: the fast-forward reads the fleet once, at
# 00:00:00, and serves that
cat > "$work/one.yaml" <<EOC
tallyd:
  agent_id: one
  data_dir: $work/one
  interval: 60s
  clock: fast-forward
  start: 2026-10-01T00:00:00Z
  end: 2026-10-01T00:00:30Z
  log_level: info
rrd:
  enabled: false
http:
  address: 127.0.0.1
  port: 0
  serve_after_end: true
collectors:
  sim:
    vms: 2
    disks: 1
    nics: 1
EOC
"$TALLYD" -c "$work/one.yaml" 2>"$work/one.log" &
tpid=$!
wait_serving "$work/one.log" "$tpid"
L=$work/one/ledger.db
uuid=$(sqlite3 "$L" "SELECT uuid FROM resources ORDER BY uuid LIMIT 1")
vc=$(sqlite3 "$L" "SELECT CAST(s.last_value AS INTEGER) FROM series s JOIN resources r ON r.id = s.resource_id
  JOIN meters m ON m.id = s.meter_id WHERE r.uuid = '$uuid' AND m.name = 'vcpus'")
[ -n "$uuid" ] && [ -n "$vc" ] || { bad "the one-tick ledger has no VM or no vcpus"; exit 1; }
# the oracle that no counter has an interval yet: every series was last
# read at one time, and the counters' usage (what they did between two
# readings) is nothing
times=$(sqlite3 "$L" "SELECT count(DISTINCT last_ns) FROM series")
cusage=$(sqlite3 "$L" "SELECT count(*) FROM usage u JOIN series s ON s.resource_id = u.resource_id
  AND s.meter_id = u.meter_id AND s.device = u.device WHERE s.kind = 'cumulative' AND u.quantity != 0")
[ "$times" -eq 1 ] && [ "$cusage" -eq 0 ] ||
	bad "the one-tick ledger: series read at $times times, $cusage counter usage rows: more than one reading"
curl -s -o "$work/res.json" "http://127.0.0.1:$PORT/api/v1/resources/$uuid"
rates=$(jq -c '[.series[] | select(.kind == "counter") | .rate]' "$work/res.json")
if jq -e '[.series[] | select(.kind == "counter")] | length > 0 and all(.rate == null)' "$work/res.json" > /dev/null; then
	ok "API after one reading: every counter's rate is null ($rates)"
else
	bad "API after one reading: counter rates $rates, want all null (no interval to take a rate over)"
fi
chk 3 "no rate" -p "$PORT" -r "$uuid" -m cpu -c '~:4'
chk 3 "no rate" -p "$PORT" -r "$uuid" -m network.incoming.bytes -w '~:1000000'
chk 3 "no rate" -p "$PORT" -r "$uuid" -m disk.device.read.bytes -d vda
# the gauge read at the same tick is there: exactly on the edges of vc:vc
chk 0 "'vcpus'=$vc;;$vc:$vc;0;" -p "$PORT" -r "$uuid" -m vcpus -c "$vc:$vc"
kill "$tpid"; wait "$tpid" 2>/dev/null || true; tpid=""

# ---- a fake tallyd: 200 and whatever $work/answer holds ----
cat > "$work/fake.py" <<'EOP'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_GET(self):
        body = open(sys.argv[1], "rb").read()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
EOP
echo '{}' > "$work/answer"
python3 "$work/fake.py" "$work/answer" > "$work/fport" &
fpid=$!
for _ in $(seq 50); do [ -s "$work/fport" ] && break; sleep 0.1; done
FP=$(cat "$work/fport")
answer() { printf '%s' "$1" > "$work/answer"; }
U=0503da91-bfd5-420f-8000-cc7a1bed6282

# -m alerts counts the "alerts" array: without one there is nothing to
# count, which is not "0 firing"
for a in '{}' '[]' '{"alerts": "many"}' '{"alerts": null}'; do
	answer "$a"
	chk 3 "UNKNOWN" -p "$FP" -m alerts -c 0
done
answer '{"alerts": []}'
chk 0 "'firing'=0;;0;0;" -p "$FP" -m alerts -c 0

# perfdata_ok WANT: the one line has exactly one '|', and after it exactly
# WANT (what Nagios would take as the perfdata)
perfdata_ok() {
	pipes=$(tr -cd '|' < "$work/chk" | wc -c)
	perf=$(sed 's/^[^|]*|[[:space:]]*//' "$work/chk")
	if [ "$pipes" -eq 1 ] && [ "$perf" = "$1" ]; then ok "one '|', perfdata '$perf'"
	else bad "$pipes '|' in '$(cat "$work/chk")': Nagios reads the perfdata as '${perf}', want '$1'"; fi
}
answer '{"now": "2026-10-01T00:01:00Z", "resource": {"name": "web|1 a", "last_seen": "2026-10-01T00:01:00Z"},
 "series": [{"meter": "vcpus", "device": "", "kind": "gauge", "value": 2}]}'
chk 0 "vcpus is 2" -p "$FP" -r "$U" -m vcpus -c 2:2
perfdata_ok "'vcpus'=2;;2:2;0;"
answer '{"alerts": [{"state": "firing", "labels": {"alertname": "Cpu|High", "name": "db|2"}}]}'
chk 2 "firing is 1" -p "$FP" -m alerts -c 0
perfdata_ok "'firing'=1;;0;0;"

# cpu 10000 ns/s is 10000 / 10^9 = 0.00001 cores (printf's %g would say 1e-05)
answer '{"now": "2026-10-01T00:01:00Z", "resource": {"name": "idle", "last_seen": "2026-10-01T00:01:00Z"},
 "series": [{"meter": "cpu", "device": "", "kind": "counter", "total": 5, "rate": 10000}]}'
chk 0 "cpu is" -p "$FP" -r "$U" -m cpu -w 1
perfdata_ok "'cpu'=0.00001;1;;0;"
# memory 2^60 B = 1152921504606846976 B, exact in a double (%g: 1.15292150460685e+18)
answer '{"now": "2026-10-01T00:01:00Z", "resource": {"name": "big", "last_seen": "2026-10-01T00:01:00Z"},
 "series": [{"meter": "memory", "device": "", "kind": "gauge", "value": 1152921504606846976}]}'
chk 0 "memory is" -p "$FP" -r "$U" -m memory
perfdata_ok "'memory'=1152921504606846976B;;;0;"

# -m sla: the fleet's availability as the API sends it, a string
answer '{"fleet": {"availability_percent": "99.5000"}, "vms": []}'
chk 1 "availability is 99.5" -p "$FP" -m sla -P 2026-10 -w 99.9: -c 99:
for a in '"n/a"' '""' '"100.5"' '"-1"' '"99.5 %"'; do
	answer "{\"fleet\": {\"availability_percent\": $a}, \"vms\": []}"
	chk 3 "is not a percentage" -p "$FP" -m sla -P 2026-10 -c 99:
done
for h in 127.0.0.1/x "user@127.0.0.1" "[::1]" "" "-x" "127.0.0.1?a"; do
	chk 3 "-H '$h': a host name" -H "$h" -p "$FP" -m alerts -c 0
done
# a host name is taken
answer '{"fleet": {"availability_percent": "99.9500"}, "vms": []}'
chk 0 "availability is 99.95" -H localhost -p "$FP" -m sla -P 2026-10 -c 99:

[ "$fails" -eq 0 ] || { echo "$fails failed"; exit 1; }
echo "all passed"
