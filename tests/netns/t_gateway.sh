#!/usr/bin/env bash
# The gateway (issue 13): LAN (plain Linux, no MPTCP) -> GW (mptun
# --transparent --upstream socks5://CONC) -> two WAN links (tbf 50 Mbit/s) ->
# CONC (mptun --socks5) -> WEB. The LAN client connects to WEB's address as
# usual; the GW's mptun answers as WEB, carries the connection over MPTCP with
# a subflow per WAN to CONC, whose SOCKS5 service dials WEB. Checked: 16 MiB
# echoed exactly both ways over IPv4, 4 MiB over IPv6 (LAN and WEB; the WANs
# stay IPv4); the upstream connection has two subflows (GW's status) and CONC
# established a join; 200 concurrent connections, each exact; a WAN cut
# mid-transfer completes (the longest stall is logged); a closed port on WEB
# resets the LAN client's connection. GW routing is scripts/gateway-routes.sh,
# as the README shows. GW's --socks5-listen on loopback: 4 MiB exact, a host
# name resolved by CONC, a closed port answered 5 (refused).
. "$(dirname "$0")/lib.sh"

. "$NETNS_DIR/gateway_topology.sh"

echo_server "$WEB" 10.50.0.2 7000
echo_server "$WEB" fd55::2 7000
# CONC resolves web.test (ip netns exec mounts /etc/netns/NS/hosts over /etc/hosts).
mkdir -p "/etc/netns/$CONC"
printf '10.50.0.2 web.test\n' >"/etc/netns/$CONC/hosts"
start_mptun "$CONC" conc --tun mpt1 --addr 10.40.1.2 --socks5 1080 --socks5-allow 10.20.0.0/16
start_mptun "$GW" gw --tun mpt0 --addr 10.20.1.2 --addr 10.20.2.2,subflow \
    --transparent --upstream socks5://10.40.1.2:1080 --socks5-listen 127.0.0.1:1080 \
    --connect-timeout 60s
gateway_routes

out=$(lan_client 10.50.0.2 7000 --bytes $((16 << 20)) --timeout 120) ||
    fail "16 MiB echo from LAN to WEB through the gateway: $out $(tail -5 "$DIR/gw.log") $(tail -5 "$DIR/conc.log")"
log "LAN -> WEB echo, 16 MiB: $out"

out=$(lan_client fd55::2 7000 --bytes $((4 << 20)) --timeout 120) ||
    fail "4 MiB echo from LAN to WEB over IPv6 through the gateway: $out"
log "LAN -> WEB echo over IPv6, 4 MiB: $out"

# While a connection is held open (paused after 1 MiB): the upstream
# connection and its subflows.
lan_client 10.50.0.2 7000 --bytes $((4 << 20)) --timeout 120 --pause $((1 << 20)):"$DIR/go" >"$DIR/bg.json" &
bg=$!
# GW's status lists the LAN flow, the upstream connection that carries it and
# that connection's subflows (one per WAN), and each WAN's share.
relay_subflows() {
    json_eval "$(status_json gw)" \
        "max([r['upstream_subflows'] for r in d['relays']['active'] if r['service'] == 'transparent' and r['target'] == '10.50.0.2:7000' and r['client'].startswith('192.168.50.2:') and r.get('upstream')] or [0])"
}
two_subflows() { [ "$(relay_subflows)" -ge 2 ]; }
wait_until 20 two_subflows ||
    fail "status never showed the LAN flow's upstream with 2 subflows: $(status_json gw)"
st=$(status_json gw)
up=$(json_eval "$st" "[r['upstream'] for r in d['relays']['active'] if r['target'] == '10.50.0.2:7000'][0]")
[ "$(json_eval "$st" "len([c for c in d['connections'] if c['local'] == '$up' and c['remote'] == '10.40.1.2:1080'])")" = 1 ] ||
    fail "the relay's upstream $up is not a connection to CONC in status: $st"
for wan in 10.20.1.2 10.20.2.2; do
    [ "$(json_eval "$st" "[p['established'] >= 1 and p['bytes_received'] > 0 for p in d['paths'] if p['local'] == '$wan'] == [True]")" = true ] ||
        fail "status shows no established subflow moving bytes on WAN $wan: $st"
done
log "GW relays and paths: $(json_eval "$st" "(d['relays']['active'], d['paths'])")"
touch "$DIR/go"
wait "$bg" || fail "echo during the status check: $(cat "$DIR/bg.json")"
[ "$(json_eval "$(status_json conc)" "d['counters']['mptcp_joins_established']")" -ge 1 ] ||
    fail "CONC accepted no join: $(status_json conc)"
log "GW: $("$MPTUN" status --control "$DIR/gw.sock" | head -12)"

# 200 LAN connections at once, each exact.
out=$(lan_client 10.50.0.2 7000 --bytes 65536 --connections 200 --seed many --timeout 120) ||
    fail "200 concurrent connections through the gateway: $out"
log "200 concurrent connections: $(json_eval "$out" "{k: d[k] for k in ('ok', 'connections', 'failed', 'seconds')}")"

# A WAN cut mid-transfer: the upstream's other subflow carries on.
lan_client 10.50.0.2 7000 --bytes $((24 << 20)) --timeout 120 --seed cut \
    --mark "$((4 << 20)):$DIR/cut" >"$DIR/cut.json" &
