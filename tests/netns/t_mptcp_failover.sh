#!/usr/bin/env bash
# Failover: both paths shaped to 20 Mbit/s each way; a Linux MPTCP client with a
# second subflow (endpoint `10.2.0.1 dev p2 subflow`) echoes 32 MiB through mptun's
# `--echo 7`. Once 16 MiB have come back, path 1 — the initial subflow's — stalls
# (HOST's h1 queue stops draining for 0.3 s, so mptun has data queued there) and
# goes down (`ip link set h1 down` in HOST: no carrier on either end). The transfer
# must complete exactly (length and SHA-256) over path 2, with MPTCP (no fallback,
# no reset). Reports mptun's mptcp_reinjected_bytes (must be > 0: the data queued
# on the dead subflow was lost with it), Linux's MPTCPRetrans, what path 2 carried after the
# failure, and the client's longest wait for data (max_rx_gap_s).
# Then path 1 comes back: PEER's stale subflow on it must be answered and go (no
# FIN-WAIT-2 left over), as mptun reset its end once the data level was done.
# FAMILY=6: the same over IPv6 (fd10:1::2, endpoint fd02::1). CHECKSUM=1: with
# net.mptcp.checksum_enabled=1 in PEER (DSS checksums on both subflows).
. "$(dirname "$0")/lib.sh"
mp_topology_up
for i in 1 2; do
    shape "$PEER" "p$i" 20mbit
    shape "$HOST" "h$i" 20mbit
done
[ "${CHECKSUM:-0}" = 1 ] && peer_exec sysctl -qw net.mptcp.checksum_enabled=1
if [ "${FAMILY:-4}" = 6 ]; then
    dst=fd10:1::2 ep=fd02::1 first_re='^\[fd01::1\]:'
else
    dst=10.10.1.2 ep=10.2.0.1 first_re='^10\.1\.0\.1:'
fi
mptun_start --echo 7
mp_endpoint "$ep" p2 subflow

total=$((32 << 20))
bg_run "$PEER" python3 "$NETNS_DIR/tcpclient.py" "$dst" 7 --mptcp --bytes "$total" \
    --mark "$((16 << 20)):$DIR/half" --idle-timeout 15 >"$DIR/client.json" 2>"$DIR/client.err"
client=$BG_PID
subs=$(mptun_wait_subflows 7 2 "$client") || mp_fail "mptun never listed two established subflows: $(cat "$DIR/client.json" "$DIR/client.err")"
first=$(json_eval "$subs" '[s["remote"] for s in d if s["addr_id"] == 0 and s["remote_addr_id"] == 0][0]')
[[ $first =~ $first_re ]] || fail "the initial subflow is not on path 1: $subs"
wait_file 60 "$DIR/half" "$client" || mp_fail "16 MiB did not come back: $(cat "$DIR/client.json" "$DIR/client.err")"
read -r rx0 tx0 <<<"$(link_bytes "$HOST" h2)"
before=$(mptun_status_json)
log "at $(cat "$DIR/half") bytes echoed, mptun subflows (remote, bytes_sent, bytes_received): $(json_eval "$before" '[(s["remote"], s["bytes_sent"], s["bytes_received"]) for c in d["connections"] for s in c["subflows"]]')"
# Path 1 stalls before it dies (its queue stops draining for 0.3 s), so that
# mptun surely has data queued on it when it goes: with short queues mptun's
# whole window may be delivered at the instant of the cut, and only ACKs
# (for data Linux also DATA_ACKs over path 2) are lost, leaving nothing to
# reinject.
# The scheduler may keep path 1 idle for a while (a lower RTT on path 2),
# and once it stalls PEER's subflow there gets no ACKs, PEER sends over path
# 2 alone and mptun's replies fit there: a stall begun while path 1 was idle
# may see nothing queue on it (2 runs in 100). So the stall begins once
# mptun has a good part of a window queued there (up to 10 s, every 20 ms),
# then waits up to 2 s for it to hold more than two segments.
h1_backlog() { ip netns exec "$HOST" tc -s qdisc show dev h1 | awk '/backlog/ {sub("b", "", $2); print $2}'; }
for _ in $(seq 500); do
    [ "$(h1_backlog)" -ge 30000 ] && break
    sleep 0.02
