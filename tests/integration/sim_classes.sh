#!/bin/sh
# Traffic classes of the simulated fleet (collectors.sim.classes) through the
# whole pipeline: tallyd fast-forwards October 2026 of a fleet that reboots,
# stops, migrates, crashes, loses ticks and some final readings, with two
# NICs a VM and all five classes at awkward shares; then sqlite3 (an
# independent reader) checks the ledger:
# - per (VM, NIC, direction, bytes/packets), the month's usage of the five
#   class meters adds up exactly to the NIC's network.* usage;
# - per ledger row, every class meter has the samples and covered seconds
#   of its NIC meter (the class readings come and go with the NIC's);
# - the split is not degenerate: at whole-second readings a class's usage
#   is its class rate floor(rate x share) times the seconds, so for every
#   class but the last written, bytes (rate >= 1000 B/s) give
#   share - 1/1000 < class / NIC <= share; the last one's ratio is >= its share;
# - the example plan prices the classes as config/plan-example.yaml says.
set -eu
B=${B:-build}
TALLYD=$PWD/$B/tallyd
command -v sqlite3 >/dev/null || { echo "sqlite3 is not installed (scripts/deps.sh installs it)"; exit 1; }
work=$(mktemp -d /tmp/tally-simclasses-XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0
. tests/lib/cli.sh

cat > "$work/t.yaml" <<EOC
tallyd:
  data_dir: $work/d
  interval: 60s
  clock: fast-forward
  start: 2026-10-01T00:00:00Z
  end: 2026-11-01T00:00:00Z
  log_level: error
rrd:
  enabled: false
collectors:
  sim:
    vms: 4
    tenants: 2
    hosts: 3
    disks: 0
    nics: 2
    seed: 16
    loss: 0.05
    final_loss: 0.02
    reboots_per_day: 1
    stops_per_day: 0.5
    migrations_per_day: 0.5
    crashes_per_day: 0.3
    classes: {internet: 0.333333, nonip: 0.01, malformed: 0.000001, peering: 0.1, internal: 0.556666}
EOC
"$TALLYD" -q -c "$work/t.yaml"
L=$work/d/ledger.db

# the NIC's meter of a row: network.<class>.<dir>.<unit> -> network.<dir>.<unit>
nic_of="CASE WHEN length(m.name) - length(replace(m.name, '.', '')) = 3
  THEN 'network.' || substr(m.name, 9 + instr(substr(m.name, 9), '.')) ELSE m.name END"
is_class="length(m.name) - length(replace(m.name, '.', '')) = 3"
rows="FROM usage u JOIN meters m ON m.id = u.meter_id JOIN resources r ON r.id = u.resource_id
  WHERE m.name LIKE 'network.%'"

sqlite3 "$L" "SELECT r.uuid, u.device, m.name, sum(u.quantity) $rows AND NOT ($is_class)
  GROUP BY 1, 2, 3 ORDER BY 1, 2, 3" > "$work/nic"
sqlite3 "$L" "SELECT r.uuid, u.device, $nic_of, sum(u.quantity) $rows AND $is_class
  GROUP BY 1, 2, 3 ORDER BY 1, 2, 3" > "$work/classes"
n=$(wc -l < "$work/nic")
zero=$(awk -F'|' '$4 == 0' "$work/nic" | wc -l)
# 4 VMs x 2 NICs x 4 counters, each of which counted something
if [ "$n" -ne 32 ] || [ "$zero" -ne 0 ]; then
	bad "expected 32 NIC series with usage, got $n ($zero at zero)"
elif cmp -s "$work/nic" "$work/classes"; then
	ok "per VM, NIC, direction and unit, the 5 classes add up to the NIC's usage exactly ($n series,
     e.g. $(head -n 1 "$work/nic"))"
else
	bad "class sums differ from the NIC's usage:"
	diff "$work/nic" "$work/classes" | head -n 10
fi

# the five classes of every NIC row are there, with the NIC's samples and
# covered seconds, hour by hour
bad_rows=$(sqlite3 "$L" "WITH x AS (SELECT r.uuid AS vm, u.device AS dev, u.hour_ns AS h, $nic_of AS nic,
    ($is_class) AS cls, u.samples AS s, u.covered_ns AS c $rows)
  SELECT count(*) FROM x n WHERE NOT n.cls AND (SELECT count(*) FROM x k WHERE k.cls AND k.vm = n.vm
    AND k.dev = n.dev AND k.h = n.h AND k.nic = n.nic AND k.s = n.s AND k.c = n.c) != 5")
class_rows=$(sqlite3 "$L" "SELECT count(*) $rows AND $is_class")
nic_rows=$(sqlite3 "$L" "SELECT count(*) $rows AND NOT ($is_class)")
if [ "$bad_rows" = 0 ] && [ "$class_rows" = $((5 * nic_rows)) ] && [ "$nic_rows" -gt 20000 ]; then
	ok "every one of $nic_rows NIC rows has its 5 class rows with the same samples and covered time"
else
	bad "$bad_rows NIC rows lack a class row of theirs ($class_rows class rows for $nic_rows NIC rows)"
fi

