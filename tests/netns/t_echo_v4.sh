#!/usr/bin/env bash
# A Linux TCP client in PEER sends 64 MiB to mptun's echo service on 10.10.1.2:7
# and gets exactly the same bytes back (length and SHA-256).
. "$(dirname "$0")/lib.sh"
topology_up
mptun_start --echo 7
out=$(tcpclient_peer 10.10.1.2 7 --bytes $((64 << 20))) || fail "IPv4 echo of 64 MiB: $out"
log "$out"
