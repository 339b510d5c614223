#!/usr/bin/env python3
"""A stand-in for the aggregator's POST /api/v1/ingest, for the agent's
tests: it plays the protocol of schemas/batch-wire.md ("The ingest
protocol") on the agent's real frames, written from that document (not from
tally's code), and records every frame it commits.

It is a mock, used where the real aggregator is not needed (the agent's
config, its metrics, the spool's behaviour under faults); the end-to-end
tests run the real aggregator tallyd.

What it checks and answers, as the document says:
  - POST /api/v1/ingest with "Authorization: Bearer <token>" (--token: an
    unknown or missing one is a 401; --token AGENT=TOKEN binds a token to
    one agent id, a frame of another agent is a 403);
  - the body is whole frames: magic TLYB, version 1, flags and reserved 0,
    a body length, the CRC-32C (Castagnoli) of the frame: anything else is
    a 400; frames of two agents or two spools in one request are a 400;
  - (agent, seq) at or below the agent's last committed seq: acknowledged
    again, not recorded again; a first frame after last + 1: 409 "gap";
    frames not consecutive: 409 "order"; a spool other than the one the
    agent's seqs came from, whose first seq is not last + 1: 409 "spool";
  - 200 {"agent": A, "acked": N} after the frames are recorded (the record
    file is flushed and fsync'd first: a kill -9 of the stub loses
    nothing it acknowledged).

--no-crc leaves the checksums unchecked (benchmarks of the agent only).

Faults on request (--fault KIND:EVERY): "500" answers a 500 without
committing every EVERY-th request, "lost" commits and then closes the
connection without an answer, "503" answers 503 with Retry-After: 1.

The record (--record FILE) has one line per committed frame:
  agent seq time_ns samples events metas spool_id spool_first_seq
written (one write per request) and synced before the answer; it is also
the stub's state: started again, the stub reads the agents' last seqs and
spool ids back from it (a line cut by a kill -9 is cut off), so what it
committed and what it remembers cannot disagree. (--state is accepted
and ignored.)

It prints "listening on PORT" once it listens (--port 0: a free port).
"""
import argparse
import json
import os
import socket
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _crc_table():
    poly = 0x82F63B78
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        t.append(c)
    return t


CRC_TABLE = _crc_table()


def crc32c(data):
    c = 0xFFFFFFFF
    t = CRC_TABLE
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


class Bad(Exception):
    pass


def uvarint(b, i):
    v = shift = 0
    for k in range(10):
        if i >= len(b):
            raise Bad("truncated varint")
        x = b[i]
        i += 1
        v |= (x & 0x7F) << shift
        if not x & 0x80:
            if k and x == 0:
                raise Bad("non-canonical varint")
            return v, i
        shift += 7
    raise Bad("varint too long")


def svarint(b, i):
    v, i = uvarint(b, i)
    return (v >> 1) ^ -(v & 1), i


CHECK_CRC = True


def parse_frame(buf, off):
    """One frame at buf[off:]: (head dict, next offset)."""
    if len(buf) - off < 16:
        raise Bad("partial frame")
    if buf[off:off + 4] != b"TLYB":
        raise Bad("bad magic")
    if buf[off + 4] != 1:
        raise Bad("wire version %d" % buf[off + 4])
    if buf[off + 5] or buf[off + 6] or buf[off + 7]:
        raise Bad("flags or reserved set")
    (blen,) = struct.unpack_from("<I", buf, off + 8)
    end = off + 12 + blen
    if blen > 16 << 20 or end + 4 > len(buf):
        raise Bad("frame length")
    (crc,) = struct.unpack_from("<I", buf, end)
    if CHECK_CRC and crc32c(buf[off:end]) != crc:
        raise Bad("checksum")
    b = buf[off + 12:end]
    n, i = uvarint(b, 0)
    agent = b[i:i + n].decode("latin-1")
    i += n
    spool = b[i:i + 16].hex()
    i += 16
    first, i = uvarint(b, i)
    seq, i = uvarint(b, i)
    t, i = svarint(b, i)
    _, i = uvarint(b, i)                      # clock step
    ns, i = uvarint(b, i)                     # strings
    for _ in range(ns):
        n, i = uvarint(b, i)
        i += n
    nm, i = uvarint(b, i)                     # metadata: time + 8 strs
    for _ in range(nm):
        _, i = svarint(b, i)
        for _ in range(8):
            _, i = uvarint(b, i)
    ne, i = uvarint(b, i)                     # events: time + 3 strs
    for _ in range(ne):
        _, i = svarint(b, i)
        for _ in range(3):
            _, i = uvarint(b, i)
    nsamp, i = uvarint(b, i)
    if not 1 <= len(agent) <= 63 or seq < 1:
        raise Bad("agent or seq")
    return dict(agent=agent, spool=spool, first=first, seq=seq, time=t, samples=nsamp, events=ne,
                metas=nm), end + 4


