#!/bin/sh
# One SNMPv3 user name, two sets of keys, one engine id: net-snmp keeps one
# entry per (engine id, user name) in its user table, and every request and
# answer of every session is signed and checked with that entry's keys. The
# collector keeps each target's keys apart (collectors/snmp.c: it installs
# a target's own entry before the target's walk, and walks targets that
# would need another entry of the same name one after the other).
#
# Two snmpd instances made here are given the same engineID (as cloned
# devices are) and each a user 'twin' with a password of its own; each
# serves IF-MIB counters from a file of its own (ifpass.py), so a reading
# shows which agent it came from. Targets (all v3 authPriv SHA/AES):
#   a     agent 1 with agent 1's passwords
#   b     agent 2 with agent 2's passwords
#   a2    agent 1 with agent 1's passwords again, seen as a host (the same
#         keys: it may walk beside a)
#   abad  agent 1 with agent 2's passwords: wrong for agent 1
# Checked: the two agents' engine ids are equal (snmpget); a, b and a2
# answer every poll once each has answered twice (no timeout, no error on
# /metrics or in the log from then on: a key collision fails a and b in
# turn, every cycle; a first poll slowed by a loaded host, snmpd starting
# its pass_persist scripts, is not what this checks) and their usage
# equals the differences of snmpget readings of their own agent; abad is
# one log line naming it with the authentication failure and stores
# nothing. Before the collector kept the keys apart, the last target
# opened set the keys for all: a and b failed in turn, and abad could
# borrow a's keys and pass.
set -eu
B=${B:-build}
TALLYD=$PWD/$B/tallyd
. tests/lib/snmpd.sh
snmp_need
work=$(mktemp -d /tmp/tally-snmp-v3u-XXXXXX)
trap snmp_cleanup EXIT
trap 'exit 1' HUP INT TERM

set -- $(snmp_free_ports udp udp tcp)
port1=$1 port2=$2 hport=$3
for i in 1 2; do
	eval port=\$port$i
	snmpd_conf agent$i "$port"
	cat >> "$work/agent$i.conf" <<EOF
engineID tally-twin-$$
createUser twin SHA "twin-auth-$i" AES "twin-priv-$i"
rouser twin priv
pass_persist -p 1 .1.3.6.1.2.1.31.1.1.1 $PWD/tests/fixtures/snmp/ifpass.py $work/ifs$i
pass_persist -p 1 .1.3.6.1.2.1.2.2.1 $PWD/tests/fixtures/snmp/ifpass.py $work/ifs$i
EOF
done
# ifIndex ifName ifAlias ifHCIn ifHCOut ifIn ifOut ifOperStatus ifInErrors
echo "1 Gi0/1 one 100 1000 - - 1 0" > "$work/ifs1"
echo "1 Gi0/1 two 50000 70000 - - 1 0" > "$work/ifs2"
snmpd_start agent1 "$port1" ifXTable,ifTable,interfaces,smux
snmpd_start agent2 "$port2" ifXTable,ifTable,interfaces,smux

ENGINE=.1.3.6.1.6.3.10.2.1.1.0 HCOUT=.1.3.6.1.2.1.31.1.1.1.10.1
get() { snmpget -v2c -c public -On -Oqv "udp:127.0.0.1:$1" "$2"; }
e1=$(get "$port1" $ENGINE | tr -d ' \n"') e2=$(get "$port2" $ENGINE | tr -d ' \n"')
eq "the two agents' engine ids are the same" "$e2" "$e1"
for i in 1 2; do
	eval port=\$port$i
	v=$(snmpget -v3 -l authPriv -u twin -a SHA -A "twin-auth-$i" -x AES -X "twin-priv-$i" -On -Oqv \
		"udp:127.0.0.1:$port" $HCOUT)
	eq "snmpget as twin of agent $i (its own passwords)" "$v" "$(get "$port" $HCOUT)"
done

