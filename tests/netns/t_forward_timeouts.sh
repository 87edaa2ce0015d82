#!/usr/bin/env bash
# The relays' limits. --forward to a backend that never answers (PEER drops its
# SYNs): with --connect-timeout 2s the client, which mptun accepted, is reset
# within the timeout (not left hanging for the kernel's minutes of SYN retries).
# --idle-timeout 3s: a --forward connection to a Linux echo server is reset once
# nothing moved for 3 s, but lives on while a byte goes back and forth every
# second; the backend's side is reset too. The same for --local-forward (mptun's
# own stack connection to the echo server).
. "$(dirname "$0")/lib.sh"
topology_up
command -v nft >/dev/null || fail "nft missing: run tests/netns/install-deps.sh"
peer_exec nft -f - <<'EOF'
table inet blackhole {
    chain input {
        type filter hook input priority 0; policy accept;
        tcp dport 81 counter drop
    }
}
EOF
echo_server "$PEER" 10.1.0.1 5000 2>"$DIR/echoserver.err"
mptun_start --forward 8080=10.1.0.1:81 --forward 8081=10.1.0.1:5000 \
    --local-forward 127.0.0.1:6000=10.1.0.1:5000 --connect-timeout 2s --idle-timeout 3s

# client NS HOST PORT KEEPALIVE_S: connects, sends "hello" (and expects it back
# unless the backend is dead), then a byte every second for KEEPALIVE_S seconds
# (each must come back), then waits for the relay to end the connection; prints
# JSON: how it ended (reset, eof, timeout) and the seconds since the last byte.
client() {
    ip netns exec "$1" python3 - "$2" "$3" "$4" "$5" <<'EOF'
import json, socket, sys, time
host, port, keep, echo = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "echo"
s = socket.create_connection((host, port), timeout=5)
s.settimeout(20)
s.sendall(b"hello")
if echo:
    got = b""
    while len(got) < 5:
        got += s.recv(5 - len(got))
last = time.monotonic()
end = last + keep
while time.monotonic() < end:
    time.sleep(1)
    s.sendall(b".")
    assert s.recv(1) == b".", "keep-alive byte not echoed"
    last = time.monotonic()
try:
    how = "eof" if s.recv(100) == b"" else "data"
except ConnectionResetError:
    how = "reset"
except socket.timeout:
    how = "timeout"
print(json.dumps({"how": how, "after_s": round(time.monotonic() - last, 2)}))
EOF
}
check() { # check NAME JSON MIN MAX
    log "$1: $2"
    [ "$(json_eval "$2" "d['how'] == 'reset' and $3 <= d['after_s'] <= $4")" = true ] ||
        fail "$1: expected a reset after $3..$4 s, got $2"
}

out=$(client "$PEER" 10.10.1.2 8080 0 dead) || fail "client of the dead backend: $out"
check "dead backend, --connect-timeout 2s" "$out" 1.5 4
dropped=$(peer_exec nft list chain inet blackhole input | sed -n 's/.*counter packets \([0-9]*\).*/\1/p')
[ "${dropped:-0}" -ge 1 ] || fail "the backend's SYNs never reached PEER"
grep -q "did not answer within 2.0s; client reset" "$MPTUN_LOG" || fail "the log does not say why the client was reset"

out=$(client "$PEER" 10.10.1.2 8081 0 echo) || fail "idle --forward client: $out"
check "idle --forward, --idle-timeout 3s" "$out" 2.5 5
out=$(client "$PEER" 10.10.1.2 8081 4 echo) || fail "busy --forward client: $out"
check "--forward with a byte every second for 4 s, then idle" "$out" 2.5 5
wait_until 2 grep -q "reset" "$DIR/echoserver.err" || fail "the backend's side was not reset: $(cat "$DIR/echoserver.err")"

out=$(client "$HOST" 127.0.0.1 6000 0 echo) || fail "idle --local-forward client: $out"
check "idle --local-forward, --idle-timeout 3s" "$out" 2.5 5
[ "$(grep -c "idle for 3s; both sides reset" "$MPTUN_LOG")" -ge 3 ] || fail "the log does not say why the relays were reset"
kill -0 "$MPTUN_PID" || fail "mptun died"
log "PASS"
