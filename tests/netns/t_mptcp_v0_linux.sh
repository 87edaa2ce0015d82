#!/usr/bin/env bash
# MPTCP version negotiation against upstream Linux, which speaks only v1. A plain
# TCP client in HOST echoes 16 MiB through mptun's `--local-forward
# 127.0.0.1:6000=10.1.0.1:7` to a Linux MPTCP echo server (mpserver.py --mptcp);
# path 1 shaped to 100 Mbit/s from mptun so that status can be sampled mid-transfer.
#  1. `--mptcp-version 0`: mptun's SYN offers v0 (key in the SYN); Linux answers
#     plain TCP: the echo is exact (client and server SHA-256), mptun's connection
#     shows version 0 and fallback (no MP_CAPABLE in the SYN/ACK), no v0 retry;
#     Linux's accepted socket has no MPTCP_INFO or says fallback, and Linux saw
#     no MP_CAPABLE at all (MPCapableSYNRX, MPCapableACKRX 0).
#  2. `--mptcp-version 1,0`: mptun offers v1 first and Linux takes it: exact echo,
#     mptun's connection shows version 1 and no fallback, mptcp_v0_retries 0,
#     mptcp_fallbacks 0; Linux's MPTCP_INFO no fallback, remote key received,
#     MPCapableSYNRX and MPCapableACKRX 1.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_pm.sh"
topology_up
peer_exec sysctl -qw net.mptcp.enabled=1
shape "$HOST" h1 100mbit
mpserver "$PEER" 10.1.0.1 7 "$DIR/server.log" --mptcp
MPTUN_ADDRS=(10.10.1.2)
total=$((16 << 20))

# transfer N: echo through mptun, sampling status while the connection is up; the
# sample goes to $DIR/conn-N.json, the client's JSON to $out, the server's to $srv.
transfer() {
    local n=$1 c
    bg_run "$HOST" python3 "$NETNS_DIR/tcpclient.py" 127.0.0.1 6000 --bytes "$total" --seed "v0linux$n" \
        >"$DIR/client-$n.json" 2>"$DIR/client-$n.err"
    local client=$BG_PID rc=0
    rm -f "$DIR/conn-$n.json"
    while kill -0 "$client" 2>/dev/null; do
        if c=$(mptun_conn_json 'c["remote"] == "10.1.0.1:7" and c["mptcp"] is not None and c["state"] == "ESTABLISHED"'); then
            echo "$c" >"$DIR/conn-$n.json"
            break
        fi
        sleep 0.05
    done
    wait "$client" || rc=$?
    out=$(cat "$DIR/client-$n.json")
    [ "$rc" = 0 ] || fail "echo $n: $out $(cat "$DIR/client-$n.err")"
    log "client $n: $out"
    [ -s "$DIR/conn-$n.json" ] || fail "echo $n: mptun's status never showed the connection to 10.1.0.1:7"
    srv=$(mpserver_wait "$DIR/server.log" "$n")
    log "Linux server $n: $srv"
    [ "$(json_eval "$srv" 'd["bytes"]')" = "$total" ] || fail "the Linux server echoed $(json_eval "$srv" 'd["bytes"]') bytes, expected $total"
    [ "$(json_eval "$srv" 'd["sha256"]')" = "$(json_eval "$out" 'd["sha256"]')" ] || fail "echo $n: the server's SHA-256 is not the client's"
}

# 1. v0 only: a clean plain-TCP connection.
mptun_start --mptcp-version 0 --local-forward 127.0.0.1:6000=10.1.0.1:7
transfer 1
conn=$(cat "$DIR/conn-1.json")
log "mptun's connection (v0 only): $(json_eval "$conn" 'd["mptcp"]')"
# (mptun's mptcp_fallbacks counter counts freed connections only: this one sits in
# TIME_WAIT for a minute after the test, so the connection's own record is checked.)
[ "$(json_eval "$conn" 'd["mptcp"]["version"] == 0 and d["mptcp"]["fallback"] and d["mptcp"]["fallback_reason"] == "NoMpCapableSynAck" and d["mptcp"]["remote_key"] is None')" = true ] ||
    fail "v0 only: mptun's connection is not v0 fallen back for want of MP_CAPABLE in the SYN/ACK: $conn"
[ "$(json_eval "$srv" 'd["mptcp_info"] is None or d["fallback"] is True')" = true ] ||
    fail "v0 only: Linux's accepted socket is MPTCP without fallback: $srv"
peer_counters_expect -eq 0 MPTcpExtMPCapableSYNRX MPTcpExtMPCapableACKRX MPTcpExtMPJoinSynRx
log "PEER counters after v0: $(peer_counters_nonzero)"
st=$(mptun_status_json)
mptun_counters_expect "$st" -eq 0 mptcp_v0_retries
log "mptun counters (v0 only): $(mptun_counters_nonzero "$st")"
mptun_stop || fail "mptun (v0 only) did not exit cleanly"

# 2. v1 and v0 allowed: Linux gets v1, nothing is retried.
mptun_start --mptcp-version 1,0 --local-forward 127.0.0.1:6000=10.1.0.1:7
transfer 2
conn=$(cat "$DIR/conn-2.json")
log "mptun's connection (1,0): $(json_eval "$conn" 'd["mptcp"]')"
[ "$(json_eval "$conn" 'd["mptcp"]["version"] == 1 and not d["mptcp"]["fallback"]')" = true ] ||
    fail "1,0: mptun's connection is not v1 without fallback: $conn"
[ "$(json_eval "$srv" 'd["fallback"] is False and d["mptcp_info"]["remote_key_received"]')" = true ] ||
    fail "1,0: Linux's MPTCP_INFO says fallback or no remote key: $srv"
peer_counters_expect -eq 1 MPTcpExtMPCapableSYNRX MPTcpExtMPCapableACKRX
peer_counters_expect -eq 0 "${MP_PEER_ZERO[@]}"
log "PEER counters after 1,0: $(peer_counters_nonzero)"
st=$(mptun_status_json)
mptun_counters_expect "$st" -eq 0 mptcp_v0_retries mptcp_fallbacks
log "mptun counters (1,0): $(mptun_counters_nonzero "$st")"
