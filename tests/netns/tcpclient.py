#!/usr/bin/env python3
"""TCP/MPTCP test client for the network-namespace interop tests.

Connects to HOST PORT (AF_INET or AF_INET6 chosen from the address; MPTCP with
IPPROTO_MPTCP=262 when --mptcp is given), sends --bytes bytes of a seeded
pseudo-random stream and checks what comes back:

  echo  send the stream while concurrently reading back what the echo server
        returns; after the last byte, half-close (SHUT_WR) and read until the
        server closes. The bytes read back must be exactly the bytes sent
        (length and SHA-256).
  sink  send the stream, half-close, wait for the server's close; the server
        must send nothing.

--connections N runs N connections at once (one selector loop, non-blocking
sockets), each with its own stream (seed SEED:i), all verified.

--expect-refused: the connect must fail with ECONNREFUSED (exit 0 if it does).

--mark BYTES:FILE (repeatable) creates FILE once connection 0 has BYTES bytes
echoed back (sink mode: sent), so that a test can act in the middle of a transfer
(take a path down, read counters). --pause BYTES:FILE makes connection 0 stop
sending once it has sent BYTES, until FILE exists (it keeps reading), so that a
test can look at a connection that is surely still open (repeatable: one pause
after the other).

With --mptcp the JSON has Linux's MPTCP_INFO of connection 0: `mptcp_info` when the
first bytes came back, `mptcp_info_end` the last sample before the peer closed
(samples are taken every 0.1 s and when the last byte has been written),
`mptcp_info_written` the sample taken when the last byte had been written (before
our half-close: the connection is surely still whole; the end sample may catch a
subflow already closing with the connection), and
`mptcp_max_subflows` / `mptcp_max_subflows_total`, the largest subflow counts
seen while the transfer ran. In echo mode, `max_rx_gap_s` is connection 0's
longest wait between two reads that returned data (a stall, e.g. a failover).

Prints one JSON line on stdout: bytes, seconds, mbit_s, sha256 (of the stream of
connection 0), and per-connection details with --verbose. Exit status 0 when every
connection verified, 1 otherwise (the reason goes to stderr and into the JSON).
"""

import argparse
import errno
import hashlib
import ipaddress
import json
import math
import os
import random
import selectors
import socket
import struct
import sys
import time

IPPROTO_MPTCP = 262
SOL_MPTCP = 284
MPTCP_INFO = 1


def mptcp_info(sock):
    """struct mptcp_info (include/uapi/linux/mptcp.h): `subflows` counts the
    additional subflows (joins), `subflows_total` (kernel >= 6.8; null before) all
    of them, the initial one included; flags bit 0 = fell back to TCP, bit 1 =
    remote key received; None for a non-MPTCP socket."""
    try:
        raw = sock.getsockopt(SOL_MPTCP, MPTCP_INFO, 256)
    except OSError:
        return None
    if len(raw) < 16:
        return None
    flags, token = struct.unpack_from("=II", raw, 8)
    info = {"subflows": raw[0], "flags": flags, "fallback": bool(flags & 1),
            "remote_key_received": bool(flags & 2), "token": f"{token:08x}",
            "subflows_total": None}
    if len(raw) >= 80:
        info["csum_enabled"] = bool(raw[42])
        (info["retransmits"],) = struct.unpack_from("=I", raw, 44)
        (info["bytes_retrans"], info["bytes_sent"], info["bytes_received"],
         info["bytes_acked"]) = struct.unpack_from("=QQQQ", raw, 48)
    if len(raw) >= 81:
        info["subflows_total"] = raw[80]
    return info


CHUNK = 64 * 1024
RECV = 256 * 1024


def stream_chunks(seed, total):
    """The seeded stream, in CHUNK-sized pieces (the same for a given seed)."""
    rng = random.Random(seed)
    left = total
    while left > 0:
        n = min(CHUNK, left)
        yield rng.randbytes(n)
        left -= n


def stream_sha256(seed, total):
    h = hashlib.sha256()
    for c in stream_chunks(seed, total):
        h.update(c)
    return h.hexdigest()


def family_of(host):
    return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET


def new_socket(host, mptcp):
    proto = IPPROTO_MPTCP if mptcp else 0
    return socket.socket(family_of(host), socket.SOCK_STREAM, proto)


