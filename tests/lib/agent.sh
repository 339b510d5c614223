# Shell helpers for the agent role's tests (sourced; POSIX sh). The caller
# sets $work (a scratch directory) and TALLYD.

# stub_start NAME [ARGS...]: start tests/lib/ingest_stub.py (the ingest
# protocol's stand-in) recording into $work/NAME.rec, with its state in
# $work/NAME.state; sets STUB_PORT and STUB_PID. Returns 1 when it did not
# listen within 10 s.
stub_start() {
	_sn=$1; shift
	# a log left by an earlier stub of this name would be read before the
	# new one's shell truncates it (the redirect happens in the child)
	rm -f "$work/$_sn.stub.log"
	python3 tests/lib/ingest_stub.py --record "$work/$_sn.rec" --state "$work/$_sn.state" "$@" \
		> "$work/$_sn.stub.log" 2>&1 &
	STUB_PID=$!
	_n=100
	while :; do
		STUB_PORT=$(sed -n 's/^listening on //p' "$work/$_sn.stub.log" 2>/dev/null || true)
		[ -n "$STUB_PORT" ] && return 0
		_n=$((_n - 1))
		if [ "$_n" -le 0 ] || ! kill -0 "$STUB_PID" 2>/dev/null; then
			echo "the ingest stub did not start:" >&2
			cat "$work/$_sn.stub.log" >&2
			return 1
		fi
		sleep 0.1
	done
}

# wait_log FILE TEXT [SECONDS]: wait until FILE holds TEXT (a fixed
# string); 1 after SECONDS (default 30).
wait_log() {
	_n=$(( ${3:-30} * 10 ))
	while ! grep -qF -- "$2" "$1" 2>/dev/null; do
		_n=$((_n - 1))
		[ "$_n" -le 0 ] && return 1
		sleep 0.1
	done
	return 0
}

# agent_conf DATA_DIR URL END [EXTRA_AGENT_KEYS [EXTRA_SECTIONS]]: a
# fast-forward agent of a 12-VM simulated fleet on 3 hosts, with reboots,
# stops and migrations, from 2026-10-01 to END at 60 s, printed on stdout.
# EXTRA_AGENT_KEYS are lines under agent: (indented two spaces),
# EXTRA_SECTIONS whole top-level sections.
agent_conf() {
	cat <<EOC
tallyd:
  role: agent
  data_dir: $1
  interval: 60s
  clock: fast-forward
  start: 2026-10-01T00:00:00Z
  end: $3
  log_level: info
agent:
  aggregator: $2
  token: agent-token-0123456789
  backoff_min: 50ms
  backoff_max: 200ms
  timeout: 5s
${4:-}
collectors:
  sim:
    vms: 12
    tenants: 3
    hosts: 3
    seed: 7
    loss: 0.05
    reboots_per_day: 1
    stops_per_day: 1
    migrations_per_day: 2
${5:-}
EOC
}
