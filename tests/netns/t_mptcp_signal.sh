#!/usr/bin/env bash
# mptun announces its second address: `--addr 10.10.1.2 --addr 10.10.2.2,signal
# --echo 7`, and a Linux MPTCP client in PEER (`ip mptcp limits set subflows 2
# add_addr_accepted 2`, no endpoint of its own) connects to 10.10.1.2 and echoes
# 32 MiB, exact (length and SHA-256). Linux receives mptun's ADD_ADDR (AddAddr),
# echoes it (EchoAddTx) and joins 10.10.2.2 over path 2 (MPJoinSynTx,
# MPJoinSynAckRx; MPTCP_INFO 2 subflows), with no HMAC failure, fallback or
# rejected join. mptun: mptcp_add_addr_tx and mptcp_add_addr_echo_rx >= 1, its
# status lists 10.10.2.2 as announced and echoed and an established subflow on it,
# a join established, no HMAC failure; path 2 carried >= 1 MiB.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_pm.sh"
# 100 Mbit/s per path from Linux: the transfer lasts long enough (>= 1.3 s) for
# status to be sampled while both subflows are up.
mp_signal_up 100mbit --echo 7

total=$((32 << 20))
p2_before=$(link_bytes "$HOST" h2)
bg_run "$PEER" python3 "$NETNS_DIR/tcpclient.py" 10.10.1.2 7 --mptcp --bytes "$total" \
    >"$DIR/client.json" 2>"$DIR/client.err"
client=$BG_PID

# While the transfer runs: an established subflow on 10.10.2.2 and the announcement
# echoed.
joined() {
    local c
    c=$(mptun_conn_json 'c["local"] == "10.10.1.2:7"') || return 1
    json_eval "$c" 'any(s["local"].startswith("10.10.2.2:") and s["state"] == "ESTABLISHED" for s in d["subflows"]) and any(a["addr"] == "10.10.2.2" and a.get("echoed") for a in d["mptcp"]["announced"]) or None' >/dev/null || return 1
    echo "$c" >"$DIR/conn.json"
}
seen=0
while kill -0 "$client" 2>/dev/null; do
    if joined; then seen=1; break; fi
    sleep 0.05
done
rc=0
wait "$client" || rc=$?
out=$(cat "$DIR/client.json")
[ "$rc" = 0 ] || fail "MPTCP echo of 32 MiB: $out $(cat "$DIR/client.err"); PEER counters: $(peer_counters_nonzero)"
log "client: $out"
[ "$seen" = 1 ] || fail "mptun status never showed 10.10.2.2 announced+echoed with an established subflow on it (last: $(mptun_status_json))"
conn=$(cat "$DIR/conn.json")
log "mptun announced: $(json_eval "$conn" 'd["mptcp"]["announced"]')"
log "mptun subflows: $(json_eval "$conn" '[(s["local"], s["remote"], s["addr_id"], s["remote_addr_id"], s["backup"]) for s in d["subflows"]]')"

ok=$(json_eval "$out" 'not d["mptcp_info"]["fallback"] and not d["mptcp_info_end"]["fallback"] and d["mptcp_info_end"]["remote_key_received"]')
[ "$ok" = true ] || fail "Linux's MPTCP_INFO says fallback or no remote key: $out"
[ "$(json_eval "$out" 'd["mptcp_max_subflows"]')" = 1 ] || fail "Linux's MPTCP_INFO never showed 1 additional subflow: $out"
[ "$(json_eval "$out" 'd["mptcp_max_subflows_total"]')" = 2 ] || fail "Linux's MPTCP_INFO never showed 2 subflows: $out"

# Linux: ADD_ADDR received (HMAC good: it is echoed), echo sent, the join to it.
peer_counters_expect -ge 1 MPTcpExtMPCapableSYNACKRX MPTcpExtAddAddr MPTcpExtEchoAddTx \
    MPTcpExtMPJoinSynTx MPTcpExtMPJoinSynAckRx
peer_counters_expect -eq 0 "${MP_PEER_ZERO[@]}" MPTcpExtAddAddrDrop MPTcpExtEchoAddTxDrop
log "PEER counters: $(peer_counters_nonzero)"

st=$(mptun_status_json)
mptun_counters_expect "$st" -ge 1 mptcp_add_addr_tx mptcp_add_addr_echo_rx mptcp_joins_established
mptun_counters_expect "$st" -eq 0 "${MPTUN_ZERO[@]}"
log "mptun counters: $(mptun_counters_nonzero "$st")"

read -r rx0 tx0 <<<"$p2_before"
read -r rx1 tx1 <<<"$(link_bytes "$HOST" h2)"
log "path 2 (HOST h2): $((rx1 - rx0)) bytes from Linux, $((tx1 - tx0)) bytes to Linux"
[ $((rx1 - rx0 + tx1 - tx0)) -ge $((1 << 20)) ] || fail "path 2 carried less than 1 MiB"
