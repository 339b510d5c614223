#!/bin/sh
# The SNMP collector against a real snmpd (Debian's net-snmp) on a free
# loopback port with its own config: v2c and v3 users of each security
# level (authPriv SHA/AES, authNoPriv MD5, noAuthNoPriv, made by createUser),
# IF-MIB counters served by tests/fixtures/snmp/ifpass.py (pass_persist)
# from a file this script writes, so every counter is known. tallyd polls
# it every 2 s with these targets:
#   sw      v2c, a switch (tenant's incoming = ifHCOutOctets), port rule -> tenant acme
#   sw3     v3 authPriv, the same agent seen as a host (incoming = ifHCInOctets)
#   v3an    v3 authNoPriv (MD5), a switch    v3nn  v3 noAuthNoPriv, a switch
#   badcomm v2c, wrong community      badpw  v3, wrong auth password
#   nouser  v3, a user snmpd lacks    dead   a socket that never answers
#   badproto v3, SHA for a user snmpd keys with MD5 (right password)
# Checked:
# - the ledger's usage equals the differences of snmpget readings of the
#   same OIDs (the oracle), through a 32-bit wrap, a "reboot" (snmpd
#   restarted: sysUpTime starts over, counters lower) and an ifIndex
#   renumbering that comes with it: no negative, nothing counted twice;
# - the failing targets: one log line each naming the target and the
#   error, nothing of theirs in the ledger; snmpget with the same wrong
#   protocol is refused by snmpd too (the oracle for badproto);
# - the dead target never delays the healthy one: every cycle polled both,
#   each of sw's polls succeeded, each of dead's timed out (counts from
#   /metrics, no wall-clock assertion); promtool accepts the scrape;
# - hostile values (a string where a Counter64 belongs) are counted and
#   left out.
set -eu
B=${B:-build}
TALLYD=$PWD/$B/tallyd
. tests/lib/snmpd.sh
snmp_need promtool
work=$(mktemp -d /tmp/tally-snmp-XXXXXX)
trap snmp_cleanup EXIT
trap 'exit 1' HUP INT TERM

# free ports, found now: two UDP (agent, the silent one) and one TCP (http)
set -- $(snmp_free_ports udp udp tcp)
port=$1 dport=$2 hport=$3
agent=udp:127.0.0.1:$port

# a target that never answers: a bound socket nobody reads (no ICMP either)
$(snmp_wrap) python3 -c "
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', $dport)); time.sleep(600)" &
snmp_track $!

ifs=$work/ifs
snmpd_conf agent "$port"
cat >> "$work/agent.conf" <<EOF
createUser alice SHA "alicepass1" AES "aliceprivkey"
createUser dave SHA "davepass12" AES "daveprivkey"
createUser bob MD5 "bobpass123"
createUser carol
createUser erin MD5 "erinpass12"
rouser alice priv
rouser dave priv
rouser bob auth
rouser carol noauth
rouser erin auth
pass_persist -p 1 .1.3.6.1.2.1.31.1.1.1 $PWD/tests/fixtures/snmp/ifpass.py $ifs
pass_persist -p 1 .1.3.6.1.2.1.2.2.1 $PWD/tests/fixtures/snmp/ifpass.py $ifs
EOF
# the built-in interface tables off: only the test's counters are served
start_snmpd() { snmpd_start agent "$port" ifXTable,ifTable,interfaces,smux; }
get() { snmpget -v2c -c public -On -Oqv "$agent" "$1"; }
get_bob() { snmpget -v3 -l authNoPriv -u bob -a MD5 -A bobpass123 -On -Oqv "$agent" "$1"; }
get_carol() { snmpget -v3 -l noAuthNoPriv -u carol -On -Oqv "$agent" "$1"; }
HCIN=.1.3.6.1.2.1.31.1.1.1.6 HCOUT=.1.3.6.1.2.1.31.1.1.1.10 IN32=.1.3.6.1.2.1.2.2.1.10 INERR=.1.3.6.1.2.1.2.2.1.14

# ifIndex ifName ifAlias ifHCIn ifHCOut ifIn ifOut ifOperStatus ifInErrors
cat > "$ifs" <<EOF
1 Gi0/1 cust:acme 1000 5000 - - 1 10
2 Gi0/2 uplink 7 9 - - 2 0
3 Fa0/3 old - - 4294967000 100 1 0
4 Gi0/4 junk s:notanumber 1 - - 1 0
EOF
start_snmpd

