#!/usr/bin/env python3
"""A Linux echo server (MPTCP with --mptcp) that reports Linux's view of each
connection, for the path-manager interop tests (mptun as the client).

Listens on ADDR PORT; every connection gets back every byte it sends, and the
server closes after the client's half-close. When a connection ends, one JSON line
is appended to --log: `peer`, `bytes` (echoed), `sha256` (of the bytes echoed),
and for an IPPROTO_MPTCP socket Linux's MPTCP_INFO (getsockopt SOL_MPTCP
MPTCP_INFO): `mptcp_info` (null when the kernel gives none: a plain TCP socket),
`fallback` (flag bit 0 in any sample), `max_subflows` (additional subflows) and
`max_subflows_total` (kernel >= 6.7), the largest counts seen while the
connection ran (sampled every 0.1 s and at the end). Runs until killed; writes
"ready" to --ready-file once listening.
"""
import argparse
import hashlib
import ipaddress
import json
import socket
import struct
import sys
import threading
import time

IPPROTO_MPTCP = 262
SOL_MPTCP = 284
MPTCP_INFO = 1

lock = threading.Lock()


def mptcp_info(sock):
    try:
        raw = sock.getsockopt(SOL_MPTCP, MPTCP_INFO, 256)
    except OSError:
        return None
    if len(raw) < 16:
        return None
    flags, token = struct.unpack_from("=II", raw, 8)
    return {"subflows": raw[0], "flags": flags, "fallback": bool(flags & 1),
            "remote_key_received": bool(flags & 2), "token": f"{token:08x}",
            "subflows_total": raw[80] if len(raw) >= 81 else None}


def serve(conn, peer, log_path):
    h = hashlib.sha256()
    n = 0
    infos = []
    last = 0.0
    try:
        with conn:
            while True:
                now = time.monotonic()
                if now - last >= 0.1:
                    infos.append(mptcp_info(conn))
                    last = now
                data = conn.recv(256 * 1024)
                if not data:
                    break
                conn.sendall(data)
                h.update(data)
                n += len(data)
            infos.append(mptcp_info(conn))
            conn.shutdown(socket.SHUT_WR)
    except OSError as e:
        print(f"mpserver: {e}", file=sys.stderr)
    seen = [i for i in infos if i is not None]
    out = {
        "peer": f"{peer[0]}:{peer[1]}",
        "bytes": n,
        "sha256": h.hexdigest(),
        "mptcp_info": seen[-1] if seen else None,
        "fallback": any(i["fallback"] for i in seen) if seen else None,
        "max_subflows": max((i["subflows"] for i in seen), default=None),
        "max_subflows_total": max((i["subflows_total"] or 0 for i in seen), default=None),
    }
    with lock, open(log_path, "a") as f:
        f.write(json.dumps(out) + "\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("--mptcp", action="store_true")
    p.add_argument("--log", required=True)
    p.add_argument("--ready-file")
    a = p.parse_args()
    fam = socket.AF_INET6 if ipaddress.ip_address(a.addr).version == 6 else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM, IPPROTO_MPTCP if a.mptcp else 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.addr, a.port))
    s.listen(64)
    if a.ready_file:
        with open(a.ready_file, "w") as f:
            f.write("ready\n")
    while True:
        conn, peer = s.accept()
        threading.Thread(target=serve, args=(conn, peer, a.log), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
