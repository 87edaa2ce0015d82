#!/usr/bin/env python3
"""Out-of-order data that never becomes in-order, for t_ooo_flood.sh. Runs in
the attacker's namespace.

    ooo_flood.py DST DPORT --src ADDR --first-port P --count N [--batch B]
                 [--seg-bytes S] [--no-ooo] [--ready FILE] [--hold FILE]
                 [--rss-pid PID --rss-cap-mib M] [--max-seconds T]

Opens --count connections to DST:DPORT from ADDR, ports --first-port upward, with
real handshakes made of raw segments (SYN with MSS, SACK_PERM and window scale;
no timestamps), --batch (50) at a time. Each connection then sends one byte in
order and reads the window from mptun's ACK of it (window field << the window
scale of its SYN/ACK): W, the receive window beyond the next expected byte
(rcv_nxt). Then --seg-bytes (10) bytes at four offsets from rcv_nxt inside the
window, far beyond the in-order point: W - S (the segment ends at the window's
right edge), W/2, W/4 and W/8, ACK set, checksums valid; the hole below is never
filled. mptun's duplicate ACKs carry SACK blocks: a connection counts as `held`
when every one of its four segments showed up as a SACK block (mptun keeps the
data). --no-ooo: the same without the four segments (the control group).

After all, prints one JSON line (opened, held, window, offsets, SACK and ACK
counts, seconds), creates --ready FILE and keeps the connections alive until
--hold FILE exists: it acknowledges whatever mptun sends (nothing is expected) so
that mptun has nothing to retransmit. It stops opening connections when
--rss-pid's VmRSS passes --rss-cap-mib (a safety stop: a stack that made every
few bytes cost MiBs must not take the machine down) and says so in the JSON
(`capped`). --reset: then reset every connection (RST, in window). Bounded: --count connections, --max-seconds (60) in all.

The attacker's kernel would reset these connections (it never opened them): the
test drops its RSTs with nftables (rawtcp.RAW_MARK passes ours).
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawtcp  # noqa: E402
from rawtcp import ACK, PSH, RST, SYN  # noqa: E402

OUR_WS = 7
OUR_WIN = 65535  # << OUR_WS: mptun may send as much as it likes


class C:
    __slots__ = ("sport", "iss", "irs", "their_nxt", "ws", "state", "window", "offsets",
                 "sacked", "t_syn", "tries", "acks")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dst")
    p.add_argument("dport", type=int)
    p.add_argument("--src", required=True)
    p.add_argument("--first-port", type=int, default=20000)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--seg-bytes", type=int, default=10)
    p.add_argument("--no-ooo", action="store_true")
    p.add_argument("--ready")
    p.add_argument("--hold")
    p.add_argument("--rss-pid", type=int)
    p.add_argument("--rss-cap-mib", type=int, default=4096)
    p.add_argument("--max-seconds", type=float, default=60.0)
    p.add_argument("--reset", action="store_true", help="reset every connection once released (--hold)")
    a = p.parse_args()

    tx = rawtcp.RawSender()
    rx = rawtcp.RawReceiver()
    conns = {}
    t0 = time.monotonic()
    deadline = t0 + a.max_seconds
    stats = {"synacks": 0, "rsts": 0, "dup_acks": 0, "sack_acks": 0, "acked_data": 0}
    capped = None
    errors = []

    def send(c, flags, seq, payload=b"", opts=b""):
        ack = c.their_nxt if flags & ACK else 0
        tx.send(rawtcp.segment(a.src, a.dst, c.sport, a.dport, seq, ack, flags, OUR_WIN, opts, payload), a.dst)

    def syn(c):
        c.t_syn = time.monotonic()
        c.tries += 1
        send(c, SYN, c.iss, opts=rawtcp.opt_mss(1460) + rawtcp.opt_sack_perm() + rawtcp.opt_wscale(OUR_WS))

    def on_segment(s):
        c = conns.get(s.dport)
        if c is None or s.src != a.dst or s.sport != a.dport:
            return
        if s.flags & RST:
            stats["rsts"] += 1
            if c.state != "reset":
                errors.append(f"port {c.sport}: RST in state {c.state}")
            c.state = "reset"
            return
        if c.state == "syn_sent":
            if s.flags & (SYN | ACK) == SYN | ACK and s.ack == (c.iss + 1) & 0xFFFFFFFF:
                stats["synacks"] += 1
                c.irs = s.seq
                c.their_nxt = (s.seq + 1) & 0xFFFFFFFF
                c.ws = s.wscale() or 0
                send(c, ACK, c.iss + 1)
                send(c, ACK | PSH, c.iss + 1, b"x")
                c.state = "probe"
            return
        if s.payload:
            # Nothing is expected from a sink; acknowledge whatever comes.
            end = (s.seq + len(s.payload)) & 0xFFFFFFFF
            if (end - c.their_nxt) & 0xFFFFFFFF < 0x80000000:
                c.their_nxt = end
            stats["acked_data"] += 1
            send(c, ACK, c.iss + 2)
        if c.state == "probe" and s.flags & ACK and s.ack == (c.iss + 2) & 0xFFFFFFFF:
            c.window = s.window << c.ws
            w, n = c.window, a.seg_bytes
            c.offsets = [w - n, w // 2, w // 4, w // 8]
            if a.no_ooo:
                c.state = "held"
                return
            for off in c.offsets:
                send(c, ACK | PSH, c.iss + 2 + off, os.urandom(n))
            c.state = "ooo"
            return
        if c.state in ("ooo", "held") and s.flags & ACK and not s.payload:
            stats["dup_acks"] += 1
            blocks = s.sack_blocks()
            if blocks:
                stats["sack_acks"] += 1
            base = (c.iss + 2) & 0xFFFFFFFF
            for left, _right in blocks:
                off = (left - base) & 0xFFFFFFFF
                if off in c.offsets:
                    c.sacked.add(off)
            if c.state == "ooo" and len(c.sacked) == len(c.offsets):
                c.state = "held"

    def pump(until_done, timeout):
        end = min(deadline, time.monotonic() + timeout)
        while time.monotonic() < end:
            for s in rx.wait(0.05):
                on_segment(s)
            now = time.monotonic()
            for c in until_done:
                if c.state == "syn_sent" and now - c.t_syn > 1.0 and c.tries < 4:
                    syn(c)
            if all(c.state in ("held", "reset") for c in until_done):
                return

    for start in range(0, a.count, a.batch):
        if time.monotonic() > deadline:
            errors.append("max-seconds reached while opening")
            break
        if a.rss_pid:
            rss, _ = rawtcp.rss_kib(a.rss_pid)
            if rss is None or rss > a.rss_cap_mib * 1024:
                capped = {"after": start, "rss_kib": rss}
                break
        batch = []
        for i in range(start, min(a.count, start + a.batch)):
            c = C()
            c.sport = a.first_port + i
            c.iss = rawtcp.rand32()
            c.irs = c.their_nxt = 0
            c.ws = 0
            c.state = "syn_sent"
            c.window = None
            c.offsets = []
            c.sacked = set()
            c.tries = 0
            c.acks = 0
            conns[c.sport] = c
            batch.append(c)
            syn(c)
        # SACKs may lag: a connection still "ooo" after this counts as not held.
        pump(batch, 5.0)

    pump(list(conns.values()), 0.5)
    states = {}
    for c in conns.values():
        states[c.state] = states.get(c.state, 0) + 1
    windows = sorted({c.window for c in conns.values() if c.window is not None})
    out = {
        "count": len(conns), "states": states,
        "opened": sum(1 for c in conns.values() if c.state in ("ooo", "held")),
        "held": states.get("held", 0),
        "windows": windows[:5] + (["..."] if len(windows) > 5 else []),
        "offsets_example": next((c.offsets for c in conns.values() if c.offsets), None),
        "ooo_bytes_per_conn": 0 if a.no_ooo else 4 * a.seg_bytes,
        "seconds": round(time.monotonic() - t0, 3), "capped": capped, "enobufs": tx.enobufs,
        "errors": errors[:5], **stats,
    }
    print(json.dumps(out), flush=True)
    if a.ready:
        open(a.ready, "w").close()
    # Hold: keep acknowledging until told to stop (bounded by max-seconds + 120).
    hold_end = time.monotonic() + a.max_seconds + 120
    while a.hold and not os.path.exists(a.hold) and time.monotonic() < hold_end:
        for s in rx.wait(0.1):
            on_segment(s)
    if a.reset:
        for c in conns.values():
            if c.state != "reset":
                send(c, RST | ACK, c.iss + 2)
        time.sleep(0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