class Conn:
    def __init__(self, idx, args):
        self.idx = idx
        self.mode = args.mode
        self.total = args.bytes
        self.seed = f"{args.seed}:{idx}"
        self.chunks = stream_chunks(self.seed, self.total)
        self.pending = b""
        self.sent = 0
        self.recvd = 0
        self.sent_hash = hashlib.sha256()
        self.recv_hash = hashlib.sha256()
        self.connected = False
        self.wr_closed = False
        self.eof = False
        self.error = None
        self.done = False
        self.t_start = None
        self.t_end = None
        self.last_rx = None
        self.max_rx_gap = 0.0
        self.mptcp = None
        self.mptcp_end = None
        self.mptcp_written = None
        self.max_subflows = None
        self.max_subflows_total = None
        self.marks = sorted(args.mark) if idx == 0 else []
        # --pause points still ahead, in order; self.pause is the next one (or None).
        self.pauses = sorted(args.pause) if idx == 0 else []
        self.pause = self.pauses.pop(0) if self.pauses else None
        # --rate: bytes a second at most, in bursts of 16 KiB or 20 ms of the
        # rate, one burst per turn of the loop (which reads in between and
        # sleeps 5 ms while the next burst is not yet due).
        self.rate = args.rate / 8 if args.rate else None
        self.burst = max(16384, self.rate / 50) if self.rate else None
        self.hold_close = args.no_half_close and args.mode == "echo"
        self.all_sent = False
        self.sock = new_socket(args.host, args.mptcp)
        self.sock.setblocking(False)
        if args.bind:
            self.sock.bind((args.bind, 0))
        err = self.sock.connect_ex((args.host, args.port))
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, os.strerror(err))

    def paused(self):
        """--pause: BYTES sent and the go file not there yet."""
        while self.pause is not None and self.sent >= self.pause[0]:
            if not os.path.exists(self.pause[1]):
                return True
            self.pause = self.pauses.pop(0) if self.pauses else None
        return False

    def allowance(self):
        """--rate: the bytes the pace lets out now (None: no pace). A client
        that fell behind (this process or the machine stalled) does not catch
        up: its debt is forgiven and it may send one burst at most, so the
        stream stays a steady --rate, as a paced source would be."""
        if self.rate is None or self.t_start is None:
            return None
        now = time.monotonic()
        ahead = self.sent - self.rate * (now - self.t_start)
        if ahead < -self.burst:
            # More than a burst behind: a stall, not the loop's 5 ms
            # granularity (which is kept, or the pace would run slow).
            self.t_start = now - self.sent / self.rate
            ahead = 0
        return int(min(self.burst, self.burst - ahead))

    def throttled(self):
        """--rate: the next burst (or what is left, if less) is not due yet.
        Sending whatever the pace allowed at each turn wrote ~100-byte
        chunks in a loop that never returned to read the echo."""
        allowance = self.allowance()
        return allowance is not None and allowance < min(self.burst, self.total - self.sent)

    def events(self):
        ev = 0
        sending = not self.wr_closed and not self.all_sent
        if not self.connected or (sending and not self.paused() and not self.throttled()):
            ev |= selectors.EVENT_WRITE
        if self.connected and not self.eof:
            ev |= selectors.EVENT_READ
        return ev

    def on_writable(self):
        if not self.connected:
            err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, os.strerror(err))
            self.connected = True
            self.t_start = time.monotonic()
        while not self.wr_closed and not self.paused() and not self.throttled():
            if not self.pending:
                self.pending = next(self.chunks, b"")
                if not self.pending:
                    if self.hold_close and self.recvd < self.total:
                        # --no-half-close: the echo comes back first.
                        self.all_sent = True
                        return
                    self.sample()
                    self.mptcp_written = self.mptcp_end
                    self.sock.shutdown(socket.SHUT_WR)
                    self.wr_closed = True
                    break
                self.sent_hash.update(self.pending)
            try:
                allowance = self.allowance()
                n = self.sock.send(self.pending if allowance is None else self.pending[:allowance])
            except (BlockingIOError, InterruptedError):
                return
            self.sent += n
            self.pending = self.pending[n:]
            if self.mode == "sink":
                self.check_marks(self.sent)
            if allowance is not None:
                return  # one burst a turn: the loop reads before the next

    def check_marks(self, done):
        while self.marks and done >= self.marks[0][0]:
            _, path = self.marks.pop(0)
            with open(path, "w") as f:
                f.write(f"{done}\n")

    def sample(self):
        """Linux's MPTCP_INFO now: the latest copy and the largest subflow counts."""
        if not args_mptcp(self) or self.sock.fileno() < 0:
            return
        info = mptcp_info(self.sock)
        if info is None:
            return
        if not self.eof:
            self.mptcp_end = info
        for key, attr in (("subflows", "max_subflows"), ("subflows_total", "max_subflows_total")):
            if info.get(key) is not None:
                setattr(self, attr, max(getattr(self, attr) or 0, info[key]))

    def on_readable(self):
        while True:
            try:
                data = self.sock.recv(RECV)
            except (BlockingIOError, InterruptedError):
                return
            if not data:
                self.eof = True
                self.t_end = time.monotonic()
                self.sample()
                return
            if self.mode == "sink":
                raise RuntimeError(f"sink sent {len(data)} bytes back")
            if self.mptcp is None and args_mptcp(self):
                self.mptcp = mptcp_info(self.sock)
            now = time.monotonic()
            if self.last_rx is not None:
                self.max_rx_gap = max(self.max_rx_gap, now - self.last_rx)
            self.last_rx = now
            self.recvd += len(data)
            self.check_marks(self.recvd)
            if self.recvd > self.total:
                raise RuntimeError(f"echo returned more than was sent ({self.recvd} > {self.total})")
            self.recv_hash.update(data)
            if self.hold_close and self.recvd == self.total and not self.wr_closed:
                self.all_sent = False
                self.on_writable()

    def finish(self):
        """Checks the result once the server closed; sets self.error on mismatch."""
        self.done = True
        if self.error:
            return
        if self.sent != self.total:
            self.error = f"sent {self.sent} of {self.total} bytes before the server closed"
        elif self.mode == "echo":
            if self.recvd != self.total:
                self.error = f"echo returned {self.recvd} bytes, sent {self.total}"
            elif self.recv_hash.hexdigest() != self.sent_hash.hexdigest():
                self.error = "echoed bytes differ from sent bytes (SHA-256 mismatch)"


