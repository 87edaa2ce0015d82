#!/usr/bin/env bash
# SIGTERM in the middle of a transfer: mptun exits with status 0 within 5 s and its
# TUN device is gone from HOST.
. "$(dirname "$0")/lib.sh"
topology_up
mptun_start --sink 9
bg_run "$PEER" python3 "$NETNS_DIR/tcpclient.py" 10.10.1.2 9 --mode sink --bytes $((4 << 30)) --timeout 120 --idle-timeout 30
client=$BG_PID
sleep 2
kill -0 "$client" 2>/dev/null || fail "the transfer was over (or failed) before the SIGTERM"
pid=$MPTUN_PID
t0=$(date +%s.%N)
rc=0
mptun_stop 5 || rc=$?
secs=$(awk -v s="$t0" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - s }')
[ "$rc" -eq 137 ] && fail "mptun (pid $pid) still running 5 s after SIGTERM"
[ "$rc" -eq 0 ] || fail "mptun exited with status $rc after SIGTERM (want 0)"
log "mptun exited 0 ${secs}s after SIGTERM"
if ip -n "$HOST" link show "$TUN" >/dev/null 2>&1; then
    fail "TUN $TUN still exists in HOST after mptun exited"
fi
