#!/usr/bin/env python3
# ledger_rows.py [--all] LOCATION...: every usage row of each ledger (an
# SQLite file or a postgresql:// location, read with psql), keyed by names
# rather than ids, one line each in key order, quantities exact (an
# integer, or a binary64 as float.hex()): two ledgers hold the same usage
# when the lines are equal. --all: also the series' last readings, the
# agents' seqs, the events, the resources and their attribute history (what
# crash.sh and agent_netns.sh compare). Several locations: compares them
# with the first, prints the row counts and exits 0 when all are equal, 1
# (and the first difference) when not. An independent reader: neither
# tally's code nor its SQL.
import csv, io, sqlite3, subprocess, sys

PG = lambda loc: loc.startswith(("postgresql://", "postgres://"))

def query(loc, sql):
    """rows of sql as lists of text (a NULL must be made 'NULL' by the SQL:
    psql's CSV writes NULL and '' alike)"""
    if PG(loc):
        out = subprocess.run(["psql", "-X", "-q", "--csv", "-t", "-d", loc, "-c", sql], check=True,
                             capture_output=True, text=True).stdout
        return list(csv.reader(io.StringIO(out)))
    db = sqlite3.connect("file:%s?mode=ro" % loc, uri=True)
    return [["NULL" if v is None else str(v) for v in r] for r in db.execute(sql)]

def num(v, real):
    return "R:" + float(v).hex() if real else "I:%d" % int(v)

def others(loc):
    """the tables beside usage, by names, as tuples of text"""
    pg = PG(loc)
    got = []
    val = ("coalesce(s.last_value::text, 'NULL'), coalesce(s.last_value_real::text, 'NULL')" if pg else
           "CASE typeof(s.last_value) WHEN 'real' THEN NULL ELSE s.last_value END,"
           " CASE typeof(s.last_value) WHEN 'real' THEN printf('%!.17g', s.last_value) END")
    for r in query(loc, "SELECT r.uuid, m.name, s.device, s.agent, s.last_ns, s.origin_ns, s.kind, %s, s.flags"
                   " FROM series s JOIN resources r ON r.id = s.resource_id JOIN meters m ON m.id = s.meter_id" % val):
        got.append(("series",) + tuple(r[:7]) + (num(r[7], False) if r[7] != "NULL" else num(r[8], True), r[9]))
    for r in query(loc, "SELECT agent, last_seq, last_time_ns, batches FROM agents"):
        got.append(("agent",) + tuple(r))
    for r in query(loc, "SELECT r.uuid, e.time_ns, e.agent, e.type, e.reason FROM events e"
                   " JOIN resources r ON r.id = e.resource_id"):
        got.append(("event",) + tuple(r))
    for r in query(loc, "SELECT uuid, type, name, tenant, flavor, labels, host, first_seen_ns, last_seen_ns"
                   " FROM resources"):
        got.append(("resource",) + tuple(r))
    for r in query(loc, "SELECT r.uuid, a.since_ns, a.tenant, a.flavor, a.name, a.labels FROM resource_attrs a"
                   " JOIN resources r ON r.id = a.resource_id"):
        got.append(("attrs",) + tuple(r))
    got.sort(key=lambda t: tuple(x.encode() for x in t))
    return got

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

args = sys.argv[1:]
full = bool(args) and args[0] == "--all"
if full:
    args = args[1:]
read = (lambda loc: rows(loc) + others(loc)) if full else rows
first = read(args[0])
if len(args) == 1:
    for t in first:
        print(" ".join(str(x) for x in t))
    sys.exit(0)
for loc in args[1:]:
    other = read(loc)
    if other != first:
        fs, os_ = set(first), set(other)
        only_a = sorted(fs - os_, key=str)[:3]
        only_b = sorted(os_ - fs, key=str)[:3]
        print("only in the first:", only_a)
        print("only in the other:", only_b)
        print(len(first), "rows vs", len(other))
        sys.exit(1)
kinds = {}
for t in first:
    k = t[0] if full and isinstance(t[0], str) and t[0] in ("series", "agent", "event", "resource", "attrs") else "usage"
    kinds[k] = kinds.get(k, 0) + 1
print(", ".join("%d %s rows" % (n, k) for k, n in sorted(kinds.items())), "equal, row for row")
