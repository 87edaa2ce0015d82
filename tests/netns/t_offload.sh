#!/usr/bin/env bash
# TUN offloads: by default mptun opens its TUN with IFF_VNET_HDR (TCP super-packets
# both ways); with --no-offload without. Either way a Linux client's 64 MiB echo over
# IPv4 and IPv6 comes back intact (length and SHA-256). With offloads the pcap still
# holds ordinary packets: none above the MTU, every TCP checksum valid (tshark).
# Without a capture the engine takes the kernel's GRO super-packets whole
# (counted in super_packets_in, their segments in segments_in); with one, never.
. "$(dirname "$0")/lib.sh"
topology_up

tun_flags() { ip netns exec "$HOST" cat "/sys/class/net/$TUN/tun_flags"; }
IFF_VNET_HDR=$((0x4000))

echo_both() {
    local out
    out=$(tcpclient_peer 10.10.1.2 7 --bytes $((64 << 20))) || fail "$1: IPv4 echo of 64 MiB: $out"
    log "$1 IPv4: $out"
    out=$(tcpclient_peer fd10:1::2 7 --bytes $((64 << 20))) || fail "$1: IPv6 echo of 64 MiB: $out"
    log "$1 IPv6: $out"
}

command -v tshark >/dev/null || fail "tshark missing: run tests/netns/install-deps.sh"
pcap="$DIR/offload.pcap"
mptun_start --echo 7 --pcap "$pcap"
grep -q 'TUN device up.*offload=true' "$MPTUN_LOG" || fail "offloads not on by default"
(($(tun_flags) & IFF_VNET_HDR)) || fail "no IFF_VNET_HDR on $TUN: $(tun_flags)"
echo_both offload
whole=$(mptun_counter super_packets_in)
[ "$whole" -eq 0 ] || fail "$whole super-packets taken whole despite the capture"
mptun_stop 5 || fail "mptun exited with status $?"
count() { tshark -r "$pcap" -o tcp.check_checksum:TRUE -Y "$1" 2>/dev/null | wc -l; }
tcp=$(count tcp)
big=$(count "frame.len > 1500")
bad=$(count "tcp.checksum.status != 1 || _ws.malformed")
log "capture: $tcp TCP packets, $big above 1500 bytes, $bad without a good checksum"
[ "$tcp" -gt 90000 ] || fail "too few TCP packets in the capture: $tcp"
[ "$big" -eq 0 ] || fail "$big packets above the MTU in the capture"
[ "$bad" -eq 0 ] || fail "$bad TCP packets without a good checksum in the capture"
wait_until 5 bash -c "! ip -n '$HOST' link show '$TUN'" || fail "$TUN still there"

mptun_start --echo 7
echo_both whole
status=$(mptun_status_json)
whole=$(mptun_counter super_packets_in "$status")
segs=$(mptun_counter segments_in "$status")
log "no capture: $whole super-packets taken whole, $segs segments in"
[ "$whole" -gt 100 ] || fail "only $whole super-packets taken whole"
# 2 x 64 MiB of payload in MSS-sized segments at least: every merged one counted.
[ "$segs" -gt $((2 * (64 << 20) / 1460)) ] || fail "segments_in $segs misses merged segments"
mptun_stop 5 || fail "mptun exited with status $?"
wait_until 5 bash -c "! ip -n '$HOST' link show '$TUN'" || fail "$TUN still there"

mptun_start --echo 7 --no-offload
grep -q 'TUN device up.*offload=false' "$MPTUN_LOG" || fail "--no-offload did not turn offloads off"
(($(tun_flags) & IFF_VNET_HDR)) && fail "IFF_VNET_HDR on $TUN despite --no-offload: $(tun_flags)"
echo_both no-offload