done
h1_before=$(ip netns exec "$HOST" tc -s qdisc show dev h1 | tr -s ' \n' ' ')
ip netns exec "$HOST" tc qdisc change dev h1 root tbf rate 8kbit burst 32kbit latency 2s
for _ in $(seq 20); do
    sleep 0.1
    backlog=$(h1_backlog)
    [ "$backlog" -ge 3000 ] && break
done
h1_stalled=$(ip netns exec "$HOST" tc -s qdisc show dev h1 | tr -s ' \n' ' ')
ip -n "$HOST" link set h1 down
log "path 1 down (HOST h1) with ${backlog} bytes queued on it; h1 before the stall: $h1_before"
[ "$backlog" -ge 1500 ] || fail "mptun queued no data on path 1 while it stalled (${backlog} bytes); h1: $h1_stalled; mptun subflows (remote, cwnd, rto_us, rtt_us, bytes_sent, retransmitted_bytes): $(json_eval "$(mptun_status_json)" '[(s["remote"], s["cwnd"], s["rto_us"], s["rtt_us"], s["bytes_sent"], s["retransmitted_bytes"]) for c in d["connections"] for s in c["subflows"]]')"

rc=0
wait "$client" || rc=$?
out=$(cat "$DIR/client.json")
read -r rx1 tx1 <<<"$(link_bytes "$HOST" h2)"
log "path 2 after the failure: $((rx1 - rx0)) bytes from Linux, $((tx1 - tx0)) bytes to Linux"
[ "$rc" = 0 ] || mp_fail "the echo did not complete after path 1 failed: $out $(cat "$DIR/client.err")"
log "client: $out"
[ "$(json_eval "$out" 'not d["mptcp_info_end"]["fallback"] and d["mptcp_max_subflows_total"] == 2')" = true ] ||
    fail "Linux's MPTCP_INFO: fallback, or not 2 subflows: $out"
if [ "${CHECKSUM:-0}" = 1 ]; then
    [ "$(json_eval "$out" 'd["mptcp_info_end"]["csum_enabled"]')" = true ] || fail "Linux's MPTCP_INFO: checksums not enabled: $out"
fi
status=$(mptun_status_json)
reinjected=$(mptun_counter mptcp_reinjected_bytes "$status")
log "mptun: mptcp_reinjected_bytes=$reinjected; counters: $(json_eval "$status" '" ".join(f"{k}={v}" for k, v in d["counters"].items() if k.startswith("mptcp_") and v)')"
log "PEER counters: $(peer_counters_nonzero)"
log "longest wait for data at the client: $(json_eval "$out" 'd["max_rx_gap_s"]') s"
[ "$reinjected" -gt 0 ] || fail "mptun reinjected nothing although its subflow on path 1 died with data in flight"
[ "$(mptun_counter mptcp_joins_established "$status")" -ge 1 ] || fail "mptun: no join established"
peer_counters_expect -ge 1 MPTcpExtMPJoinSynTx MPTcpExtMPJoinSynAckRx
peer_counters_expect -eq 0 "${MP_PEER_ZERO[@]}"

# Path 1 comes back after the echo. PEER's subflow on it still holds what it had
# in flight and retransmits; mptun reset its own end once the data level was done
# (all it held had gone over path 2), so PEER's subflow must be answered with a
# RST and go, not linger in FIN-WAIT-2 with mptun's end half alive.
ip -n "$HOST" link set h1 up
shape "$HOST" h1 20mbit
peer_quiet() { [ -z "$(peer_exec ss -tnH exclude time-wait dst "$dst" and dport = :7)" ]; }
wait_until 30 peer_quiet ||
    fail "PEER still has subflows to $dst:7 30 s after path 1 came back: $(peer_exec ss -tn dst "$dst")"
# Had mptun's end lived on, it would have answered with old data and PEER would
# have reset it.
[ "$(mptun_counter resets_received)" = 0 ] ||
    fail "PEER reset mptun's stale subflow: mptun's end lived on after the connection was done"
log "path 1 back: PEER's stale subflow gone; mptun counters: $(json_eval "$(mptun_status_json)" '" ".join(f"{k}={v}" for k, v in d["counters"].items() if v and ("rst" in k or "reset" in k))')"
