# tests/lib/snmpd.sh: a real snmpd (Debian's net-snmp) and the tallyd that
# polls it, for the SNMP integration scripts (sourced, not run).
#
# The caller sets $work (a scratch directory), $TALLYD, and for the /metrics
# helpers $hport (tallyd's HTTP port). To run everything inside a network
# namespace it sets $SNMP_NS to the namespace's name (empty: this one).
#
# Every process started here is the program itself, never a shell: the pid
# handed back is the one to kill. (A shell function run in the background
# is a subshell; kill would end the subshell and leave its snmpd or tallyd
# running.) `ip netns exec` and `setpriv` exec their command, so under them
# the pid is the program's too. setpriv gives each the parent-death signal
# TERM: should the test itself be killed (SIGKILL runs no trap), its snmpd
# and tallyd end with it. Ports are never fixed: snmp_free_ports finds them.
#
# snmp_cleanup (the caller's EXIT trap, or called from it) stops whatever
# was started here and not stopped yet, by its pid, and removes $work.

snmp_started=""     # pids started here and not stopped yet
fails=0

# snmp_need TOOL...: skip the test (exit 77, saying which is missing)
# unless these and the helpers' own tools are installed
snmp_need() {
	for t in snmpd snmpget setpriv python3 curl sqlite3 "$@"; do
		command -v "$t" >/dev/null || { echo "$t is not installed (scripts/deps.sh installs it)"; exit 77; }
	done
}

# ok TEXT / bad TEXT / eq TEXT GOT WANT: one result line; bad counts a
# failure in $fails, and so does eq when GOT is not WANT
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
eq() { if [ "$2" = "$3" ]; then ok "$1: $2"; else bad "$1: got '$2', expected '$3'"; fi; }

# snmp_wrap: the words that start a program under the parent-death signal
# and in $SNMP_NS (when set)
snmp_wrap() {
	echo "setpriv --pdeathsig TERM${SNMP_NS:+ ip netns exec $SNMP_NS}"
}

# snmp_in CMD...: run CMD (in the foreground) in $SNMP_NS
snmp_in() {
	if [ -n "${SNMP_NS:-}" ]; then ip netns exec "$SNMP_NS" "$@"; else "$@"; fi
}

# snmp_track PID: stop PID at cleanup unless stopped before (for programs
# the caller starts itself, as the program and not a shell)
snmp_track() {
	snmp_started="$snmp_started $1"
}

# stop_pid PID: end a process this test started (nothing when PID is
# empty); a signal ends it, so its exit status is of no interest. PID is
# this shell's child and not reaped before this wait, so it cannot be
# another process's.
stop_pid() {
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	snmp_started=$(echo " $snmp_started " | sed "s/ $1 / /")
}

# snmp_cleanup: stop what is still running, remove $work
snmp_cleanup() {
	for p in $snmp_started; do stop_pid "$p"; done
	rm -rf "$work"
}

# snmp_free_ports KIND...: one port of 127.0.0.1 per KIND (udp or tcp) that
# is free now (in $SNMP_NS), all different, printed on one line
snmp_free_ports() {
	snmp_in python3 -c '
import socket, sys
s = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM if k == "udp" else socket.SOCK_STREAM)
     for k in sys.argv[1:]]
for x in s:
    x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))' "$@"
}

# snmpd_conf NAME PORT: begin $work/NAME.conf: the agent on
# udp:127.0.0.1:PORT and community public readable from 127.0.0.1 (what
# snmpd_start's probe uses). The caller appends the rest (users, pass).
snmpd_conf() {
	printf 'agentaddress udp:127.0.0.1:%s\nrocommunity public 127.0.0.1\n' "$2" > "$work/$1.conf"
}

