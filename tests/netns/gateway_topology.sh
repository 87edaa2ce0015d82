# The gateway topology (sourced by t_gateway*.sh, after lib.sh): LAN (plain
# Linux) -> GW -> two WAN links (tbf, GATEWAY_WAN_RATE each way, default
# 50mbit) -> CONC -> WEB, IPv4 everywhere and IPv6 on the LAN and to WEB. GW's
# WAN addresses are 10.20.1.2 (via w1) and 10.20.2.2 (via w2), CONC's SOCKS5
# address 10.40.1.2; WEB is 10.50.0.2 / fd55::2. start_mptun NS NAME ARGS...
# runs mptun there; status_json NAME asks it; lan_client runs tcpclient.py on
# the LAN; gateway_routes sets up GW's routing with scripts/gateway-routes.sh.
LAN="$PFX-lan" GW="$PFX-gw" CONC="$PFX-conc" WEB="$PFX-web"
EXTRA_NS+=("$LAN" "$GW" "$CONC" "$WEB")
_TOPOLOGY=1
for ns in "$LAN" "$GW" "$CONC" "$WEB"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
done
link() { # link NS1 IF1 ADDR1 NS2 IF2 ADDR2
    ip link add "$2" netns "$1" type veth peer name "$5" netns "$4"
    ip -n "$1" addr add "$3" dev "$2"
    ip -n "$4" addr add "$6" dev "$5"
    ip -n "$1" link set "$2" up
    ip -n "$4" link set "$5" up
}
link "$LAN" l0 192.168.50.2/24 "$GW" g0 192.168.50.1/24
link "$GW" w1 10.31.0.1/24 "$CONC" c1 10.31.0.2/24
link "$GW" w2 10.32.0.1/24 "$CONC" c2 10.32.0.2/24
link "$CONC" c9 10.50.0.1/24 "$WEB" e0 10.50.0.2/24
ip -n "$LAN" route add default via 192.168.50.1
ip -n "$WEB" route add default via 10.50.0.1
# IPv6 on the LAN and to WEB (the WAN links and the upstream stay IPv4).
v6() { ip -n "$1" addr add "$3" dev "$2" nodad; }
v6 "$LAN" l0 fd50::2/64
v6 "$GW" g0 fd50::1/64
v6 "$CONC" c9 fd55::1/64
v6 "$WEB" e0 fd55::2/64
ip -n "$LAN" -6 route add default via fd50::1
ip -n "$WEB" -6 route add default via fd55::1
ip netns exec "$CONC" sysctl -qw net.ipv4.ip_forward=1
ip -n "$CONC" route add 10.20.1.0/24 via 10.31.0.1 dev c1
ip -n "$CONC" route add 10.20.2.0/24 via 10.32.0.1 dev c2
for i in 1 2; do
    ip netns exec "$GW" tc qdisc replace dev "w$i" root tbf rate ${GATEWAY_WAN_RATE:-50mbit} burst 32kbit latency 50ms
    ip netns exec "$CONC" tc qdisc replace dev "c$i" root tbf rate ${GATEWAY_WAN_RATE:-50mbit} burst 32kbit latency 50ms
done

# start_mptun NS NAME ARGS...: mptun in NS; waits for its control socket.
start_mptun() {
    local ns=$1 name=$2
    shift 2
    local log="$DIR/$name.log"
    echo "# ip netns exec $ns $MPTUN run --control $DIR/$name.sock $*" >"$log"
    RUST_LOG=${RUST_LOG:-info} ip netns exec "$ns" "$MPTUN" run --control "$DIR/$name.sock" "$@" >>"$log" 2>&1 &
    BG_PIDS+=($!)
    wait_until 10 "$MPTUN" status --control "$DIR/$name.sock" >/dev/null 2>&1 ||
        fail "$name: mptun not ready: $(tail -5 "$log")"
}
status_json() { "$MPTUN" status --control "$DIR/$1.sock" --json; }

lan_client() { ip netns exec "$LAN" python3 "$NETNS_DIR/tcpclient.py" "$@"; }
gateway_routes() {
    ip netns exec "$GW" "$REPO_DIR/scripts/gateway-routes.sh" --lan g0 --tun mpt0 \
        --wan 10.20.1.2,10.31.0.2,w1 --wan 10.20.2.2,10.32.0.2,w2
}