v3() { # NAME PORT I TYPE: a target of user twin with agent I's passwords
	echo "      - {name: $1, address: \"127.0.0.1:$2\", type: $4, version: \"3\", user: twin, level: authPriv,"
	echo "         auth_protocol: SHA, auth_password: twin-auth-$3, priv_protocol: AES, priv_password: twin-priv-$3,"
	echo "         timeout: 200ms, retries: 1}"
}
snmp_tally_yaml 1s > "$work/tally.yaml"
cat >> "$work/tally.yaml" <<EOF
$(v3 a "$port1" 1 switch)
$(v3 b "$port2" 2 switch)
$(v3 a2 "$port1" 1 host)
$(v3 abad "$port1" 2 switch)
EOF
tallyd_start "$work/tally.yaml" "$work/tallyd.log"
for t in a b a2; do snmp_wait_polls $t 2 "$work/tallyd.log"; done
fails() { # TARGET: its timeouts and errors so far
	snmp_metrics | awk -v t="{target=\"$1\"}" '
		$1 == "tally_snmp_timeouts_total" t || $1 == "tally_snmp_errors_total" t { x += $2 }
		END { print x + 0 }'
}
f0_a=$(fails a) f0_b=$(fails b) f0_a2=$(fails a2)
log0=$(wc -l < "$work/tallyd.log")
o1_1=$(get "$port1" $HCOUT) o1_2=$(get "$port2" $HCOUT)
echo "1 Gi0/1 one 100 1500 - - 1 0" > "$work/ifs1"
echo "1 Gi0/1 two 50000 70900 - - 1 0" > "$work/ifs2"
o2_1=$(get "$port1" $HCOUT) o2_2=$(get "$port2" $HCOUT)
set -- $(for t in a b a2; do snmp_okpolls $t; done)
for t in a b a2; do snmp_wait_polls $t $(($1 + 3)) "$work/tallyd.log"; shift; done
f1_a=$(fails a) f1_b=$(fails b) f1_a2=$(fails a2)
tallyd_stop "$tallyd_pid" "$work/tallyd.log"

# every poll of a, b and a2 answered from their second on: no timeout, no error
for t in a b a2; do
	eval n="\$((f1_$t - f0_$t))"
	eq "$t: timeouts + errors on /metrics after its first answers" "$n" "0"
	late=$(tail -n "+$((log0 + 1))" "$work/tallyd.log" | grep "snmp $t (" | grep -v "answering again" | head -n 1)
	if [ -n "$late" ]; then bad "$t failed: $late"
	else ok "$t: no failure in the log after its first answers"; fi
done
L=$work/data/ledger.db
usage() { snmp_usage "$L" "$1" "$2"; }
echo "snmpget ifHCOutOctets: agent 1 $o1_1 -> $o2_1, agent 2 $o1_2 -> $o2_2"
eq "a:Gi0/1 if.incoming.bytes (agent 1, a switch)" "$(usage a:Gi0/1 if.incoming.bytes)" "$((o2_1 - o1_1))"
eq "b:Gi0/1 if.incoming.bytes (agent 2, a switch)" "$(usage b:Gi0/1 if.incoming.bytes)" "$((o2_2 - o1_2))"
eq "a2:Gi0/1 if.outgoing.bytes (agent 1, a host)" "$(usage a2:Gi0/1 if.outgoing.bytes)" "$((o2_1 - o1_1))"
eq "  worked out by hand" "$((o2_1 - o1_1))/$((o2_2 - o1_2))" "500/900"
grep -q "snmp abad (127.0.0.1:$port1): authentication failure" "$work/tallyd.log" &&
	ok "abad: its authentication failure is said by name" || bad "no authentication failure of abad in the log"
eq "nothing stored for abad" "$(sqlite3 "$L" "select count(*) from resources where host = 'abad'")" "0"

[ "$fails" -eq 0 ] || { echo "--- tallyd log"; cat "$work/tallyd.log"; exit 1; }
echo "snmp_v3_shared_user: all passed"
