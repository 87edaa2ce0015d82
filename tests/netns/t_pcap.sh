#!/usr/bin/env bash
# --pcap: after a small echo and a stop, tshark reads the capture, finds TCP packets
# and no malformed ones.
. "$(dirname "$0")/lib.sh"
topology_up
command -v tshark >/dev/null || fail "tshark missing: run tests/netns/install-deps.sh"
pcap="$DIR/cap.pcap"
mptun_start --echo 7 --pcap "$pcap"
out=$(tcpclient_peer 10.10.1.2 7 --bytes $((256 << 10))) || fail "echo: $out"
rc=0
mptun_stop 5 || rc=$?
[ "$rc" -eq 0 ] || log "note: mptun exited with status $rc"
[ -s "$pcap" ] || fail "no capture at $pcap"
tshark -r "$pcap" >"$DIR/all.txt" 2>"$DIR/tshark.err" || fail "tshark cannot read the capture: $(cat "$DIR/tshark.err")"
total=$(wc -l <"$DIR/all.txt")
tshark -r "$pcap" -Y tcp >"$DIR/tcp.txt" 2>/dev/null || fail "tshark -Y tcp failed"
tcp=$(wc -l <"$DIR/tcp.txt")
tshark -r "$pcap" -Y _ws.malformed >"$DIR/bad.txt" 2>/dev/null || fail "tshark -Y _ws.malformed failed"
log "capture: $total packets, $tcp TCP, $(wc -l <"$DIR/bad.txt") malformed"
[ "$total" -gt 0 ] || fail "the capture is empty"
[ "$tcp" -gt 0 ] || fail "no TCP packet in the capture: $(head -5 "$DIR/all.txt")"
[ ! -s "$DIR/bad.txt" ] || fail "malformed packets in the capture: $(head -10 "$DIR/bad.txt")"