# snmpd_start NAME PORT OFF: start snmpd with $work/NAME.conf, without the
# MIB modules OFF (comma-separated, e.g. "smux"); its persistent state in
# $work/NAME.persist (the machine's /var/lib/snmp is neither read nor
# written: engine boots and users are this test's), its log in
# $work/NAME.log. Sets snmpd_pid (snmpd's own: stop it with stop_pid, or
# leave it to snmp_cleanup). Waits until it answers sysUpTime.0 on PORT
# (10 s at most), else prints its log and exits the test 1. Started again
# with the same NAME it keeps its engine id and counts one more boot.
snmpd_start() {
	mkdir -p "$work/$1.persist"
	SNMP_PERSISTENT_DIR=$work/$1.persist MIBS= $(snmp_wrap) snmpd -f -C -I "-$3" -c "$work/$1.conf" \
		-LF 0-5 "$work/$1.log" &
	snmpd_pid=$!
	snmp_track "$snmpd_pid"
	for i in $(seq 100); do
		snmp_in snmpget -v2c -c public -t 0.2 -r 0 -On "udp:127.0.0.1:$2" .1.3.6.1.2.1.1.3.0 \
			>/dev/null 2>&1 && return 0
		kill -0 "$snmpd_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "snmpd $1 did not start:"; cat "$work/$1.log"; exit 1
}

# snmp_tally_yaml INTERVAL: the head of a tallyd config for these tests, to
# `targets:` of collectors.snmp (data in $work/data, every reading
# committed at once, no RRD, HTTP on $hport); the caller appends targets
snmp_tally_yaml() {
	cat <<EOF
tallyd:
  agent_id: poller
  data_dir: $work/data
  interval: $1
  log_level: info
ledger:
  commit_every: 0s
rrd:
  enabled: false
http:
  port: $hport
collectors:
  snmp:
    targets:
EOF
}

# tallyd_start CONF LOG: start tallyd (in $SNMP_NS) with CONF, its output
# in LOG; sets tallyd_pid (tallyd's own).
tallyd_start() {
	$(snmp_wrap) "$TALLYD" -c "$1" > "$2" 2>&1 &
	tallyd_pid=$!
	snmp_track "$tallyd_pid"
}

# tallyd_stop PID LOG: stop tallyd (PID, its output in LOG). Its exit status
# is not asked (a signal ended it), so a sanitizer's report in LOG (a
# build with SANITIZE=1: a leak said at exit, an error) fails the test here.
tallyd_stop() {
	stop_pid "$1"
	if grep -q -e "Sanitizer" -e "runtime error:" "$2"; then
		echo "FAIL a sanitizer's report in $2:"; cat "$2"; exit 1
	fi
}

# snmp_usage LEDGER UUID METER: the usage of UUID's METER in the ledger
snmp_usage() {
	sqlite3 "$1" "select coalesce(sum(u.quantity), 0) from usage u join resources r on r.id = u.resource_id
		join meters m on m.id = u.meter_id where r.uuid = '$2' and m.name = '$3'"
}

# snmp_metrics: tallyd's /metrics (on $hport, in $SNMP_NS)
snmp_metrics() {
	snmp_in curl -s "http://127.0.0.1:$hport/metrics"
}

# snmp_okpolls TARGET: TARGET's polls that succeeded so far (polls less
# timeouts and errors, from /metrics; 0 before the first)
snmp_okpolls() {
	snmp_metrics | awk -v t="{target=\"$1\"}" '
		$1 == "tally_snmp_polls_total" t { p = $2 }
		$1 == "tally_snmp_timeouts_total" t || $1 == "tally_snmp_errors_total" t { x += $2 }
		END { print p - x + 0 }'
}

# snmp_wait_polls TARGET N [LOG]: wait until N of TARGET's polls succeeded
# (30 s at most); else say so, print LOG (tallyd's) and exit the test 1
snmp_wait_polls() {
	for i in $(seq 300); do
		[ "$(snmp_okpolls "$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	echo "FAIL target $1 never reached $2 successful polls"
	[ -z "${3:-}" ] || cat "$3"
	exit 1
}
