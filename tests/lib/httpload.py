#!/usr/bin/env python3
"""httpload.py: hostile HTTP clients for tests/integration/http_hostile.sh.

Test code, not part of tally. Each subcommand plays one kind of client
against a listener on 127.0.0.1 and prints one line of key=value figures,
so the shell test can check them with plain tools. Source addresses can be
spread over 127.0.0.0/8 (a client socket bound to 127.a.b.c before it
connects): on Linux every address of that network is this host.

  slow      N connections that send a request head one byte every E seconds
            and never finish it (slowloris); holds them S seconds (with
            --reopen R, opening a new one for each the server closes, at most
            R a second), and reports how long the server let each live
  scrape    K scrapes of a path, E seconds apart, each with a deadline; how
            many were answered (any HTTP status) and how many 200
  bigquery  one GET with many query parameters; its status and how long the
            answer took (the deadline is the failure)
  request   one GET with a head of the given size (URL or header), or with
            query parameters after a space in the target; its status
  flood     N connections opened as fast as possible from many addresses,
            sending nothing; how many connected, how many the server closed
  authguess N requests with wrong bearer tokens, one per source address; how
            many were refused as 401 and how many limited as 429
  tcpstates the number of TCP sockets on a local port in each state
            (/proc/net/tcp), e.g. to count CLOSE-WAIT
"""
import argparse
import selectors
import socket
import sys
import time


def src_addr(i, spread):
    """The i-th source address: 127.0.0.1 alone, or one of 127.1.0.0/16."""
    if not spread:
        return "127.0.0.1"
    i += 1  # never 127.1.0.0
    return "127.1.%d.%d" % ((i >> 8) & 255, i & 255)


