# tests/lib/alertmanager.sh: a real Alertmanager for the integration scripts
# (sourced, not run). The caller sets $work (a scratch directory).

AM=/usr/bin/prometheus-alertmanager

# am_start: start prometheus-alertmanager on 127.0.0.1, on a high port free
# at run time (tried up to five times), with its own config and data dir in
# $work; sets AMURL and apid (its pid: the caller stops it). Exits the test
# when it does not start.
am_start() {
	cat > "$work/am.yml" <<'EOC'
route:
  receiver: blackhole
receivers:
  - name: blackhole
EOC
	mkdir -p "$work/am"
	AMURL=""
	for try in 1 2 3 4 5; do
		port=$(( 20000 + ($$ * 7 + try * 7919) % 40000 ))
		"$AM" --config.file="$work/am.yml" --storage.path="$work/am" \
			--web.listen-address=127.0.0.1:$port --cluster.listen-address= \
			--log.level=warn > "$work/am.log" 2>&1 &
		apid=$!
		i=0
		while [ $i -lt 100 ] && kill -0 "$apid" 2>/dev/null; do
			if curl -sf "http://127.0.0.1:$port/-/ready" > /dev/null 2>&1; then
				AMURL=http://127.0.0.1:$port
				break
			fi
			i=$((i + 1))
			sleep 0.1
		done
		[ -n "$AMURL" ] && break
		# one that exited by itself (its port taken by another test's
		# listener) cannot be killed: under set -e a failed kill ended
		# the caller, silently, instead of trying the next port
		kill "$apid" 2>/dev/null || true
		wait "$apid" 2>/dev/null || true
		apid=""
	done
	[ -n "$AMURL" ] || { echo "alertmanager did not start"; cat "$work/am.log"; exit 1; }
	echo "alertmanager at $AMURL"
}
