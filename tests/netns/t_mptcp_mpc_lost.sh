#!/usr/bin/env bash
# The Linux MPTCP client's third ACK and first data (both with MP_CAPABLE) are
# lost, and the rest of its first flight reaches mptun (the server) before the
# retransmission: mptun must send nothing without MPTCP options meanwhile (Linux's
# client falls back at the first segment with neither a DATA_ACK nor MP_CAPABLE),
# so the retransmitted first data, with MP_CAPABLE, decides. Deterministic: the
# HOST drops packets 2 and 3 of the client's direction (conntrack's count).
. "$(dirname "$0")/lib.sh"
topology_up
peer_exec sysctl -qw net.mptcp.enabled=1
host_exec sysctl -qw net.netfilter.nf_conntrack_acct=1 2>/dev/null || true
host_exec nft -f - <<NFT || fail "nftables rule not installed"
table inet mptest {
    chain fwdloss {
        type filter hook forward priority 0; policy accept;
        ip daddr 10.10.1.2 tcp dport 7 ct original packets 2-3 counter drop
    }
}
NFT
host_exec sysctl -qw net.netfilter.nf_conntrack_acct=1 || fail "no conntrack accounting in HOST"
mptun_start --echo 7

counter() { peer_exec nstat -az "$1" | awk -v k="$1" '$1 == k {print $2}'; }

out=$(tcpclient_peer 10.10.1.2 7 --bytes $((1 << 20)) --mptcp --timeout 60 --idle-timeout 30) ||
    fail "MPTCP echo of 1 MiB after a lost MP_CAPABLE: $out"
log "$out"
[ "$(nft_dropped "$HOST")" = 2 ] || fail "the rule dropped $(nft_dropped "$HOST") packets, expected 2"
ok=$(json_eval "$out" 'd["mptcp_info"] is not None and not d["mptcp_info"]["fallback"]')
[ "$ok" = true ] || fail "Linux's MPTCP_INFO says fallback: $out; PEER counters: $(peer_exec nstat -az | awk '$1 ~ /^MPTcpExt/ && $2 != 0 {printf "%s=%s ", $1, $2}')"
for k in MPTcpExtMPCapableFallbackACK MPTcpExtMPCapableDataFallback MPTcpExtDssFallback; do
    v=$(counter "$k")
    [ "${v:-0}" = 0 ] || fail "$k is $v in PEER, expected 0"
done
[ "$(counter MPTcpExtMPCapableSYNTX)" -ge 1 ] || fail "PEER sent no MP_CAPABLE SYN"
log "PEER counters: $(peer_exec nstat -az | awk '$1 ~ /^MPTcpExt/ && $2 != 0 {printf "%s=%s ", $1, $2}')"
