#!/bin/sh
# HOST-RESOURCES-MIB against a real snmpd: the hardware.* meters of a
# `type: host` target equal what snmpd serves for this machine.
#
# The test runs in a mount and network namespace of its own (unshare): it
# mounts a tmpfs of 8 MiB holding a 1 MiB file, which this test's snmpd
# lists in hrStorageTable and nobody else sees. tallyd polls that snmpd
# every second (target h). Checked:
# - storage: for every hrStorageRam, hrStorageFixedDisk and
#   hrStorageNetworkDisk row, tallyd's bytes on /metrics equal
#   hrStorageSize x hrStorageAllocationUnits (and hrStorageUsed x units)
#   of snmpwalk readings taken before and after tallyd's poll, where both
#   readings agree (a file system that did not change; the others are
#   counted and said); by hand: the tmpfs is 2048 units of 4096 bytes =
#   8388608, 256 of them used = 1048576 (statfs agrees), and the physical
#   memory is MemTotal of /proc/meminfo x 1024; the ledger keeps the same
#   last readings, and integrates the tmpfs's size at exactly 8388608
#   bytes over the seconds it covered;
# - processor load: snmpd computes hrProcessorLoad over the last minute
#   from samples it takes every 5 s, and serves none until it holds a
#   minute of them (so this test lasts a minute). tallyd's
#   hardware.cpu.util x 100 of each processor lies between snmpget
#   readings taken before and after tallyd's poll; when the two are less
#   than 5 s apart snmpd updated the load at most once between them, so it
#   is one of the two (the window and the readings are printed).
set -eu
B=${B:-build}
TALLYD=$PWD/$B/tallyd
. tests/lib/snmpd.sh
snmp_need snmpbulkwalk unshare mount ip
[ "$(id -u)" = 0 ] || { echo "needs root: a tmpfs of known size in a mount namespace of its own"; exit 77; }
if [ -z "${TALLY_SNMP_HR_NS:-}" ]; then
	unshare -m -n --propagation private true 2>/dev/null ||
		{ echo "cannot make a mount and network namespace here (unshare -m -n)"; exit 77; }
	TALLY_SNMP_HR_NS=1 exec unshare -m -n --propagation private sh "$0" "$@"
fi
ip link set lo up
work=$(mktemp -d /tmp/tally-snmp-hr-XXXXXX)
cleanup() {
	umount "$work/fs" 2>/dev/null || true
	snmp_cleanup
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

mkdir "$work/fs"
mount -t tmpfs -o size=8m tmpfs "$work/fs"
head -c 1048576 /dev/zero > "$work/fs/blob"
set -- $(snmp_free_ports udp tcp)
port=$1 hport=$2
agent=udp:127.0.0.1:$port
snmpd_conf host "$port"
snmpd_start host "$port" smux
snmp_tally_yaml 1s > "$work/tally.yaml"
echo "      - {name: h, type: host, address: \"127.0.0.1:$port\", community: public, timeout: 200ms}" \
	>> "$work/tally.yaml"
tallyd_start "$work/tally.yaml" "$work/tallyd.log"
snmp_wait_polls h 2 "$work/tallyd.log"

HRST=.1.3.6.1.2.1.25.2.3.1 LOAD=.1.3.6.1.2.1.25.3.3.1.2
walk() { snmpbulkwalk -v2c -c public -On -Oq "$agent" "$@"; }
# the next poll of h that begins after now has ended
after_next_poll() { n=$(snmp_okpolls h); snmp_wait_polls h $((n + 2)) "$work/tallyd.log"; }

# ---- storage ----
walk $HRST > "$work/st_a"
after_next_poll
snmp_metrics > "$work/m1"
walk $HRST > "$work/st_b"
python3 - "$work/st_a" "$work/st_b" "$work/m1" "$work/fs" > "$work/storage" <<'EOF'
import re, sys

def table(path):
    """hrStorageTable from `snmpbulkwalk -On -Oq`: {index: {column: value}}"""
    rows = {}
    for line in open(path):
        m = re.match(r"\.1\.3\.6\.1\.2\.1\.25\.2\.3\.1\.(\d+)\.(\d+) (.*)$", line.strip())
        if m:
            rows.setdefault(int(m.group(2)), {})[int(m.group(1))] = m.group(3).strip('"')
    return rows

def metrics(path):
    """{(family, device): value} of the hardware families of resource h"""
    out = {}
    for line in open(path):
        m = re.match(r'(tally_host_\w+)\{(.*)\} (\S+)$', line.strip())
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)))
        if labels.get("uuid") == "h":
            out[(m.group(1), labels.get("device", ""))] = float(m.group(3))
    return out

