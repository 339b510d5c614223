#!/usr/bin/env python3
# ledger_rows.py LOCATION...: every usage row of each ledger (an SQLite file
# or a postgresql:// location, read with psql), keyed by names rather than
# ids, one line each in key order, quantities exact (an integer, or a
# binary64 as float.hex()): two ledgers hold the same usage when the lines
# are equal. Several locations: compares them with the first, prints the
# row count and exits 0 when all are equal, 1 (and the first difference)
# when not. An independent reader: neither tally's code nor its SQL.
import csv, io, sqlite3, subprocess, sys

def rows(loc):
    if loc.startswith(("postgresql://", "postgres://")):
        sql = ("SELECT r.uuid, m.name, u.device, u.hour_ns, u.quantity::text, u.quantity_real::text,"
               " u.spanned_ns, u.covered_ns, u.samples FROM usage u JOIN resources r ON r.id = u.resource_id"
               " JOIN meters m ON m.id = u.meter_id")
        out = subprocess.run(["psql", "-X", "-q", "--csv", "-t", "-d", loc, "-c", sql], check=True,
                             capture_output=True, text=True).stdout
        got = []
        for r in csv.reader(io.StringIO(out)):
            q = "I:%d" % int(r[4]) if r[4] != "" else "R:" + float(r[5]).hex()
            got.append((r[0], r[1], r[2], int(r[3]), q, int(r[6]), int(r[7]), int(r[8])))
    else:
        db = sqlite3.connect("file:%s?mode=ro" % loc, uri=True)
        got = []
        for r in db.execute("SELECT r.uuid, m.name, u.device, u.hour_ns, u.quantity, u.spanned_ns, u.covered_ns,"
                            " u.samples FROM usage u JOIN resources r ON r.id = u.resource_id"
                            " JOIN meters m ON m.id = u.meter_id"):
            q = "I:%d" % r[4] if isinstance(r[4], int) else "R:" + float(r[4]).hex()
            got.append((r[0], r[1], r[2], r[3], q, r[5], r[6], r[7]))
    # bytewise order, as both engines order their keys
    got.sort(key=lambda t: (t[0].encode(), t[1].encode(), t[2].encode(), t[3]))
    return got

first = rows(sys.argv[1])
if len(sys.argv) == 2:
    for t in first:
        print(" ".join(str(x) for x in t))
    sys.exit(0)
for loc in sys.argv[2:]:
    other = rows(loc)
    if other != first:
        for x, y in zip(first, other):
            if x != y:
                print("first difference:", x, "vs", y)
                break
        print(len(first), "rows vs", len(other))
        sys.exit(1)
print(len(first), "usage rows equal, row for row")
