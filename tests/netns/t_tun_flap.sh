#!/usr/bin/env bash
# The TUN device misbehaving under the daemon: its link goes down for 2 s in the
# middle of an echo (every write fails with EIO meanwhile) and comes back (the
# routes, which the kernel dropped with the link, are put back): mptun keeps
# running, logs the failing writes at WARN a few times (rate-limited, not once per
# packet) and their end, and the echo completes exactly. Then the device is
# deleted under it: mptun says the TUN device is gone and exits with status 1.
. "$(dirname "$0")/lib.sh"
topology_up
# 50 Mbit/s from Linux: the echo takes seconds, and data is in flight both ways
# when the link goes down (mptun's retransmissions then meet the dead link).
shape "$PEER" p1 50mbit
mptun_start --echo 7

mark="$DIR/half"
bg_run "$PEER" python3 "$NETNS_DIR/tcpclient.py" 10.10.1.2 7 --bytes $((16 << 20)) \
    --mark $((4 << 20)):"$mark" >"$DIR/client.json"
client=$BG_PID
wait_file 20 "$mark" "$client" || fail "the echo did not get going: $(cat "$DIR/client.json")"

host_exec ip link set "$TUN" down
sleep 2
kill -0 "$MPTUN_PID" 2>/dev/null || fail "mptun died while its link was down"
host_exec ip link set "$TUN" up
host_exec ip route replace 10.10.1.2/32 dev "$TUN"
host_exec ip -6 route replace fd10:1::2/128 dev "$TUN"

wait "$client" || fail "the echo across the link flap failed: $(cat "$DIR/client.json")"
log "echo across the flap: $(cat "$DIR/client.json")"
kill -0 "$MPTUN_PID" 2>/dev/null || fail "mptun died after the link flap"
warns=$(grep -c 'WARN.*TUN write failed' "$MPTUN_LOG" || true)
log "$warns WARN lines about failed writes; $(grep -m1 'TUN write failed' "$MPTUN_LOG" || true)"
[ "$warns" -ge 1 ] || fail "no WARN about the failing writes while the link was down"
[ "$warns" -le 6 ] || fail "$warns WARN lines in about 2 s: not rate-limited"
grep -q 'TUN write works again' "$MPTUN_LOG" || fail "no note that writes work again"
mptun_status_json >/dev/null || fail "status does not answer after the flap"

# The device deleted under the daemon: a clear message and exit status 1.
host_exec ip link delete "$TUN"
rc=0
wait_until 5 bash -c "! kill -0 $MPTUN_PID" || fail "mptun still runs 5 s after its TUN was deleted"
wait "$MPTUN_PID" || rc=$?
MPTUN_PID=""
[ "$rc" = 1 ] || fail "mptun exited with status $rc after its TUN was deleted, expected 1"
grep -q "mptun: TUN device $TUN is gone" "$MPTUN_LOG" ||
    fail "no clear message about the deleted TUN device"
log "exit 1: $(grep "mptun: TUN device" "$MPTUN_LOG")"
[ ! -e "$CTL" ] || fail "control socket $CTL left behind"
log "PASS"
