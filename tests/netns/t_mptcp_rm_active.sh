#!/usr/bin/env bash
# REMOVE_ADDR of a subflow that carries data, near the end of a transfer. mptun
# (`--addr 10.10.1.2 --addr 10.10.2.2,signal --echo 7`) announces 10.10.2.2, the
# Linux MPTCP client joins it over path 2 and both subflows carry the 12 MiB echo.
# When 11 MiB have come back, `mptun addr del 10.10.2.2`: the subflow is reset,
# Linux reinjects what it had in flight on it over path 1 — data mptun already
# acknowledged at the data level, arriving after mptun's echo service has read
# the end of the stream and closed its handle. The connection must survive that
# (no plain RST: duplicates at the data level are not new data) and the echo be
# exact. At 7659a5b one run in four ended in plain RSTs from the released first
# subflow and ENOTCONN at the client.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_pm.sh"
mp_signal_up 20mbit --echo 7

total=$((12 << 20))
bg_run "$PEER" python3 "$NETNS_DIR/tcpclient.py" 10.10.1.2 7 --mptcp --bytes "$total" \
    --mark "$((11 << 20)):$DIR/mark.rm" --idle-timeout 15 \
    >"$DIR/client.json" 2>"$DIR/client.err"
client=$BG_PID
client_fail() { fail "$1: $(cat "$DIR/client.json") $(cat "$DIR/client.err"); PEER counters: $(peer_counters_nonzero)"; }
wait_file 60 "$DIR/mark.rm" "$client" || client_fail "11 MiB were never echoed"
mptun_addr del 10.10.2.2
rc=0
wait "$client" || rc=$?
out=$(cat "$DIR/client.json")
[ "$rc" = 0 ] || client_fail "MPTCP echo of 12 MiB with 10.10.2.2 removed near the end"
log "client: $out"
ok=$(json_eval "$out" 'not d["mptcp_info_end"]["fallback"] and d["mptcp_max_subflows_total"] == 2')
[ "$ok" = true ] || fail "Linux's MPTCP_INFO: fallback, or never 2 subflows: $out"

# Resetting the removed address's subflow brings Linux an MP_TCPRST (MPRstRx).
zero=()
for k in "${MP_PEER_ZERO[@]}"; do [ "$k" = MPTcpExtMPRstRx ] || zero+=("$k"); done
peer_counters_expect -ge 1 MPTcpExtAddAddr MPTcpExtMPJoinSynAckRx MPTcpExtRmAddr
peer_counters_expect -eq 0 "${zero[@]}"
log "PEER counters: $(peer_counters_nonzero)"
st=$(mptun_status_json)
mptun_counters_expect "$st" -ge 1 mptcp_joins_established mptcp_rm_addr_tx
mptun_counters_expect "$st" -eq 0 "${MPTUN_ZERO[@]}"
log "mptun counters: $(mptun_counters_nonzero "$st")"
