#!/usr/bin/env bash
# A connection to a port without a listener is refused (RST): ECONNREFUSED in PEER,
# over IPv4 and IPv6.
. "$(dirname "$0")/lib.sh"
topology_up
mptun_start --echo 7
out=$(tcpclient_peer 10.10.1.2 12345 --expect-refused --timeout 10) || fail "10.10.1.2:12345: $out"
log "IPv4: $out"
out=$(tcpclient_peer fd10:1::2 12345 --expect-refused --timeout 10) || fail "[fd10:1::2]:12345: $out"
log "IPv6: $out"
