#!/usr/bin/env bash
# mptun as the MPTCP client: --local-forward opens a connection from the stack to a
# Linux MPTCP echo server (IPPROTO_MPTCP) in PEER. Bytes come back exact, and the
# server's kernel counters show a real MPTCP connection (MP_CAPABLE SYN and third
# ACK received, no fallback). CHECKSUM=1 turns on Linux's DSS checksums.
. "$(dirname "$0")/lib.sh"
topology_up
peer_exec sysctl -qw net.mptcp.enabled=1
[ "${CHECKSUM:-0}" = 1 ] && peer_exec sysctl -qw net.mptcp.checksum_enabled=1
echo_server "$PEER" 10.1.0.1 5000 --mptcp
mptun_start --local-forward 127.0.0.1:6000=10.1.0.1:5000 ${MPTUN_EXTRA:-}

counter() { peer_exec nstat -az "$1" | awk -v k="$1" '$1 == k {print $2}'; }

out=$(tcpclient_host 127.0.0.1 6000 --bytes $((32 << 20))) || fail "32 MiB through mptun's MPTCP client: $out"
log "$out"
for k in MPTcpExtMPCapableSYNRX MPTcpExtMPCapableACKRX; do
    v=$(counter "$k")
    [ "${v:-0}" -ge 1 ] || fail "$k is ${v:-0} in PEER, expected >= 1"
done
for k in MPTcpExtMPCapableFallbackACK MPTcpExtMPCapableDataFallback MPTcpExtDssFallback MPTcpExtDSSNotMatching MPTcpExtDataCsumErr MPTcpExtInfiniteMapRx; do
    v=$(counter "$k")
    [ "${v:-0}" = 0 ] || fail "$k is $v in PEER, expected 0"
done
log "PEER counters: $(peer_exec nstat -az | awk '$1 ~ /^MPTcpExt/ && $2 != 0 {printf "%s=%s ", $1, $2}')"
