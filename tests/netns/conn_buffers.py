#!/usr/bin/env python3
"""One line from `mptun status --json` (stdin): where the connections' memory
is. Means per connection of the buffers' queued/capacity (KiB) and heap, and
the subflows' median round trip and mean congestion window."""
import json
import sys

d = json.load(sys.stdin)
cs = d["connections"]
if cs:
    def mean(k):
        return sum(c["buffers"][k] for c in cs) // len(cs) >> 10

    sf = [s for c in cs for s in c["subflows"]]
    rtt = sorted(s["rtt_us"] or 0 for s in sf)
    cwnd = sum(s["cwnd"] for s in sf) // len(sf) >> 10
    print(
        f"{len(cs)} conns, KiB each: send {mean('send_queued')}/{mean('send_capacity')}"
        f" recv {mean('recv_queued')}/{mean('recv_capacity')} heap {mean('memory')};"
        f" subflow rtt median {rtt[len(rtt) // 2] // 1000} ms, cwnd mean {cwnd} KiB"
    )
