#!/usr/bin/env python3
"""An FTP-like control dialogue through an echo service, for the ALG tests.

A NAT router with the kernel's FTP helper (nf_conntrack_ftp + nf_nat_ftp) between
this client and an echo service rewrites the address in "PORT a,b,c,d,p1,p2"
commands to the NAT address and fixes the TCP checksum: a real middlebox changing
payload bytes, which only MPTCP's DSS checksum can see. The dialogue, each step
echoed back completely before the next starts:

  1. "USER mptun\\r\\n"                           must come back unchanged;
  2. --bulk bytes of text lines ("DATA ...")      must come back unchanged;
  3. --ports lines "PORT <--addr>,p1,p2\\r\\n"      each must come back either
     unchanged or with --addr replaced by --nat-addr (the ALG's rewrite), one at
     a time (the helper looks for commands at the start of a segment);
  4. --bulk bytes of text lines again             must come back unchanged;
  5. half-close, read until the server closes: nothing more may arrive (with
     --quit: "QUIT\r\n" comes back, then the server closes first, as an FTP
     server does; then this client closes).

So the echo carries exactly as many bytes as were sent, and every difference is
the ALG's rewrite. Prints one JSON line: ok, sent, received, port_lines,
rewritten (how many PORT lines came back rewritten), first_rewritten (index, or
null), errors; with --mptcp also Linux's MPTCP_INFO before the PORT lines
(mptcp_info_before) and after the second bulk (mptcp_info_after: null once the
socket fell back to TCP, as Linux then hands SOL_MPTCP options to the subflow).
Exit status 0 when everything above held (whether any line was rewritten is for
the caller to judge).
"""

import argparse
import ipaddress
import json
import selectors
import socket
import struct
import sys
import time

IPPROTO_MPTCP = 262
SOL_MPTCP = 284
MPTCP_INFO = 1
LINE = 64


def mptcp_info(sock):
    """Subflows and flags (bit 0 fell back to TCP, bit 1 remote key received)."""
    try:
        raw = sock.getsockopt(SOL_MPTCP, MPTCP_INFO, 256)
    except OSError:
        return None
    if len(raw) < 16:
        return None
    flags, = struct.unpack_from("=I", raw, 8)
    return {"subflows": raw[0], "flags": flags, "fallback": bool(flags & 1),
            "remote_key_received": bool(flags & 2)}


def text_block(tag, total):
    """`total` bytes of fixed-length text lines, none of them an FTP command."""
    out = bytearray()
    i = 0
    while len(out) < total:
        line = f"DATA {tag} {i:08d} ".encode()
        line += b"x" * (LINE - 2 - len(line)) + b"\r\n"
        out += line
        i += 1
    out = out[:total]
    if total:
        out[-2:] = b"\r\n"
    return bytes(out)