a, b, got, fs = table(sys.argv[1]), table(sys.argv[2]), metrics(sys.argv[3]), sys.argv[4]
# hrStorageType .1.3.6.1.2.1.25.2.1.N: 2 ram, 4 fixed disk, 10 network disk
kinds = {"2": "memory", "4": "disk", "10": "disk"}
checked = moved = fails = 0
for idx in sorted(set(a) & set(b)):
    ra, rb = a[idx], b[idx]
    kind = kinds.get(ra.get(2, "").rsplit(".", 1)[-1])
    descr = ra.get(3, "")
    if not kind or rb.get(3) != descr or len(descr) >= 48:
        continue  # not metered, replaced between the walks, or a hashed label
    for col, fam in ((5, "total"), (6, "used")):
        want_a = int(ra[4]) * int(ra[col])   # bytes = units x hrStorageAllocationUnits
        want_b = int(rb[4]) * int(rb[col])
        if want_a != want_b:
            moved += 1
            print("note %s %s moved between the readings: %d -> %d" % (descr, fam, want_a, want_b))
            continue
        key = ("tally_host_%s_%s_bytes" % (kind, fam), descr)
        v = got.get(key)
        checked += 1
        if v != want_a:
            fails += 1
            print("FAIL %s %s on /metrics: %r, snmpwalk %s x %s = %d" % (descr, fam, v, ra[col], ra[4], want_a))
        else:
            print("ok   %s %s: %s units x %s bytes = %d" % (descr, fam, ra[col], ra[4], want_a))
        if descr == fs:
            print("FS %s %d" % (fam, v if v is not None else -1))
        if kind == "memory" and descr == "Physical memory" and col == 5:
            print("MEM %d" % (v if v is not None else -1))
print("COUNT %d %d %d" % (checked, moved, fails))
EOF
grep -e '^ok' -e '^FAIL' -e '^note' "$work/storage"
set -- $(sed -n 's/^COUNT //p' "$work/storage")
echo "storage: $1 values compared, $2 moved between the readings (not compared), $3 differ"
[ "$1" -ge 4 ] && ok "storage: $1 values compared (memory and file systems)" || bad "storage: only $1 values compared"
[ "$3" -eq 0 ] && ok "storage: every compared value equals snmpwalk's" || bad "storage: $3 values differ from snmpwalk's"
# by hand: 8 MiB of 4096-byte blocks, 256 of them used by the 1 MiB file
eq "tmpfs hardware.disk.size.total (2048 x 4096)" "$(sed -n 's/^FS total //p' "$work/storage")" "8388608"
eq "tmpfs hardware.disk.size.used (256 x 4096)" "$(sed -n 's/^FS used //p' "$work/storage")" "1048576"
eq "  statfs of the tmpfs says" "$(stat -f -c '%b %f %S' "$work/fs" | awk '{ printf "%.0f/%.0f\n", $1 * $3, ($1 - $2) * $3 }')" \
	"8388608/1048576"
mem=$(awk '$1 == "MemTotal:" && $3 == "kB" { printf "%.0f\n", $2 * 1024 }' /proc/meminfo)
eq "hardware.memory.total = MemTotal of /proc/meminfo x 1024" "$(sed -n 's/^MEM //p' "$work/storage")" "$mem"

# ---- processor load ----
# snmpd serves hrProcessorLoad once it holds a minute of samples
i=0
until walk $LOAD | grep -q '^\.1\.3\.6\.1\.2\.1\.25\.3\.3\.1\.2\.'; do
	i=$((i + 1))
	[ $i -lt 100 ] || { bad "snmpd served no hrProcessorLoad in 100 s"; break; }
	sleep 1
