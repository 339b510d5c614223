#!/bin/sh
# tallyd with the libvirt collector against libvirt's real test driver, with
# virsh as the oracle: what tallyd stored in the ledger (each series' last
# value, its usage, the resources and their tenants) must be what virsh
# dominfo / domstats / dommemstat / domblkstat / domblkinfo / domifstat and
# virsh metadata report for every domain. Two hypervisors: test:///default
# (one domain, no metadata, no mapping file) and a generated fleet of 100
# domains (tests/fixtures/libvirt/gen-testnode.sh, Nova metadata on every
# third, the rest mapped by tests/fixtures/libvirt/mapping.yaml) plus one
# domain of odd shape (no metadata, a disk without serial, a cdrom without
# source, a user-mode NIC).
#
# The test driver's counters are functions of the wall clock, the same for
# every process that opens it: virsh reads them once before tallyd starts
# and once after it stopped, and each stored counter must lie between the
# two (cpu to virsh's 0.1 s); the counted usage must not reach below the
# first oracle reading (usage = last value - baseline, baseline >= before).
# Gauges (vCPUs, memory, disk sizes, instance) must equal virsh's exactly,
# and their usage must be the value times the seconds covered.
set -eu
B=${B:-build}
TALLYD=$PWD/$B/tallyd
for c in virsh sqlite3 awk; do
	command -v "$c" >/dev/null || { echo "skip: '$c' missing (scripts/deps.sh installs it)"; exit 77; }
done
virsh -q -c test:///default list >/dev/null 2>&1 ||
	{ echo "skip: libvirt's test driver (test:///default) does not answer"; exit 77; }
work=$(mktemp -d /tmp/tally-lvoracle-XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

# virsh's echo ends without a newline in a command list: the markers
# (@DOM name@, @BLK target@, @NIC mac@) are put on lines of their own
marks() { sed 's/@\([A-Z]*\) \([^@]*\)@/\n\1 \2\n/g'; }

# oracle URI OUT: every active domain's readings, one per line
#   uuid|meter|device|value
# device: "T:<target>" for disks (ours carry target:serial), the MAC for
# NICs. cpu is in seconds with virsh's one decimal.
oracle() {
	uri=$1 out=$2
	cmds=
	for n in $(virsh -q -c "$uri" list --name); do
		cmds="$cmds echo @DOM $n@; domblklist $n --details; domiflist $n;"
	done
	virsh -q -c "$uri" "$cmds" | marks > "$work/struct"
	# the readings: disks of device type disk (a cdrom is not metered)
	cmds=$(awk '
		$1 == "DOM" { n = $2; printf " echo @DOM %s@; dominfo %s; domstats %s; dommemstat %s;", n, n, n, n; next }
		NF == 4 && $2 == "disk" { printf " echo @BLK %s@; domblkstat %s %s; domblkinfo %s %s;", $3, n, $3, n, $3; next }
		NF == 5 { printf " echo @NIC %s@; domifstat %s %s;", $5, n, $1 }' "$work/struct")
	virsh -q -c "$uri" "$cmds" | marks | awk '
		function flush() { if (have_av && have_un) printf "%s|memory.usage||%.0f\n", u, (av - un) * 1024; have_av = have_un = 0 }
		$1 == "DOM" { flush(); dev = ""; next }
		$1 == "BLK" { dev = "T:" $2; kind = "blk"; next }
		$1 == "NIC" { dev = $2; kind = "nic"; next }
		/^UUID:/ { u = $2; print u "|uuid||" u; next }
		/^CPU\(s\):/ { print u "|vcpus||" $2; next }
		/^CPU time:/ { sub(/s$/, "", $3); print u "|cpu||" $3; next }
		/^Used memory:/ { printf "%s|memory||%.0f\n", u, $3 * 1024; next }
		/state\.state=/ { split($1, kv, "="); print u "|instance||" (kv[2] == 1 || kv[2] == 2); next }
		dev == "" && $1 == "rss" { printf "%s|memory.resident||%.0f\n", u, $2 * 1024; next }
		dev == "" && $1 == "available" { av = $2; have_av = 1; next }
		dev == "" && $1 == "unused" { un = $2; have_un = 1; next }
		kind == "blk" && $2 == "rd_req" { print u "|disk.device.read.requests|" dev "|" $3; next }
		kind == "blk" && $2 == "rd_bytes" { print u "|disk.device.read.bytes|" dev "|" $3; next }
		kind == "blk" && $2 == "wr_req" { print u "|disk.device.write.requests|" dev "|" $3; next }
		kind == "blk" && $2 == "wr_bytes" { print u "|disk.device.write.bytes|" dev "|" $3; next }
		kind == "blk" && $1 == "Capacity:" { print u "|disk.device.capacity|" dev "|" $2; next }
		kind == "blk" && $1 == "Allocation:" { print u "|disk.device.allocation|" dev "|" $2; next }
		kind == "nic" && $2 == "rx_bytes" { print u "|network.incoming.bytes|" dev "|" $3; next }
		kind == "nic" && $2 == "tx_bytes" { print u "|network.outgoing.bytes|" dev "|" $3; next }
		kind == "nic" && $2 == "rx_packets" { print u "|network.incoming.packets|" dev "|" $3; next }
		kind == "nic" && $2 == "tx_packets" { print u "|network.outgoing.packets|" dev "|" $3; next }
		END { flush() }' | sort > "$out"
}

# expected tenants and names: uuid|name|tenant, from virsh metadata (Nova)
# or, without it, the mapping file's rules applied by hand (mapping.yaml:
# ...0001 -> acme, vm00002-5 -> globex, anything else -> unassigned)
expected_owners() {
	uri=$1 mapped=$2 out=$3
	: > "$out"
	for n in $(virsh -q -c "$uri" list --name); do
		u=$(virsh -q -c "$uri" domuuid "$n")
		meta=$(virsh -q -c "$uri" metadata "$n" --uri http://openstack.org/xmlns/libvirt/nova/1.0 2>/dev/null || true)
		if [ -n "$meta" ]; then
			name=$(echo "$meta" | sed -n 's/.*<name>\(.*\)<\/name>.*/\1/p')
			tenant=$(echo "$meta" | sed -n 's/.*<project uuid="\([^"]*\)".*/\1/p')
		elif [ "$mapped" = 0 ]; then
			name=$n tenant=
		else
			name=$n
			case "$u:$n" in
			6b0f3c2a-0000-4000-8000-000000000001:*) tenant=acme ;;
			*:vm0000[2-5]) tenant=globex ;;
			*) tenant=unassigned ;;
			esac
		fi
		echo "$u|$name|$tenant" >> "$out"
	done
	sort -o "$out" "$out"
}

