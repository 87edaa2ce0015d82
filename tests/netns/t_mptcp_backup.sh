#!/usr/bin/env bash
# Backup path: both paths shaped to 20 Mbit/s each way; Linux's endpoint on path 2
# is `10.2.0.1 dev p2 subflow backup`, so its MP_JOIN carries B=1 and mptun must
# list that subflow as backup. A 32 MiB echo runs over path 1 alone: until 16 MiB
# have come back, path 2 carries (almost) nothing, at most 64 KiB each way by HOST's
# h2 byte counters (the join's handshake and a few ACKs). Then path 1 goes down
# (`ip link set h1 down` in HOST) and the transfer must complete exactly over the
# backup path, which now carries the rest of the data both ways (>= 12 MiB each).
. "$(dirname "$0")/lib.sh"
mp_topology_up
for i in 1 2; do
    shape "$PEER" "p$i" 20mbit
    shape "$HOST" "h$i" 20mbit
done
mptun_start --echo 7
mp_endpoint 10.2.0.1 p2 subflow backup

total=$((32 << 20))
read -r rx0 tx0 <<<"$(link_bytes "$HOST" h2)"
bg_run "$PEER" python3 "$NETNS_DIR/tcpclient.py" 10.10.1.2 7 --mptcp --bytes "$total" \
    --mark "$((16 << 20)):$DIR/half" --idle-timeout 15 >"$DIR/client.json" 2>"$DIR/client.err"
client=$BG_PID
subs=$(mptun_wait_subflows 7 2 "$client") || mp_fail "mptun never listed two established subflows: $(cat "$DIR/client.json" "$DIR/client.err")"
log "mptun subflows (remote, backup, remote_addr_id): $(json_eval "$subs" '[(s["remote"], s["backup"], s["remote_addr_id"]) for s in d]')"
[ "$(json_eval "$subs" '[s["backup"] for s in d if s["remote"].startswith("10.2.0.1:")] == [True] and [s["backup"] for s in d if s["remote"].startswith("10.1.0.1:")] == [False]')" = true ] ||
    fail "mptun does not list the join from 10.2.0.1 (B=1) as the only backup subflow: $subs"

wait_file 60 "$DIR/half" "$client" || mp_fail "16 MiB did not come back: $(cat "$DIR/client.json" "$DIR/client.err")"
read -r rx1 tx1 <<<"$(link_bytes "$HOST" h2)"
read -r prx ptx <<<"$(link_bytes "$HOST" h1)"
log "until $(cat "$DIR/half") bytes had come back: path 2 carried $((rx1 - rx0)) bytes from Linux, $((tx1 - tx0)) to Linux; path 1 $prx from Linux, $ptx to Linux"
[ $((rx1 - rx0)) -le 65536 ] && [ $((tx1 - tx0)) -le 65536 ] ||
    fail "the backup path carried data while path 1 was up: $((rx1 - rx0)) bytes from Linux, $((tx1 - tx0)) to Linux; mptun: $(mptun_subflows_json 7)"
ip -n "$HOST" link set h1 down
log "path 1 down (HOST h1)"

rc=0
wait "$client" || rc=$?
out=$(cat "$DIR/client.json")
read -r rx2 tx2 <<<"$(link_bytes "$HOST" h2)"
log "after the failure path 2 carried $((rx2 - rx1)) bytes from Linux, $((tx2 - tx1)) to Linux"
status=$(mptun_status_json)
log "mptun counters: $(json_eval "$status" '" ".join(f"{k}={v}" for k, v in d["counters"].items() if k.startswith("mptcp_") and v)')"
log "PEER counters: $(peer_counters_nonzero)"
[ "$rc" = 0 ] || mp_fail "the echo did not complete over the backup path: $out $(cat "$DIR/client.err")"
log "client: $out"
[ "$(json_eval "$out" 'not d["mptcp_info_end"]["fallback"] and d["mptcp_max_subflows_total"] == 2')" = true ] ||
    fail "Linux's MPTCP_INFO: fallback, or not 2 subflows: $out"
[ $((rx2 - rx1)) -ge $((12 << 20)) ] && [ $((tx2 - tx1)) -ge $((12 << 20)) ] ||
    fail "the backup path did not carry the rest of the transfer both ways"
peer_counters_expect -ge 1 MPTcpExtMPJoinSynTx MPTcpExtMPJoinSynAckRx
peer_counters_expect -eq 0 "${MP_PEER_ZERO[@]}"
