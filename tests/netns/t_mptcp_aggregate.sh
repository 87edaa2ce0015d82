#!/usr/bin/env bash
# Aggregation: both paths shaped to 20 Mbit/s from Linux to mptun (tbf on PEER's p1
# and p2). A Linux MPTCP client sends 24 MiB into mptun's `--sink 9` twice in the
# same run: first with one subflow (no PEER endpoint), then with two (endpoint
# `10.2.0.1 dev p2 subflow`). Two paths must give at least 1.6 x the goodput of one
# (the ratio is printed). Each run: MPTCP_INFO shows the expected subflow count and
# no fallback; the sink counts every byte and its SHA-256 is the client's.
. "$(dirname "$0")/lib.sh"
mp_topology_up
shape "$PEER" p1 20mbit
shape "$PEER" p2 20mbit
mptun_start --sink 9 --sink-sha256

size=$((24 << 20))
sink_bytes() {
    json_eval "$(mptun_status_json)" '[s for s in d["services"] if s["kind"] == "sink"][0]["bytes"]'
}
# run N: one transfer; checks the subflow count N and the sink's count; sets $mbit.
run() {
    local n=$1 out expect got="" sha
    out=$(tcpclient_peer 10.10.1.2 9 --mode sink --mptcp --bytes "$size" --seed "agg$n" --idle-timeout 15) ||
        mp_fail "sink transfer of $size bytes with $n subflow(s): $out"
    log "$n subflow(s): $out"
    [ "$(json_eval "$out" 'd["mptcp_info_end"] is not None and not d["mptcp_info_end"]["fallback"]')" = true ] ||
        fail "$n subflow(s): Linux's MPTCP_INFO says fallback: $out"
    [ "$(json_eval "$out" 'd["mptcp_max_subflows_total"]')" = "$n" ] ||
        fail "Linux's MPTCP_INFO: expected $n subflow(s) in total: $out"
    expect=$((n * size))
    for _ in $(seq 50); do
        got=$(sink_bytes)
        [ "$got" = "$expect" ] && break
        sleep 0.1
    done
    [ "$got" = "$expect" ] || fail "the sink counted $got bytes in all, expected $expect"
    sha=$(json_eval "$(mptun_status_json)" '[s for s in d["services"] if s["kind"] == "sink"][0]["sha256"]')
    [ "$sha" = "$(json_eval "$out" 'd["sha256"]')" ] || fail "the sink's SHA-256 $sha is not the client's: $out"
    mbit=$(json_eval "$out" 'd["mbit_s"]')
}

run 1
one=$mbit
mp_endpoint 10.2.0.1 p2 subflow
run 2
two=$mbit

ratio=$(awk -v a="$two" -v b="$one" 'BEGIN { printf "%.2f", a / b }')
log "goodput over 20+20 Mbit/s: one path $one Mbit/s, two paths $two Mbit/s, ratio $ratio (must be >= 1.6)"
awk -v r="$ratio" 'BEGIN { exit !(r >= 1.6) }' || fail "two paths give only $ratio x one path's goodput ($two vs $one Mbit/s)"

peer_counters_expect -ge 1 MPTcpExtMPJoinSynTx MPTcpExtMPJoinSynAckRx
peer_counters_expect -eq 0 "${MP_PEER_ZERO[@]}"
log "PEER counters: $(peer_counters_nonzero)"
status=$(mptun_status_json)
[ "$(mptun_counter mptcp_joins_established "$status")" -ge 1 ] || fail "mptun: no join established: $(json_eval "$status" 'd["counters"]')"
log "mptun counters: $(json_eval "$status" '" ".join(f"{k}={v}" for k, v in d["counters"].items() if k.startswith("mptcp_") and v)')"
