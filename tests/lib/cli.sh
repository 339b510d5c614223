# tests/lib/cli.sh: shared by the integration scripts (sourced, not run).
# The caller sets $work (a scratch directory), $TALLYD and fails=0.
. tests/lib/tallyd.sh

# ok TEXT / bad TEXT: one result line; bad counts a failure
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.1 s until
# it is true (ok DESCRIPTION), or SECONDS pass (bad, returns 1).
wait_for() {
	_wf_n=$(( $1 * 10 )) _wf_what=$2; shift 2
	_wf_i=0
	until "$@"; do
		_wf_i=$((_wf_i + 1))
		[ $_wf_i -lt "$_wf_n" ] || { bad "$_wf_what: still not so after $((_wf_n / 10)) s"; return 1; }
		sleep 0.1
	done
	ok "$_wf_what"
}

# expect STATUS FRAGMENT COMMAND...: COMMAND exits STATUS and FRAGMENT is in
# what it printed (stdout in $work/out, stderr in $work/err); counts a FAIL.
expect() {
	want=$1 frag=$2; shift 2
	if "$@" > "$work/out" 2>"$work/err"; then got=0; else got=$?; fi
	if [ "$got" -ne "$want" ] || ! grep -qF -- "$frag" "$work/out" "$work/err"; then
		echo "FAIL: $* -> exit $got (want $want): $(cat "$work/out" "$work/err" | head -n 5)"
		fails=$((fails + 1))
	else
		echo "ok   exit $got: $(cat "$work/err" "$work/out" | head -n 1)"
	fi
}

# sim_ledger DIR END VMS TENANTS SEED [RRD [CRASHES]]: tallyd fast-forwards
# the simulated fleet from 2026-10-01 to END into DIR (ledger DIR/ledger.db,
# RRD files under DIR/rrd when RRD is true; CRASHES per VM and day).
sim_ledger() {
	cat > "$work/sim-$$.yaml" <<EOC
tallyd:
  data_dir: $1
  interval: 60s
  clock: fast-forward
  start: 2026-10-01T00:00:00Z
  end: $2
  log_level: error
rrd:
  enabled: ${6:-false}
collectors:
  sim:
    vms: $3
    tenants: $4
    seed: $5
${7:+    crashes_per_day: $7}
EOC
	"$TALLYD" -q -c "$work/sim-$$.yaml"
}

# fleet_ref DIR END VMS HOSTS TENANTS SEED [LOSS]: an all-in-one tallyd
# fast-forwards the simulated fleet of HOSTS hosts from 2026-10-01 to END at
# a 10 s interval into DIR (RRD off): the ground truth that a fleet of
# agents (bench/simagents, the same arguments) must give an aggregator.
fleet_ref() {
	cat > "$work/ref-$$.yaml" <<EOC
tallyd:
  agent_id: reference
  data_dir: $1
  interval: 10s
  clock: fast-forward
  start: 2026-10-01T00:00:00Z
  end: $2
  log_level: error
rrd:
  enabled: false
collectors:
  sim:
    vms: $3
    hosts: $4
    tenants: $5
    seed: $6
    loss: ${7:-0}
EOC
	"$TALLYD" -q -c "$work/ref-$$.yaml"
}

# wait_serving LOG PID: wait until tallyd (PID, logging to LOG) is done with
# its fast-forward period and serving (http.serve_after_end); sets PORT
# (tallyd_port). Exits the test when tallyd dies or takes over 60 s.
wait_serving() {
	i=0
	until grep -qs "serving until SIGTERM" "$1"; do
		i=$((i + 1))
		[ $i -lt 600 ] || { echo "tallyd did not finish its period in 60 s"; cat "$1"; exit 1; }
		kill -0 "$2" 2>/dev/null || { echo "tallyd died"; cat "$1"; exit 1; }
		sleep 0.1
	done
	tallyd_port "$1" "$2" 1 || exit 1
}

# usage_rows LEDGER: every usage row, keyed by names rather than ids, in
# key order: two ledgers hold the same usage when these are equal.
usage_rows() {
	sqlite3 "$1" "SELECT r.uuid, m.name, u.device, u.hour_ns, u.quantity, u.spanned_ns, u.covered_ns,
	  u.samples FROM usage u JOIN resources r ON r.id = u.resource_id JOIN meters m ON m.id = u.meter_id
	  ORDER BY 1, 2, 3, 4"
}

# at_tenth D: wait until the wall clock's tenth of a second is D, so that
# real-time tallyds started (D = 2) or stopped (D = 5) together read the
# same ticks (interval 1 s).
at_tenth() {
	while [ "$(date +%N | cut -c1)" != "$1" ]; do sleep 0.05; done
}

# small_tmpfs SIZE: mount a tmpfs of SIZE (3m) on $work/small (a private
# directory: the name is the scratch directory's, unique) and set small;
# skip the script (exit 77, saying why) when not root or mount fails. The
# caller's EXIT trap unmounts it.
small_tmpfs() {
	if [ "$(id -u)" != 0 ]; then echo "skip: needs root to mount a small tmpfs" >&2; rm -rf "$work"; exit 77; fi
	small=$work/small
	mkdir -p "$small"
	if ! mount -t tmpfs -o size="$1" tmpfs "$small" 2>"$work/mount.err"; then
		echo "skip: cannot mount a tmpfs here: $(cat "$work/mount.err")" >&2; rm -rf "$work"; exit 77
	fi
}

# sim_rt START: the `collectors:` section of a small real-time simulated
# fleet anchored at START (6 VMs, one disk and NIC each, no lifecycle
# events): tallyds given the same one read the same counters.
sim_rt() {
	cat <<EOC
collectors:
  sim:
    vms: 6
    tenants: 2
    hosts: 2
    disks: 1
    nics: 1
    seed: 7
    start: $1
    reboots_per_day: 0
    stops_per_day: 0
    migrations_per_day: 0
EOC
}
