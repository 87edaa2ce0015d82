#!/usr/bin/env bash
# MP_PRIO and REMOVE_ADDR from mptun, seen by Linux, during a transfer over two
# subflows. mptun (`--addr 10.10.1.2 --addr 10.10.2.2,signal --echo 7`) announces
# 10.10.2.2 and the Linux MPTCP client (add_addr_accepted 2) joins it over path 2
# (a subflow endpoint would only join mptun's initial address, which `addr set/del
# 10.10.2.2` would not touch); both paths shaped to 20 Mbit/s from Linux. While
# 12 MiB are echoed:
#  - after 2 MiB, `mptun addr set 10.10.2.2 backup`: Linux counts MPPrioRx, mptun
#    mptcp_mp_prio_tx and shows the subflow backup; Linux then sends (almost)
#    nothing more on path 2;
#  - after 6 MiB, `mptun addr del 10.10.2.2`: Linux counts RmAddr, the subflow on
#    10.10.2.2 is closed on both sides (mptun's status, Linux's `ss`), mptun counts
#    mptcp_rm_addr_tx, and the rest of the transfer goes over path 1;
# and the echo is exact (length and SHA-256), with no fallback, HMAC failure or
# data beyond a window (NoDSSInWindow). The daemon is driven over its own control
# socket ($DIR/ctl.sock).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_pm.sh"
mp_signal_up 20mbit --echo 7

total=$((12 << 20))
bg_run "$PEER" python3 "$NETNS_DIR/tcpclient.py" 10.10.1.2 7 --mptcp --bytes "$total" \
    --mark "$((2 << 20)):$DIR/mark.prio" --mark "$((6 << 20)):$DIR/mark.rm" \
    >"$DIR/client.json" 2>"$DIR/client.err"
client=$BG_PID
client_fail() { fail "$1: $(cat "$DIR/client.json") $(cat "$DIR/client.err"); PEER counters: $(peer_counters_nonzero)"; }

# mptun's subflows of the echo connection on local address $1, as JSON.
subflows_on() {
    local c
    c=$(mptun_conn_json 'c["local"] == "10.10.1.2:7"') || { echo "[]"; return; }
    json_eval "$c" "[s for s in d['subflows'] if s['local'].startswith('$1:')]"
}
sf2_backup() {
    json_eval "$(subflows_on 10.10.2.2)" 'len(d) > 0 and all(s["backup"] and s["state"] == "ESTABLISHED" for s in d) or None'
}

# MP_PRIO, as soon as 2 MiB came back (the join is up by then; status is
# checked afterwards, as polling it is slow on a loaded machine).
wait_file 30 "$DIR/mark.prio" "$client" || client_fail "2 MiB were never echoed"
read -r _ p1_tx0 <<<"$(link_bytes "$PEER" p1)"
read -r _ p2_tx0 <<<"$(link_bytes "$PEER" p2)"
mptun_addr set 10.10.2.2 backup
peer_prio() { [ "$(peer_counter MPTcpExtMPPrioRx)" -ge 1 ]; }
wait_until 5 peer_prio || client_fail "Linux's MPTcpExtMPPrioRx stayed 0 after 'addr set 10.10.2.2 backup'"
# What Linux had already queued on the subflow (and the shaper holds) drains
# first, with its retransmissions; then path 2 should carry next to nothing.
sleep 0.5
read -r _ p1_tx1 <<<"$(link_bytes "$PEER" p1)"
read -r _ p2_tx1 <<<"$(link_bytes "$PEER" p2)"
wait_until 5 sf2_backup || fail "mptun has no established backup subflow on 10.10.2.2: $(subflows_on 10.10.2.2)"
log "after MP_PRIO: $(subflows_on 10.10.2.2)"

# REMOVE_ADDR.
wait_file 30 "$DIR/mark.rm" "$client" || client_fail "6 MiB were never echoed"
read -r _ p1_tx2 <<<"$(link_bytes "$PEER" p1)"
read -r _ p2_tx2 <<<"$(link_bytes "$PEER" p2)"
mptun_addr del 10.10.2.2
peer_rm() { [ "$(peer_counter MPTcpExtRmAddr)" -ge 1 ]; }
wait_until 5 peer_rm || client_fail "Linux's MPTcpExtRmAddr stayed 0 after 'addr del 10.10.2.2'"
mptun_conn_json 'c["local"] == "10.10.1.2:7" and c["state"] == "ESTABLISHED"' >/dev/null ||
    client_fail "mptun's connection is gone after 'addr del 10.10.2.2' (status: $(mptun_status_json))"
