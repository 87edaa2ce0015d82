#!/usr/bin/env bash
# temporary experiment: callgrind of the daemon's sink, one transfer
. "$(dirname "$0")/lib.sh"
topology_up
peer_exec sysctl -qw net.mptcp.enabled=1
mptun_start --threads 1 --sink 9
extra=()
[ "${EXP_MPTCP:-0}" = 1 ] && extra=(--mptcp)
out=$(tcpclient_peer 10.10.1.2 9 --mode sink --bytes $((64 << 20)) "${extra[@]}" --timeout 300) || fail "$out"
log "$out"
mptun_stop 60
