#!/usr/bin/env bash
# The stack answers ICMP and ICMPv6 echo requests.
. "$(dirname "$0")/lib.sh"
topology_up
mptun_start --echo 7
peer_exec ping -c 3 -i 0.2 -W 2 10.10.1.2 >"$DIR/ping4.txt" 2>&1 || fail "ping 10.10.1.2: $(cat "$DIR/ping4.txt")"
log "$(tail -n 2 "$DIR/ping4.txt" | head -n 1)"
peer_exec ping -6 -c 3 -i 0.2 -W 2 fd10:1::2 >"$DIR/ping6.txt" 2>&1 || fail "ping -6 fd10:1::2: $(cat "$DIR/ping6.txt")"
log "$(tail -n 2 "$DIR/ping6.txt" | head -n 1)"
