#!/usr/bin/env python3
"""pcapgen.py: frames for the pcap collector's tests, written as a pcap file.

    pcapgen.py mix OUT.pcap SEED N START_S    a reproducible mix of N frames, one
                                             every 2.5 s from START_S (seconds)
    pcapgen.py bench OUT.pcap N VMS          N 64-byte frames from VMS VMs, see below

The mix (tests/integration/pcap_oracle.sh) has every shape the decoder
knows: untagged, 802.1Q, QinQ (0x88a8 and 0x9100 outer tags), IPv4 with
options and fragments, IPv6 with hop-by-hop, destination-options, routing,
fragment and AH headers, ARP, other EtherTypes, frames the capture cut
short (caplen < len) and malformed frames of every kind (runts, cut tags,
cut IP headers, bad versions and lengths, cut extension headers, cut ARP).
Upper layers are IP protocol 253 or IPv6 no-next-header with random bytes,
so the oracle (tshark) finds no fault above the IP layer that the decoder
does not look at. The addresses come from the MACs and prefixes the test
names (NICS, ROUTER, and the prefix pools below).
"""
import random
import struct
import sys

# the test's NICs: A, B and B's second NIC by MAC; C only by address
NICS = {"a": "52:54:00:0a:00:01", "b": "52:54:00:0b:00:01", "b2": "52:54:00:0b:00:02",
        "c": "52:54:00:0c:00:01"}
ROUTER = "02:aa:00:00:00:01"
OTHER = "02:bb:00:00:00:02"
BCAST = "ff:ff:ff:ff:ff:ff"
C_V4 = "192.0.2.50"
C_V6 = "2001:db8:c::50"
# remote addresses: every class, nested prefixes and their edges
V4_POOL = ["10.0.0.1", "10.255.255.255", "10.1.2.3", "10.1.2.255", "10.1.3.0", "172.16.0.1",
           "172.31.255.254", "172.32.0.1", "198.51.100.1", "198.51.100.127", "198.51.100.128",
           "198.51.100.255", "8.8.8.8", "1.1.1.1", "0.0.0.0", "255.255.255.255", "9.255.255.255",
           "11.0.0.0"]
