#!/usr/bin/env bash
# systemd's notification protocol (Type=notify) without systemd: a Python
# listener stands in for the notify socket.
# 1. NOTIFY_SOCKET a path, WATCHDOG_USEC=1s: READY=1 (MAINPID = mptun's pid,
#    STATUS naming the address) arrives when the control socket and the echo
#    service already answer (checked the moment it arrives); WATCHDOG=1 every
#    0.5 s; SIGHUP (no --config: nothing to reload) sends RELOADING=1 with
#    MONOTONIC_USEC (CLOCK_MONOTONIC, between the listener's start and the
#    datagram's arrival) and then READY=1 again, and status records the
#    reload as failed; SIGTERM sends STOPPING=1, after which no ping comes,
#    and mptun exits 0.
# 2. NOTIFY_SOCKET an abstract name (@..., in mptun's network namespace) and
#    WATCHDOG_PID naming another process: READY=1 and STOPPING=1, no pings.
. "$(dirname "$0")/lib.sh"
topology_up

LOG1="$DIR/notify1.log"
SOCK1="$DIR/notify.sock"
on_ready="'$MPTUN' status --control '$CTL' --json >/dev/null && ip netns exec '$PEER' python3 '$NETNS_DIR/tcpclient.py' 10.10.1.2 7 --bytes 100000 >/dev/null"
bg_run "$HOST" python3 "$NETNS_DIR/notify_listener.py" "$SOCK1" "$LOG1" --on-ready "$on_ready"
wait_file 5 "$LOG1.bound" || fail "notify listener did not start"

NOTIFY_SOCKET=$SOCK1 WATCHDOG_USEC=1000000 mptun_start --echo 7
wait_until 10 grep -q '^ON_READY' "$LOG1" || fail "no READY=1: $(cat "$LOG1")"
grep -q '^ON_READY rc=0$' "$LOG1" || fail "at READY=1 the control socket or echo service did not answer: $(cat "$LOG1")"
ready=$(grep ' READY=1' "$LOG1" | head -1)
[[ $ready == *"|MAINPID=$MPTUN_PID|"* ]] || fail "READY=1 without MAINPID=$MPTUN_PID: $ready"
[[ $ready == *"|STATUS=serving 10.10.1.2,"*" on $TUN "* ]] || fail "READY=1 without the STATUS line: $ready"
log "ready: $ready"

sleep 2.6
pings=$(grep -c ' WATCHDOG=1$' "$LOG1" || true)
[ "$pings" -ge 4 ] || fail "$pings WATCHDOG=1 in 2.6 s at WATCHDOG_USEC=1s (expected one per 0.5 s): $(cat "$LOG1")"
log "$pings watchdog pings"

# A reload: RELOADING=1 (MONOTONIC_USEC on the same clock as the listener's),
# then READY=1 again.
kill -HUP "$MPTUN_PID"
wait_until 10 grep -q ' RELOADING=1|' "$LOG1" || fail "no RELOADING=1 on SIGHUP: $(cat "$LOG1")"
reloading=$(grep ' RELOADING=1|' "$LOG1" | head -1)
usec=$(sed -n 's/.*|MONOTONIC_USEC=\([0-9]*\)|.*/\1/p' <<<"$reloading")
[ -n "$usec" ] || fail "RELOADING=1 without MONOTONIC_USEC: $reloading"
t0=$(cat "$LOG1.bound")
rel_ms=$(awk '{printf "%d", $1 * 1000}' <<<"$reloading")
# Sent after the listener bound and before it logged the datagram (its log
# keeps milliseconds: one more for the rounding).
[ "$usec" -ge "$t0" ] && [ "$usec" -le $((t0 + (rel_ms + 1) * 1000)) ] ||
    fail "MONOTONIC_USEC=$usec is not CLOCK_MONOTONIC between $t0 and $t0 + ${rel_ms} ms"
ready_again() { sed -n '/ RELOADING=1|/,$p' "$LOG1" | grep -q ' READY=1|'; }
wait_until 10 ready_again ||
    fail "no READY=1 after RELOADING=1: $(cat "$LOG1")"
st=$(mptun_status_json)
[ "$(json_eval "$st" 'd["reload"]["ok"]')" = false ] || fail "status after a reload without --config: $st"
json_eval "$st" '"without --config" in d["reload"]["error"] or None' >/dev/null || fail "status does not say why: $st"
kill -0 "$MPTUN_PID" || fail "mptun died on SIGHUP"
log "reload: $reloading"

rc=0
mptun_stop || rc=$?
[ "$rc" = 0 ] || fail "mptun exited $rc after SIGTERM"
sleep 0.3
grep -q ' STOPPING=1|STATUS=' "$LOG1" || fail "no STOPPING=1 on SIGTERM: $(cat "$LOG1")"
after=$(sed -n '/ STOPPING=1/,$p' "$LOG1" | grep -c 'WATCHDOG=1' || true)
[ "$after" = 0 ] || fail "WATCHDOG=1 after STOPPING=1: $(cat "$LOG1")"

# 2: abstract socket, the watchdog meant for another process (WATCHDOG_PID).
LOG2="$DIR/notify2.log"
NAME="@mptun-test-$PFX"
bg_run "$HOST" python3 "$NETNS_DIR/notify_listener.py" "$NAME" "$LOG2"
wait_file 5 "$LOG2.bound" || fail "notify listener (abstract) did not start"
NOTIFY_SOCKET=$NAME WATCHDOG_USEC=400000 WATCHDOG_PID=1 mptun_start --echo 7
wait_until 10 grep -q ' READY=1' "$LOG2" || fail "no READY=1 on an abstract socket: $(cat "$LOG2")"
sleep 1
rc=0
mptun_stop || rc=$?
[ "$rc" = 0 ] || fail "mptun exited $rc after SIGTERM"
wait_until 3 grep -q ' STOPPING=1' "$LOG2" || fail "no STOPPING=1 on an abstract socket: $(cat "$LOG2")"
if grep -q 'WATCHDOG=1' "$LOG2"; then
    fail "WATCHDOG=1 sent though WATCHDOG_PID names another process: $(cat "$LOG2")"
fi
log "abstract socket: $(tr '\n' ' ' <"$LOG2")"
