#!/usr/bin/env python3
"""netem in user space: a two-port Ethernet bridge that loses, duplicates,
reorders and delays frames, for tests whose kernel has no sch_netem.

It runs in a network namespace of its own between two veth ends (IF1 and
IF2), reads every frame arriving on one (AF_PACKET, promiscuous) and sends
it out of the other, as a hub would, with the faults of netem's options:

  loss P      each frame is dropped with probability P
  duplicate P each frame (not dropped) is sent twice with probability P
  delay MS    each frame waits MS milliseconds, plus or minus
  jitter MS   a uniform jitter
  reorder P   with probability P a frame skips the delay and goes at once,
              ahead of the frames waiting (netem's reorder with a delay)

The faults are read from the control file (--control FILE, one line
"loss P duplicate P delay MS jitter MS reorder P", any subset; an empty or
missing file means none) every 100 ms, so a test turns them on and off.
It prints "bridging IF1 IF2" once both ports are open, and counts what it
did into --stats FILE when it gets SIGTERM.
"""
import argparse
import heapq
import os
import random
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_OUTGOING = 4


def open_port(name):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((name, 0))
    idx = socket.if_nametoindex(name)
    s.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, struct.pack("iHH8s", idx, PACKET_MR_PROMISC, 0, b""))
    s.setblocking(False)
    return s


def _sum16(b):
    if len(b) & 1:
        b += b"\0"
    return sum(struct.unpack("!%dH" % (len(b) // 2), b))


def fix_checksum(frame):
    """A veth hands a TCP or UDP segment over with its checksum left to the
    hardware (checksum offload): AF_PACKET reads it unfinished, and sent on
    as it is the receiver would drop it. Compute it (IPv4 only: the tests
    turn IPv6 off)."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return frame
    ihl = (frame[14] & 0x0F) * 4
    proto = frame[23]
    tot = struct.unpack_from("!H", frame, 16)[0]
    if proto not in (6, 17) or struct.unpack_from("!H", frame, 20)[0] & 0x3FFF:
        return frame                      # not TCP/UDP, or a fragment
    seg = bytearray(frame[14 + ihl:14 + tot])
    off = 16 if proto == 6 else 6
    if len(seg) < off + 2:
        return frame
    seg[off:off + 2] = b"\0\0"
    pseudo = frame[26:34] + struct.pack("!BBH", 0, proto, len(seg))
    c = _sum16(pseudo) + _sum16(bytes(seg))
    while c >> 16:
        c = (c & 0xFFFF) + (c >> 16)
    c = ~c & 0xFFFF
    if proto == 17 and c == 0:
        c = 0xFFFF
    seg[off:off + 2] = struct.pack("!H", c)
    return frame[:14 + ihl] + bytes(seg) + frame[14 + tot:]


def read_control(path, cur):
    try:
        with open(path) as f:
            words = f.read().split()
    except OSError:
        words = []
    faults = dict(loss=0.0, duplicate=0.0, delay=0.0, jitter=0.0, reorder=0.0)
    for k, v in zip(words[::2], words[1::2]):
        if k in faults:
            faults[k] = float(v)
    return faults


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("if1")
    p.add_argument("if2")
    p.add_argument("--control", required=True)
    p.add_argument("--stats")
    p.add_argument("--seed", type=int, default=None)
    a = p.parse_args()
    rnd = random.Random(a.seed)
    ports = [open_port(a.if1), open_port(a.if2)]
    other = {ports[0].fileno(): ports[1], ports[1].fileno(): ports[0]}
    stats = dict(frames=0, lost=0, duplicated=0, reordered=0, delayed=0, too_big=0)
    stop = []
    signal.signal(signal.SIGTERM, lambda *x: stop.append(1))
    faults = read_control(a.control, None)
    next_control = time.monotonic() + 0.1
    wait = []          # (due, n, socket, frame)
    n = 0
    print("bridging %s %s" % (a.if1, a.if2), flush=True)
    while not stop:
        now = time.monotonic()
        if now >= next_control:
            faults = read_control(a.control, faults)
            next_control = now + 0.1
        while wait and wait[0][0] <= now:
            _, _, s, frame = heapq.heappop(wait)
            try:
                s.send(frame)
            except OSError:
                stats["too_big"] += 1
        timeout = min(next_control, wait[0][0] if wait else next_control) - now
        try:
            ready, _, _ = select.select(ports, [], [], max(timeout, 0))
        except InterruptedError:
            continue
        for s in ready:
            while True:
                try:
                    frame, addr = s.recvfrom(65536)
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue
                stats["frames"] += 1
                frame = fix_checksum(frame)
                out = other[s.fileno()]
                if faults["loss"] and rnd.random() < faults["loss"]:
                    stats["lost"] += 1
                    continue
                copies = 2 if faults["duplicate"] and rnd.random() < faults["duplicate"] else 1
                stats["duplicated"] += copies - 1
                for _ in range(copies):
                    d = faults["delay"]
                    if faults["reorder"] and rnd.random() < faults["reorder"]:
                        d = 0
                        stats["reordered"] += 1
                    elif d or faults["jitter"]:
                        d = max(0.0, d + rnd.uniform(-faults["jitter"], faults["jitter"]))
                        stats["delayed"] += 1
                    n += 1
                    heapq.heappush(wait, (time.monotonic() + d / 1000.0, n, out, frame))
    if a.stats:
        with open(a.stats, "w") as f:
            f.write(" ".join("%s %d" % kv for kv in stats.items()) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