def connect(port, src, blocking=False, timeout=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((src, 0))
    if blocking:
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
    else:
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
    return s


def http_get(port, path, src="127.0.0.1", headers=(), timeout=5.0, head=None):
    """One GET; returns (status or None, seconds taken, error text)."""
    t0 = time.monotonic()
    try:
        s = connect(port, src, blocking=True, timeout=timeout)
    except OSError as e:
        return None, time.monotonic() - t0, "connect: %s" % e
    try:
        if head is None:
            head = "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sConnection: close\r\n\r\n" % (
                path, "".join("%s\r\n" % h for h in headers))
        s.sendall(head.encode())
        data = b""
        while b"\r\n" not in data:
            left = timeout - (time.monotonic() - t0)
            if left <= 0:
                return None, time.monotonic() - t0, "no answer in %.1f s" % timeout
            s.settimeout(left)
            chunk = s.recv(4096)
            if not chunk:
                return None, time.monotonic() - t0, "closed without an answer"
            data += chunk
        line = data.split(b"\r\n", 1)[0].decode(errors="replace")
        parts = line.split()
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            return None, time.monotonic() - t0, "bad status line %r" % line
        return int(parts[1]), time.monotonic() - t0, ""
    except (OSError, socket.timeout) as e:
        return None, time.monotonic() - t0, str(e) or type(e).__name__
    finally:
        s.close()


def cmd_slow(a):
    sel = selectors.DefaultSelector()
    conns = {}  # socket -> [opened at, next byte at, bytes sent]
    lifetimes = []
    refused = 0
    opened = 0
    head = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100000
    t_end = time.monotonic() + a.hold

    def open_one(i):
        nonlocal opened, refused
        try:
            s = connect(a.port, src_addr(i, a.spread))
        except OSError:
            refused += 1
            return
        now = time.monotonic()
        conns[s] = [now, now, 0]
        sel.register(s, selectors.EVENT_READ)
        opened += 1

    for i in range(a.n):
        open_one(i)
    k = a.n
    to_open = 0
    opened_at = time.monotonic()
    while True:
        now = time.monotonic()
        if now >= t_end:
            break
        for key, _ in sel.select(timeout=0.05):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:  # the server closed it (or answered and closed)
                st = conns.pop(s)
                lifetimes.append(time.monotonic() - st[0])
                sel.unregister(s)
                s.close()
                if a.reopen:
                    to_open += 1
        now = time.monotonic()
        # reopen what the server closed, at most reopen per second
        while to_open and opened_at + 1.0 / a.reopen <= now:
            open_one(k)
            k += 1
            to_open -= 1
            opened_at = max(opened_at + 1.0 / a.reopen, now - 1)
        for s, st in list(conns.items()):
            if now >= st[1] and st[2] < len(head):
                # the request line at once, then the head one byte at a time
                n = len(b"GET /metrics HTTP/1.1\r\n") if st[2] == 0 else 1
                try:
                    s.send(head[st[2]:st[2] + n])
                    st[2] += n
                except BlockingIOError:
                    pass
                except OSError:
                    pass
                st[1] = now + a.every
    still = len(conns)
    for s in conns:
        s.close()
    lifetimes.sort()
    med = lifetimes[len(lifetimes) // 2] if lifetimes else 0
    print("slow opened=%d connect_failed=%d closed_by_server=%d still_open=%d "
          "median_life_s=%.1f max_life_s=%.1f" % (opened, refused, len(lifetimes), still, med,
                                                  lifetimes[-1] if lifetimes else 0))


def cmd_scrape(a):
    ok = answered = 0
    worst = 0.0
    errs = []
    for i in range(a.count):
        hdr = ("Authorization: Bearer %s" % a.token,) if a.token else ()
        st, took, err = http_get(a.port, a.path, src=a.src, headers=hdr, timeout=a.timeout)
        worst = max(worst, took)
        if st is not None:
            answered += 1
            ok += st == 200
        else:
            errs.append(err)
        if i + 1 < a.count:
            time.sleep(a.every)
    print("scrape count=%d answered=%d ok=%d worst_s=%.2f%s" % (
        a.count, answered, ok, worst, (" first_error=%r" % errs[0]) if errs else ""))


def cmd_bigquery(a):
    q = "&".join("p%d=%d" % (i, i) for i in range(a.params))
    st, took, err = http_get(a.port, "%s?%s" % (a.path, q), timeout=a.timeout)
    print("bigquery params=%d url_bytes=%d status=%s seconds=%.2f%s" % (
        a.params, len(a.path) + 1 + len(q), st if st is not None else "none", took,
        (" error=%r" % err) if err else ""))


def cmd_request(a):
    if a.spaced_args:
        # a space inside the target: libmicrohttpd takes the target to the
        # last space of the line, so all of these are its parameters
        head = "GET /metrics? %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % (
            "&".join("a" for _ in range(a.spaced_args)))
    elif a.url_bytes:
        path = "/metrics?x=" + "a" * max(0, a.url_bytes - len("/metrics?x="))
        head = "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path
    else:
        head = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        head += "".join("X-H%d: %s\r\n" % (i, "b" * 60) for i in range(a.headers))
        head += "Connection: close\r\n\r\n"
    st, took, err = http_get(a.port, None, timeout=a.timeout, head=head)
    print("request head_bytes=%d status=%s seconds=%.2f%s" % (
        len(head), st if st is not None else "none", took, (" error=%r" % err) if err else ""))


def cmd_flood(a):
    socks = []
    failed = 0
    for i in range(a.n):
        try:
            socks.append(connect(a.port, src_addr(i, True), blocking=True, timeout=2))
        except OSError:
            failed += 1
    time.sleep(a.hold)
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    print("flood connected=%d connect_failed=%d closed_by_server=%d" % (len(socks), failed, closed))


def cmd_authguess(a):
    counts = {}
    for i in range(a.n):
        hdr = ("Authorization: Bearer guess-%08d-0123456789abcdef" % i,)
        src = a.src or src_addr(i + a.offset, a.spread)
        st, _, _ = http_get(a.port, "/metrics", src=src, headers=hdr, timeout=a.timeout)
        counts[st] = counts.get(st, 0) + 1
    print("authguess n=%d status_401=%d status_429=%d other=%d" % (
        a.n, counts.get(401, 0), counts.get(429, 0),
        a.n - counts.get(401, 0) - counts.get(429, 0)))


STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
          "05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
          "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}


def cmd_tcpstates(a):
    counts = {}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            port = int(fields[1].split(":")[1], 16)
            if port == a.port:
                st = STATES.get(fields[3], fields[3])
                counts[st] = counts.get(st, 0) + 1
    print("tcpstates " + " ".join("%s=%d" % (k, counts.get(k, 0))
                                  for k in ("LISTEN", "ESTABLISHED", "CLOSE_WAIT", "SYN_RECV")))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("slow")
    s.add_argument("--n", type=int, default=300)
    s.add_argument("--hold", type=float, default=20)
    s.add_argument("--every", type=float, default=3)
    s.add_argument("--spread", action="store_true", help="one source address per connection")
    s.add_argument("--reopen", type=float, default=0,
                   help="open a new one when one is closed, at most this many per second")
    s = sub.add_parser("scrape")
    s.add_argument("--count", type=int, default=10)
    s.add_argument("--every", type=float, default=1)
    s.add_argument("--timeout", type=float, default=5)
    s.add_argument("--path", default="/metrics")
    s.add_argument("--token", default="")
    s.add_argument("--src", default="127.0.0.1")
    s = sub.add_parser("bigquery")
    s.add_argument("--params", type=int, default=400)
    s.add_argument("--path", default="/metrics")
    s.add_argument("--timeout", type=float, default=10)
    s = sub.add_parser("request")
    s.add_argument("--url-bytes", type=int, default=0)
    s.add_argument("--spaced-args", type=int, default=0)
    s.add_argument("--headers", type=int, default=0)
    s.add_argument("--timeout", type=float, default=10)
    s = sub.add_parser("flood")
    s.add_argument("--n", type=int, default=500)
    s.add_argument("--hold", type=float, default=5)
    s = sub.add_parser("authguess")
    s.add_argument("--n", type=int, default=200)
    s.add_argument("--offset", type=int, default=1000)
    s.add_argument("--spread", action="store_true")
    s.add_argument("--src", default="", help="one source address for all")
    s.add_argument("--timeout", type=float, default=5)
    s = sub.add_parser("tcpstates")
    for q in sub.choices.values():
        q.add_argument("--port", type=int, required=True)
    a = p.parse_args()
    globals()["cmd_" + a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
