#!/usr/bin/env python3
"""Many idle TCP connections at once, for t_idle_conns.sh.

Client:
    idleconns.py connect HOST PORT --count N [--inflight K] [--bind ADDR]
                 [--ready FILE] [--hold FILE] [--timeout S]

Opens --count connections to HOST PORT (an echo service), at most --inflight
(100) of them handshaking or waiting for their echo at a time (below mptun's
listener backlog of 128, so the figure is the accept rate, not SYN-cookie or
retransmission behaviour). Each sends 16 bytes of its own (its index) and reads
them back, then idles. When all are open it prints a JSON line (`phase: open`:
`seconds` from the first connect to the last echo, `rate` connections/s,
`handshake_seconds` to the last established handshake, `handshake_rate`),
creates --ready FILE and idles, watching every connection (a byte or a close
from the server now is an error), until --hold FILE exists. Then every
connection sends 16 more bytes and must get them back (the idle connections
still work), half-closes and must see the server's close; a JSON line `phase:
close` follows. Exit status 0 when every step succeeded for every connection.

Server (the Linux side of the comparison):
    idleconns.py serve ADDR PORT [--backlog B] [--ready FILE]

A single-threaded epoll echo server (one process, like mptun's event loop):
accepts, echoes, closes its side after the client's FIN.

Both raise RLIMIT_NOFILE for themselves.
"""

import argparse
import errno
import json
import resource
import selectors
import socket
import struct
import sys
import time

MAGIC = 0x6D7074756E494443  # "mptunIDC"


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, n)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))


def serve(a):
    raise_nofile(200000)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.addr, a.port))
    ls.listen(a.backlog)
    ls.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ, None)
    if a.ready:
        open(a.ready, "w").close()
    while True:
        for key, _ in sel.select():
            if key.data is None:
                while True:
                    try:
                        c, _ = ls.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError as e:
                        if e.errno in (errno.EMFILE, errno.ENFILE):
                            print(f"serve: accept: {e}", file=sys.stderr)
                            break
                        raise
                    c.setblocking(False)
                    sel.register(c, selectors.EVENT_READ, "c")
                continue
            c = key.fileobj
            try:
                data = c.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if data:
                try:
                    c.sendall(data)  # tiny: fits the send buffer
                except OSError:
                    pass
                continue
            sel.unregister(c)
            try:
                c.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            c.close()


class Conn:
    __slots__ = ("i", "sock", "state", "want", "got", "t_conn")


def payload(i, rnd):
    return struct.pack("!QII", MAGIC, i, rnd)


