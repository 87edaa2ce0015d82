#!/usr/bin/env bash
# Quick start: MPTCP over two paths. A Linux host (namespace mptun-demo-peer)
# with two links (100 Mbit/s each) to a router namespace (mptun-demo-host)
# where mptun owns its TUN and answers as 10.10.1.2 and 10.10.2.2 (announced
# to MPTCP peers: `--addr 10.10.2.2,signal`) with an echo service on port 7
# and a sink on 9. Linux accepts the announcement (`ip mptcp limits set
# subflows 2 add_addr_accepted 2`), so an MPTCP client gets one subflow per
# link. mptun runs in the background; this terminal shows its path events
# (`mptun monitor`) until Ctrl-C, which stops mptun and removes everything.
#
#   sudo scripts/demo.sh [extra mptun run flags...]
#   sudo scripts/demo.sh --check   # (the tests) run the client below too; exit 0
#                                  # if status and monitor showed two subflows
#
# then, in another terminal, an MPTCP client from the Linux host:
#   sudo ip netns exec mptun-demo-peer python3 tests/netns/tcpclient.py 10.10.1.2 7 --mptcp --bytes 200000000
#   sudo target/release/mptun status --control /run/mptun/mptun-demo.sock
# Needs python3 and iproute2; builds mptun (target/release/mptun) unless
# MPTUN points at one. mptun's own log: /run/mptun/mptun-demo.log.
set -euo pipefail
cd "$(dirname "$0")/.."

CHECK=0
if [ "${1:-}" = --check ]; then
    CHECK=1
    shift
fi
[ "$(id -u)" = 0 ] || { echo "demo.sh: needs root (network namespaces, TUN)" >&2; exit 1; }
PEER=mptun-demo-peer
HOST=mptun-demo-host
CTL=/run/mptun/mptun-demo.sock
LOG=/run/mptun/mptun-demo.log
MPTUN_PID=""
MONITOR_PID=""

cleanup() {
    [ -n "$MONITOR_PID" ] && kill "$MONITOR_PID" 2>/dev/null
    if [ -n "$MPTUN_PID" ]; then
        kill -TERM "$MPTUN_PID" 2>/dev/null
        wait "$MPTUN_PID" 2>/dev/null
    fi
    ip netns del "$PEER" 2>/dev/null || true
    ip netns del "$HOST" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cleanup

if [ -z "${MPTUN:-}" ]; then
    cargo build --release --quiet -p mptun
    MPTUN=target/release/mptun
fi
mkdir -p /run/mptun
ip netns add "$PEER"
ip netns add "$HOST"
ip -n "$PEER" link set lo up
ip -n "$HOST" link set lo up
ip netns exec "$HOST" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
ip netns exec "$PEER" sysctl -qw net.mptcp.enabled=1
for i in 1 2; do
    ip link add "demo-p$i" netns "$PEER" type veth peer name "demo-h$i" netns "$HOST"
    ip -n "$PEER" addr add "10.$i.0.1/24" dev "demo-p$i"
    ip -n "$HOST" addr add "10.$i.0.2/24" dev "demo-h$i"
    ip -n "$PEER" link set "demo-p$i" up
    ip -n "$HOST" link set "demo-h$i" up
    ip -n "$PEER" route add "10.10.$i.0/24" via "10.$i.0.2" dev "demo-p$i"
    # Two links of 100 Mbit/s each way: the transfer takes both, and a while.
    ip netns exec "$PEER" tc qdisc replace dev "demo-p$i" root tbf rate 100mbit burst 64kbit latency 50ms
    ip netns exec "$HOST" tc qdisc replace dev "demo-h$i" root tbf rate 100mbit burst 64kbit latency 50ms
done
ip -n "$PEER" mptcp limits set subflows 2 add_addr_accepted 2

ip netns exec "$HOST" "$MPTUN" run --tun mptun-demo --control "$CTL" \
    --addr 10.10.1.2 --addr 10.10.2.2,signal --echo 7 --sink 9 "$@" >"$LOG" 2>&1 &
MPTUN_PID=$!
for _ in $(seq 100); do
    "$MPTUN" status --control "$CTL" >/dev/null 2>&1 && break
    kill -0 "$MPTUN_PID" 2>/dev/null || { cat "$LOG" >&2; exit 1; }
    sleep 0.1
done

if [ "$CHECK" = 0 ]; then
    echo "mptun answers as 10.10.1.2 and 10.10.2.2 (echo on 7, sink on 9); its path events follow. Ctrl-C to stop."
    echo "Try: sudo ip netns exec $PEER python3 tests/netns/tcpclient.py 10.10.1.2 7 --mptcp --bytes 200000000"
    echo "     sudo $MPTUN status --control $CTL"
    "$MPTUN" monitor --control "$CTL" || true
    exit 0
fi

# --check: the client above (a smaller transfer), status while it runs, the events.
events=$(mktemp)
"$MPTUN" monitor --control "$CTL" >"$events" 2>&1 &
MONITOR_PID=$!
sleep 0.3
ip netns exec "$PEER" python3 tests/netns/tcpclient.py 10.10.1.2 7 --mptcp --bytes 40000000 >/dev/null &
client=$!
two=0
for _ in $(seq 200); do
    if "$MPTUN" status --control "$CTL" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
c = [c for c in d["connections"] if c["local"].endswith(":7")]
ok = c and c[0]["mptcp"] and len({s["local"] for s in c[0]["subflows"] if s["state"] == "ESTABLISHED"}) == 2
sys.exit(0 if ok else 1)'; then
        two=1
        break
    fi
    sleep 0.05
done
wait "$client" || { echo "demo.sh --check: the MPTCP echo failed" >&2; exit 1; }
sleep 0.5
kill "$MONITOR_PID"
MONITOR_PID=""
[ "$two" = 1 ] || { echo "demo.sh --check: status never showed two subflows on two paths" >&2; exit 1; }
for want in "CREATED" "SF_ESTABLISHED.*saddr4=10.10.2.2" "CLOSED"; do
    grep -q "$want" "$events" || { echo "demo.sh --check: no $want in: $(cat "$events")" >&2; exit 1; }
done
rm -f "$events"
