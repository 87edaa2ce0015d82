#!/usr/bin/env bash
# A Linux MPTCP client opens a second subflow to mptun itself (PEER endpoint
# `10.2.0.1 dev p2 subflow`: an MP_JOIN from path 2 to mptun's initial address) and
# echoes 32 MiB through `--echo 7`: exact (length and SHA-256). While it runs,
# mptun's status lists two established subflows with different remote addresses;
# Linux's MPTCP_INFO shows 2 subflows (1 join) and no fallback; PEER's counters show
# the join (MPJoinSynTx, MPJoinSynAckRx), no HMAC failure, no fallback; mptun counts
# the join established and no HMAC failure; path 2 carried data (>= 1 MiB).
# FAMILY=6: the same over IPv6 (fd10:1::2, endpoint fd02::1). CHECKSUM=1: with
# net.mptcp.checksum_enabled=1 in PEER (DSS checksums on every subflow).
. "$(dirname "$0")/lib.sh"
mp_topology_up
[ "${CHECKSUM:-0}" = 1 ] && peer_exec sysctl -qw net.mptcp.checksum_enabled=1
if [ "${FAMILY:-4}" = 6 ]; then dst=fd10:1::2 ep=fd02::1; else dst=10.10.1.2 ep=10.2.0.1; fi
mptun_start --echo 7
mp_endpoint "$ep" p2 subflow

total=$((32 << 20))
p2_before=$(link_bytes "$HOST" h2)
# The client pauses after 8 MiB until the test has seen the subflows (a fast run
# would otherwise be over before `mptun status` looks).
bg_run "$PEER" python3 "$NETNS_DIR/tcpclient.py" "$dst" 7 --mptcp --bytes "$total" --idle-timeout 15 \
    --pause "$((8 << 20)):$DIR/go" >"$DIR/client.json" 2>"$DIR/client.err"
client=$BG_PID

# While the transfer runs: two established subflows, distinct remote addresses.
subs=$(mptun_wait_subflows 7 2 "$client") || subs=""
touch "$DIR/go"
rc=0
wait "$client" || rc=$?
out=$(cat "$DIR/client.json")
[ "$rc" = 0 ] || mp_fail "MPTCP echo of 32 MiB to $dst over two subflows: $out $(cat "$DIR/client.err")"
log "client: $out"
[ -n "$subs" ] || mp_fail "mptun status never listed two established subflows with distinct remote addresses during the transfer"
log "mptun subflows during the transfer (local, remote, backup, addr_id, remote_addr_id): $(json_eval "$subs" '[(s["local"], s["remote"], s["backup"], s["addr_id"], s["remote_addr_id"]) for s in d]')"

# Linux's view of the socket.
ok=$(json_eval "$out" 'd["mptcp_info"] is not None and not d["mptcp_info"]["fallback"] and not d["mptcp_info_end"]["fallback"] and d["mptcp_info_end"]["remote_key_received"]')
[ "$ok" = true ] || fail "Linux's MPTCP_INFO says fallback or no remote key: $out"
[ "$(json_eval "$out" 'd["mptcp_max_subflows"]')" = 1 ] || fail "Linux's MPTCP_INFO never showed 1 additional subflow: $out"
[ "$(json_eval "$out" 'd["mptcp_max_subflows_total"]')" = 2 ] || fail "Linux's MPTCP_INFO never showed 2 subflows in total: $out"
if [ "${CHECKSUM:-0}" = 1 ]; then
    [ "$(json_eval "$out" 'd["mptcp_info_end"]["csum_enabled"]')" = true ] || fail "Linux's MPTCP_INFO: checksums not enabled: $out"
fi

# Linux's counters: the client side of a join moves MPJoinSynTx (SYN sent) and
# MPJoinSynAckRx (our SYN/ACK, HMAC checked); MPJoinAckRx is the server side's.
peer_counters_expect -ge 1 MPTcpExtMPCapableSYNACKRX MPTcpExtMPJoinSynTx MPTcpExtMPJoinSynAckRx
peer_counters_expect -eq 0 "${MP_PEER_ZERO[@]}"
log "PEER counters: $(peer_counters_nonzero)"

# mptun's counters.
status=$(mptun_status_json)
[ "$(mptun_counter mptcp_joins_established "$status")" -ge 1 ] || fail "mptun: mptcp_joins_established < 1: $(json_eval "$status" 'd["counters"]')"
for k in mptcp_join_hmac_failures mptcp_join_rejected mptcp_fallbacks mptcp_checksum_errors; do
    [ "$(mptun_counter "$k" "$status")" = 0 ] || fail "mptun: $k is not 0: $(json_eval "$status" 'd["counters"]')"
done
log "mptun counters: $(json_eval "$status" '" ".join(f"{k}={v}" for k, v in d["counters"].items() if k.startswith("mptcp_") and v)')"

# The join carried data (how much each way is up to Linux's and mptun's schedulers).
read -r rx0 tx0 <<<"$p2_before"
read -r rx1 tx1 <<<"$(link_bytes "$HOST" h2)"
log "path 2 (HOST h2): $((rx1 - rx0)) bytes from Linux, $((tx1 - tx0)) bytes to Linux"
[ $((rx1 - rx0 + tx1 - tx0)) -ge $((1 << 20)) ] || fail "path 2 carried less than 1 MiB"
