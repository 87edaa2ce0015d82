#!/usr/bin/env bash
# `--threads 2`: two engines on two queues of a multiqueue TUN (issue 14).
#
# 20 Linux MPTCP echo connections, each with a join from path 2 to mptun's
# initial address (PEER endpoint `10.2.0.1 dev p2 subflow`): the kernel
# spreads their flows over both queues, so connections land on both engines,
# and about half of the joins reach the engine that does not own their
# token and are handed over. Every stream is exact, every join succeeds
# (Linux's MPJoinSynAckRx = 20, nothing refused, no fallback), and mptun
# counts the handed-over packets.
#
# MISROUTE=1 (`--debug-misroute`): every other packet read from a queue goes
# to the other engine first, as if the kernel had picked the wrong queue —
# SYNs, joins, data and FINs alike, which thereby also overtake each other —
# and the same must hold.
. "$(dirname "$0")/lib.sh"
mp_topology_up
extra=()
[ "${MISROUTE:-0}" = 1 ] && extra+=(--debug-misroute)
mptun_start --echo 7 --threads 2 "${extra[@]}"
mp_endpoint 10.2.0.1 p2 subflow

n=20
out=$(tcpclient_peer 10.10.1.2 7 --mptcp --connections "$n" --bytes $((2 << 20)) --timeout 120) ||
    mp_fail "$n MPTCP echo connections: $out"
log "client: $(json_eval "$out" '{k: d[k] for k in ("connections", "bytes", "mbit_s", "failed")}')"
[ "$(json_eval "$out" 'd["failed"]')" = 0 ] || fail "some connections failed: $out"

status=$(mptun_status_json)
log "shards: $(json_eval "$status" 'd["shards"]')"
log "PEER counters: $(peer_counters_nonzero)"
[ "$(json_eval "$status" 'len(d["shards"])')" = 2 ] || fail "status does not list 2 threads: $(json_eval "$status" 'd["shards"]')"
took=$(json_eval "$status" '" ".join(str(s["connections_accepted"]) for s in d["shards"])')
read -r a b <<<"$took"
[ "$((a + b))" -eq "$n" ] || fail "the engines accepted $a and $b connections, not $n in all"
if [ "${MISROUTE:-0}" != 1 ]; then
    [ "$a" -ge 1 ] && [ "$b" -ge 1 ] || fail "all connections on one engine ($a, $b): the kernel did not spread them"
fi
peer_counters_expect -eq "$n" MPTcpExtMPCapableSYNACKRX MPTcpExtMPJoinSynAckRx
if [ "${MISROUTE:-0}" = 1 ]; then
    # Segments overtaking the close may meet a subflow already gone on one
    # side and be reset (see below): MPRstRx aside, nothing may go wrong.
    peer_counters_expect -eq 0 "${MP_PEER_ZERO[@]/MPTcpExtMPRstRx/}"
else
    peer_counters_expect -eq 0 "${MP_PEER_ZERO[@]}"
fi
[ "$(mptun_counter mptcp_joins_established "$status")" -eq "$n" ] ||
    fail "mptun established $(mptun_counter mptcp_joins_established "$status") joins, not $n"
# Nothing refused or reset by mptun. (With --debug-misroute, segments that
# overtake each other at the very end reach subflows already closed on one
# side — mptun resends data after Linux closed a subflow and Linux resets it,
# or a late segment of Linux's finds mptun's side gone and is answered with a
# RST, as TCP must — so those two counters are checked without it only.)
zero=(mptcp_join_rejected mptcp_join_hmac_failures mptcp_fallbacks shard_forward_dropped)
[ "${MISROUTE:-0}" = 1 ] || zero+=(drop_no_listener resets_sent)
for k in "${zero[@]}"; do
    [ "$(mptun_counter "$k" "$status")" = 0 ] || fail "mptun: $k is $(mptun_counter "$k" "$status"), not 0"
done
fwd=$(mptun_counter shard_forwarded "$status")
log "packets handed between engines: $fwd"
[ "$fwd" -ge 1 ] || fail "no packet was handed to the other engine: no join reached the wrong queue?"
if [ "${MISROUTE:-0}" = 1 ]; then
    pin=$(json_eval "$status" 'sum(s["packets_in"] for s in d["shards"])')
    [ "$fwd" -ge "$((pin / 4))" ] || fail "--debug-misroute handed over only $fwd of $pin packets"
fi
