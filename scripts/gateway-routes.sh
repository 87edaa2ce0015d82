#!/usr/bin/env bash
# Policy routing for an mptun gateway (`mptun run --transparent`), run as root
# once mptun's TUN is up:
#
#   scripts/gateway-routes.sh --lan IF --tun TUN --wan ADDR,VIA,IF [--wan ADDR,VIA,IF ...]
#
# --lan IF     the LAN interface: TCP arriving on it (any destination) goes into
#              the TUN, where mptun answers as its destination. Only TCP: DNS and
#              other UDP keep their usual routes.
# --tun TUN    mptun's TUN device.
# --wan A,V,I  one per WAN link: mptun's address A for that link (an --addr with
#              `subflow`, the first one mptun's initial address) leaves through
#              interface I via next hop V. One source-routed table per WAN, so
#              each subflow takes its own link. mptun's own packets come from the
#              TUN, not the LAN interface: they are never caught again.
# --table N    first routing table number (default 100; WANs use N+1, N+2, ...).
#
# IPv6 works the same way (addresses in the usual notation).
set -euo pipefail
lan="" tun="" table=100
wans=()
while [ $# -gt 0 ]; do
    case "$1" in
    --lan) lan=$2; shift 2 ;;
    --tun) tun=$2; shift 2 ;;
    --wan) wans+=("$2"); shift 2 ;;
    --table) table=$2; shift 2 ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "gateway-routes.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$lan" ] && [ -n "$tun" ] && [ ${#wans[@]} -gt 0 ] ||
    { echo "gateway-routes.sh: --lan, --tun and at least one --wan are required" >&2; exit 2; }

sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
# Replies mptun writes come from the TUN with the LAN peers' remote addresses
# as their source: no reverse-path check on it.
sysctl -qw "net.ipv4.conf.$tun.rp_filter=0" net.ipv4.conf.all.rp_filter=0

for fam in -4 -6; do
    ip "$fam" rule add iif "$lan" ipproto tcp lookup "$table"
    ip "$fam" route replace default dev "$tun" table "$table"
done
n=$table
for w in "${wans[@]}"; do
    IFS=, read -r addr via dev <<<"$w"
    n=$((n + 1))
    fam=-4
    [[ $addr == *:* ]] && fam=-6
    ip "$fam" rule add from "$addr" lookup "$n"
    ip "$fam" route replace default via "$via" dev "$dev" table "$n"
done
