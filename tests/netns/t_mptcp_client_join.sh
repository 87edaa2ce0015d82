#!/usr/bin/env bash
# mptun as the MPTCP client joining a second path to a Linux MPTCP server
# (mpserver.py --mptcp, listening on all of PEER's addresses, port 7): a plain TCP
# client in HOST echoes 32 MiB through `--local-forward 127.0.0.1:6000=10.1.0.1:7`,
# exact (length and SHA-256, on the client and on the server); both paths shaped to
# 100 Mbit/s from mptun.
#   MODE=signal (default): the Linux server announces its second address
#     (`ip mptcp endpoint add 10.2.0.1 dev p2 signal`); mptun (--max-add-addr-accepted
#     1) echoes the ADD_ADDR and joins 10.2.0.1 over path 2. Linux: AddAddrTx,
#     EchoAdd, MPJoinSynRx, MPJoinAckRx; mptun: mptcp_add_addr_rx, the address in
#     its status' remote_addrs, a join established.
#   MODE=subflow: mptun opens its own second subflow from a `subflow` endpoint
#     (`--addr 10.10.2.2,subflow`) to the server's address, over path 2 (HOST and
#     PEER route 10.10.2.2's packets by path 2). Linux: MPJoinSynRx, MPJoinAckRx.
# Either way Linux's MPTCP_INFO on the accepted socket shows 2 subflows and no
# fallback, no counter of MP_PEER_ZERO moves, nor NoDSSInWindow; mptun counts no
# HMAC failure or fallback; path 2 carried >= 1 MiB.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_pm.sh"
MODE=${MODE:-signal}
mp_topology_up
shape "$HOST" h1 100mbit
shape "$HOST" h2 100mbit
mpserver "$PEER" 0.0.0.0 7 "$DIR/server.log" --mptcp
fwd=(--local-forward 127.0.0.1:6000=10.1.0.1:7)
case $MODE in
signal)
    mp_endpoint 10.2.0.1 p2 signal
    MPTUN_ADDRS=(10.10.1.2)
    mptun_start --max-add-addr-accepted 1 "${fwd[@]}"
    # The join: from mptun's address to the announced 10.2.0.1.
    on_path2() { json_eval "$1" 'any(s["remote"] == "10.2.0.1:7" and s["state"] == "ESTABLISHED" for s in d["subflows"]) or None'; }
    ;;
subflow)
    # mptun's join from 10.10.2.2 to 10.1.0.1 goes by path 2 both ways.
    ip -n "$HOST" rule add from 10.10.2.2 table 102
    ip -n "$HOST" route add 10.1.0.0/24 via 10.2.0.1 dev h2 table 102
    ip -n "$PEER" rule add to 10.10.2.0/24 table 102 pref 100
    MPTUN_ADDRS=(10.10.1.2 10.10.2.2,subflow)
    mptun_start "${fwd[@]}"
    on_path2() { json_eval "$1" 'any(s["local"].startswith("10.10.2.2:") and s["state"] == "ESTABLISHED" for s in d["subflows"]) or None'; }
    ;;
*) fail "unknown MODE $MODE" ;;
esac

total=$((32 << 20))
p2_before=$(link_bytes "$HOST" h2)
bg_run "$HOST" python3 "$NETNS_DIR/tcpclient.py" 127.0.0.1 6000 --bytes "$total" \
    >"$DIR/client.json" 2>"$DIR/client.err"
client=$BG_PID

joined() {
    local c
    c=$(mptun_conn_json 'c["remote"] == "10.1.0.1:7"') || return 1
    on_path2 "$c" >/dev/null || return 1
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
[ "$rc" = 0 ] || fail "echo of 32 MiB through --local-forward: $out $(cat "$DIR/client.err"); PEER counters: $(peer_counters_nonzero)"
log "client: $out"
[ "$seen" = 1 ] || fail "mptun's status never showed an established subflow over path 2 (last: $(mptun_status_json))"
conn=$(cat "$DIR/conn.json")
log "mptun subflows: $(json_eval "$conn" '[(s["local"], s["remote"], s["addr_id"], s["remote_addr_id"]) for s in d["subflows"]]')"
log "mptun remote_addrs: $(json_eval "$conn" 'd["mptcp"]["remote_addrs"]')"

srv=$(mpserver_wait "$DIR/server.log" 1)
log "Linux server: $srv"
[ "$(json_eval "$srv" 'd["bytes"]')" = "$total" ] || fail "the Linux server echoed $(json_eval "$srv" 'd["bytes"]') bytes, expected $total"
[ "$(json_eval "$srv" 'd["sha256"]')" = "$(json_eval "$out" 'd["sha256"]')" ] || fail "the server's SHA-256 is not the client's"
[ "$(json_eval "$srv" 'd["fallback"] is False and d["mptcp_info"]["remote_key_received"]')" = true ] || fail "Linux's MPTCP_INFO on the server: fallback or no key: $srv"
[ "$(json_eval "$srv" 'd["max_subflows_total"]')" = 2 ] || fail "Linux's MPTCP_INFO on the server never showed 2 subflows: $srv"

peer_counters_expect -ge 1 MPTcpExtMPCapableSYNRX MPTcpExtMPCapableACKRX MPTcpExtMPJoinSynRx MPTcpExtMPJoinAckRx
peer_counters_expect -eq 0 "${MP_PEER_ZERO[@]}" MPTcpExtNoDSSInWindow
st=$(mptun_status_json)
mptun_counters_expect "$st" -ge 1 mptcp_joins_established
mptun_counters_expect "$st" -eq 0 "${MPTUN_ZERO[@]}"
if [ "$MODE" = signal ]; then
    peer_counters_expect -ge 1 MPTcpExtAddAddrTx MPTcpExtEchoAdd
    mptun_counters_expect "$st" -ge 1 mptcp_add_addr_rx
    [ "$(json_eval "$conn" 'any(a["addr"] == "10.2.0.1" for a in d["mptcp"]["remote_addrs"])')" = true ] ||
        fail "mptun's status does not list 10.2.0.1 among the server's addresses: $conn"
fi
log "PEER counters: $(peer_counters_nonzero)"
log "mptun counters: $(mptun_counters_nonzero "$st")"

read -r rx0 tx0 <<<"$p2_before"
read -r rx1 tx1 <<<"$(link_bytes "$HOST" h2)"
log "path 2 (HOST h2): $((tx1 - tx0)) bytes to Linux, $((rx1 - rx0)) bytes from Linux"
[ $((rx1 - rx0 + tx1 - tx0)) -ge $((1 << 20)) ] || fail "path 2 carried less than 1 MiB"