# shares: share - 1/1000 < class / NIC <= share for the classes before the
# last written (internal), per NIC and direction, in bytes
sqlite3 "$L" "SELECT r.uuid, u.device, m.name, sum(u.quantity) $rows AND m.name LIKE '%.bytes'
  GROUP BY 1, 2, 3" > "$work/bytes"
out=$(awk -F'|' '
	BEGIN { s["internet"] = 0.333333; s["nonip"] = 0.01; s["malformed"] = 0.000001; s["peering"] = 0.1
		s["internal"] = 0.556666 }
	{ split($3, p, "."); if (p[4] == "") { nic[$1 "|" $2 "|" p[2]] = $4; next }
	  q[$1 "|" $2 "|" p[3] "|" p[2]] = $4 }
	END {
		for (k in q) {
			split(k, a, "|"); n = nic[a[1] "|" a[2] "|" a[3]]; c = a[4]; r = q[k] / n
			if (c == "internal" ? r < s[c] : (r > s[c] || r <= s[c] - 0.001)) {
				printf "FAIL %s %s %s %s: %s of %s bytes (%.7f)\n", a[1], a[2], a[3], c, q[k], n, r; bad++ }
			checked++
		}
		printf "%d %d\n", checked, bad + 0
	}' "$work/bytes")
echo "$out" | grep FAIL || true
set -- $(echo "$out" | tail -n 1)
if [ "$1" -eq 80 ] && [ "$2" -eq 0 ]; then
	ok "each class's share of every NIC's bytes is within 1/1000 below its configured share ($1 checked)"
else
	bad "shares: $2 of $1 class/NIC ratios outside their bounds (want 80 checked)"
fi

# the example plan on this ledger (config/plan-example.yaml prices egress by
# class from 2026-10-01): per tenant, internet egress is billed with the
# allowance and tiers (amount worked out here with Python's decimals from
# the sqlite3 sum), peering at 0.02/GB, internal and the NIC's total are
# free lines, and the priced classes plus the unpriced ones add up to it
"$PWD/$B/tally" invoice --ledger "$L" --period 2026-10 --plan config/plan-example.yaml --format json \
	> "$work/inv.json"
sqlite3 "$L" "SELECT ra.tenant, m.name, sum(u.quantity) FROM usage u JOIN meters m ON m.id = u.meter_id
  JOIN resource_attrs ra ON ra.resource_id = u.resource_id WHERE m.name LIKE 'network.%outgoing.bytes'
  GROUP BY 1, 2" > "$work/egress"
if /usr/bin/python3 - "$work/inv.json" "$work/egress" <<'EOPY'
import json, sys
from decimal import Decimal, ROUND_HALF_EVEN
inv = json.load(open(sys.argv[1]))["invoices"]
led = {}
for row in open(sys.argv[2]):
    t, m, q = row.strip().split("|")
    led[(t, m)] = int(q)
cent = Decimal("0.01")
bad = 0
for i in inv:
    t = i["tenant"]
    lines = {l["meter"]: l for l in i["lines"] if l["type"] == "usage" and l["meter"].startswith("network.")}
    def want(m, base, amount):
        global bad
        l = lines.get(m)
        got = (l["base_quantity"], l["amount"]) if l else None
        if got != (str(base), amount):
            print(f"FAIL {t} {m}: invoice says {got}, want {(str(base), amount)}"); bad += 1
    inet = led[(t, "network.internet.outgoing.bytes")]
    b = max(Decimal(inet) / 10**9 - 10, Decimal(0))          # the free 10 GB first
    amount = (min(b, 1000) * Decimal("0.09") + min(max(b - 1000, 0), 9000) * Decimal("0.07")
              + max(b - 10000, 0) * Decimal("0.05")).quantize(cent, ROUND_HALF_EVEN)
    want("network.internet.outgoing.bytes", inet, str(amount))
    peer = led[(t, "network.peering.outgoing.bytes")]
    want("network.peering.outgoing.bytes", peer,
         str((Decimal(peer) / 10**9 * Decimal("0.02")).quantize(cent, ROUND_HALF_EVEN)))
    want("network.internal.outgoing.bytes", led[(t, "network.internal.outgoing.bytes")], "0.00")
    total = led[(t, "network.outgoing.bytes")]
    want("network.outgoing.bytes", total, "0.00")
    classes = sum(q for (tt, m), q in led.items() if tt == t and m.count(".") == 3)
    if classes != total or set(lines) != {"network.internet.outgoing.bytes", "network.peering.outgoing.bytes",
                                          "network.internal.outgoing.bytes", "network.outgoing.bytes"}:
        print(f"FAIL {t}: classes {classes} B, total {total} B; lines {sorted(lines)}"); bad += 1
    if any("network" in n for n in i.get("notes", [])):
        print(f"FAIL {t}: a note on network usage: {i['notes']}"); bad += 1
    print(f"     {t}: internet {Decimal(inet) / 10**9} GB -> {amount}")
sys.exit(1 if bad or len(inv) != 2 else 0)
EOPY
then
	ok "the example plan bills internet egress with its tiers, peering cheaper, internal and the total free"
else
	bad "the example plan's egress lines (above)"
fi

[ "$fails" -eq 0 ]
