#!/bin/sh
# The agent and its aggregator on two hosts joined by a real link, through
# real network faults (docs/transport.md, "What a failure does"): three
# network namespaces made here (names with this shell's pid): the agent (a
# fast-forwarded simulated fleet) in A, the aggregator in B, and between
# them, joined to each by a veth pair, the link M that carries every frame
# and makes the faults: tc netem on a kernel bridge when the kernel has
# sch_netem, else tests/lib/netfault.py (netem's loss, duplication,
# reordering and delay, in user space: this machine's kernel has no
# sch_netem). In one run:
#   1. a partition (A's link down) while the agent spools more than an hour
#      of samples for each of its agent ids, then the link up again;
#   2. loss, duplication, reordering and delay, both ways;
#   3. kill -9 of the aggregator at random instants, at least 20 times,
#      each time started again;
#   4. kill -9 of the agent at random instants, at least 20 times, each
#      time started again, and a torn spool tail (the start of a frame
#      after the last whole one) before one of the restarts.
# The aggregator is this build's tallyd in the aggregator role (AGG_TALLYD
# names another binary) and the ground truth an undisturbed all-in-one run
# of the same fleet: the two ledgers must be equal row for row (usage to
# the last unit with its coverage and sample counts, series state, the
# agents' seqs, events, resources). In a build without the aggregator role
# the aggregator is the ingest protocol's stand-in (tests/lib/ingest_stub.py)
# and the ground truth an undisturbed agent run: each batch once.
set -eu
B=${B:-build}
TALLYD=$PWD/$B/tallyd
[ -x "$TALLYD" ] || { echo "no $TALLYD: run make first"; exit 1; }
for t in ip tc curl python3 sqlite3; do
	command -v "$t" >/dev/null || { echo "$t missing (scripts/deps.sh installs it)"; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "needs root for network namespaces"; exit 77; }