def connect_all(a):
    raise_nofile(a.count + 1024)
    sel = selectors.DefaultSelector()
    conns = []
    errors = []
    inflight = 0
    nxt = 0
    t0 = time.monotonic()
    deadline = t0 + a.timeout
    t_hs = t_echo = None
    n_hs = n_idle = 0

    def start(i):
        c = Conn()
        c.i = i
        c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.sock.setblocking(False)
        if a.bind:
            c.sock.bind((a.bind, 0))
        c.state = "connecting"
        c.want = payload(i, 0)
        c.got = b""
        err = c.sock.connect_ex((a.host, a.port))
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, f"connect {i}: {errno.errorcode.get(err, err)}")
        sel.register(c.sock, selectors.EVENT_WRITE, c)
        conns.append(c)

    def fail(c, why):
        errors.append(f"conn {c.i} ({c.state}): {why}")
        c.state = "failed"
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()

    # Phase 1: open them all, K at a time.
    while n_idle + len(errors) < a.count:
        while inflight < a.inflight and nxt < a.count:
            start(nxt)
            nxt += 1
            inflight += 1
        if time.monotonic() > deadline:
            errors.append(f"timeout opening: {n_idle} idle, {inflight} in flight")
            break
        for key, ev in sel.select(1.0):
            c = key.data
            if c.state == "connecting":
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    inflight -= 1
                    fail(c, f"connect: {errno.errorcode.get(err, err)}")
                    continue
                n_hs += 1
                t_hs = time.monotonic()
                c.sock.send(c.want)
                c.state = "echo"
                sel.modify(c.sock, selectors.EVENT_READ, c)
            elif c.state == "echo":
                try:
                    d = c.sock.recv(64)
                except OSError as e:
                    inflight -= 1
                    fail(c, f"recv: {e}")
                    continue
                if not d:
                    inflight -= 1
                    fail(c, "closed before its echo")
                    continue
                c.got += d
                if len(c.got) >= len(c.want):
                    inflight -= 1
                    if c.got != c.want:
                        fail(c, "echo differs")
                        continue
                    c.state = "idle"
                    n_idle += 1
                    t_echo = time.monotonic()
            elif c.state == "idle":
                fail(c, "data or close while idle")
                n_idle -= 1
    secs = (t_echo or time.monotonic()) - t0
    hs = (t_hs or time.monotonic()) - t0
    print(json.dumps({"phase": "open", "count": a.count, "idle": n_idle, "handshakes": n_hs,
                      "seconds": round(secs, 3), "rate": round(n_idle / secs) if secs else None,
                      "handshake_seconds": round(hs, 3), "handshake_rate": round(n_hs / hs) if hs else None,
                      "inflight": a.inflight, "errors": len(errors), "first_errors": errors[:5]}),
          flush=True)
    if errors:
        return 1
    if a.ready:
        open(a.ready, "w").close()

    # Phase 2: idle until told, watching for anything from the server.
    import os
    hold_deadline = time.monotonic() + a.timeout
    while a.hold and not os.path.exists(a.hold):
        if time.monotonic() > hold_deadline:
            errors.append("timeout waiting for the hold file")
            break
        for key, ev in sel.select(0.1):
            c = key.data
            n_idle -= 1
            fail(c, "data or close while idle")
    if errors:
        print(json.dumps({"phase": "idle", "errors": len(errors), "first_errors": errors[:5]}), flush=True)
        return 1

    # Phase 3: every connection still echoes, then closes cleanly.
    t1 = time.monotonic()
    deadline = t1 + a.timeout
    live = [c for c in conns if c.state == "idle"]
    for c in live:
        c.want = payload(c.i, 1)
        c.got = b""
        try:
            c.sock.send(c.want)
        except OSError as e:
            fail(c, f"send after idle: {e}")
            continue
        c.state = "echo2"
    pending = sum(1 for c in live if c.state == "echo2")
    closed = 0
    while pending and time.monotonic() < deadline:
        for key, ev in sel.select(1.0):
            c = key.data
            try:
                d = c.sock.recv(64)
            except OSError as e:
                pending -= 1
                fail(c, f"recv after idle: {e}")
                continue
            if c.state == "echo2":
                if not d:
                    pending -= 1
                    fail(c, "closed before its second echo")
                    continue
                c.got += d
                if len(c.got) >= len(c.want):
                    if c.got != c.want:
                        pending -= 1
                        fail(c, "second echo differs")
                        continue
                    c.state = "closing"
                    c.sock.shutdown(socket.SHUT_WR)
            elif c.state == "closing":
                pending -= 1
                if d:
                    fail(c, "data after its echo")
                    continue
                c.state = "done"
                closed += 1
                sel.unregister(c.sock)
                c.sock.close()
    if pending:
        errors.append(f"timeout: {pending} connections unfinished after the idle period")
    print(json.dumps({"phase": "close", "closed": closed, "seconds": round(time.monotonic() - t1, 3),
                      "errors": len(errors), "first_errors": errors[:5]}), flush=True)
    return 1 if errors or closed != a.count else 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("connect")
    c.add_argument("host")
    c.add_argument("port", type=int)
    c.add_argument("--count", type=int, default=10000)
    c.add_argument("--inflight", type=int, default=100)
    c.add_argument("--bind", help="local address (each round its own: Linux's connect() crawls through\n"
                   "ephemeral ports whose 4-tuple to the same server sits in TIME_WAIT)")
    c.add_argument("--ready")
    c.add_argument("--hold")
    c.add_argument("--timeout", type=float, default=90.0)
    s = sub.add_parser("serve")
    s.add_argument("addr")
    s.add_argument("port", type=int)
    s.add_argument("--backlog", type=int, default=4096)
    s.add_argument("--ready")
    a = p.parse_args()
    return serve(a) if a.cmd == "serve" else connect_all(a)


if __name__ == "__main__":
    sys.exit(main())
