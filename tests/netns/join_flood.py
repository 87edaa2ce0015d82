#!/usr/bin/env python3
"""MP_JOIN flood with a stolen token, for t_join_flood.sh. Runs in the
attacker's namespace.

    join_flood.py DST DPORT --src ADDR --token HEX [--count N] [--rate PPS]
                  [--first-port P] [--max-seconds S] [--started FILE] [--half FILE]

Sends --count (20000) SYNs carrying MP_JOIN (RFC 8684 §3.2: the receiver's token
--token, a random nonce, address id 1..7, B=0; with MSS, SACK_PERM and window
scale) from ADDR, each from its own port (--first-port upward), to DST:DPORT, at
most --rate (4000) per second, at most --max-seconds (30). The attacker knows the
token (stolen) but not the keys, so it cannot complete a join: every SYN/ACK
(MP_JOIN with mptun's HMAC) it gets is answered with a RST, every RST is counted
(with MP_TCPRST or without), and then the next attempt: open, get SYN/ACK or
RST, reset. Replies are read while sending and for a second after.
--started FILE is created after the first 100 SYNs, --half FILE after half of them.

Prints one JSON line: sent, seconds, synacks (joins mptun took), rst_mptcprst
(RST with MP_TCPRST, the refusal), rst_plain, mp_tcprst_reasons, replies,
no_reply (mptun's RST rate limit keeps some refusals silent), enobufs.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawtcp  # noqa: E402
from rawtcp import ACK, RST, SYN  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dst")
    p.add_argument("dport", type=int)
    p.add_argument("--src", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--count", type=int, default=20000)
    p.add_argument("--rate", type=float, default=4000)
    p.add_argument("--first-port", type=int, default=20000)
    p.add_argument("--max-seconds", type=float, default=30.0)
    p.add_argument("--started")
    p.add_argument("--half", help="created once half of --count are sent")
    a = p.parse_args()
    if a.first_port + a.count > 65536:
        p.error("--first-port + --count must stay below 65536 (one port per attempt)")
    token = int(a.token, 16)

    tx = rawtcp.RawSender()
    rx = rawtcp.RawReceiver()
    iss = {}
    answered = set()
    st = {"synacks": 0, "rst_mptcprst": 0, "rst_plain": 0, "other": 0}
    reasons = {}

    def handle(segs):
        for s in segs:
            if s.src != a.dst or s.sport != a.dport or s.dport not in iss:
                continue
            answered.add(s.dport)
            if s.flags & RST:
                sub = [v for k, v in s.opts if k == rawtcp.TCPOPT_MPTCP and v and v[0] >> 4 == 8]
                if sub:
                    st["rst_mptcprst"] += 1
                    r = sub[0][1] if len(sub[0]) > 1 else None
                    reasons[str(r)] = reasons.get(str(r), 0) + 1
                else:
                    st["rst_plain"] += 1
            elif s.flags & (SYN | ACK) == SYN | ACK:
                st["synacks"] += 1
                # Cannot complete the join (no keys): reset it.
                tx.send(rawtcp.segment(a.src, a.dst, s.dport, a.dport, iss[s.dport] + 1, 0, RST, 0), a.dst)
            else:
                st["other"] += 1

    opts_common = rawtcp.opt_mss(1460) + rawtcp.opt_sack_perm() + rawtcp.opt_wscale(7)
    t0 = time.monotonic()
    deadline = t0 + a.max_seconds
    sent = 0
    for i in range(a.count):
        now = time.monotonic()
        if now > deadline:
            break
        due = t0 + i / a.rate
        if due > now:
            time.sleep(due - now)
        port = a.first_port + i
        isn = rawtcp.rand32()
        iss[port] = isn
        opts = opts_common + rawtcp.opt_mp_join_syn(token, rawtcp.rand32(), addr_id=1 + i % 7)
        tx.send(rawtcp.segment(a.src, a.dst, port, a.dport, isn, 0, SYN, 64240, opts), a.dst)
        sent += 1
        if sent == 100 and a.started:
            open(a.started, "w").close()
        if sent == a.count // 2 and a.half:
            open(a.half, "w").close()
        if sent % 64 == 0:
            handle(rx.drain())
    secs = time.monotonic() - t0
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        handle(rx.wait(end - time.monotonic()))
    if a.started and not os.path.exists(a.started):
        open(a.started, "w").close()
    print(json.dumps({"sent": sent, "seconds": round(secs, 3), **st, "mp_tcprst_reasons": reasons,
                      "replies": len(answered), "no_reply": sent - len(answered), "enobufs": tx.enobufs}),
          flush=True)


if __name__ == "__main__":
    sys.exit(main())