# (mptun's status keeps a closed join in the list, as CLOSED, while the connection lives.)
sf2_gone() { json_eval "$(subflows_on 10.10.2.2)" 'all(s["state"] == "CLOSED" for s in d) or None'; }
wait_until 5 sf2_gone || fail "mptun still has an open subflow on 10.10.2.2: $(subflows_on 10.10.2.2)"
linux_sf2_gone() { ! peer_exec ss -Htn state established dst 10.10.2.2 | grep -q .; }
wait_until 5 linux_sf2_gone || fail "Linux still has an established subflow to 10.10.2.2: $(peer_exec ss -tn dst 10.10.2.2)"
read -r _ p2_tx3 <<<"$(link_bytes "$PEER" p2)"
log "after REMOVE_ADDR: mptun subflows $(json_eval "$(mptun_subflows_json 7)" '[(s["local"], s["remote"], s["state"]) for s in d]'); Linux's sockets to 10.10.2.2: $(peer_exec ss -Htan dst 10.10.2.2 | awk '{print $1, $4, $5}' | tr '\n' ';')"

rc=0
wait "$client" || rc=$?
out=$(cat "$DIR/client.json")
[ "$rc" = 0 ] || client_fail "MPTCP echo of 12 MiB"
log "client: $out"
read -r _ p2_tx4 <<<"$(link_bytes "$PEER" p2)"

ok=$(json_eval "$out" 'not d["mptcp_info"]["fallback"] and not d["mptcp_info_end"]["fallback"]')
[ "$ok" = true ] || fail "Linux's MPTCP_INFO says fallback: $out"
[ "$(json_eval "$out" 'd["mptcp_max_subflows_total"]')" = 2 ] || fail "Linux's MPTCP_INFO never showed 2 subflows: $out"

# Sent by Linux (PEER's p1/p2 transmit counters): on path 2 before MP_PRIO, data;
# from 0.5 s after it until REMOVE_ADDR, little next to path 1; after REMOVE_ADDR
# (the subflow closed on both sides), nothing.
log "sent by Linux: before MP_PRIO path 1 $p1_tx0, path 2 $p2_tx0 bytes; from 0.5 s after MP_PRIO to REMOVE_ADDR: path 1 $((p1_tx2 - p1_tx1)), path 2 $((p2_tx2 - p2_tx1)) bytes; path 2 after REMOVE_ADDR $((p2_tx4 - p2_tx3)) bytes"
[ "$p2_tx0" -ge $((256 << 10)) ] || fail "path 2 carried only $p2_tx0 bytes from Linux before MP_PRIO"
[ $((p2_tx2 - p2_tx1)) -le $(((p1_tx2 - p1_tx1) / 10)) ] ||
    fail "Linux kept sending on the backup subflow: $((p2_tx2 - p2_tx1)) bytes on path 2 against $((p1_tx2 - p1_tx1)) on path 1"
[ $((p2_tx4 - p2_tx3)) -le 4096 ] || fail "Linux sent $((p2_tx4 - p2_tx3)) bytes on path 2 after REMOVE_ADDR"

# Linux's counters. Resetting the subflow of a removed address may bring Linux an
# MP_TCPRST (MPRstRx): that one is allowed here.
zero=()
for k in "${MP_PEER_ZERO[@]}"; do [ "$k" = MPTcpExtMPRstRx ] || zero+=("$k"); done
peer_counters_expect -ge 1 MPTcpExtAddAddr MPTcpExtEchoAddTx MPTcpExtMPJoinSynAckRx MPTcpExtMPPrioRx MPTcpExtRmAddr
peer_counters_expect -eq 0 "${zero[@]}" MPTcpExtNoDSSInWindow
log "PEER counters: $(peer_counters_nonzero)"

st=$(mptun_status_json)
mptun_counters_expect "$st" -ge 1 mptcp_add_addr_tx mptcp_joins_established mptcp_mp_prio_tx mptcp_rm_addr_tx
mptun_counters_expect "$st" -eq 0 "${MPTUN_ZERO[@]}"
log "mptun counters: $(mptun_counters_nonzero "$st")"
