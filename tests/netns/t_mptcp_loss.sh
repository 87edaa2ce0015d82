#!/usr/bin/env bash
# MPTCP echo of 16 MiB from a Linux MPTCP client with 1 % random loss (nftables in
# HOST) and reordering from mptun's fault injector: still exact, still MPTCP (no
# fallback or DSS problem in Linux's counters, none in MPTCP_INFO).
. "$(dirname "$0")/lib.sh"
topology_up
peer_exec sysctl -qw net.mptcp.enabled=1
nft_random_loss "$HOST" 1
mptun_start --echo 7 --impair 10.10.1.2:delay=10ms,jitter=5ms,seed=7

counter() { peer_exec nstat -az "$1" | awk -v k="$1" '$1 == k {print $2}'; }

out=$(tcpclient_peer 10.10.1.2 7 --bytes $((16 << 20)) --mptcp --timeout 400 --idle-timeout 60) ||
    fail "MPTCP echo of 16 MiB with loss and jitter: $out"
log "$out"
ok=$(json_eval "$out" 'd["mptcp_info"] is not None and not d["mptcp_info"]["fallback"]')
[ "$ok" = true ] || fail "Linux's MPTCP_INFO says fallback: $out; PEER counters: $(peer_exec nstat -az | awk '$1 ~ /^MPTcpExt/ && $2 != 0 {printf "%s=%s ", $1, $2}')"
[ "$(nft_dropped "$HOST")" -gt 0 ] || fail "the loss rule dropped nothing"
for k in MPTcpExtMPCapableFallbackACK MPTcpExtMPCapableDataFallback MPTcpExtDssFallback MPTcpExtDSSNotMatching MPTcpExtInfiniteMapRx; do
    v=$(counter "$k")
    [ "${v:-0}" = 0 ] || fail "$k is $v in PEER, expected 0"
done
log "PEER counters: $(peer_exec nstat -az | awk '$1 ~ /^MPTcpExt/ && $2 != 0 {printf "%s=%s ", $1, $2}')"
