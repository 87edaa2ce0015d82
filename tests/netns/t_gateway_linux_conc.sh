#!/usr/bin/env bash
# The gateway against a Linux concentrator (issue 13 interop): GW is mptun
# (--transparent --upstream socks5://10.40.1.2:1080), CONC is Linux with kernel
# MPTCP and microsocks made MPTCP by mptcpize (the usual OpenMPTCProuter-style
# server). The LAN's plain TCP reaches WEB through an MPTCP connection that
# mptun opens from both WAN addresses: 8 MiB echoed exactly, and CONC's kernel
# counters show an MPTCP connection accepted and a join from the second WAN,
# with no fallback. A closed port on WEB resets the LAN client. (microsocks
# closes both ways at the first end of stream: the client shuts its side only
# once the echo is back.)
. "$(dirname "$0")/lib.sh"
for cmd in microsocks mptcpize; do
    command -v "$cmd" >/dev/null || fail "$cmd missing: run tests/netns/install-deps.sh"
done
. "$NETNS_DIR/gateway_topology.sh"
# The counter helpers (peer_counter, ...) read PEER's kernel: CONC here.
PEER=$CONC

ip -n "$CONC" addr add 10.40.1.2/32 dev lo
ip netns exec "$CONC" sysctl -qw net.mptcp.enabled=1
ip -n "$CONC" mptcp limits set subflows 2 add_addr_accepted 0
echo_server "$WEB" 10.50.0.2 7000
ip netns exec "$CONC" mptcpize run microsocks -i 10.40.1.2 -p 1080 >"$DIR/microsocks.log" 2>&1 &
BG_PIDS+=($!)
listening() { ip netns exec "$CONC" ss -Htln 'sport = :1080' | grep -q 1080; }
wait_until 10 listening || fail "microsocks is not listening: $(cat "$DIR/microsocks.log")"

start_mptun "$GW" gw --tun mpt0 --addr 10.20.1.2 --addr 10.20.2.2,subflow \
    --transparent --upstream socks5://10.40.1.2:1080
gateway_routes

lan_client 10.50.0.2 7000 --bytes $((8 << 20)) --no-half-close --timeout 120 --pause $((1 << 20)):"$DIR/go" >"$DIR/echo.json" &
client=$!
two_subflows() {
    json_eval "$(status_json gw)" \
        "max([r['upstream_subflows'] for r in d['relays']['active']] or [0])" | grep -qx 2
}
wait_until 20 two_subflows || fail "the upstream to Linux never had 2 subflows: $(status_json gw)"
touch "$DIR/go"
wait "$client" || fail "8 MiB echo through a Linux concentrator: $(cat "$DIR/echo.json") $(tail -5 "$DIR/gw.log")"
log "LAN -> GW -> Linux CONC (microsocks, mptcpize) -> WEB, 8 MiB: $(cat "$DIR/echo.json")"
log "CONC counters: $(peer_counters_nonzero)"
peer_counters_expect -ge 1 MPTcpExtMPCapableSYNRX MPTcpExtMPJoinSynRx MPTcpExtMPJoinAckRx
# mptcpize makes microsocks' own connection to WEB MPTCP too, and WEB (plain
# TCP) answers without MP_CAPABLE: that one fallback (MPCapableSYNTX, and
# FallbackSYNACK) is CONC's outgoing side, not the gateway's connection.
peer_counters_expect -le 1 MPTcpExtMPCapableFallbackSYNACK
zero=()
for k in "${MP_PEER_ZERO[@]}"; do
    [ "$k" = MPTcpExtMPCapableFallbackSYNACK ] || zero+=("$k")
done
peer_counters_expect -eq 0 "${zero[@]}"

refused=$(connect_outcome "$LAN" 10.50.0.2 7001)
[ "$refused" = reset ] || fail "a closed port behind the Linux concentrator: $refused (expected a reset)"
log "closed port on WEB: $refused"
