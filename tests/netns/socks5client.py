#!/usr/bin/env python3
"""A SOCKS5 client for the tests (RFC 1928, RFC 1929), written from the RFC so
that it checks mptun's server independently: it connects to PROXY (over MPTCP
with --mptcp), authenticates (--user/--password), asks for CONNECT to TARGET
(an address, or a host name sent as such), then sends --bytes of a seeded
stream and expects them echoed back exactly. Prints one JSON line:
{"reply": REP or null, "method": chosen method, "auth": status or null,
"echoed": bytes, "ok": true when the echo matched}. Exit 0 when the exchange
ran (whatever the reply), 1 on a protocol or echo failure."""
import argparse
import hashlib
import ipaddress
import json
import socket
import struct
import sys

IPPROTO_MPTCP = 262


def stream(n, seed):
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{i}".encode()).digest()
        i += 1
    return bytes(out[:n])


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError(f"connection closed after {len(b)} of {n} bytes")
        b += c
    return b


def main():
    p = argparse.ArgumentParser()
    p.add_argument("proxy")
    p.add_argument("port", type=int)
    p.add_argument("target")
    p.add_argument("target_port", type=int)
    p.add_argument("--mptcp", action="store_true")
    p.add_argument("--source", help="bind to this address first")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--bytes", type=int, default=65536)
    p.add_argument("--timeout", type=float, default=60)
    a = p.parse_args()
    fam = socket.AF_INET6 if ":" in a.proxy else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM, IPPROTO_MPTCP if a.mptcp else 0)
    s.settimeout(a.timeout)
    if a.source:
        s.bind((a.source, 0))
    s.connect((a.proxy, a.port))
    out = {"reply": None, "method": None, "auth": None, "echoed": 0, "ok": False}
    method = 2 if a.user else 0
    s.sendall(bytes([5, 1, method]))
    ver, chosen = recv_exact(s, 2)
    out["method"] = chosen
    if chosen != method:
        print(json.dumps(out))
        return 0
    if a.user:
        u, pw = a.user.encode(), a.password.encode()
        s.sendall(bytes([1, len(u)]) + u + bytes([len(pw)]) + pw)
        _, status = recv_exact(s, 2)
        out["auth"] = status
        if status != 0:
            print(json.dumps(out))
            return 0
    try:
        ip = ipaddress.ip_address(a.target)
        addr = (b"\x01" if ip.version == 4 else b"\x04") + ip.packed
    except ValueError:
        t = a.target.encode()
        addr = b"\x03" + bytes([len(t)]) + t
    s.sendall(b"\x05\x01\x00" + addr + struct.pack(">H", a.target_port))
    ver, rep, _, atyp = recv_exact(s, 4)
    if ver != 5:
        raise SystemExit(f"reply version {ver}")
    recv_exact(s, {1: 4, 4: 16}.get(atyp) or recv_exact(s, 1)[0])
    recv_exact(s, 2)
    out["reply"] = rep
    if rep == 0 and a.bytes:
        data = stream(a.bytes, a.target)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = bytearray()
        while True:
            c = s.recv(1 << 16)
            if not c:
                break
            got += c
        out["echoed"] = len(got)
        out["ok"] = bytes(got) == data
        if not out["ok"]:
            print(json.dumps(out))
            return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
