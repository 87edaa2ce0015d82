#!/usr/bin/env bash
# "Why is my second path not used?" in `mptun status`. mptun announces
# 10.10.2.2 (`signal`) to a Linux MPTCP client whose path manager accepts no
# announcement (`add_addr_accepted 0`, Linux's default): the echo connection
# lists 10.10.2.2 as unused, "not_joined_by_peer", once Linux echoed the
# ADD_ADDR (its MPTcpExtAddAddr and mptun's echo counter agree). An address
# added later without `signal` is "no_signal_flag". After Linux's limit is
# raised a new connection joins 10.10.2.2 and lists no unused path for it
# (10.10.3.2 stays "no_signal_flag"). Both in
# `status --json` and in the table.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_pm.sh"
mp_topology_up
MPTUN_ADDRS=(10.10.1.2 10.10.2.2,signal)
mptun_start --echo 7

# unused_of JSON: "local:reason ..." for the echo connection(s) to port 7 from PORT.
unused_of() {
    json_eval "$(mptun_status_json)" "' '.join(f\"{u['local']}:{u['reason']}\" for c in d['connections'] if c['local'].endswith(':7') and c['remote'].endswith(':$1') for u in c.get('unused_paths', []))"
}

bg_run "$PEER" python3 "$NETNS_DIR/tcpclient.py" 10.10.1.2 7 --mptcp --bytes $((4 << 20)) \
    --pause "$((1 << 20)):$DIR/go" --idle-timeout 30 >"$DIR/c1.json" 2>"$DIR/c1.err"
c1=$BG_PID
wait_until 10 sh -c "'$MPTUN' status --control '$CTL' --json | grep -q '\"reason\": \"not_joined_by_peer\"'" || {
    touch "$DIR/go"
    mp_fail "10.10.2.2 never listed as not joined by the peer: $(mptun_status_json)"
}
port1=$(json_eval "$(mptun_status_json)" "next(c['remote'].rsplit(':',1)[1] for c in d['connections'] if c['local'].endswith(':7'))")
got=$(unused_of "$port1")
[ "$got" = "10.10.2.2:not_joined_by_peer" ] || { touch "$DIR/go"; fail "unused paths: '$got'"; }
[ "$(peer_counter MPTcpExtAddAddr)" -ge 1 ] || { touch "$DIR/go"; fail "Linux took no ADD_ADDR"; }
mptun_status_text >"$DIR/table.txt"
grep -q "unused path 10.10.2.2: announced and echoed; the peer has not joined it" "$DIR/table.txt" || {
    touch "$DIR/go"
    fail "the table does not say why: $(cat "$DIR/table.txt")"
}

# An address without `signal`.
mptun_addr add 10.10.3.2
got=$(unused_of "$port1")
[ "$got" = "10.10.2.2:not_joined_by_peer 10.10.3.2:no_signal_flag" ] || { touch "$DIR/go"; fail "after addr add: '$got'"; }
touch "$DIR/go"
rc=0
wait "$c1" || rc=$?
[ "$rc" = 0 ] || fail "first echo failed: $(cat "$DIR/c1.json" "$DIR/c1.err")"

# With Linux accepting announcements, a new connection joins 10.10.2.2.
ip -n "$PEER" mptcp limits set subflows 2 add_addr_accepted 2
bg_run "$PEER" python3 "$NETNS_DIR/tcpclient.py" 10.10.1.2 7 --mptcp --bytes $((4 << 20)) \
    --pause "$((1 << 20)):$DIR/go2" --idle-timeout 30 >"$DIR/c2.json" 2>"$DIR/c2.err"
c2=$BG_PID
mptun_wait_subflows 7 2 "$c2" >/dev/null || { touch "$DIR/go2"; mp_fail "the second connection never joined 10.10.2.2"; }
port2=$(json_eval "$(mptun_status_json)" "next(c['remote'].rsplit(':',1)[1] for c in d['connections'] if c['local'].endswith(':7') and len(c['subflows']) == 2)")
got=$(unused_of "$port2")
touch "$DIR/go2"
[ "$got" = "10.10.3.2:no_signal_flag" ] || fail "with the join: '$got'"
rc=0
wait "$c2" || rc=$?
[ "$rc" = 0 ] || fail "second echo failed: $(cat "$DIR/c2.json" "$DIR/c2.err")"
log "first connection: 10.10.2.2 not joined by the peer, 10.10.3.2 without signal; second: joined"