done
# readings before and after a poll of h, less than 5 s apart: up to 5 tries
try=0
while [ $i -lt 100 ] && [ $try -lt 5 ]; do
	try=$((try + 1))
	t_a=$(date +%s%N)
	walk $LOAD > "$work/load_a"
	after_next_poll
	snmp_metrics > "$work/m2"
	walk $LOAD > "$work/load_b"
	t_b=$(date +%s%N)
	[ $((t_b - t_a)) -lt 5000000000 ] && break
done
if [ $i -lt 100 ]; then
	window=$(( (t_b - t_a) / 1000000 ))
	python3 - "$work/load_a" "$work/load_b" "$work/m2" "$window" <<'EOF' > "$work/cpu"
import re, sys
def loads(path):
    return {int(m.group(1)): int(m.group(2)) for m in
            (re.match(r"\.1\.3\.6\.1\.2\.1\.25\.3\.3\.1\.2\.(\d+) (\d+)$", l.strip()) for l in open(path)) if m}
a, b, window = loads(sys.argv[1]), loads(sys.argv[2]), int(sys.argv[4])
got = {}
for line in open(sys.argv[3]):
    m = re.match(r'tally_host_cpu_utilization_ratio\{(.*)\} (\S+)$', line.strip())
    if m:
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if labels.get("uuid") == "h":
            got[labels.get("device")] = float(m.group(2))
if not a or set(a) != set(b):
    print("FAIL processors: %s before, %s after" % (sorted(a), sorted(b)))
for idx in sorted(a):
    v = got.get("cpu%d" % idx)
    lo, hi = min(a[idx], b.get(idx, a[idx])), max(a[idx], b.get(idx, a[idx]))
    if v is None:
        print("FAIL cpu%d: no hardware.cpu.util on /metrics" % idx)
        continue
    pct = v * 100
    near = [r for r in (a[idx], b.get(idx)) if r is not None and abs(pct - r) < 1e-6]
    where = "%d ms apart" % window
    if window < 5000:
        ok = bool(near)
        where += ", at most one update of snmpd's between: one of the two"
    else:
        ok = lo - 1e-6 <= pct <= hi + 1e-6
        where += ", 5 s or more: within them"
    print("%s cpu%d: hardware.cpu.util %.6g = %g %% busy; snmpget %d before, %d after (%s)"
          % ("ok  " if ok else "FAIL", idx, v, pct, a[idx], b.get(idx, -1), where))
EOF
	cat "$work/cpu"
	n=$(grep -c '^ok' "$work/cpu" || true)
	[ "$n" -ge 1 ] && ! grep -q '^FAIL' "$work/cpu" && ok "processor load: $n processor(s) agree" ||
		bad "processor load disagrees"
fi

# ---- the ledger ----
tallyd_stop "$tallyd_pid" "$work/tallyd.log"
L=$work/data/ledger.db
fsdev=$work/fs
last() { # METER DEVICE: the last reading the ledger keeps
	sqlite3 "$L" "select s.last_value from series s join resources r on r.id = s.resource_id
		join meters m on m.id = s.meter_id where r.uuid = 'h' and m.name = '$1' and s.device = '$2'"
}
eq "ledger: tmpfs hardware.disk.size.total" "$(last hardware.disk.size.total "$fsdev")" "8388608.0"
eq "ledger: tmpfs hardware.disk.size.used" "$(last hardware.disk.size.used "$fsdev")" "1048576.0"
eq "ledger: hardware.memory.total" "$(last hardware.memory.total "Physical memory")" "$mem.0"
# the size integrated over the seconds covered: byte-seconds / seconds
eq "ledger: the tmpfs's byte-seconds / seconds covered" "$(sqlite3 "$L" "select printf('%.3f',
	sum(u.quantity) / (sum(u.covered_ns) / 1e9)) from usage u join resources r on r.id = u.resource_id
	join meters m on m.id = u.meter_id where r.uuid = 'h' and m.name = 'hardware.disk.size.total'
	and u.device = '$fsdev'")" "8388608.000"

[ "$fails" -eq 0 ] || { echo "--- tallyd log"; cat "$work/tallyd.log"; exit 1; }
echo "snmp_hostres: all passed"
