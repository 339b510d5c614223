#!/usr/bin/env python3
# chain_oracle.py LEDGER: the ledger's hash chain recomputed from the
# definition in schemas/migrations/005-chain.sql alone (Python's hashlib
# and its own sorting, none of tally's code), as an independent oracle for
# tests/integration/ledger_damage.sh. Prints what it checked; exit 0 when
# every stored commit hash and the digest of every hour's usage (as the
# last commit that wrote it recorded) agree with the definition, else 1
# naming the first disagreement.
import hashlib
import sqlite3
import struct
import sys


def i64(v):
    return struct.pack('>q', v)


def row_bytes(rid, mid, device, hour, qty, spanned, covered, samples):
    dev = device.encode('utf-8')
    b = i64(rid) + i64(mid) + struct.pack('>I', len(dev)) + dev + i64(hour)
    if isinstance(qty, int):
        b += b'I' + i64(qty)
    elif isinstance(qty, float):
        b += b'R' + struct.pack('>d', qty)
    else:
        raise SystemExit('oracle: a quantity that is neither INTEGER nor REAL: %r' % (qty,))
    return b + i64(spanned) + i64(covered) + i64(samples)


def main():
    db = sqlite3.connect('file:%s?mode=ro' % sys.argv[1], uri=True)
    hours = {}
    for r in db.execute('SELECT resource_id, meter_id, device, hour_ns, quantity, spanned_ns, covered_ns,'
                        ' samples FROM usage'):
        hours.setdefault(r[3], []).append(r)
    digest = {}
    for hour, rows in hours.items():
        rows.sort(key=lambda r: (r[0], r[1], r[2].encode('utf-8')))
        h = hashlib.sha256(b'tally usage hour v1\0' + i64(hour))
        for r in rows:
            h.update(row_bytes(*r))
        digest[hour] = (len(rows), h.digest())

    prev = bytes(32)
    last = {}
    commits = 0
    for cid, time_ns, upgrade, n, stored in db.execute(
            'SELECT id, time_ns, upgrade, hours, hash FROM chain ORDER BY id'):
        commits += 1
        if cid != commits:
            raise SystemExit('oracle: commit %d where %d was due' % (cid, commits))
        h = hashlib.sha256(b'tally chain v1\0' + prev + i64(cid) + i64(time_ns) + i64(upgrade) + i64(n))
        recs = db.execute('SELECT hour_ns, rows, altered, digest FROM chain_hours WHERE commit_id = ?'
                          ' ORDER BY hour_ns', (cid,)).fetchall()
        if len(recs) != n:
            raise SystemExit('oracle: commit %d: %d hours recorded, %d said' % (cid, len(recs), n))
        for hour, rows, altered, dg in recs:
            h.update(i64(hour) + i64(rows) + i64(altered) + dg)
            last[hour] = (cid, rows, dg)
        if h.digest() != stored:
            print('oracle: commit %d: hash %s, the definition gives %s' % (cid, stored.hex(), h.hexdigest()))
            return 1
        prev = stored
    for hour in sorted(set(last) | set(digest)):
        if hour not in last:
            print('oracle: hour %d: %d usage rows no commit wrote' % (hour, digest[hour][0]))
            return 1
        cid, rows, dg = last[hour]
        now = digest.get(hour, (0, hashlib.sha256(b'tally usage hour v1\0' + i64(hour)).digest()))
        if now != (rows, dg):
            print('oracle: hour %d: %d rows now, %d recorded by commit %d; digests %s, %s'
                  % (hour, now[0], rows, cid, now[1].hex(), dg.hex()))
            return 1
    print('oracle: %d commits, %d hours, %d usage rows agree with the definition; head %s'
          % (commits, len(digest), sum(v[0] for v in digest.values()), prev.hex()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
