"""Raw IPv4/TCP packets for the attack tests (synflood.py, ooo_flood.py,
join_flood.py): build segments with valid checksums, send them through a raw
socket (IPPROTO_RAW: the IPv4 header is ours, so any source address), and read
and parse the TCP segments the attacker's namespace receives (a raw IPPROTO_TCP
socket gets a copy of each).

Standard library only (like blind_inject.py): nothing to install on a fresh CI
machine, every byte spelled out.

The attacker's own kernel would answer a SYN/ACK to a connection it never opened
with a RST; the tests drop those in the attacker's namespace with nftables
(`meta mark != RAW_MARK tcp flags rst drop`), and RawSender marks its own packets
with RAW_MARK (SO_MARK) so that the RSTs the scripts mean to send pass.
"""

import errno
import os
import socket
import struct
import time

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
TCPOPT_MPTCP = 30
# SO_MARK of the attack scripts' own packets (see the module docstring).
RAW_MARK = 0x4154


def checksum(data):
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip4(addr):
    return socket.inet_aton(addr)


def opt_mss(mss=1460):
    return struct.pack("!BBH", 2, 4, mss)


def opt_wscale(shift):
    return bytes([1, 3, 3, shift])  # NOP, WS


def opt_sack_perm():
    return bytes([1, 1, 4, 2])  # NOP NOP SACK_PERM


def opt_timestamps(tsval, tsecr):
    return b"\x01\x01" + struct.pack("!BBII", 8, 10, tsval & 0xFFFFFFFF, tsecr & 0xFFFFFFFF)


def opt_mp_capable_syn_v1(checksum_required=False):
    """MP_CAPABLE v1 in a SYN (RFC 8684 §3.1): kind 30, length 4, subtype 0 /
    version 1, flags A (checksum) and H (HMAC-SHA256)."""
    return bytes([TCPOPT_MPTCP, 4, 0x01, (0x80 if checksum_required else 0) | 0x01])


def opt_mp_join_syn(token, nonce, addr_id=0, backup=False):
    """MP_JOIN in a SYN (RFC 8684 §3.2): kind 30, length 12, subtype 1 | B,
    address id, the receiver's token, our random nonce."""
    return bytes([TCPOPT_MPTCP, 12, 0x10 | int(backup), addr_id]) + struct.pack("!II", token, nonce)


def pad4(opts):
    return opts + b"\x01" * (-len(opts) % 4)


def segment(src, dst, sport, dport, seq, ack, flags, window, opts=b"", payload=b"", ipid=0):
    """A whole IPv4 packet carrying one TCP segment, both checksums valid (the
    kernel would fill in the IP one and the total length anyway)."""
    opts = pad4(opts)
    doff = (20 + len(opts)) // 4
    s, d = ip4(src), ip4(dst)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      doff << 4, flags, window, 0, 0) + opts + payload
    pseudo = s + d + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
    c = checksum(pseudo + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ipid, 0x4000, 64,
                      socket.IPPROTO_TCP, 0, s, d)
    iph = iph[:10] + struct.pack("!H", checksum(iph)) + iph[12:]
    return iph + tcp


def parse_options(raw):
    """TCP options as a list of (kind, bytes of the option body)."""
    out = []
    i = 0
    while i < len(raw):
        k = raw[i]
        if k == 0:
            break
        if k == 1:
            i += 1
            continue
        if i + 1 >= len(raw):
            break
        ln = raw[i + 1]
        if ln < 2 or i + ln > len(raw):
            break
        out.append((k, raw[i + 2:i + ln]))
        i += ln
    return out


class Seg:
    """A received TCP segment (IPv4)."""
    __slots__ = ("src", "dst", "sport", "dport", "seq", "ack", "flags", "window", "opts", "payload")

    def opt(self, kind):
        for k, v in self.opts:
            if k == kind:
                return v
        return None

    def wscale(self):
        v = self.opt(3)
        return v[0] if v else None

    def sack_blocks(self):
        v = self.opt(5)
        if not v:
            return []
        return [struct.unpack("!II", v[i:i + 8]) for i in range(0, len(v) - 7, 8)]

    def mptcp_subtypes(self):
        return [v[0] >> 4 for k, v in self.opts if k == TCPOPT_MPTCP and v]


def parse(pkt):
    if len(pkt) < 40 or pkt[0] >> 4 != 4 or pkt[9] != socket.IPPROTO_TCP:
        return None
    ihl = (pkt[0] & 0x0F) * 4
    tot = struct.unpack("!H", pkt[2:4])[0]
    tcp = pkt[ihl:tot]
    if len(tcp) < 20:
        return None
    s = Seg()
    s.src = socket.inet_ntoa(pkt[12:16])
    s.dst = socket.inet_ntoa(pkt[16:20])
    s.sport, s.dport, s.seq, s.ack, off, s.flags, s.window = struct.unpack("!HHIIBBH", tcp[:16])
    doff = (off >> 4) * 4
    s.opts = parse_options(tcp[20:doff])
    s.payload = tcp[doff:]
    return s


class RawSender:
    """socket(AF_INET, SOCK_RAW, IPPROTO_RAW): sends whole IPv4 packets. ENOBUFS
    (a full queue at full speed) is waited out and counted."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, RAW_MARK)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.enobufs = 0

    def send(self, pkt, dst):
        while True:
            try:
                self.sock.sendto(pkt, (dst, 0))
                return
            except OSError as e:
                if e.errno != errno.ENOBUFS:
                    raise
                self.enobufs += 1
                time.sleep(0.0005)


class RawReceiver:
    """A raw IPPROTO_TCP socket: a copy of every TCP segment for this namespace's
    own addresses (those the tests make local, e.g. with `ip route add local`)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
        self.sock.setblocking(False)

    def fileno(self):
        return self.sock.fileno()

    def drain(self, limit=100000):
        """Every segment waiting now (up to limit), parsed."""
        out = []
        for _ in range(limit):
            try:
                pkt = self.sock.recv(65535)
            except BlockingIOError:
                break
            s = parse(pkt)
            if s is not None:
                out.append(s)
        return out

    def wait(self, timeout):
        """Segments arriving within timeout seconds (returns at the first batch)."""
        import select
        r, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        return self.drain() if r else []


def rss_kib(pid):
    """VmRSS and VmHWM of process pid in KiB (None, None if gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            d = dict(line.split(":", 1) for line in f if ":" in line)
        return int(d["VmRSS"].split()[0]), int(d["VmHWM"].split()[0])
    except (OSError, KeyError, ValueError):
        return None, None


def rand32():
    return int.from_bytes(os.urandom(4), "big")
