#!/usr/bin/env python3
"""Minimal TCP endpoints for scripts/bench.sh (throughput, not correctness).

  send HOST PORT --bytes N    connect, write N zero bytes, half-close, wait for EOF
  recv HOST PORT [--bytes N]  connect, read until EOF (fails unless N bytes came, if given);
                              with --then-close, read N bytes and close (a server
                              that never ends its stream, such as mptun's --chargen)
  serve-sink ADDR PORT        accept one connection at a time, read until EOF, close;
                              with --report, print one JSON line per connection
  serve-source ADDR PORT --bytes N
                              accept one connection at a time, write N bytes, close
  --mptcp                     an MPTCP socket (IPPROTO_MPTCP=262): servers listen
                              on one, clients connect with one

The client modes print one JSON line: bytes, seconds, mbit_s, cpu_s (this process's
user+system CPU during the transfer). Timing runs from just
before connect() to the EOF, so the handshake and the close are included. Payload is
zeros from one preallocated buffer: no pseudo-random data or hashing, so the Python
side costs as little CPU as possible (tests/netns/tcpclient.py is the verifying client).
"""

import argparse
import json
import resource
import socket
import sys
import time

BUF = 1 << 20
IPPROTO_MPTCP = 262


def cpu_now():
    """User + system CPU seconds of this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def report(nbytes, secs, cpu):
    out = {"bytes": nbytes, "seconds": round(secs, 4),
           "mbit_s": round(nbytes * 8 / secs / 1e6, 1) if secs > 0 else None,
           "cpu_s": round(cpu, 3)}
    print(json.dumps(out), flush=True)


def drain(sock, buf, limit=None):
    """Reads until EOF, or `limit` bytes if given; returns the byte count."""
    view = memoryview(buf)
    n = 0
    while limit is None or n < limit:
        want = len(buf) if limit is None else min(len(buf), limit - n)
        k = sock.recv_into(view[:want])
        if k == 0:
            break
        n += k
    return n


def send_all(sock, total):
    view = memoryview(bytes(BUF))
    left = total
    while left > 0:
        k = sock.send(view[:min(BUF, left)])
        left -= k


def client(args):
    buf = bytearray(BUF)
    c0 = cpu_now()
    t0 = time.monotonic()
    if args.mptcp:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
        sock.settimeout(args.timeout)
        sock.connect((args.host, args.port))
    else:
        sock = socket.create_connection((args.host, args.port), timeout=args.timeout)
    sock.settimeout(args.timeout)
    if args.cmd == "send":
        send_all(sock, args.bytes)
        sock.shutdown(socket.SHUT_WR)
        extra = drain(sock, buf)
        moved = args.bytes
        if extra:
            print(f"benchnet: server sent {extra} bytes", file=sys.stderr)
            return 1
    elif args.then_close:
        moved = drain(sock, buf, args.bytes)
    else:
        moved = drain(sock, buf)
    secs = time.monotonic() - t0
    sock.close()
    report(moved, secs, cpu_now() - c0)
    if args.bytes is not None and moved != args.bytes:
        print(f"benchnet: got {moved} bytes, expected {args.bytes}", file=sys.stderr)
        return 1
    return 0


def server(args):
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP if args.mptcp else 0)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((args.addr, args.port))
    lsock.listen(8)
    if args.ready_file:
        open(args.ready_file, "w").close()
    buf = bytearray(BUF)
    while True:
        conn, _ = lsock.accept()
        c0 = cpu_now()
        t0 = time.monotonic()
        with conn:
            if args.cmd == "serve-sink":
                n = drain(conn, buf)
            else:
                send_all(conn, args.bytes)
                n = args.bytes
                conn.shutdown(socket.SHUT_WR)
                drain(conn, buf)
        if args.report:
            report(n, time.monotonic() - t0, cpu_now() - c0)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("send", "recv"):
        c = sub.add_parser(name)
        c.add_argument("host")
        c.add_argument("port", type=int)
        c.add_argument("--bytes", type=int, required=(name == "send"))
        c.add_argument("--timeout", type=float, default=120.0)
        c.add_argument("--mptcp", action="store_true")
        if name == "recv":
            c.add_argument("--then-close", action="store_true")
    for name in ("serve-sink", "serve-source"):
        s = sub.add_parser(name)
        s.add_argument("addr")
        s.add_argument("port", type=int)
        s.add_argument("--bytes", type=int, required=(name == "serve-source"))
        s.add_argument("--report", action="store_true")
        s.add_argument("--mptcp", action="store_true")
        s.add_argument("--ready-file")
    args = p.parse_args()
    if args.cmd == "recv" and args.then_close and args.bytes is None:
        p.error("recv --then-close needs --bytes")
    if args.cmd in ("send", "recv"):
        return client(args)
    return server(args)


if __name__ == "__main__":
    sys.exit(main())