class Dialogue:
    def __init__(self, sock, timeout):
        self.sock = sock
        self.sel = selectors.DefaultSelector()
        self.sel.register(sock, selectors.EVENT_READ)
        self.deadline = time.monotonic() + timeout
        self.sent = 0
        self.received = 0
        self.pending = b""

    def exchange(self, data, until_newline=False):
        """Sends `data` while reading; returns what came back: len(data) bytes,
        or (until_newline) everything up to and including the first newline."""
        self.sock.setblocking(False)
        out = memoryview(data)
        got = bytearray(self.pending)
        self.pending = b""

        def done():
            if until_newline:
                return b"\n" in got
            return len(got) >= len(data)

        while out or not done():
            if time.monotonic() > self.deadline:
                raise TimeoutError(f"timeout (sent {self.sent}, received {self.received})")
            ev = selectors.EVENT_READ | (selectors.EVENT_WRITE if out else 0)
            self.sel.modify(self.sock, ev)
            for _, mask in self.sel.select(timeout=0.5):
                if mask & selectors.EVENT_WRITE and out:
                    try:
                        n = self.sock.send(out[:256 * 1024])
                    except BlockingIOError:
                        n = 0
                    out = out[n:]
                    self.sent += n
                if mask & selectors.EVENT_READ:
                    try:
                        d = self.sock.recv(256 * 1024)
                    except BlockingIOError:
                        continue
                    if not d:
                        raise ConnectionError(
                            f"server closed early (sent {self.sent}, received {self.received})")
                    self.received += len(d)
                    got += d
        if until_newline:
            i = got.index(b"\n") + 1
        else:
            i = len(data)
        self.pending = bytes(got[i:])
        return bytes(got[:i])

    def finish(self, half_close):
        """Half-close (or not: the server closes first) and read until the server
        closes; returns the extra bytes."""
        if half_close:
            self.sock.shutdown(socket.SHUT_WR)
        self.sock.setblocking(True)
        self.sock.settimeout(max(1.0, self.deadline - time.monotonic()))
        extra = bytearray(self.pending)
        while True:
            d = self.sock.recv(65536)
            if not d:
                return bytes(extra)
            self.received += len(d)
            extra += d


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--addr", required=True, help="IPv4 address written into the PORT commands")
    p.add_argument("--nat-addr", required=True, help="the address the ALG writes instead")
    p.add_argument("--mptcp", action="store_true", help="IPPROTO_MPTCP socket")
    p.add_argument("--bulk", type=int, default=1 << 20, help="bytes of text before and after the PORT lines")
    p.add_argument("--ports", type=int, default=20, help="PORT commands")
    p.add_argument("--quit", action="store_true",
                   help="end with QUIT: the server closes first (echoserver.py --quit)")
    p.add_argument("--timeout", type=float, default=120.0)
    a = p.parse_args()

    fam = socket.AF_INET6 if ipaddress.ip_address(a.host).version == 6 else socket.AF_INET
    sock = socket.socket(fam, socket.SOCK_STREAM, IPPROTO_MPTCP if a.mptcp else 0)
    dlg = None
    res = {"ok": False, "sent": 0, "received": 0, "port_lines": 0, "rewritten": 0,
           "first_rewritten": None, "errors": []}
    errors = res["errors"]
    orig = a.addr.replace(".", ",")
    nat = a.nat_addr.replace(".", ",")
    try:
        sock.settimeout(10)
        sock.connect((a.host, a.port))
        dlg = Dialogue(sock, a.timeout)

        def exact(what, data):
            back = dlg.exchange(data)
            if back != data:
                errors.append(f"{what}: {len(data)} bytes came back changed")

        exact("USER", b"USER mptun\r\n")
        exact("bulk before", text_block("before", a.bulk))
        if a.mptcp:
            res["mptcp_info_before"] = mptcp_info(sock)
        for i in range(a.ports):
            port = 20000 + i
            line = f"PORT {orig},{port >> 8},{port & 255}\r\n".encode()
            alg = f"PORT {nat},{port >> 8},{port & 255}\r\n".encode()
            back = dlg.exchange(line, until_newline=True)
            res["port_lines"] += 1
            if back == alg:
                res["rewritten"] += 1
                if res["first_rewritten"] is None:
                    res["first_rewritten"] = i
            elif back != line:
                errors.append(f"PORT line {i}: sent {line!r}, got back {back!r}")
        exact("bulk after", text_block("after", a.bulk))
        if a.mptcp:
            # A socket that fell back passes SOL_MPTCP to its TCP subflow: None.
            res["mptcp_info_after"] = mptcp_info(sock)
        if a.quit:
            exact("QUIT", b"QUIT\r\n")
        extra = dlg.finish(half_close=not a.quit)
        if extra:
            errors.append(f"{len(extra)} bytes more than were sent came back: {extra[:40]!r}")
        if dlg.sent != dlg.received:
            errors.append(f"sent {dlg.sent} bytes, {dlg.received} came back")
    except (OSError, TimeoutError, ConnectionError) as e:
        errors.append(f"{type(e).__name__}: {e}")
    finally:
        sock.close()
    if dlg is not None:
        res["sent"], res["received"] = dlg.sent, dlg.received
    res["ok"] = not errors
    print(json.dumps(res), flush=True)
    for e in errors:
        print(f"algclient: {e}", file=sys.stderr)
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