snmp_tally_yaml 2s > "$work/tally.yaml"
cat >> "$work/tally.yaml" <<EOF
      - {name: sw, address: "127.0.0.1:$port", community: public, timeout: 200ms, retries: 1}
      - {name: sw3, address: "127.0.0.1:$port", type: host, version: "3", user: alice, level: authPriv,
         auth_protocol: SHA, auth_password: alicepass1, priv_protocol: AES, priv_password: aliceprivkey,
         timeout: 200ms, retries: 1}
      - {name: v3an, address: "127.0.0.1:$port", version: "3", user: bob, level: authNoPriv,
         auth_protocol: MD5, auth_password: bobpass123, timeout: 200ms, retries: 1}
      - {name: v3nn, address: "127.0.0.1:$port", version: "3", user: carol, level: noAuthNoPriv,
         timeout: 200ms, retries: 1}
      - {name: badproto, address: "127.0.0.1:$port", version: "3", user: erin, level: authNoPriv,
         auth_protocol: SHA, auth_password: erinpass12, timeout: 200ms, retries: 1}
      - {name: badcomm, address: "127.0.0.1:$port", community: nope, timeout: 200ms, retries: 1}
      - {name: badpw, address: "127.0.0.1:$port", version: "3", user: dave, level: authPriv,
         auth_password: wrongpass1, priv_password: daveprivkey, timeout: 200ms, retries: 1}
      - {name: nouser, address: "127.0.0.1:$port", version: "3", user: mallory, level: authNoPriv,
         auth_password: whatever123, timeout: 200ms, retries: 1}
      - {name: dead, address: "127.0.0.1:$dport", community: public, timeout: 200ms, retries: 1}
    ports:
      - {target: sw, if_alias: "cust:*", tenant: acme, name: "acme uplink", labels: {plan: gold}}
EOF
"$TALLYD" -n -c "$work/tally.yaml" || { bad "tallyd -n refuses the config"; exit 1; }
tallyd_start "$work/tally.yaml" "$work/tallyd.log"

wait_polls() { snmp_wait_polls "$1" "$2" "$work/tallyd.log"; }
okpolls() { snmp_okpolls "$1"; }
healthy="sw sw3 v3an v3nn"
wait_phase() { # until each healthy target has two more successful polls
	set -- $(for t in $healthy; do okpolls $t; done)
	for t in $healthy; do wait_polls $t $(($1 + 2)); shift; done
}

# phase 1: the baseline
for t in $healthy; do wait_polls $t 2; done
o1_out=$(get $HCOUT.1) o1_in=$(get $HCIN.1) o1_32=$(get $IN32.3) o1_err=$(get $INERR.1)
# the v3 users of the lower levels read the same through snmpget; the
# wrong protocol is refused by snmpd itself
eq "snmpget as bob (authNoPriv, MD5) reads what v2c reads" "$(get_bob $HCOUT.1)" "$o1_out"
eq "snmpget as carol (noAuthNoPriv) reads what v2c reads" "$(get_carol $HCOUT.1)" "$o1_out"
if snmpget -v3 -l authNoPriv -u erin -a SHA -A erinpass12 -r 0 -On "$agent" $HCOUT.1 > "$work/erin.out" 2>&1; then
	bad "snmpd answered erin with SHA (her key is MD5): $(cat "$work/erin.out")"
else
	grep -q "Authentication failure" "$work/erin.out" && ok "snmpget as erin with SHA: $(cat "$work/erin.out")" ||
		bad "snmpget as erin with SHA failed otherwise: $(cat "$work/erin.out")"
fi

# counts from here on (the first cycle may be slow: snmpd starts its
# pass_persist scripts at the first request)
snap() {
	snmp_metrics | awk '
		$1 == "tally_collection_cycles_total" { c = $2 }
		$1 == "tally_snmp_polls_total{target=\"sw\"}" { sp = $2 }
		$1 == "tally_snmp_timeouts_total{target=\"sw\"}" { sx += $2 }
		$1 == "tally_snmp_errors_total{target=\"sw\"}" { sx += $2 }
		$1 == "tally_snmp_polls_total{target=\"dead\"}" { dp = $2 }
		$1 == "tally_snmp_timeouts_total{target=\"dead\"}" { dt = $2 }
		END { print c, sp, sp - sx, dp, dt }'
}
set -- $(snap)
c0=$1 sp0=$2 sok0=$3 dp0=$4 dt0=$5

# phase 2: traffic, and Fa0/3's 32-bit ifInOctets wraps
cat > "$ifs" <<EOF
1 Gi0/1 cust:acme 4000 17345 - - 1 15
2 Gi0/2 uplink 7 9 - - 2 0
3 Fa0/3 old - - 200 100 1 0
4 Gi0/4 junk s:notanumber 1 - - 1 0
EOF
o2_out=$(get $HCOUT.1) o2_in=$(get $HCIN.1) o2_32=$(get $IN32.3) o2_err=$(get $INERR.1)
wait_phase