# run_and_compare LABEL URI MAPPING(0/1)
run_and_compare() {
	label=$1 uri=$2 mapped=$3
	d=$work/$label
	mkdir -p "$d"
	{
		echo "tallyd:"
		echo "  agent_id: oracle"
		echo "  data_dir: $d/data"
		echo "  interval: 1s"
		echo "  log_level: info"
		echo "rrd:"
		echo "  enabled: false"
		echo "collectors:"
		echo "  libvirt:"
		echo "    uri: '$uri'"
		[ "$mapped" = 1 ] && echo "    mapping: $PWD/tests/fixtures/libvirt/mapping.yaml"
	} > "$d/t.yaml"
	expected_owners "$uri" "$mapped" "$d/owners"
	oracle "$uri" "$d/before"
	"$TALLYD" -c "$d/t.yaml" 2> "$d/log" &
	pid=$!
	# until three cycles are committed (a liveness bound, not a timing test)
	i=0
	while [ "$(sqlite3 "$d/data/ledger.db" "SELECT coalesce(max(last_seq), 0) FROM agents" 2>/dev/null || echo 0)" -lt 3 ]; do
		i=$((i + 1))
		[ "$i" -lt 600 ] && kill -0 "$pid" 2>/dev/null || { fail "$label: tallyd committed no 3 cycles"; cat "$d/log"; return; }
		sleep 0.1
	done
	kill -TERM "$pid"
	if wait "$pid"; then rc=0; else rc=$?; fi
	pid=
	[ "$rc" -eq 0 ] || fail "$label: tallyd exited $rc after SIGTERM"
	oracle "$uri" "$d/after"
	L=$d/data/ledger.db

	# ours: uuid|meter|device|last_value|kind|usage|spanned_s
	sqlite3 -separator '|' "$L" "SELECT r.uuid, m.name, s.device, s.last_value, s.kind,
	    (SELECT total(u.quantity) FROM usage u WHERE u.resource_id = s.resource_id AND u.meter_id = s.meter_id AND u.device = s.device),
	    (SELECT total(u.spanned_ns) / 1e9 FROM usage u WHERE u.resource_id = s.resource_id AND u.meter_id = s.meter_id AND u.device = s.device),
	    (SELECT sum(u.quantity) FROM usage u WHERE u.resource_id = s.resource_id AND u.meter_id = s.meter_id AND u.device = s.device)
	  FROM series s JOIN resources r ON r.id = s.resource_id JOIN meters m ON m.id = s.meter_id
	  WHERE s.agent = 'oracle'" > "$d/ours"
	# the check: every oracle series stored, nothing stored that virsh lacks
	awk -F'|' -v label="$label" '
		FILENAME == ARGV[1] { b[$1 "|" $2 "|" $3] = $4; next }
		FILENAME == ARGV[2] { a[$1 "|" $2 "|" $3] = $4; if ($2 == "uuid") doms++; next }
		{
			dev = $3
			if ($2 ~ /^disk\./) { i = index(dev, ":"); dev = "T:" (i ? substr(dev, 1, i - 1) : dev) }
			k = $1 "|" $2 "|" dev
			if (!(k in a)) { printf "FAIL %s: stored %s (%s) that virsh does not report\n", label, k, $3; bad++; next }
			if (k in seen) { printf "FAIL %s: %s stored twice (devices %s)\n", label, k, $3; bad++; next }
			seen[k] = 1; n++
			v = $4 + 0; lo = b[k] + 0; hi = a[k] + 0
			if ($2 == "cpu") {
				v /= 1e9; lo -= 0.1; hi += 0.1
				base = ($4 - $8) / 1e9
			} else base = $4 - $8
			if ($5 == "gauge") {
				if (v != lo || v != hi) { printf "FAIL %s: %s = %s, virsh %s before and %s after\n", label, k, $4, b[k], a[k]; bad++ }
				# a constant gauge integrates to value x seconds spanned
				want = $4 * $7
				if ($6 - want > 1e-9 * want || want - $6 > 1e-9 * want) { printf "FAIL %s: %s usage %s, want %s x %s s = %.17g\n", label, k, $6, $4, $7, want; bad++ }
			} else {
				if (v < lo || v > hi) { printf "FAIL %s: %s = %s, outside virsh %s (before) .. %s (after)\n", label, k, $4, b[k], a[k]; bad++ }
				# usage counted from a baseline no older than the first oracle read
				if (base < lo || $8 <= 0) { printf "FAIL %s: %s usage %s from baseline %s, virsh read %s before tallyd began\n", label, k, $8, base, b[k]; bad++ }
			}
		}
		END {
			for (k in a) { split(k, p, "|"); if (p[2] != "uuid" && !(k in seen)) { printf "FAIL %s: %s reported by virsh, not in the ledger\n", label, k; bad++ } }
			printf "%s: %d series of %d domains compared with virsh, %d bad\n", label, n, doms, bad
			exit bad > 0
		}' "$d/before" "$d/after" "$d/ours" || fails=$((fails + 1))

	sqlite3 -separator '|' "$L" "SELECT uuid, name, tenant FROM resources WHERE host = 'oracle' ORDER BY uuid" > "$d/res"
	if cmp -s "$d/owners" "$d/res"; then
		echo "ok   $label: $(wc -l < "$d/res") resources, names and tenants as virsh metadata and the mapping rules say"
	else
		fail "$label: resources differ from the expected (uuid|name|tenant):"; diff "$d/owners" "$d/res" | head -n 20
	fi
	# the metadata history holds the same tenant from the first reading
	n_attr=$(sqlite3 "$L" "SELECT count(*) FROM resource_attrs a JOIN resources r ON r.id = a.resource_id
	    WHERE a.tenant <> r.tenant OR a.name <> r.name")
	[ "$n_attr" -eq 0 ] || fail "$label: $n_attr resource_attrs rows disagree with resources"
	# said once, nothing worse than info, no events invented; a cycle that
	# overran its interval (a loaded machine, a sanitizer build) says so
	# and costs nothing checked here: not a failure of this test
	grep -E ' (warning|error):' "$d/log" | grep -v 'collection cycle took' &&
		fail "$label: tallyd warned (above)"
	n_fb=$(grep -c 'per-domain calls' "$d/log" || true)
	[ "$n_fb" -eq 1 ] || fail "$label: the per-domain fallback was said $n_fb times, want once"
	n_ev=$(sqlite3 "$L" "SELECT count(*) FROM events")
	[ "$n_ev" -eq 0 ] || fail "$label: $n_ev lifecycle events stored; nothing started or stopped"
}

run_and_compare default test:///default 0

sh tests/fixtures/libvirt/gen-testnode.sh 100 "$work/fleet.xml"
# one domain of odd shape: no metadata, a disk without serial, a cdrom
# without source, a user-mode NIC (the test driver names its target)
sed -i 's#</node>##' "$work/fleet.xml"
cat >> "$work/fleet.xml" <<'EOX'
<domain type='test'><name>odd1</name><uuid>6b0f3c2a-0000-4000-8000-0000000a0001</uuid>
<memory unit='KiB'>524288</memory><currentMemory unit='KiB'>524288</currentMemory><vcpu>1</vcpu>
<os><type arch='x86_64'>hvm</type></os><devices>
<disk type='file' device='disk'><source file='/images/odd1.qcow2'/><target dev='vda' bus='virtio'/></disk>
<disk type='file' device='cdrom'><target dev='hdc' bus='ide'/></disk>
<interface type='bridge'><mac address='52:54:00:0a:00:01'/><source bridge='br0'/></interface>
<interface type='user'><mac address='52:54:00:0a:00:02'/></interface>
</devices></domain>
</node>
EOX
run_and_compare fleet "test://$work/fleet.xml" 1
# disks by target and serial (vda of domain i has serial SER<i>), or by
# target and a hash of the source (vdb): never the bare target
h8='[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'
bad=$(sqlite3 "$work/fleet/data/ledger.db" "SELECT count(*) FROM series s JOIN resources r ON r.id = s.resource_id
    JOIN meters m ON m.id = s.meter_id WHERE m.name = 'disk.device.read.bytes' AND NOT (
    s.device = 'vda:SER' || CAST(CASE WHEN r.name LIKE 'web-%' THEN substr(r.name, 5) ELSE substr(r.name, 3) END AS INTEGER)
    OR s.device GLOB 'vdb:$h8' OR (r.name = 'odd1' AND s.device GLOB 'vda:$h8'))")
[ "$bad" -eq 0 ] || fail "fleet: $bad disk series not labelled target:serial or target:hash"

[ "$fails" -eq 0 ]