def args_mptcp(conn):
    return conn.sock.proto == IPPROTO_MPTCP


def run_transfers(args):
    sel = selectors.DefaultSelector()
    conns = []
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    for i in range(args.connections):
        c = Conn(i, args)
        conns.append(c)
        sel.register(c.sock, c.events(), c)
    active = len(conns)
    last_progress = time.monotonic()
    next_sample = 0.0
    while active:
        now = time.monotonic()
        if now >= next_sample:
            next_sample = now + 0.1
            for c in conns:
                if c.connected and not c.done:
                    c.sample()
        if now > deadline:
            for c in conns:
                if not c.done:
                    c.error = c.error or (
                        f"timeout after {args.timeout}s (sent {c.sent}, received {c.recvd}, "
                        f"connected={c.connected}, wr_closed={c.wr_closed})")
                    c.done = True
            break
        if now - last_progress > args.idle_timeout:
            for c in conns:
                if not c.done:
                    c.error = c.error or (
                        f"no progress for {args.idle_timeout}s (sent {c.sent}, received {c.recvd}, "
                        f"connected={c.connected}, wr_closed={c.wr_closed})")
                    c.done = True
            break
        waiting = False
        for c in conns:
            if not c.done and c.pause is not None and c.sent >= c.pause[0]:
                # events() asks paused(), which lifts the pause once the go file exists.
                sel.modify(c.sock, c.events(), c)
                waiting |= c.pause is not None and c.sent >= c.pause[0]
            if not c.done and c.rate is not None and not c.wr_closed:
                # Paced: look again in 5 ms whether or not the next burst is
                # due yet; asking throttled() apart from events() left a
                # burst that fell due in between waiting out the 0.5 s.
                sel.modify(c.sock, c.events(), c)
                waiting = True
        if waiting:
            # Waiting for the test, not stalled: look for the go file often.
            last_progress = time.monotonic()
        for key, mask in sel.select(timeout=0.005 if waiting else 0.5):
            c = key.data
            last_progress = time.monotonic()
            try:
                if mask & selectors.EVENT_WRITE:
                    c.on_writable()
                if mask & selectors.EVENT_READ:
                    c.on_readable()
            except (OSError, RuntimeError) as e:
                c.error = f"{type(e).__name__}: {e}"
                c.eof = True
            if c.eof:
                sel.unregister(c.sock)
                c.finish()
                c.sock.close()
                active -= 1
            else:
                sel.modify(c.sock, c.events(), c)
    for c in conns:
        if c.sock.fileno() >= 0:
            c.sock.close()
    return conns, time.monotonic() - t0


