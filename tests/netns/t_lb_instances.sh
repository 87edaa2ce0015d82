#!/usr/bin/env bash
# Two mptun instances behind Linux's own load balancer (issue 14, many hosts).
#
#   PEER (Linux MPTCP client) --p1/p2--> HOST: nftables DNAT of the virtual
#   address 10.10.9.9:7 by `jhash ip saddr . tcp sport mod 2` to instance A
#   (10.10.1.2, TUN mpt0) or B (10.10.1.3, TUN mpt1).
#
# Each instance sets MP_CAPABLE's "C" flag (--deny-join-initial-addr: joins
# to the shared address could hash to the other instance), announces an
# address of its own (A 10.10.3.2, B 10.10.3.3, `signal`) and carries its
# instance id in its tokens (--instance-id 0/1, 1/1). Linux has a `subflow`
# endpoint on p2, which without the flag would join the virtual address.
#
# 20 MPTCP echo connections: they land on both instances, every one gets its
# second subflow to the instance that owns it (Linux's MPJoinSynAckRx counts
# 20, no join refused anywhere), every stream is exact. Then one long
# connection: the instance that does not own it is stopped mid-transfer and
# the connection finishes on both its subflows.
. "$(dirname "$0")/lib.sh"
mp_topology_up
VIP=10.10.9.9
peer_exec ip route add 10.10.9.0/24 via 10.1.0.2
peer_exec ip route add 10.10.3.0/24 via 10.1.0.2
mp_endpoint 10.2.0.1 p2 subflow
ip -n "$PEER" mptcp limits set subflows 2 add_addr_accepted 1

host_exec nft -f - <<EOF
table ip lb {
    chain prerouting {
        type nat hook prerouting priority dstnat;
        ip daddr $VIP tcp dport 7 dnat to jhash ip saddr . tcp sport mod 2 map { 0 : 10.10.1.2, 1 : 10.10.1.3 }
    }
}
EOF

# Instance A through lib.sh (TUN mpt0, $CTL); B beside it.
MPTUN_ADDRS=(10.10.1.2 10.10.3.2,signal)
mptun_start --echo 7 --deny-join-initial-addr --instance-id 0/1
A_PID=$MPTUN_PID
A_CTL=$CTL
B_CTL="$DIR/b.sock"
B_LOG="$DIR/mptun-b.log"
RUST_LOG=info ip netns exec "$HOST" "$MPTUN" run --tun mpt1 --control "$B_CTL" \
    --addr 10.10.1.3 --addr 10.10.3.3,signal --echo 7 \
    --deny-join-initial-addr --instance-id 1/1 >"$B_LOG" 2>&1 &
B_PID=$!
BG_PIDS+=("$B_PID")
b_status() { "$MPTUN" status --control "$B_CTL" --json; }
wait_until 10 b_status >/dev/null || fail "instance B did not start: $(tail -5 "$B_LOG")"
a_status() { "$MPTUN" status --control "$A_CTL" --json; }

out=$(tcpclient_peer "$VIP" 7 --mptcp --connections 20 --bytes $((1 << 20)) --timeout 120) ||
    fail "20 echo connections through the balancer: $out (A: $(a_status), B: $(b_status))"
a=$(a_status)
b=$(b_status)
na=$(json_eval "$a" "d['counters']['mptcp_connections']")
nb=$(json_eval "$b" "d['counters']['mptcp_connections']")
log "connections: A $na, B $nb; PEER: $(peer_counters_nonzero)"
[ "$((na + nb))" -eq 20 ] || fail "A took $na and B $nb MPTCP connections, not 20 in all"
[ "$na" -ge 1 ] && [ "$nb" -ge 1 ] || fail "the balancer sent everything to one instance (A $na, B $nb)"
for s in "$a" "$b"; do
    for k in mptcp_join_rejected mptcp_join_hmac_failures mptcp_fallbacks; do
        [ "$(json_eval "$s" "d['counters']['$k']")" -eq 0 ] || fail "$k is not 0: $(json_eval "$s" "d['counters']")"
    done
done
[ "$(json_eval "$a" "d['counters']['mptcp_joins_established']")" -eq "$na" ] ||
    fail "A joined $(json_eval "$a" "d['counters']['mptcp_joins_established']") subflows for $na connections"
[ "$(json_eval "$b" "d['counters']['mptcp_joins_established']")" -eq "$nb" ] ||
    fail "B joined $(json_eval "$b" "d['counters']['mptcp_joins_established']") subflows for $nb connections"
peer_counters_expect -eq 20 MPTcpExtMPCapableSYNACKRX MPTcpExtMPJoinSynAckRx
peer_counters_expect -eq 0 "${MP_PEER_ZERO[@]}"

# One long connection, paused once it is under way; the instance that does
# not own it is stopped; the transfer then finishes on both subflows.
( tcpclient_peer "$VIP" 7 --mptcp --bytes $((8 << 20)) --rate 40e6 \
    --pause "$((1 << 20)):$DIR/go" --timeout 120 >"$DIR/long.out" ) &
long_pid=$!
BG_PIDS+=("$long_pid")
# owner_token: "a TOKEN" or "b TOKEN" for the instance whose connection has
# two established subflows.
owner_token() {
    local s
    for s in a b; do
        json_eval "$("${s}_status")" "[c['mptcp']['local_token'] for c in d['connections'] if c['mptcp'] and len(c['subflows']) == 2 and all(x['state'] == 'ESTABLISHED' for x in c['subflows'])][0]" 2>/dev/null |
            sed "s/^/$s /" && return 0
    done
    return 1
}
wait_until 20 owner_token || fail "the long connection has no instance with two established subflows (A: $(a_status), B: $(b_status))"
read -r owner token < <(owner_token)
log "the long connection belongs to instance $owner (token $token)"
if [ "$owner" = a ]; then
    [ $((16#$token >> 31)) -eq 0 ] || fail "A's token $token lacks instance id 0"
    kill -TERM "$B_PID"
    wait "$B_PID" || fail "instance B did not exit cleanly on SIGTERM"
else
    [ $((16#$token >> 31)) -eq 1 ] || fail "B's token $token lacks instance id 1"
    mptun_stop || fail "instance A did not exit cleanly on SIGTERM"
fi
touch "$DIR/go"
wait "$long_pid" || fail "the long connection failed after the other instance stopped: $(cat "$DIR/long.out" 2>/dev/null)"
log "long connection: $(cat "$DIR/long.out" 2>/dev/null)"
peer_counters_expect -eq 21 MPTcpExtMPJoinSynAckRx
peer_counters_expect -eq 0 "${MP_PEER_ZERO[@]}"
