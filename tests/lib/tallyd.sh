# Shell helpers for tests that start a tallyd (sourced; POSIX sh).
#
# tallyd_port LOG [PID [SECONDS]]: wait until the tallyd logging to LOG
# says "http: listening on ADDR port N" (a config with port: 0 lets the
# kernel pick a free one) and set PORT to N. Returns 1, with the log's
# tail on stderr, when the tallyd (PID, when given) died first or SECONDS
# (default 30) passed; callers decide whether that ends the test.
tallyd_port() {
	_tp_log=$1 _tp_pid=${2:-} _tp_n=$(( ${3:-30} * 10 ))
	PORT=
	while :; do
		PORT=$(sed -n 's/.*http: listening on .* port \([0-9][0-9]*\).*/\1/p' "$_tp_log" 2>/dev/null | head -n 1)
		[ -n "$PORT" ] && return 0
		if [ -n "$_tp_pid" ] && ! kill -0 "$_tp_pid" 2>/dev/null; then
			echo "tallyd (pid $_tp_pid) died before it listened:" >&2
			tail -n 20 "$_tp_log" >&2
			return 1
		fi
		_tp_n=$((_tp_n - 1))
		if [ "$_tp_n" -le 0 ]; then
			echo "tallyd did not listen in ${3:-30} s:" >&2
			tail -n 20 "$_tp_log" >&2
			return 1
		fi
		sleep 0.1
	done
}
