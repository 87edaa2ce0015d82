#!/usr/bin/env bash
# A Linux MPTCP client (IPPROTO_MPTCP socket) in PEER echoes 64 MiB through mptun's
# echo service over IPv4 and IPv6, and Linux really ran MPTCP: MPTCP_INFO shows no
# fallback and the remote key received; the PEER namespace's kernel counters show
# our MP_CAPABLE SYN/ACK and no fallback, DSS mismatch or checksum error.
# CHECKSUM=1 also turns on net.mptcp.checksum_enabled in PEER.
. "$(dirname "$0")/lib.sh"
topology_up
peer_exec sysctl -qw net.mptcp.enabled=1
[ "${CHECKSUM:-0}" = 1 ] && peer_exec sysctl -qw net.mptcp.checksum_enabled=1
mptun_start --echo 7 ${MPTUN_EXTRA:-}

counter() { peer_exec nstat -az "$1" | awk -v k="$1" '$1 == k {print $2}'; }

for host in 10.10.1.2 fd10:1::2; do
    out=$(tcpclient_peer "$host" 7 --bytes $((64 << 20)) --mptcp) || fail "MPTCP echo of 64 MiB to $host: $out"
    log "$host: $out"
    ok=$(json_eval "$out" 'd["mptcp_info"] is not None and not d["mptcp_info"]["fallback"] and d["mptcp_info"]["remote_key_received"]')
    [ "$ok" = true ] || fail "$host: Linux's MPTCP_INFO says fallback or no remote key: $out"
done

syn_ack_rx=$(counter MPTcpExtMPCapableSYNACKRX)
[ "${syn_ack_rx:-0}" -ge 2 ] || fail "MPTcpExtMPCapableSYNACKRX is ${syn_ack_rx:-0}, expected >= 2"
for k in MPTcpExtMPCapableFallbackSYNACK MPTcpExtMPCapableFallbackACK MPTcpExtMPCapableDataFallback MPTcpExtDssFallback MPTcpExtDSSNotMatching MPTcpExtDataCsumErr MPTcpExtInfiniteMapRx; do
    v=$(counter "$k")
    [ "${v:-0}" = 0 ] || fail "$k is $v in PEER, expected 0"
done
log "PEER counters: $(peer_exec nstat -az | awk '$1 ~ /^MPTcpExt/ && $2 != 0 {printf "%s=%s ", $1, $2}')"