class Stub:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.tokens = {}          # token -> agent or None (any)
        for t in args.token or []:
            if "=" in t:
                a, k = t.split("=", 1)
                self.tokens[k] = a
            else:
                self.tokens[t] = None
        self.agents = {}          # agent -> {"last": n, "spool": hex}
        self.record = None
        if args.record:
            self.record = os.open(args.record, os.O_RDWR | os.O_CREAT, 0o644)
            data = b""
            while True:
                chunk = os.read(self.record, 1 << 20)
                if not chunk:
                    break
                data += chunk
            whole = data[:data.rfind(b"\n") + 1]
            os.ftruncate(self.record, len(whole))
            os.lseek(self.record, 0, os.SEEK_END)
            for line in whole.decode().splitlines():
                f = line.split()
                self.agents[f[0]] = {"last": int(f[1]), "spool": f[6]}
        self.faults = []
        for f in args.fault or []:
            kind, every = f.split(":")
            self.faults.append((kind, int(every)))
        self.requests = 0

    def ingest(self, token, body):
        """(status, json dict, extra headers, lose the answer)"""
        with self.lock:
            self.requests += 1
            fault = None
            for kind, every in self.faults:
                if self.requests % every == 0:
                    fault = kind
            if fault == "500":
                return 500, {"error": "injected"}, {}, False
            if fault == "503":
                return 503, {"error": "injected"}, {"Retry-After": "1"}, False
            if self.tokens and token not in self.tokens:
                return 401, {"error": "unknown token"}, {}, False
            frames, off = [], 0
            try:
                while off < len(body):
                    h, off = parse_frame(body, off)
                    frames.append(h)
            except Bad as e:
                return 400, {"error": str(e), "seq": frames[-1]["seq"] + 1 if frames else 0}, {}, False
            if not frames or len(frames) > 1024:
                return 400, {"error": "1 to 1024 frames"}, {}, False
            agent, spool = frames[0]["agent"], frames[0]["spool"]
            if any(f["agent"] != agent or f["spool"] != spool for f in frames):
                return 400, {"error": "frames of two agents or spools"}, {}, False
            bound = self.tokens.get(token) if self.tokens else None
            if bound is not None and bound != agent:
                return 403, {"error": "token of another agent"}, {}, False
            st = self.agents.get(agent)
            last = st["last"] if st else 0
            for a, b in zip(frames, frames[1:]):
                if b["seq"] != a["seq"] + 1:
                    return 409, {"error": "not consecutive", "reason": "order", "agent": agent,
                                 "last_seq": last}, {}, False
            first = frames[0]
            if st and st["spool"] != spool and first["first"] != last + 1:
                return 409, {"error": "another spool", "reason": "spool", "agent": agent, "last_seq": last,
                             "spool_id": st["spool"]}, {}, False
            if first["seq"] > last + 1:
                return 409, {"error": "gap", "reason": "gap", "agent": agent, "last_seq": last}, {}, False
            new = [f for f in frames if f["seq"] > last]
            if new:
                if self.record is not None:
                    text = "".join("%s %d %d %d %d %d %s %d\n" % (agent, f["seq"], f["time"], f["samples"],
                                                                  f["events"], f["metas"], spool, f["first"])
                                   for f in new)
                    os.write(self.record, text.encode())
                    os.fsync(self.record)
                self.agents[agent] = {"last": new[-1]["seq"], "spool": spool}
            # the highest seq of this request committed (schemas/batch-wire.md):
            # all of it, now or before; never beyond it, even when the stub
            # has later ones (an agent that lost its ack resends older seqs)
            return 200, {"agent": agent, "acked": frames[-1]["seq"]}, {}, fault == "lost"


def make_handler(stub):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            if self.path != "/api/v1/ingest":
                return self.reply(404, {"error": "no such path"}, {})
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n)
            auth = self.headers.get("Authorization", "")
            token = auth[7:] if auth.startswith("Bearer ") else None
            status, obj, hdr, lose = stub.ingest(token, body)
            if lose:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.reply(status, obj, hdr)

        def reply(self, status, obj, hdr):
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in hdr.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

    return H


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--token", action="append")
    p.add_argument("--record")
    p.add_argument("--state")
    p.add_argument("--fault", action="append")
    p.add_argument("--no-crc", action="store_true",
                   help="do not verify checksums (benchmarks: Python's CRC is the bottleneck)")
    args = p.parse_args()
    global CHECK_CRC
    CHECK_CRC = not args.no_crc
    stub = Stub(args)
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer((args.address, args.port), make_handler(stub))
    print("listening on %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
