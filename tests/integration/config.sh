#!/bin/sh
# tallyd -n -c FILE: each kind of config mistake gives its own message with
# file:line:column and the key, and exit status 2; a good config exits 0.
set -eu
B=${B:-build}
TALLYD=$PWD/$B/tallyd
work=$(mktemp -d /tmp/tally-config-XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0

# case NAME EXPECTED_STATUS EXPECTED_MESSAGE_FRAGMENT  (config on stdin)
case_() {
	name=$1 want=$2 frag=$3
	f="$work/$name.yaml"
	cat > "$f"
	if "$TALLYD" -n -c "$f" > "$work/out" 2>&1; then got=0; else got=$?; fi
	msg=$(cat "$work/out")
	if [ "$got" -ne "$want" ]; then
		echo "FAIL $name: exit $got, expected $want: $msg"; fails=$((fails + 1)); return
	fi
	case "$msg" in
	*"$frag"*) echo "ok   $name: $msg" ;;
	*) echo "FAIL $name: message '$msg' lacks '$frag'"; fails=$((fails + 1)) ;;
	esac
}

case_ good 0 "good.yaml: ok" <<'Y'
tallyd:
  interval: 10s
collectors:
  sim:
    vms: 3
Y
case_ syntax 2 "syntax.yaml:4:11: yaml syntax error: did not find expected ',' or ']' while parsing a flow sequence (begun at line 3, column 10)" <<'Y'
tallyd:
  interval: 10s
  start: [2026-10
collectors:
  sim: {}
Y
case_ unknown_key 2 "unknown_key.yaml:2:3: unknown key 'intervall' in 'tallyd'" <<'Y'
tallyd:
  intervall: 10s
collectors:
  sim: {}
Y
case_ unknown_key_collector 2 "unknown_key_collector.yaml:4:5: unknown key 'vm' in 'collectors.sim'" <<'Y'
tallyd: {}
collectors:
  sim:
    vm: 3
Y
case_ wrong_type 2 "wrong_type.yaml:2:13: key 'interval': expected a duration, not a map" <<'Y'
tallyd:
  interval: {seconds: 10}
collectors:
  sim: {}
Y
case_ bad_duration 2 "bad_duration.yaml:2:13: key 'interval': expected a duration like 10s (got 'fast')" <<'Y'
tallyd:
  interval: fast
collectors:
  sim: {}
Y
case_ out_of_range 2 "out_of_range.yaml:4:10: key 'vms': 0 is out of range 1..1000000" <<'Y'
tallyd: {}
collectors:
  sim:
    vms: 0
Y
case_ out_of_range_loss 2 "out_of_range_loss.yaml:4:11: key 'loss': 1.5 is out of range" <<'Y'
tallyd: {}
collectors:
  sim:
    loss: 1.5
Y
case_ bad_enum 2 "bad_enum.yaml:2:10: key 'clock': expected one of realtime, fast-forward (got 'warp')" <<'Y'
tallyd:
  clock: warp
collectors:
  sim: {}
Y
case_ unknown_collector 2 "unknown_collector.yaml:3:3: unknown collector 'xen'" <<'Y'
tallyd: {}
collectors:
  xen: {}
Y
case_ fast_forward_needs_end 2 "fast_forward_needs_end.yaml:2:10: key 'clock': fast-forward needs 'start' and a later 'end'" <<'Y'
tallyd:
  clock: fast-forward
  start: 2026-10
collectors:
  sim: {}
Y
case_ duplicate_key 2 "duplicate_key.yaml:3:3: key 'interval' given twice" <<'Y'
tallyd:
  interval: 10s
  interval: 20s
collectors:
  sim: {}
Y
case_ no_collectors 2 "no collectors configured" <<'Y'
tallyd:
  interval: 10s
Y
case_ max_gap_not_longer 2 "max_gap_not_longer.yaml:4:12: key 'max_gap': must be longer than tallyd.interval (600s)" <<'Y'
tallyd:
  interval: 10m
ledger:
  max_gap: 5m
collectors:
  sim: {}
Y
# Values the readers used to take (strtod/strtoull accept hex, inf, nan,
# spaces, a sign; a string took CR LF): each is refused at its line and
# column with the key named (the column is where the value starts).
case_ hex_interval 2 "hex_interval.yaml:2:13: key 'interval': expected a duration like 10s (got '0x10')" <<'Y'
tallyd:
  interval: 0x10
collectors:
  sim: {}
Y
case_ hex_vms 2 "hex_vms.yaml:4:10: key 'vms': expected a whole number in decimal digits (got '0x10')" <<'Y'
tallyd: {}
collectors:
  sim:
    vms: 0x10
Y
case_ octal_port 2 "octal_port.yaml:5:9: key 'port': expected a whole number in decimal digits (got '0700')" <<'Y'
tallyd: {}
collectors:
  sim: {}
http:
  port: 0700
Y
case_ negative_zero_rate_limit 2 "negative_zero_rate_limit.yaml:5:15: key 'rate_limit': '-0.0' is a negative zero" <<'Y'
tallyd: {}
collectors:
  sim: {}
http:
  rate_limit: -0.0
Y
case_ nan_rate_limit 2 "nan_rate_limit.yaml:5:15: key 'rate_limit': expected a decimal number like 2.5 (got '.nan')" <<'Y'
tallyd: {}
collectors:
  sim: {}
http:
  rate_limit: .nan
Y
case_ inf_loss 2 "inf_loss.yaml:4:11: key 'loss': expected a decimal number like 2.5 (got 'inf')" <<'Y'
tallyd: {}
collectors:
  sim:
    loss: inf
Y
case_ spaces_token 2 "spaces_token.yaml:6:14: key 'token': '                    ' begins with a space" <<'Y'
tallyd: {}
collectors:
  sim: {}
http:
  tokens:
    - token: "                    "
      admin: true
Y
case_ leading_space_token 2 "leading_space_token.yaml:6:14: key 'token': ' 0123456789abcdef-admin' begins with a space" <<'Y'
tallyd: {}
collectors:
  sim: {}
http:
  tokens:
    - token: " 0123456789abcdef-admin"
      admin: true
Y
case_ trailing_space_tenant 2 "trailing_space_tenant.yaml:7:15: key 'tenant': 'tenant-01 ' ends with a space" <<'Y'
tallyd: {}
collectors:
  sim: {}
http:
  tokens:
    - token: 0123456789abcdef-t1
      tenant: "tenant-01 "
Y
case_ crlf_alertmanager 2 "crlf_alertmanager.yaml:5:17: key 'alertmanager': control character 0x0d at character 22 of the value" <<'Y'
tallyd: {}
collectors:
  sim: {}
alerts:
  alertmanager: "http://127.0.0.1:9093\r\nX-Injected: 1"
Y
# A 10-minute interval without max_gap: the default (5 min) grows to three
# intervals, so regular readings are neither gaps nor silences. Two VMs for
# six hours: the ledger must have no silent events, and every usage row is
# covered as long as it is spanned (covered = spanned, summed with sqlite3).
cat > "$work/slow.yaml" <<EOC
tallyd:
  interval: 10m
  data_dir: $work/slow
  clock: fast-forward
  start: 2026-10-01T00:00:00Z
  end: 2026-10-01T06:00:00Z
rrd:
  enabled: false
collectors:
  sim:
    vms: 2
    reboots_per_day: 0
    stops_per_day: 0
    migrations_per_day: 0
    crashes_per_day: 0
EOC
"$TALLYD" -q -c "$work/slow.yaml"
got=$(sqlite3 "$work/slow/ledger.db" "SELECT (SELECT count(*) FROM events WHERE type IN ('silent', 'heard')),
	(SELECT sum(spanned_ns) = sum(covered_ns) AND sum(spanned_ns) > 0 FROM usage)")
if [ "$got" = "0|1" ]; then echo "ok   10m interval, default max_gap: no silences, all covered"
else echo "FAIL 10m interval, default max_gap: silences|all covered = $got, want 0|1"; fails=$((fails + 1)); fi
if "$TALLYD" -n -c "$work/does-not-exist.yaml" > "$work/out" 2>&1; then got=0; else got=$?; fi
if [ "$got" -eq 2 ] && grep -q "does-not-exist.yaml: cannot open" "$work/out"; then
	echo "ok   missing file: $(cat "$work/out")"
else
	echo "FAIL missing file: exit $got: $(cat "$work/out")"; fails=$((fails + 1))
fi
[ "$fails" -eq 0 ]
