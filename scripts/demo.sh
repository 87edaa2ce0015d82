#!/usr/bin/env bash
# Quick start: a Linux host (namespace mptun-demo-peer) and a router namespace
# (mptun-demo-host) that runs mptun on its TUN, answering as 10.10.1.2 / fd10:1::2
# with an echo service on port 7 and a sink on port 9. Runs in the foreground;
# Ctrl-C stops mptun and removes everything.
#
#   sudo scripts/demo.sh [extra mptun run flags...]
#
# then, in another terminal, talk to mptun from the Linux host:
#   sudo ip netns exec mptun-demo-peer python3 tests/netns/tcpclient.py 10.10.1.2 7 --bytes 10000000
#   sudo ip netns exec mptun-demo-peer ping -c 3 10.10.1.2
#   sudo target/release/mptun status --control /run/mptun/mptun-demo.sock
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "demo.sh: needs root (network namespaces, TUN)" >&2; exit 1; }
PEER=mptun-demo-peer
HOST=mptun-demo-host
CTL=/run/mptun/mptun-demo.sock

cleanup() {
    ip netns del "$PEER" 2>/dev/null || true
    ip netns del "$HOST" 2>/dev/null || true
}
trap cleanup EXIT
cleanup

cargo build --release --quiet
ip netns add "$PEER"
ip netns add "$HOST"
ip link add demo-p netns "$PEER" type veth peer name demo-h netns "$HOST"
ip -n "$PEER" link set lo up
ip -n "$HOST" link set lo up
ip -n "$PEER" addr add 10.1.0.1/24 dev demo-p
ip -n "$HOST" addr add 10.1.0.2/24 dev demo-h
ip -n "$PEER" addr add fd01::1/64 dev demo-p nodad
ip -n "$HOST" addr add fd01::2/64 dev demo-h nodad
ip -n "$PEER" link set demo-p up
ip -n "$HOST" link set demo-h up
ip netns exec "$HOST" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
ip -n "$PEER" route add 10.10.1.0/24 via 10.1.0.2
ip -n "$PEER" -6 route add fd10:1::/64 via fd01::2

echo "mptun answers as 10.10.1.2 and fd10:1::2 (echo on 7, sink on 9); Ctrl-C to stop."
echo "Try: sudo ip netns exec $PEER python3 tests/netns/tcpclient.py 10.10.1.2 7 --bytes 10000000"
ip netns exec "$HOST" target/release/mptun run --tun mptun-demo --control "$CTL" \
    --addr 10.10.1.2 --addr fd10:1::2 --echo 7 --sink 9 "$@" || true