# count-wise over phase 2: every cycle polled sw and dead; every sw poll
# answered while every dead poll timed out: dead never cost sw a poll
set -- $(snap)
cycles=$(($1 - c0)) sw_p=$(($2 - sp0)) sw_ok=$(($3 - sok0)) dead_p=$(($4 - dp0)) dead_t=$(($5 - dt0))
echo "phase 2, $cycles cycles: sw polled $sw_p (answered $sw_ok), dead polled $dead_p (timed out $dead_t)"
[ "$cycles" -ge 2 ] && [ "$sw_p" -ge $((cycles - 1)) ] && [ "$sw_p" -le $((cycles + 1)) ] &&
	ok "sw polled every cycle" || bad "sw polled $sw_p times in $cycles cycles"
eq "sw: every poll answered" "$sw_ok" "$sw_p"
[ "$dead_t" -ge $((dead_p - 1)) ] && [ "$dead_p" -ge $((cycles - 1)) ] && ok "dead timed out each cycle" ||
	bad "dead: $dead_t timeouts of $dead_p polls in $cycles cycles"
snmp_metrics > "$work/metrics.txt"
promtool check metrics < "$work/metrics.txt" && ok "promtool accepts /metrics" || bad "promtool refuses /metrics"

# phase 3: the switch "reboots": snmpd restarted (sysUpTime starts over),
# counters lower than before, and Gi0/1 comes back as ifIndex 5
stop_pid "$snmpd_pid"
cat > "$ifs" <<EOF
1 Gi0/2 uplink 3 4 - - 1 0
3 Fa0/3 old - - 150 20 1 0
5 Gi0/1 cust:acme 50 700 - - 1 1
EOF
start_snmpd
o3_out=$(get $HCOUT.5) o3_in=$(get $HCIN.5) o3_32=$(get $IN32.3) o3_err=$(get $INERR.5)
wait_phase

# phase 4: traffic after the reboot
cat > "$ifs" <<EOF
1 Gi0/2 uplink 3 4 - - 1 0
3 Fa0/3 old - - 160 20 1 0
5 Gi0/1 cust:acme 50 900 - - 1 1
EOF
o4_out=$(get $HCOUT.5) o4_in=$(get $HCIN.5) o4_32=$(get $IN32.3)
wait_phase
# and until tallyd has counted the last values (a poll that timed out on a
# loaded machine is retried next cycle): its usage since start on /metrics
wait_usage() { # UUID FAMILY WANT
	for i in $(seq 300); do
		v=$(snmp_metrics |
			awk -v u="uuid=\"$1\"" -v f="$2" 'index($0, f "{") == 1 && index($0, u) { print $NF }')
		[ "$v" = "$3" ] && return 0
		sleep 0.1
	done
	echo "note: $1 $2 on /metrics is '$v' after 30 s, not $3"
}
wait_usage sw:Gi0/1 tally_interface_incoming_bytes_total $((o2_out - o1_out + o3_out + o4_out - o3_out))
wait_usage sw3:Gi0/1 tally_interface_outgoing_bytes_total $((o2_out - o1_out + o3_out + o4_out - o3_out))
wait_usage v3an:Gi0/1 tally_interface_incoming_bytes_total $((o2_out - o1_out + o3_out + o4_out - o3_out))
wait_usage v3nn:Gi0/1 tally_interface_incoming_bytes_total $((o2_out - o1_out + o3_out + o4_out - o3_out))
tallyd_stop "$tallyd_pid" "$work/tallyd.log"

