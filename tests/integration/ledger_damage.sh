#!/bin/sh
# A damaged or altered ledger is found (docs/ledger.md). tallyd
# fast-forwards a small fleet into a ledger, committing every cycle; then:
# - the hash chain: recomputed by an independent oracle from the definition
#   in schemas/migrations/005-chain.sql (tests/lib/chain_oracle.py), it
#   equals what tallyd stored, and tally ledger verify agrees;
# - a usage value altered in place (the page stays valid, SQLite sees
#   nothing): tally ledger verify exits 1 naming the commit that last wrote
#   that hour, and tally invoice --issue refuses to issue; put back, both
#   are content again;
# - an index page altered so that SQLite's quick_check still passes and
#   only integrity_check sees it (the damage that was resumed before):
#   tally ledger check exits 1 naming the index, tallyd refuses to resume
#   (exit 1) and the file stays byte for byte what it was.
set -eu
B=${B:-build}
TALLY=$PWD/$B/tally
TALLYD=$PWD/$B/tallyd
for t in sqlite3 python3 sha256sum; do
	command -v $t >/dev/null || { echo "$t is not installed (scripts/deps.sh installs it)"; exit 1; }
done
work=$(mktemp -d /tmp/tally-damage-XXXXXX)
trap 'rm -rf "$work"' EXIT
. tests/lib/cli.sh
fails=0

cat > "$work/t.yaml" <<EOC
tallyd:
  agent_id: damage
  data_dir: $work/d
  interval: 300s
  clock: fast-forward
  start: 2026-10-01T00:00:00Z
  end: 2026-10-03T00:00:00Z
  log_level: info
ledger:
  commit_every: 0s
rrd:
  enabled: false
collectors:
  sim:
    vms: 12
    tenants: 3
    seed: 4
EOC
"$TALLYD" -q -c "$work/t.yaml" 2>"$work/run1.log"
L=$work/d/ledger.db
expect 0 "$L: ok (integrity_check" "$TALLY" ledger check --ledger "$L"
# resumed after a clean stop, the file unchanged: the quick check stands in
"$TALLYD" -c "$work/t.yaml" 2>"$work/run2.log"
grep -q "quick_check (the file is as its last clean stop left it) passed" "$work/run2.log" ||
	{ echo "FAIL: no quick check after a clean stop: $(cat "$work/run2.log")"; fails=$((fails + 1)); }

# ---- the hash chain ----
python3 tests/lib/chain_oracle.py "$L" || { echo "FAIL: the oracle disagrees with the chain tallyd stored"; fails=$((fails + 1)); }
commits=$(sqlite3 "$L" "SELECT count(*) FROM chain")
[ "$commits" -gt 100 ] || { echo "only $commits commits: the test needs a long chain"; exit 1; }
expect 0 "$L: ok: $commits commits" "$TALLY" ledger verify --ledger "$L"

# a value changed in place: vm 3's cpu in the hour from 05:00
H=1790830800000000000    # 2026-10-01T05:00:00Z
key="resource_id = (SELECT id FROM resources ORDER BY uuid LIMIT 1 OFFSET 3)
  AND meter_id = (SELECT id FROM meters WHERE name = 'cpu') AND hour_ns = $H"
[ "$(sqlite3 "$L" "SELECT count(*) FROM usage WHERE $key")" = 1 ] || { echo "no such usage row"; exit 1; }
last=$(sqlite3 "$L" "SELECT max(commit_id) FROM chain_hours WHERE hour_ns = $H")
sqlite3 "$L" "UPDATE usage SET quantity = quantity * 2 WHERE $key"
[ "$(sqlite3 "$L" "PRAGMA integrity_check")" = ok ] || { echo "the change broke the file: not the case tested"; exit 1; }
expect 1 "first bad commit $last; commit $last (" "$TALLY" ledger verify --ledger "$L"
grep -qF "the usage of hour 2026-10-01T05:00:00Z is not what it committed" "$work/err" ||
	{ echo "FAIL: verify does not name the hour: $(cat "$work/err")"; fails=$((fails + 1)); }
PLAN=$PWD/config/plan-example.yaml
expect 1 "refusing to issue" "$TALLY" invoice --ledger "$L" --plan "$PLAN" --period 2026-10 --issue --allow-incomplete
grep -qF "nothing was issued" "$work/err" || { echo "FAIL: $(cat "$work/err")"; fails=$((fails + 1)); }
[ "$(sqlite3 "$L" "SELECT count(*) FROM invoices")" = 0 ] || { echo "FAIL: invoices were issued"; fails=$((fails + 1)); }
sqlite3 "$L" "UPDATE usage SET quantity = quantity / 2 WHERE $key"
expect 0 "$L: ok: $commits commits" "$TALLY" ledger verify --ledger "$L"
expect 0 "INVOICE" "$TALLY" invoice --ledger "$L" --plan "$PLAN" --period 2026-10 --issue --allow-incomplete
echo "changed value: found, named commit $last, no invoice issued until it was put back"

# ---- an index entry that no longer matches its row ----
# the last cell of a leaf page of usage_hour: its hour_ns + 1 (an hour's ns
# are even), which keeps the page well formed and the keys in order
root=$(sqlite3 "$L" "SELECT rootpage FROM sqlite_master WHERE name = 'usage_hour'")
python3 - "$L" "$root" <<'EOP'
import struct, sys
path, page_no = sys.argv[1], int(sys.argv[2])
f = open(path, 'r+b')
hdr = f.read(100)
psize = struct.unpack('>H', hdr[16:18])[0]
psize = 65536 if psize == 1 else psize
def page(n):
    f.seek((n - 1) * psize)
    return bytearray(f.read(psize))
def varint(b, i):
    v = 0
    for k in range(9):
        c = b[i]; i += 1
        if k == 8:
            return (v << 8) | c, i
        v = (v << 7) | (c & 0x7f)
        if not c & 0x80:
            break
    return v, i
n = page_no
while True:                      # down the rightmost edge to a leaf
    p = page(n)
    if p[0] == 0x0A:
        break
    assert p[0] == 0x02, "not an index b-tree page"
    n = struct.unpack('>I', p[8:12])[0]
cells = struct.unpack('>H', p[3:5])[0]
off = struct.unpack('>H', p[8 + 2 * (cells - 1):10 + 2 * (cells - 1)])[0]
_, i = varint(p, off)            # payload size
hstart = i
hlen, i = varint(p, i)
t, i = varint(p, i)
assert t == 6, "hour_ns is not an 8-byte integer"
body = hstart + hlen
assert p[body + 7] & 1 == 0
p[body + 7] ^= 1
f.seek((n - 1) * psize)
f.write(p)
f.close()
EOP
[ "$(sqlite3 "$L" "PRAGMA quick_check")" = ok ] || { echo "the damage is not of the kind quick_check misses"; exit 1; }
[ "$(sqlite3 "$L" "PRAGMA integrity_check" | head -n 1)" != ok ] || { echo "integrity_check misses the damage"; exit 1; }
before=$(sha256sum "$L" | cut -c1-64)
expect 1 "usage_hour" "$TALLY" ledger check --ledger "$L"
expect 1 "corrupt ledger" "$TALLYD" -q -c "$work/t.yaml"
[ "$(sha256sum "$L" | cut -c1-64)" = "$before" ] || { echo "FAIL: the refused ledger was changed"; fails=$((fails + 1)); }
[ ! -s "$L-wal" ] || { echo "FAIL: the refused ledger got a WAL"; fails=$((fails + 1)); }
echo "index damage: found and refused, file unchanged"

[ "$fails" -eq 0 ] || { echo "$fails failures"; exit 1; }
