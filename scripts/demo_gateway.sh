#!/usr/bin/env bash
# The gateway in one command, in network namespaces (root): a LAN host, a
# gateway with two WAN links (50 Mbit/s each), a concentrator and a web
# server, with mptun at both ends (tests/netns/gateway_topology.sh):
#
#   LAN 192.168.50.2 ── GW (mptun --transparent) ══ 2 WANs ══ CONC (mptun --socks5) ── WEB 10.50.0.2
#
# The LAN host downloads a file from WEB with plain curl, as from any web
# server; the gateway carries the connection over MPTCP with a subflow per
# WAN. While it runs, the gateway's `mptun status` shows the LAN flow, the
# MPTCP connection that carries it and each WAN's share.
#
#   sudo scripts/demo_gateway.sh           # download 64 MiB, show status, clean up
#   sudo scripts/demo_gateway.sh --keep    # ... and leave it all running to explore
#   sudo scripts/demo_gateway.sh --check   # quiet; exit 0 if the download was
#                                          # exact and used two subflows (the tests)
# Needs python3, curl, iproute2 (tests/netns/install-deps.sh); builds mptun
# (target/release/mptun) unless MPTUN points at one.
set -Eeuo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
MODE=show
case "${1:-}" in
--keep) MODE=keep ;;
--check) MODE=check ;;
"") ;;
-h | --help) sed -n '2,19p' "$0"; exit 0 ;;
*) echo "demo_gateway.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "demo_gateway.sh: needs root (network namespaces, TUN)" >&2; exit 1; }
if [ -z "${MPTUN:-}" ]; then
    (cd "$REPO" && cargo build --release --locked -p mptun >&2)
fi
[ "$MODE" = keep ] && export KEEP_NETNS=1
export NETNS_TEST_NAME=demo_gateway
# shellcheck source=../tests/netns/lib.sh
. "$REPO/tests/netns/lib.sh"
# shellcheck source=../tests/netns/gateway_topology.sh
. "$REPO/tests/netns/gateway_topology.sh"
say() { [ "$MODE" = check ] || echo "$*"; }

size=$((64 << 20))
mkdir -p "$DIR/www"
head -c "$size" /dev/urandom >"$DIR/www/file"
ip netns exec "$WEB" python3 -m http.server --bind 10.50.0.2 --directory "$DIR/www" 8080 \
    >"$DIR/web.log" 2>&1 &
BG_PIDS+=($!)
start_mptun "$CONC" conc --tun mpt1 --addr 10.40.1.2 --socks5 1080 --socks5-allow 10.20.0.0/16
start_mptun "$GW" gw --tun mpt0 --addr 10.20.1.2 --addr 10.20.2.2,subflow \
    --transparent --upstream socks5://10.40.1.2:1080
gateway_routes
up() { ip netns exec "$LAN" curl -s -o /dev/null http://10.50.0.2:8080/ 2>/dev/null; }
wait_until 10 up || fail "the web server does not answer through the gateway"

say "LAN: curl http://10.50.0.2:8080/file ($((size >> 20)) MiB) through the gateway..."
ip netns exec "$LAN" curl -s -o "$DIR/got" -w '%{speed_download} %{time_total}\n' \
    http://10.50.0.2:8080/file >"$DIR/curl.out" &
curl_pid=$!
sleep 2
status=$("$MPTUN" status --control "$DIR/gw.sock")
json=$("$MPTUN" status --control "$DIR/gw.sock" --json)
if [ "$MODE" != check ]; then
    echo
    echo "The gateway's status while the download runs:"
    echo "$status"
fi
wait "$curl_pid" || fail "curl failed: $(cat "$DIR/curl.out")"
read -r speed secs <"$DIR/curl.out"
cmp -s "$DIR/www/file" "$DIR/got" || fail "the downloaded file differs"
subflows=$(json_eval "$json" "max([r['upstream_subflows'] for r in d['relays']['active']] or [0])")
say
say "Downloaded $((size >> 20)) MiB exactly in ${secs} s: $(python3 -c "print(round($speed * 8 / 1e6, 1))") Mbit/s over two 50 Mbit/s WANs, $subflows subflows."
[ "$subflows" -ge 2 ] || fail "the upstream MPTCP connection had $subflows subflow(s), not 2"
if [ "$MODE" = keep ]; then
    cat <<EOF

Left running. Try:
  ip netns exec $LAN curl -o /dev/null http://10.50.0.2:8080/file
  $MPTUN status --control $DIR/gw.sock          # gateway (add --json)
  $MPTUN status --control $DIR/conc.sock        # concentrator
Remove it all: ip netns del $LAN; ip netns del $GW; ip netns del $CONC; ip netns del $WEB
(and kill the two mptun processes and the web server: pkill -f $DIR)
EOF
    # Leave the processes and namespaces to the user.
    BG_PIDS=()
    _TOPOLOGY=0
fi
if [ "$MODE" != keep ]; then
    # Stop both daemons gracefully (SIGTERM) before the namespaces go.
    for name in gw conc; do
        pid=$(pgrep -f -- "--control $DIR/$name.sock") || continue
        kill -TERM "$pid"
        wait "$pid" 2>/dev/null || true
    done
fi
