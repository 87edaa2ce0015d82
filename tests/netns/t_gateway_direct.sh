#!/usr/bin/env bash
# `--transparent --upstream direct` (issue 13): a userspace transparent proxy
# without the MPTCP leg. PEER plays the LAN client; HOST is the gateway, and
# the "web server" is a third namespace behind HOST. The client connects
# to the server's address as usual; scripts/gateway-routes.sh steers its TCP
# into the TUN, mptun answers as the server and dials it from the host's
# sockets. 8 MiB echoed exactly; a closed port resets the client; with
# --max-relays 2, a third connection while two are held is reset at once,
# counted, and the two go on.
. "$(dirname "$0")/lib.sh"
topology_up
WEB="$PFX-web"
EXTRA_NS+=("$WEB")
ip netns add "$WEB"
ip link add h9 netns "$HOST" type veth peer name e0 netns "$WEB"
ip -n "$HOST" addr add 10.99.0.1/24 dev h9
ip -n "$WEB" addr add 10.99.0.2/24 dev e0
ip -n "$HOST" link set h9 up
ip -n "$WEB" link set e0 up
ip -n "$WEB" link set lo up
ip -n "$WEB" route add default via 10.99.0.1
ip -n "$PEER" route add 10.99.0.0/24 via 10.1.0.2
echo_server "$WEB" 10.99.0.2 7000
mptun_start --transparent --upstream direct --max-relays 2
host_exec "$REPO_DIR/scripts/gateway-routes.sh" --lan h1 --tun "$TUN" --wan 10.10.1.2,10.1.0.1,h1

out=$(tcpclient_peer 10.99.0.2 7000 --bytes $((8 << 20)) --timeout 60) ||
    fail "8 MiB echo through the transparent proxy: $out"
log "echo through --upstream direct: $out"
[ "$(json_eval "$(mptun_status_json)" "[s for s in d['services'] if s['kind'] == 'transparent'][0]['connections']")" -ge 1 ] ||
    fail "the transparent service took no connection: $(mptun_status_text)"

refused=$(connect_outcome "$PEER" 10.99.0.2 7001)
[ "$refused" = reset ] || fail "a closed port through the proxy: $refused (expected a reset)"
log "closed port: $refused"

# Two held open (paused after 64 KiB), a third refused.
for i in 1 2; do
    tcpclient_peer 10.99.0.2 7000 --bytes $((256 << 10)) --timeout 60 --seed "held$i" \
        --pause $((64 << 10)):"$DIR/go" >"$DIR/held$i.json" &
    eval "held$i=\$!"
done
two_held() { [ "$(json_eval "$(mptun_status_json)" "len(d['relays']['active'])")" = 2 ]; }
wait_until 20 two_held || fail "status never listed two relays: $(mptun_status_json)"
third=$(connect_outcome "$PEER" 10.99.0.2 7000)
[ "$third" = reset ] || fail "a third connection past --max-relays 2: $third (expected a reset)"
st=$(mptun_status_json)
[ "$(json_eval "$st" "(d['relays']['limit'], d['relays']['refused'])")" = "(2, 1)" ] ||
    fail "status: limit and refusals: $st"
[ "$(json_eval "$st" "[r['target'] for r in d['relays']['active']] == ['10.99.0.2:7000'] * 2")" = true ] ||
    fail "status: the held relays' targets: $st"
touch "$DIR/go"
wait "$held1" || fail "held connection 1: $(cat "$DIR/held1.json")"
wait "$held2" || fail "held connection 2: $(cat "$DIR/held2.json")"
log "--max-relays 2: third connection $third; $(mptun_status_text | grep -A3 '^relays')"
