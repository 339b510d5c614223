#!/bin/sh
# The HTTP listener against hostile and broken clients (issue 10, finding 3),
# with the load generator tests/lib/httpload.py on loopback. Each case is one
# that blocked or stalled the listener before the accept loop of
# exporters/httpgate.c; each now passes:
# - 300 slowloris connections from 127.0.0.1 (the scraper's own address)
#   and 300 more from 300 other loopback addresses, re-opened as they are
#   closed, trickling a header byte a second: every scrape is answered;
# - a flood of 1500 idle connections from 1500 loopback addresses: scrapes
#   answered, and every flood connection closed by the server at its head
#   deadline, nothing left in CLOSE-WAIT once the clients are gone;
# - a GET with 400 query parameters, an 8 KiB head, 65 fields: a 4xx at once
#   (before: no answer, the connection held 30 s);
# - tallyd with a limit of 64 descriptors under connection pressure: the
#   CPU it used is logged (before: ~95 % of a core spinning), scrapes are
#   answered afterwards;
# - wrong bearer tokens from one address and from 400 loopback addresses:
#   past the per-address and the total budget of failed authentications
#   they get 429 (before: each new address had a fresh allowance), and a
#   valid token from an address that used it before still works.
# No timing is asserted: a client waits a bounded time for an answer, and
# no answer in that time is the failure.
set -eu
B=${B:-build}
TALLYD=$PWD/$B/tallyd
LOAD="python3 $PWD/tests/lib/httpload.py"
command -v python3 >/dev/null || { echo "python3 is not installed (scripts/deps.sh installs it)"; exit 77; }
work=$(mktemp -d /tmp/tally-hostile-XXXXXX)
tpid="" lpid=""
cleanup() {
	[ -n "$lpid" ] && kill "$lpid" 2>/dev/null && wait "$lpid" 2>/dev/null
	[ -n "$tpid" ] && kill "$tpid" 2>/dev/null && wait "$tpid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
fails=0
. tests/lib/cli.sh
# val KEY LINE: the number after KEY= in a httpload output line
val() { echo "$2" | sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
ADMIN=admin-0123456789abcdef

start_tallyd() { # NAME [ulimit -n] [more http keys]
	cat > "$work/$1.yaml" <<EOC
tallyd:
  agent_id: hostile
  data_dir: $work/$1
  interval: 60s
  clock: fast-forward
  start: 2026-10-01T00:00:00Z
  end: 2026-10-01T01:00:00Z
  log_level: info
rrd:
  enabled: false
http:
  port: 0
  serve_after_end: true
  rate_limit: 1000
  rate_burst: 1000
  ${3:-}
  tokens:
    - token: $ADMIN
      admin: true
collectors:
  sim:
    vms: 20
EOC
	if [ -n "${2:-}" ]; then
		sh -c "ulimit -n $2 && exec \"$TALLYD\" -c \"$work/$1.yaml\"" 2> "$work/$1.log" &
	else
		"$TALLYD" -c "$work/$1.yaml" 2> "$work/$1.log" &
	fi
	tpid=$!
	wait_serving "$work/$1.log" "$tpid"
}
stop_tallyd() {
	kill -TERM "$tpid"
	if wait "$tpid"; then ok "tallyd stopped cleanly"; else bad "tallyd exited $? on SIGTERM"; fi
	tpid=""
	grep "connections accepted" "$1" | sed 's/^/     /'
}
cpu_s() { # PID: user + system CPU seconds so far
	awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}
scrape() { # COUNT EVERY: scrapes with the admin token, each with a 5 s deadline
	$LOAD scrape --port "$PORT" --count "$1" --every "$2" --timeout 5 --token "$ADMIN"
}
all_answered() { # NAME LINE: every scrape answered 200
	n=$(val count "$2") a=$(val ok "$2")
	[ -n "$n" ] && [ "$a" = "$n" ] && ok "$1: $2" || bad "$1: $2"
}
# wait_states WHAT: until no connection to the port is ESTABLISHED or in
# CLOSE-WAIT on the server side (bounded: 10 s); the last count in $states
wait_states() {
	i=0
	while :; do
		states=$($LOAD tcpstates --port "$PORT")
		[ "$(val ESTABLISHED "$states")" = 0 ] && [ "$(val CLOSE_WAIT "$states")" = 0 ] && break
		i=$((i + 1)); [ $i -lt 100 ] || break
		sleep 0.1
	done
}

start_tallyd main
echo "tallyd on port $PORT, CPU $(cpu_s "$tpid") s after its period"

# ---- slowloris: 300 from the scraper's address, 300 from 300 others ----
$LOAD slow --port "$PORT" --n 300 --hold 12 --every 1 --reopen 100 > "$work/slow1" 2>&1 &
lpid=$!
$LOAD slow --port "$PORT" --n 300 --hold 12 --every 1 --reopen 100 --spread > "$work/slow2" 2>&1 &
spid=$!
sleep 2
all_answered "scrapes while 600 slow connections are held" "$(scrape 8 1)"
wait "$lpid" "$spid" || true
lpid=""
echo "     slowloris from 127.0.0.1: $(cat "$work/slow1")"
echo "     slowloris from 300 addresses: $(cat "$work/slow2")"
# the ones from other addresses are not pushed out by newer ones: the head
# deadline (5 s) closed every one of the first 300 within the 12 s
closed=$(val closed_by_server "$(cat "$work/slow2")")
[ "$closed" -ge 300 ] && ok "slow heads closed at their deadline ($closed closed, the longest lived" \
	"$(val max_life_s "$(cat "$work/slow2")") s)" || bad "slow heads from 300 addresses: $closed closed in 12 s"
wait_states
[ "$(val CLOSE_WAIT "$states")" = 0 ] && ok "slow clients gone: nothing left open or in CLOSE-WAIT ($states)" ||
	bad "after the slow clients left: $states"
# an SRE sees them: the listener's counts on the admin's /metrics, at least
# the slow heads from 300 addresses closed at their deadline above
tout=$(curl -s -H "Authorization: Bearer $ADMIN" "http://127.0.0.1:$PORT/metrics" |
	sed -n 's|^tally_http_connections_total{result="timed_out"} ||p')
[ "${tout:-0}" -ge "$closed" ] && ok "/metrics: $tout connections timed out before their head was whole (>= $closed)" ||
	bad "/metrics: tally_http_connections_total{result=\"timed_out\"} '$tout', want >= $closed"

# ---- a flood of idle connections from 1500 addresses ----
$LOAD flood --port "$PORT" --n 1500 --hold 9 > "$work/flood" 2>&1 &
lpid=$!
sleep 2
all_answered "scrapes during a flood from 1500 addresses" "$(scrape 4 0.5)"
wait "$lpid" || true
lpid=""
fl=$(cat "$work/flood")
echo "     $fl"
[ "$(val connected "$fl")" -gt 0 ] && [ "$(val closed_by_server "$fl")" = "$(val connected "$fl")" ] &&
	ok "every flood connection was closed by the server (head deadline 5 s, held 9 s)" || bad "flood: $fl"
wait_states
[ "$(val ESTABLISHED "$states")" = 0 ] && [ "$(val CLOSE_WAIT "$states")" = 0 ] &&
	ok "flood gone: nothing left open or in CLOSE-WAIT" || bad "after the flood: $states"

# ---- oversized requests: a 4xx at once, never a held connection ----
bounded() { # NAME WANT LINE: status WANT, answered within the client's deadline
	st=$(echo "$3" | sed -n 's/.* status=\([0-9a-z]*\).*/\1/p')
	[ "$st" = "$2" ] && ok "$1: $3" || bad "$1 (want $2): $3"
}
bounded "400 query parameters (3.4 KiB target)" 414 "$($LOAD bigquery --port "$PORT" --params 400)"
bounded "33 query parameters" 400 "$($LOAD bigquery --port "$PORT" --params 33)"
bounded "400 query parameters after a space in the target (0.8 KiB)" 400 \
	"$($LOAD request --port "$PORT" --spaced-args 400)"
bounded "a 2049-byte target" 414 "$($LOAD request --port "$PORT" --url-bytes 2049)"
bounded "a 2048-byte target reaches the handler (no token: 401)" 401 \
	"$($LOAD request --port "$PORT" --url-bytes 2048)"
bounded "65 header fields" 431 "$($LOAD request --port "$PORT" --headers 63)"
bounded "a 20 KiB head" 431 "$($LOAD request --port "$PORT" --headers 300)"
bounded "64 header fields reach the handler (no token: 401)" 401 "$($LOAD request --port "$PORT" --headers 62)"
stop_tallyd "$work/main.log"

# ---- 64 descriptors, connection pressure: no spinning, recovers ----
start_tallyd low 64
c0=$(cpu_s "$tpid")
$LOAD slow --port "$PORT" --n 200 --hold 10 --every 1 --reopen 300 --spread > "$work/slow3" 2>&1 &
lpid=$!
sleep 2
during=$(scrape 4 1)
wait "$lpid" || true
lpid=""
c1=$(cpu_s "$tpid")
echo "     under 64 descriptors: $(cat "$work/slow3")"
echo "     scrapes during the pressure: $during"
echo "     CPU used by tallyd over the ~10 s of pressure: $(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }') s"
grep -m1 "cannot accept" "$work/low.log" | sed 's/^/     /' || true
kill -0 "$tpid" && ok "tallyd with 64 descriptors is alive after the pressure" || bad "tallyd died under pressure"
all_answered "scrapes after the pressure" "$(scrape 3 0.3)"
stop_tallyd "$work/low.log"

# ---- guessing tokens: per address, and across 400 addresses ----
# budgets of 5 wrong tokens a minute per address and 20 for all: each
# refills one every 12 s and 3 s, so a run of E seconds can see at most
# 5 + E / 12 (rounded up) and 20 + E / 3 wrong tokens answered 401
start_tallyd auth "" "auth_failures_per_address: 5
  auth_failures_total: 20"
all_answered "the admin token from 127.0.0.1 before the guessing" "$(scrape 1 0)"
t0=$(date +%s.%N)
one=$($LOAD authguess --port "$PORT" --n 30 --src 127.4.0.1)
t1=$(date +%s.%N)
many=$($LOAD authguess --port "$PORT" --n 400 --spread)
t2=$(date +%s.%N)
echo "     30 wrong tokens from 127.4.0.1: $one"
echo "     400 wrong tokens from 400 addresses: $many"
max1=$(awk -v a="$t0" -v b="$t1" 'BEGIN { e = (b - a) / 12; printf "%d", 5 + (e == int(e) ? e : int(e) + 1) }')
maxall=$(awk -v a="$t0" -v b="$t2" 'BEGIN { e = (b - a) / 3; printf "%d", 20 + (e == int(e) ? e : int(e) + 1) }')
n1=$(val status_401 "$one") n2=$(val status_401 "$many")
[ "$n1" -ge 1 ] && [ "$n1" -le "$max1" ] && [ "$(val status_429 "$one")" -eq $((30 - n1)) ] &&
	ok "one address: $n1 wrong tokens looked at (at most $max1), the rest 429" ||
	bad "one address: $n1 of 30 wrong tokens looked at (at most $max1): $one"
[ $((n1 + n2)) -le "$maxall" ] && [ "$(val status_429 "$many")" -eq $((400 - n2)) ] &&
	ok "400 addresses: $((n1 + n2)) wrong tokens looked at in all (at most $maxall), the rest 429" ||
	bad "400 addresses: $((n1 + n2)) wrong tokens looked at in all (at most $maxall): $many"
all_answered "the admin token from 127.0.0.1 (used before) during the guessing" "$(scrape 2 0.1)"
echo "     the admin token from an address new to tallyd meanwhile (429 while the total is spent):" \
	"$($LOAD scrape --port "$PORT" --count 1 --timeout 5 --token "$ADMIN" --src 127.2.0.1)"
stop_tallyd "$work/auth.log"

echo "http_hostile: $fails failed"
[ "$fails" -eq 0 ]
