#!/usr/bin/env bash
# --local-forward 127.0.0.1:6000=10.1.0.1:5000: a client in HOST connects to the OS
# listener, mptun opens its own TCP connection (active open) to a Linux echo server in
# PEER, and 8 MiB come back exactly.
. "$(dirname "$0")/lib.sh"
topology_up
echo_server "$PEER" 10.1.0.1 5000
mptun_start --local-forward 127.0.0.1:6000=10.1.0.1:5000
out=$(tcpclient_host 127.0.0.1 6000 --bytes $((8 << 20))) || fail "echo of 8 MiB through --local-forward: $out"
log "$out"