na=tagA$$ nb=tagB$$ nm=tagM$$ va=tga$$ vb=tgb$$ ma=tma$$ mb=tmb$$
work=$(mktemp -d /tmp/tally-agentns-$$-XXXXXX)
apid="" gpid="" fpid=""
cleanup() {
	for p in $apid $gpid $fpid; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	for n in "$na" "$nb" "$nm"; do ip netns del "$n" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM
. tests/lib/agent.sh
# a ledger as comparable text (what crash.sh compares)
dump() {
	sqlite3 "$1" <<'EOS'
.mode list
SELECT 'usage', r.uuid, m.name, u.device, u.hour_ns, u.quantity, u.spanned_ns, u.covered_ns, u.samples
  FROM usage u JOIN resources r ON r.id = u.resource_id JOIN meters m ON m.id = u.meter_id
  ORDER BY r.uuid, m.name, u.device, u.hour_ns;
SELECT 'series', r.uuid, m.name, s.device, s.agent, s.last_ns, s.origin_ns, s.last_value, s.flags
  FROM series s JOIN resources r ON r.id = s.resource_id JOIN meters m ON m.id = s.meter_id
  ORDER BY 2, 3, 4, 5;
SELECT 'agent', agent, last_seq, last_time_ns, batches FROM agents ORDER BY agent;
SELECT 'event', r.uuid, e.time_ns, e.agent, e.type, e.reason FROM events e
  JOIN resources r ON r.id = e.resource_id ORDER BY 2, 3, 4, 5;
SELECT 'resource', uuid, type, name, tenant, flavor, labels, host, first_seen_ns, last_seen_ns
  FROM resources ORDER BY uuid;
SELECT 'attrs', r.uuid, a.since_ns, a.tenant, a.flavor FROM resource_attrs a
  JOIN resources r ON r.id = a.resource_id ORDER BY 2, 3;
EOS
}
ip netns add "$na" || { echo "cannot create a network namespace here"; exit 77; }
ip netns add "$nb"
ip netns add "$nm"
ip -n "$na" link add "$va" type veth peer name "$ma" netns "$nm"
ip -n "$nb" link add "$vb" type veth peer name "$mb" netns "$nm"
for n in "$na:$va" "$nb:$vb" "$nm:$ma" "$nm:$mb"; do
	ns=${n%%:*} dev=${n#*:}
	ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1"
	ip -n "$ns" link set lo up
	# one frame per segment: the link forwards frames, not offloaded super-frames
	ip -n "$ns" link set "$dev" gso_max_segs 1
	ip -n "$ns" link set "$dev" up
done
ip -n "$na" addr add 169.254.88.1/24 dev "$va"
ip -n "$nb" addr add 169.254.88.2/24 dev "$vb"
inA() { ip netns exec "$na" "$@"; }
inB() { ip netns exec "$nb" "$@"; }
inM() { ip netns exec "$nm" "$@"; }
# the link: netem on a bridge if the kernel has it, else the user-space one
if inM tc qdisc add dev "$ma" root netem delay 0ms 2>/dev/null; then
	inM tc qdisc del dev "$ma" root
	inM ip link add br$$ type bridge
	inM ip link set "$ma" master br$$
	inM ip link set "$mb" master br$$
	inM ip link set br$$ up
	faults() { # on | off
		for d in "$ma" "$mb"; do
			if [ "$1" = on ]; then
				inM tc qdisc add dev "$d" root netem delay 20ms 10ms loss 10% duplicate 5% reorder 25% 50%
			else
				inM tc qdisc del dev "$d" root
			fi
		done
	}
	echo "the link: a bridge with tc netem"
else
	: > "$work/faults"
	ip netns exec "$nm" python3 tests/lib/netfault.py "$ma" "$mb" --control "$work/faults" --stats "$work/faults.stats" \
		> "$work/netfault.log" 2>&1 &
	fpid=$!
	for i in $(seq 1 50); do grep -q bridging "$work/netfault.log" && break; sleep 0.1; done
	faults() { # on | off
		if [ "$1" = on ]; then
			echo "loss 0.1 duplicate 0.05 delay 20 jitter 10 reorder 0.25" > "$work/faults"
		else
			: > "$work/faults"
		fi
		sleep 0.2
	}
	echo "the link: tests/lib/netfault.py (this kernel has no sch_netem)"
fi
# the aggregator's port: any, the namespace is ours alone
gport=$(( 20000 + $$ % 30000 ))
URL=http://169.254.88.2:$gport
END=2026-10-03T00:00:00Z

# ---- the aggregator in B ---------------------------------------------------
AGG=${AGG_TALLYD:-$TALLYD}
printf 'tallyd:\n  role: aggregator\nhttp:\n  tokens: [{token: 0123456789abcdef-x, agent: x}]\n' > "$work/chk.yaml"
real=0
"$AGG" -n -c "$work/chk.yaml" > /dev/null 2>&1 && real=1
TOKENS="  tokens:
    - {agent: sim-host-0, token: agent-token-0123456789-0}
    - {agent: sim-host-1, token: agent-token-0123456789-1}
    - {agent: sim-host-2, token: agent-token-0123456789-2}"
cat > "$work/agg.yaml" <<EOC
tallyd:
  role: aggregator
  agent_id: aggregator
  data_dir: $work/agg
  interval: 10s
  log_level: info
rrd:
  enabled: false
http:
  address: 169.254.88.2
  port: $gport
  tokens:
    - {token: agent-token-0123456789-0, agent: sim-host-0}
    - {token: agent-token-0123456789-1, agent: sim-host-1}
    - {token: agent-token-0123456789-2, agent: sim-host-2}
    - {token: admin-token-0123456789, admin: true}
EOC
agg_start() {
	n0=$(grep -c "listening" "$work/agg.log" 2>/dev/null || true)
	# ip netns exec execs the program: $! is its pid (a function would be a subshell's)
	if [ "$real" = 1 ]; then
		ip netns exec "$nb" "$AGG" -c "$work/agg.yaml" 2>> "$work/agg.log" &
	else
		ip netns exec "$nb" python3 tests/lib/ingest_stub.py --address 169.254.88.2 --port "$gport" \
			--record "$work/agg.rec" --state "$work/agg.state" >> "$work/agg.log" 2>&1 &
	fi
	gpid=$!
	for i in $(seq 1 100); do
		[ "$(grep -c "listening" "$work/agg.log" 2>/dev/null || true)" -gt "${n0:-0}" ] && return 0
		kill -0 "$gpid" 2>/dev/null || break
		sleep 0.05
	done
	echo "the aggregator did not start"; tail "$work/agg.log"; exit 1
}
agg_kill() { kill -9 "$gpid"; wait "$gpid" 2>/dev/null || true; gpid=""; }

# ---- the agent in A ----------------------------------------------------------
agent_conf "$work/a" "$URL" "$END" "  connect_timeout: 1s
$TOKENS" "http:
  port: 0" | sed -e 's/interval: 60s/interval: 10s/' -e 's/vms: 12/vms: 8/' > "$work/a.yaml"
agent_start() {
	ip netns exec "$na" "$TALLYD" -c "$work/a.yaml" 2>> "$work/a.log" &
	apid=$!
}
# a figure of the running agent's /metrics: agent_metric NAME (summed)
agent_metric() {
	p=$(sed -n 's/.*http: listening on .* port \([0-9]*\).*/\1/p' "$work/a.log" | tail -n 1)
	inA curl -s "http://127.0.0.1:$p/metrics" 2>/dev/null | awk -v n="$1" 'index($0, n "{") == 1 { s += $NF } END { print s + 0 }'
}

# ---- the ground truth: the same fleet, undisturbed ---------------------------
if [ "$real" = 1 ]; then
	# all-in-one: the agent's config less the agent (its sim the same)
	agent_conf "$work/ref" "http://127.0.0.1:1" "$END" | sed -e 's/interval: 60s/interval: 10s/' -e 's/vms: 12/vms: 8/' \
		-e '/^  role: agent/d' -e '/^agent:/,/^collectors:/{/^collectors:/!d}' > "$work/ref.yaml"
	printf 'rrd:\n  enabled: false\n' >> "$work/ref.yaml"
	"$TALLYD" -q -c "$work/ref.yaml" 2> "$work/ref.log" || { echo "reference run failed"; cat "$work/ref.log"; exit 1; }
	dump "$work/ref/ledger.db" > "$work/ref.sorted"
	nref=$(grep -c '^usage' "$work/ref.sorted")
	echo "ground truth: an all-in-one ledger of $nref usage rows, $(grep -c '^event' "$work/ref.sorted") events"
else
	agent_conf "$work/ref" "http://127.0.0.1:1" "$END" | sed -e 's/interval: 60s/interval: 10s/' -e 's/vms: 12/vms: 8/' \
		> "$work/ref.yaml"
	stub_start ref
	sed -i "s|http://127.0.0.1:1|http://127.0.0.1:$STUB_PORT|" "$work/ref.yaml"
	"$TALLYD" -q -c "$work/ref.yaml" 2> "$work/ref.log" || { echo "reference run failed"; cat "$work/ref.log"; exit 1; }
	kill "$STUB_PID"
	cut -d" " -f1-6 "$work/ref.rec" | sort > "$work/ref.sorted"
	nref=$(wc -l < "$work/ref.sorted")
	echo "ground truth: $nref batches (no aggregator role in this build: the ingest stand-in is the aggregator)"
fi

# ---- 1. a partition while the agent spools an hour and more -------------------
agg_start
ip -n "$na" link set "$va" down
agent_start
hour=0
for i in $(seq 1 300); do
	# 360 cycles of 10 s for each of the 3 agent ids, none acknowledged
	hour=$(agent_metric tally_agent_spool_batches)
	[ "$hour" -ge 1080 ] && break
	sleep 0.1
done
[ "$hour" -ge 1080 ] || { echo "the agent did not spool an hour during the partition ($hour batches)"; exit 1; }
[ "$(agent_metric tally_agent_batches_acked_total)" -eq 0 ] || { echo "batches acknowledged through a link that is down"; exit 1; }
ip -n "$na" link set "$va" up
echo "1. partition: $hour batches (over an hour of each agent id) spooled while the link was down"

# ---- 2. loss, duplication, reordering, delay ----------------------------------
faults on
a0=$(agent_metric tally_agent_batches_acked_total)
for i in $(seq 1 200); do
	[ "$(agent_metric tally_agent_batches_acked_total)" -gt "$((a0 + 1500))" ] && break
	sleep 0.1
done
a1=$(agent_metric tally_agent_batches_acked_total)
[ "$a1" -gt "$a0" ] || { echo "nothing got through netem"; exit 1; }
echo "2. faults: $((a1 - a0)) batches acknowledged through loss, duplication, reordering and delay"
faults off

# ---- 3. kill -9 of the aggregator, 20 times and more ----------------------------
kills=0
while [ "$kills" -lt 22 ]; do
	ms=$(( $(od -An -N2 -tu2 /dev/urandom) % 250 + 50 ))
	sleep "0.$(printf '%03d' "$ms")"
	agg_kill
	kills=$((kills + 1))
	agg_start
done
echo "3. killed the aggregator $kills times"

# ---- 4. kill -9 of the agent, 20 times and more, and a torn tail ---------------
kills=0 torn=0
while [ "$kills" -lt 22 ]; do
	ms=$(( $(od -An -N2 -tu2 /dev/urandom) % 400 + 100 ))
	sleep "0.$(printf '%03d' "$ms")"
	kill -9 "$apid" 2>/dev/null || { wait "$apid" || true; break; }
	wait "$apid" 2>/dev/null || true
	kills=$((kills + 1))
	if [ "$torn" -eq 0 ]; then
		# the start of the segment's first frame after its last one: a
		# segment with a frame in it (not one just made, header only)
		seg=$(ls "$work"/a/spool/sim-host-1/*.seg 2>/dev/null | tail -n 1 || true)
		if [ -n "$seg" ] && [ "$(stat -c %s "$seg")" -gt 100 ]; then
			dd if="$seg" bs=1 skip=48 count=40 2>/dev/null >> "$seg"
			torn=1
		fi
	fi
	agent_start
done
echo "4. killed the agent $kills times; torn tails made: $torn"
[ "$kills" -ge 20 ] || { echo "the agent finished before 20 kills: lengthen the period"; exit 1; }
wait "$apid" || { echo "the agent failed"; tail "$work/a.log"; exit 1; }
apid=""
[ "$torn" -eq 0 ] || grep -q "agent sim-host-1: cut 40 bytes" "$work/a.log" ||
	{ echo "the torn tail was not cut"; exit 1; }

if [ "$real" = 1 ]; then
	kill "$gpid"; wait "$gpid" || { echo "the aggregator did not stop cleanly"; tail "$work/agg.log"; exit 1; }
	gpid=""
	dump "$work/agg/ledger.db" > "$work/agg.sorted"
else
	cut -d" " -f1-6 "$work/agg.rec" | sort > "$work/agg.sorted"
fi
if ! cmp -s "$work/ref.sorted" "$work/agg.sorted"; then
	echo "the aggregator's ledger differs from the ground truth (< truth, > after the faults):"
	diff "$work/ref.sorted" "$work/agg.sorted" | head -20
	exit 1
fi
if [ "$real" = 1 ]; then
	echo "the aggregator's ledger equals the all-in-one ledger: $nref usage rows, series, seqs, events, resources"
else
	echo "the aggregator has the ground truth's $nref batches, each once"
fi
if [ -n "$fpid" ]; then
	kill "$fpid"; wait "$fpid" 2>/dev/null || true; fpid=""
	echo "the link: $(cat "$work/faults.stats")"
fi
