#!/usr/bin/env bash
# 200 concurrent connections to the echo service, each echoing its own 64 KiB exactly.
. "$(dirname "$0")/lib.sh"
topology_up
mptun_start --echo 7
out=$(tcpclient_peer 10.10.1.2 7 --connections 200 --bytes $((64 << 10)) --timeout 180) ||
    fail "200 concurrent echo connections: $out"
log "$out"