client=$!
wait_file 60 "$DIR/cut" "$client" || fail "4 MiB did not come back before the cut: $(cat "$DIR/cut.json")"
ip -n "$GW" link set w1 down
wait "$client" || fail "echo across a WAN cut: $(cat "$DIR/cut.json") $(tail -5 "$DIR/gw.log")"
log "WAN 1 cut after 4 MiB of 24: $(json_eval "$(cat "$DIR/cut.json")" "{k: d[k] for k in ('ok', 'seconds', 'mbit_s', 'max_rx_gap_s')}") (max_rx_gap_s: the longest stall)"
ip -n "$GW" link set w1 up
ip netns exec "$GW" ip route replace default via 10.31.0.2 dev w1 table 101

# A closed port on WEB: the LAN client's connection is reset.
refused=$(connect_outcome "$LAN" 10.50.0.2 7001)
[ "$refused" = reset ] || fail "connection to a closed port through the gateway: $refused (expected a reset)"
log "closed port on WEB: $refused"

# --socks5-listen on GW: applications set to use a proxy take the same MPTCP
# way; a host name goes to CONC as such and is resolved there; CONC's refusal
# comes back as the reply.
gw_socks() { ip netns exec "$GW" python3 "$NETNS_DIR/socks5client.py" 127.0.0.1 1080 "$@"; }
out=$(gw_socks 10.50.0.2 7000 --bytes $((4 << 20))) || fail "4 MiB through --socks5-listen: $out"
[ "$(json_eval "$out" "d['ok']")" = true ] || fail "echo through --socks5-listen: $out"
log "--socks5-listen, 4 MiB: $out"
out=$(gw_socks web.test 7000 --bytes 100000) || fail "a host name through --socks5-listen: $out"
[ "$(json_eval "$out" "(d['reply'], d['ok'])")" = "(0, True)" ] || fail "web.test through --socks5-listen: $out"
out=$(gw_socks 10.50.0.2 7001) || fail "a closed port through --socks5-listen: $out"
[ "$(json_eval "$out" "d['reply']")" = 5 ] || fail "a closed port through --socks5-listen: expected reply 5 (refused), got $out"
log "--socks5-listen: host name resolved by CONC, closed port answered 5"

# The concentrator goes away: CONC's kernel answers the gateway's SYNs for
# 10.40.1.2 with ICMP unreachable, and the LAN client is reset at once — not
# after --connect-timeout (60 s here, longer than connect_outcome waits).
conc_pid=$(pgrep -f -- "--control $DIR/conc.sock") || fail "CONC's mptun is not running"
kill -TERM "$conc_pid"
wait_until 10 sh -c "! kill -0 $conc_pid 2>/dev/null" || fail "CONC's mptun did not stop"
down=$(connect_outcome "$LAN" 10.50.0.2 7000)
[ "$down" = reset ] || fail "a connection while the concentrator is down: $down (expected a reset)"
[ "$(json_eval "$(status_json gw)" "d['counters']['icmp_unreachable']")" -ge 1 ] ||
    fail "GW counted no ICMP unreachable: $(status_json gw)"
log "concentrator down: the LAN client was $down (GW counted ICMP unreachable)"
# ... and back: new connections go through again.
start_mptun "$CONC" conc --tun mpt1 --addr 10.40.1.2 --socks5 1080 --socks5-allow 10.20.0.0/16
out=$(lan_client 10.50.0.2 7000 --bytes $((1 << 20)) --seed back --timeout 60) ||
    fail "echo after the concentrator restarted: $out"
log "concentrator restarted: $(json_eval "$out" "{k: d[k] for k in ('ok', 'seconds')}")"

# Mid-transfer: CONC's mptun is killed (no FIN, no RST: its TUN just goes)
# and started again. GW's upstream subflows retransmit into the new daemon,
# which knows nothing of them and resets them; GW resets the LAN client. An
# error, never a hang (the client would give up after 60 s without progress).
lan_client 10.50.0.2 7000 --bytes $((64 << 20)) --rate 20e6 --seed mid --idle-timeout 60 \
    --timeout 120 --mark $((2 << 20)):"$DIR/mid" >"$DIR/mid.json" 2>"$DIR/mid.err" &
client=$!
wait_file 30 "$DIR/mid" "$client" || fail "2 MiB did not come back before the restart: $(cat "$DIR/mid.json")"
conc_pid=$(pgrep -f -- "--control $DIR/conc.sock") || fail "CONC's mptun is not running"
kill -KILL "$conc_pid"
wait_until 10 sh -c "! kill -0 $conc_pid 2>/dev/null" || fail "CONC's mptun did not die"
start_mptun "$CONC" conc --tun mpt1 --addr 10.40.1.2 --socks5 1080 --socks5-allow 10.20.0.0/16
rc=0
wait "$client" || rc=$?
[ "$rc" != 0 ] || fail "a transfer completed across a concentrator restart: $(cat "$DIR/mid.json")"
grep -q "Reset" "$DIR/mid.json" ||
    fail "the LAN client was not reset when the concentrator restarted mid-transfer: $(cat "$DIR/mid.json")"
log "concentrator killed and restarted mid-transfer: the LAN client was reset: $(json_eval "$(cat "$DIR/mid.json")" "d['errors']")"
out=$(lan_client 10.50.0.2 7000 --bytes $((1 << 20)) --seed after --timeout 60) ||
    fail "echo after the concentrator restarted mid-transfer: $out"
