#!/usr/bin/env python3
"""Reads N bytes from a chargen service (RFC 864), checks every one against the
pattern, sends a line of its own (the service discards it), and closes with the
stream still coming. Prints one JSON line; exits 1 on a wrong byte or a short read.

  chargenclient.py HOST PORT BYTES [--mptcp]
"""

import json
import socket
import sys
import time

IPPROTO_MPTCP = 262
LINE, PRINTABLE = 72, 95


def period():
    out = bytearray()
    for line in range(PRINTABLE):
        out += bytes(32 + (line + i) % PRINTABLE for i in range(LINE)) + b"\r\n"
    return bytes(out)


def main():
    host, port, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    mptcp = "--mptcp" in sys.argv[4:]
    pat = period()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP if mptcp else 0)
    sock.settimeout(60)
    t0 = time.monotonic()
    sock.connect((host, port))
    sock.sendall(b"discard me\r\n" * 100)
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    got = 0
    while got < total:
        k = sock.recv_into(view[: min(len(buf), total - got)])
        if k == 0:
            sys.exit(f"chargenclient: the stream ended after {got} bytes")
        # The pattern from offset `got` on, long enough for these k bytes.
        off = got % len(pat)
        want = (pat[off:] + pat * (k // len(pat) + 1))[:k]
        if view[:k] != want:
            bad = next(i for i in range(k) if buf[i] != want[i])
            sys.exit(f"chargenclient: byte {got + bad} is {buf[bad]}, expected {want[bad]}")
        got += k
    secs = time.monotonic() - t0
    sock.close()
    print(json.dumps({"ok": True, "bytes": got, "seconds": round(secs, 3)}), flush=True)


if __name__ == "__main__":
    main()