L=$work/data/ledger.db
usage() { snmp_usage "$L" "$1" "$2"; }
last() { # UUID METER: the last reading the ledger keeps
	sqlite3 "$L" "select s.last_value from series s join resources r on r.id = s.resource_id
		join meters m on m.id = s.meter_id where r.uuid = '$1' and m.name = '$2'"
}
# the oracle: snmpget's readings. Across the reboot the counters went
# down, so they count from zero (rule 2): the new value is usage.
want_in=$((o2_out - o1_out + o3_out + o4_out - o3_out))
want_out=$((o2_in - o1_in + o3_in + o4_in - o3_in))
echo "snmpget: ifHCOutOctets $o1_out $o2_out | $o3_out $o4_out; ifHCInOctets $o1_in $o2_in | $o3_in $o4_in"
eq "sw:Gi0/1 if.incoming.bytes (ifHCOutOctets, a switch)" "$(usage sw:Gi0/1 if.incoming.bytes)" "$want_in"
eq "sw:Gi0/1 if.outgoing.bytes (ifHCInOctets)" "$(usage sw:Gi0/1 if.outgoing.bytes)" "$want_out"
eq "  worked out by hand" "$want_in/$want_out" "13245/3050"
eq "sw3:Gi0/1 if.incoming.bytes (v3, a host: ifHCInOctets)" "$(usage sw3:Gi0/1 if.incoming.bytes)" "$want_out"
eq "sw3:Gi0/1 if.outgoing.bytes" "$(usage sw3:Gi0/1 if.outgoing.bytes)" "$want_in"
for t in v3an v3nn; do
	eq "$t:Gi0/1 if.incoming.bytes (v3 $( [ $t = v3an ] && echo authNoPriv || echo noAuthNoPriv), a switch)" \
		"$(usage $t:Gi0/1 if.incoming.bytes)" "$want_in"
	eq "$t:Gi0/1 if.outgoing.bytes" "$(usage $t:Gi0/1 if.outgoing.bytes)" "$want_out"
done
eq "sw:Gi0/1 last reading = snmpget's" "$(last sw:Gi0/1 if.incoming.bytes)" "$o4_out"
# 32-bit ifInOctets of Fa0/3 (the tenant's outgoing on a switch): the wrap
# is 2^32 - o1 + o2; the reboot took it down, so it counts from zero
want32=$((4294967296 - o1_32 + o2_32 + o3_32 + o4_32 - o3_32))
eq "sw:Fa0/3 if.outgoing.bytes32 through a wrap and a reboot" "$(usage sw:Fa0/3 if.outgoing.bytes32)" "$want32"
eq "  worked out by hand" "$want32" "656"
eq "sw:Fa0/3 has no billed bytes" "$(usage sw:Fa0/3 if.outgoing.bytes)" "0"
# ifInErrors (the switch received: the tenant's outgoing errors): 10 -> 15, reboot -> 1
eq "sw:Gi0/1 if.outgoing.errors" "$(usage sw:Gi0/1 if.outgoing.errors)" "$((o2_err - o1_err + o3_err))"
neg=$(sqlite3 "$L" "select count(*) from usage where quantity < 0")
eq "no negative usage anywhere" "$neg" "0"
eq "sw:Gi0/1 tenant, name, labels, host" \
	"$(sqlite3 "$L" "select tenant || '|' || name || '|' || labels || '|' || host from resources where uuid = 'sw:Gi0/1'")" \
	"acme|acme uplink|plan=gold|sw"
eq "sw:Gi0/2 has no tenant" "$(sqlite3 "$L" "select tenant from resources where uuid = 'sw:Gi0/2'")" ""
eq "sw:Gi0/4 (a string for a Counter64) bills nothing" "$(usage sw:Gi0/4 if.incoming.bytes)" "0"
grep -q "snmp sw: answers with .*value(s) of the wrong type" "$work/tallyd.log" && ok "the wrong type is said" || bad "no word of the wrong type"
grep -q "snmp sw: 1 port(s) have no 64-bit counters" "$work/tallyd.log" && ok "the 32-bit port is said once" || bad "no word of the 32-bit port"

# the failing targets: said by name with their error, nothing stored
for c in "badcomm (127.0.0.1:$port): timeout" "badpw (127.0.0.1:$port): authentication failure" \
	 "nouser (127.0.0.1:$port): unknown user" "dead (127.0.0.1:$dport): timeout" \
	 "badproto (127.0.0.1:$port): authentication failure: wrong auth_password or auth_protocol"; do
	grep -q "snmp $c" "$work/tallyd.log" && ok "log: snmp $c" || bad "no log line 'snmp $c'"
done
for t in badpw badproto; do
	eq "$t's error said once per back-off window" "$(grep -c "snmp $t (.*authentication failure" "$work/tallyd.log")" "1"
done
failing="'badcomm', 'badpw', 'nouser', 'dead', 'badproto'"
eq "nothing stored for the failing targets" \
	"$(sqlite3 "$L" "select count(*) from resources where host in ($failing)")/$(sqlite3 "$L" "select count(*) from agents where agent in ($failing)")" "0/0"
if grep -q -e alicepass1 -e aliceprivkey -e wrongpass1 -e whatever123 -e bobpass123 -e erinpass12 "$work/tallyd.log"; then
	bad "a password is in the log"
else
	ok "no password in the log"
fi

[ "$fails" -eq 0 ] || { echo "--- tallyd log"; cat "$work/tallyd.log"; exit 1; }
echo "snmp: all passed"
