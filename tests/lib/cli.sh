# tests/lib/cli.sh: shared by the integration scripts (sourced, not run).
# The caller sets $work (a scratch directory), $TALLYD and fails=0.

# ok TEXT / bad TEXT: one result line; bad counts a failure
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }

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

# wait_serving LOG PID: wait until tallyd (PID, logging to LOG) is done with
# its fast-forward period and serving (http.serve_after_end); sets PORT from
# the log. Exits the test when tallyd dies or takes over 60 s.
wait_serving() {
	i=0
	until grep -qs "serving until SIGTERM" "$1"; do
		i=$((i + 1))
		[ $i -lt 600 ] || { echo "tallyd did not finish its period in 60 s"; cat "$1"; exit 1; }
		kill -0 "$2" 2>/dev/null || { echo "tallyd died"; cat "$1"; exit 1; }
		sleep 0.1
	done
	PORT=$(sed -n 's/.*http: listening on 127.0.0.1 port \([0-9]*\).*/\1/p' "$1")
	[ -n "$PORT" ] || { echo "no port in the log"; cat "$1"; exit 1; }
}