V6_POOL = ["fd00::1", "fdff:ffff::1", "fd00:1::5", "fd00:1:ffff::1", "fd00:2::1", "2001:db8:100::1",
           "2001:db8:100:ffff::1", "2001:db8:101::1", "2001:4860::8888", "::1", "fc00::1",
           "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]
LOCAL_V4 = ["192.0.2.10", "192.0.2.11"]
LOCAL_V6 = ["2001:db8:a::10", "2001:db8:a::11"]


def mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


def v4(s):
    return bytes(int(x) for x in s.split("."))


def v6(s):
    import ipaddress
    return ipaddress.IPv6Address(s).packed


def ip4(src, dst, payload, r, ihl=5, ver=4, tot=None, frag=0):
    opts = bytes([1] * ((ihl - 5) * 4)) if ihl > 5 else b""   # NOPs
    t = tot if tot is not None else 20 + len(opts) + len(payload)
    h = struct.pack(">BBHHHBBH4s4s", (ver << 4) | (ihl & 15), 0, t & 0xffff, r.randrange(65536),
                    frag, 64, 253, 0, src, dst)
    return h + opts + payload


def ip6(src, dst, nh, rest, plen=None, ver=6):
    p = len(rest) if plen is None else plen
    return struct.pack(">IHBB", ver << 28, p & 0xffff, nh, 64) + src + dst + rest


def padn(n):
    return bytes([1, n - 2]) + bytes(n - 2)


def ext_chain(r, payload):
    """(first next header, bytes) of 0-3 extension headers, then no-next-header or 253"""
    last = r.choice([59, 253])
    kinds = [r.choice(["dst", "rt0", "rt253", "frag0", "ah"]) for _ in range(r.randrange(3))]
    if r.random() < 0.3:
        kinds.insert(0, "hbh")   # only ever first
    nh, out = last, payload if last == 253 else payload
    for k in reversed(kinds):
        if k in ("hbh", "dst"):
            L = r.randrange(3)
            out = bytes([nh, L]) + padn(6 + 8 * L) + out
            nh = 0 if k == "hbh" else 60
        elif k.startswith("rt"):
            out = bytes([nh, 0, 0 if k == "rt0" else 253, 0]) + bytes(4) + out
            nh = 43
        elif k == "frag0":
            out = bytes([nh, 0, 0, 1]) + struct.pack(">I", r.randrange(1 << 32)) + out
            nh = 44
        else:
            out = bytes([nh, 1, 0, 0]) + bytes(8) + out
            nh = 51
    return nh, out


def frame(r):
    """one random frame: (bytes, wire length); bytes may be shorter (snapped)"""
    who = r.random()
    if who < 0.22:
        src, dst, out = NICS["a"], ROUTER, True
    elif who < 0.40:
        src, dst, out = ROUTER, NICS["a"], False
    elif who < 0.50:
        src, dst, out = NICS["a"], NICS["b"], True
    elif who < 0.58:
        src, dst, out = NICS["b"], NICS["a"], True
    elif who < 0.68:
        src, dst, out = NICS["b2"], ROUTER, True
    elif who < 0.76:
        src, dst, out = ROUTER, NICS["b2"], False
    elif who < 0.82:
        src, dst, out = ROUTER, BCAST, False
    elif who < 0.92:
        src, dst, out = ROUTER, OTHER, None       # C's traffic, by address
    else:
        src, dst, out = OTHER, ROUTER, None
    fam = r.random()
    payload = bytes(r.randrange(256) for _ in range(r.choice([0, 1, 10, 46, 100, 400, 1200])))
    if out is None:
        # C by address: sent by C or to C
        c_out = r.random() < 0.5
        if fam < 0.5:
            a, b = v4(C_V4), v4(r.choice(V4_POOL))
            l3, et = ip4(a if c_out else b, b if c_out else a, payload, r), 0x0800
        else:
            a, b = v6(C_V6), v6(r.choice(V6_POOL))
            nh, rest = ext_chain(r, payload)
            l3, et = ip6(a if c_out else b, b if c_out else a, nh, rest), 0x86dd
    else:
        kind = r.random()
        if kind < 0.40:
            loc, rem = v4(r.choice(LOCAL_V4)), v4(r.choice(V4_POOL))
            s, d = (loc, rem) if out else (rem, loc)
            f = r.random()
            frag = 0x2000 if f < 0.1 else (0x2000 | r.randrange(1, 200)) if f < 0.15 else \
                r.randrange(1, 200) if f < 0.2 else 0
            l3, et = ip4(s, d, payload, r, ihl=r.choice([5, 5, 5, 6, 8, 15]), frag=frag), 0x0800
        elif kind < 0.80:
            loc, rem = v6(r.choice(LOCAL_V6)), v6(r.choice(V6_POOL))
            s, d = (loc, rem) if out else (rem, loc)
            if r.random() < 0.1:   # a later fragment: data after the fragment header
                nh, rest = 44, bytes([253, 0]) + struct.pack(">HI", 8 * r.randrange(1, 100), 7) + payload
            else:
                nh, rest = ext_chain(r, payload)
            l3, et = ip6(s, d, nh, rest), 0x86dd
        elif kind < 0.90:
            op = r.choice([1, 2])
            l3, et = struct.pack(">HHBBH", 1, 0x0800, 6, 4, op) + mac(src) + v4("192.0.2.10") + \
                bytes(6) + v4("192.0.2.1"), 0x0806
        else:
            l3, et = payload + bytes(8), r.choice([0x88b5, 0x88b6])
    tags = b""
    t = r.random()
    if t < 0.2:
        tags = struct.pack(">HH", 0x8100, r.randrange(4096))
    elif t < 0.3:
        tags = struct.pack(">HHHH", 0x88a8, r.randrange(4096), 0x8100, r.randrange(4096))
    elif t < 0.35:
        tags = struct.pack(">HHHH", 0x9100, r.randrange(4096), 0x8100, r.randrange(4096))
    data = mac(dst) + mac(src) + tags + struct.pack(">H", et) + l3
    if len(data) < 60:
        data += bytes(60 - len(data))
    return data


def malformed(r):
    """a frame of each malformed shape, from or to A"""
    src, dst = (NICS["a"], ROUTER) if r.random() < 0.5 else (ROUTER, NICS["a"])
    e = mac(dst) + mac(src)
    p = bytes(r.randrange(256) for _ in range(r.choice([0, 20, 300])))
    a, b = v4("10.0.0.9"), v4("8.8.8.8")
    x, y = v6("fd00::9"), v6("2001:4860::1")
    k = r.randrange(10)
    if k == 0:
        return e[:r.choice([1, 8, 11])]                                  # runt, no MACs
    if k == 1:
        return e + struct.pack(">H", 0x8100) + b"\x00"                   # tag cut
    if k == 2:
        return e + struct.pack(">H", 0x0800) + b"\x45" + bytes(r.randrange(19))   # l3 cut
    if k == 3:
        return e + struct.pack(">H", 0x0800) + ip4(a, b, p, r, ver=6)   # version
    if k == 4:
        return e + struct.pack(">H", 0x0800) + ip4(a, b, p, r, ihl=r.randrange(5))  # ihl
    if k == 5:
        return e + struct.pack(">H", 0x0800) + ip4(a, b, p, r, tot=r.choice([10, 19, 1500]))
    if k == 6:
        return e + struct.pack(">H", 0x86dd) + ip6(x, y, 253, p, plen=len(p) + r.randrange(1, 100))
    if k == 7:
        return e + struct.pack(">H", 0x86dd) + ip6(x, y, 0, bytes([59, 4]) + padn(6))  # ext cut
    if k == 8:
        return e + struct.pack(">H", 0x86dd) + ip6(x, y, 253, p, ver=4)  # version
    return e + struct.pack(">HHHBBH", 0x0806, 1, 0x0800, 6, 4, 1) + bytes(r.randrange(19))  # arp cut


def write(path, frames, start_s, step_ns):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xa1b23c4d, 2, 4, 0, 0, 262144, 1))  # ns timestamps
        t = start_s * 10**9
        for data, wire in frames:
            f.write(struct.pack("<IIII", t // 10**9, t % 10**9, len(data), wire))
            f.write(data)
            t += step_ns


def mix(out, seed, n, start_s):
    r = random.Random(seed)
    frames = []
    for _ in range(n):
        if r.random() < 0.08:
            d = malformed(r)
            frames.append((d, len(d)))
            continue
        d = frame(r)
        wire = len(d)
        if r.random() < 0.1 and wire > 120:
            d = d[:r.choice([96, 120])]       # the capture's snap length cut it
        frames.append((d, wire))
    write(out, frames, start_s, 2500 * 10**6)


def bench(out, n, vms):
    """n 64-byte IPv4 frames: VM i (MAC 52:54:xx:xx:xx:xx from i) to the
    router and back, remote addresses spread over every class"""
    r = random.Random(1)
    frames = []
    for k in range(n):
        i = r.randrange(vms)
        m = bytes([0x52, 0x54, (i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255])
        rem = struct.pack(">I", r.randrange(1 << 32))
        loc = struct.pack(">I", 0xc0000000 | i)
        if k & 1:
            e = mac(ROUTER) + m + b"\x08\x00" + ip4(loc, rem, bytes(26), r)
        else:
            e = m + mac(ROUTER) + b"\x08\x00" + ip4(rem, loc, bytes(26), r)
        frames.append((e[:64], 64))
    write(out, frames, 1790000000, 1000)


if __name__ == "__main__":
    if sys.argv[1] == "mix":
        mix(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif sys.argv[1] == "bench":
        bench(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit("usage: pcapgen.py mix OUT SEED N START_S | bench OUT N VMS")