def expect_refused(args):
    s = new_socket(args.host, args.mptcp)
    s.settimeout(args.timeout)
    try:
        s.connect((args.host, args.port))
    except ConnectionRefusedError as e:
        print(json.dumps({"refused": True, "errno": e.errno}))
        return 0
    except OSError as e:
        print(json.dumps({"refused": False, "errno": e.errno, "error": str(e)}))
        print(f"tcpclient: expected ECONNREFUSED, got {e!r}", file=sys.stderr)
        return 1
    print(json.dumps({"refused": False, "error": "connected"}))
    print("tcpclient: expected ECONNREFUSED, but the connection was accepted", file=sys.stderr)
    return 1


def parse_mark(text):
    n, sep, path = text.partition(":")
    if not sep or not path:
        raise argparse.ArgumentTypeError(f"--mark wants BYTES:FILE, not {text!r}")
    return int(n), path


def positive(s):
    """argparse type: a finite number above zero (a rate of 0 or less would
    never send, an infinite one makes no bursts)."""
    v = float(s)
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"{s} is not a finite number above zero")
    return v


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--mode", choices=["echo", "sink"], default="echo")
    p.add_argument("--bytes", type=int, default=1 << 20, help="bytes per connection")
    p.add_argument("--connections", type=int, default=1)
    p.add_argument("--seed", default="1", help="stream seed (connection i uses SEED:i)")
    p.add_argument("--mptcp", action="store_true", help="IPPROTO_MPTCP socket")
    p.add_argument("--bind", help="local address to bind")
    p.add_argument("--timeout", type=float, default=300.0, help="overall deadline, seconds")
    p.add_argument("--idle-timeout", type=float, default=60.0, help="fail after this long without progress")
    p.add_argument("--expect-refused", action="store_true")
    p.add_argument("--rate", type=positive, help="send at most this many bits a second")
    p.add_argument("--no-half-close", action="store_true",
                   help="echo: shut the sending side only once everything came back (for relays that "
                        "close both ways at the first end of stream)")
    p.add_argument("--pause", action="append", default=[], type=parse_mark, metavar="BYTES:FILE",
                   help="connection 0 stops sending after BYTES until FILE exists (reading goes on; repeatable)")
    p.add_argument("--mark", action="append", default=[], type=parse_mark, metavar="BYTES:FILE",
                   help="create FILE once connection 0 has BYTES echoed back (sink: sent)")
    p.add_argument("--print-sha256", action="store_true",
                   help="only print the SHA-256 of the stream of connection 0 and exit")
    p.add_argument("--verbose", action="store_true", help="per-connection details in the JSON")
    args = p.parse_args()

    if args.print_sha256:
        print(stream_sha256(f"{args.seed}:0", args.bytes))
        return 0
    if args.expect_refused:
        return expect_refused(args)

    try:
        conns, secs = run_transfers(args)
    except OSError as e:
        print(json.dumps({"ok": False, "error": f"connect: {e}"}))
        print(f"tcpclient: connect to {args.host}:{args.port}: {e}", file=sys.stderr)
        return 1
    failed = [c for c in conns if c.error]
    moved = sum(c.sent for c in conns)
    out = {
        "ok": not failed,
        "mode": args.mode,
        "connections": len(conns),
        "bytes": moved,
        "seconds": round(secs, 3),
        "mbit_s": round(moved * 8 / secs / 1e6, 2) if secs > 0 else None,
        "sha256": conns[0].sent_hash.hexdigest() if conns else None,
        "failed": len(failed),
    }
    if args.mode == "echo" and conns:
        out["max_rx_gap_s"] = round(conns[0].max_rx_gap, 3)
    if args.mptcp and conns:
        out["mptcp_info"] = conns[0].mptcp
        out["mptcp_info_end"] = conns[0].mptcp_end
        out["mptcp_info_written"] = conns[0].mptcp_written
        out["mptcp_max_subflows"] = conns[0].max_subflows
        out["mptcp_max_subflows_total"] = conns[0].max_subflows_total
    if failed:
        out["errors"] = [f"conn {c.idx}: {c.error}" for c in failed[:10]]
    if args.verbose:
        out["per_connection"] = [
            {"idx": c.idx, "sent": c.sent, "received": c.recvd,
             "sha256": c.sent_hash.hexdigest(), "error": c.error} for c in conns]
    print(json.dumps(out), flush=True)
    for e in out.get("errors", []):
        print(f"tcpclient: {e}", file=sys.stderr)
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
