# shellcheck shell=bash
# The Linux server namespace of the benchmarks (bench.sh, bench_multipath.sh):
# namespace SRV one forwarding hop behind HOST (veth h9 10.10.9.1 / s9 10.10.9.2),
# so that a Linux server's packets cross HOST as mptun's do. Sourced after
# tests/netns/lib.sh (HOST, PEER) with SRV set.

: "${SRV:?lib_srv.sh needs SRV set}"
_SRV=0

# srv_ns_up: namespace SRV with its veth to HOST and its default route.
srv_ns_up() {
    ip netns add "$SRV"
    _SRV=1
    ip -n "$SRV" link set lo up
    ip link add h9 netns "$HOST" type veth peer name s9 netns "$SRV"
    ip -n "$HOST" addr add 10.10.9.1/24 dev h9
    ip -n "$SRV" addr add 10.10.9.2/24 dev s9
    ip -n "$HOST" link set h9 up
    ip -n "$SRV" link set s9 up
    ip -n "$SRV" route add default via 10.10.9.1
}

# srv_ns_down: SIGKILL what still runs in SRV and remove it (kept with KEEP_NETNS=1).
srv_ns_down() {
    [ "$_SRV" = 1 ] || return 0
    local p
    for p in $(ip netns pids "$SRV" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    [ "${KEEP_NETNS:-0}" = 1 ] || ip netns del "$SRV" 2>/dev/null
}
