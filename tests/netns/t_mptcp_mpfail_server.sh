#!/usr/bin/env bash
# A DSS checksum failure that Linux catches in mptun's data (RFC 8684 §3.7). mptun
# (--checksum) is the MPTCP client of a Linux MPTCP echo server on port 21 in PEER
# (--local-forward 127.0.0.1:6000=10.1.0.1:21); a plain TCP client in HOST runs an
# FTP-like dialogue (algclient.py) through it, and HOST is a NAT whose kernel FTP ALG
# rewrites the address in mptun's PORT commands (10,10,1,2 -> 10,10,1,9) and fixes
# the TCP checksum. USER and 1 MiB of text pass unchanged first, so the first
# rewritten PORT line is a later mapping: Linux's DSS checksum catches it and Linux
# sends MP_FAIL; mptun echoes MP_FAIL and puts an infinite mapping on its next data;
# the connection goes on as plain TCP (1 MiB more) and ends without a reset, every
# byte echoed, rewritten ones as the ALG left them. Checked on both sides:
# algclient's result, Linux's counters (DataCsumErr, MPFailTx, MPFailRx,
# InfiniteMapRx, no reset) and mptun's status counters (mptcp_mp_fail_rx/tx,
# mptcp_infinite_map_tx, mptcp_fallbacks, no checksum error of its own).
# CHECKSUM_BY=linux: Linux asks for DSS checksums (net.mptcp.checksum_enabled=1 in
# PEER) instead of mptun.
. "$(dirname "$0")/lib.sh"
topology_up
peer_exec sysctl -qw net.mptcp.enabled=1
nft_ftp_alg "$HOST" h1 10.10.1.2 10.10.1.9
csum=--checksum
if [ "${CHECKSUM_BY:-mptun}" = linux ]; then
    peer_exec sysctl -qw net.mptcp.checksum_enabled=1
    csum=
fi
echo_server "$PEER" 10.1.0.1 21 --mptcp --quit
mptun_start $csum --local-forward 127.0.0.1:6000=10.1.0.1:21

counter() { peer_exec nstat -az "$1" | awk -v k="$1" '$1 == k {print $2}'; }
peer_counters() { peer_exec nstat -az | awk '$1 ~ /^MPTcpExt/ && $2 != 0 {printf "%s=%s ", $1, $2}'; }

out=$(host_exec python3 "$NETNS_DIR/algclient.py" 127.0.0.1 6000 --addr 10.10.1.2 --nat-addr 10.10.1.9 --quit) ||
    fail "dialogue through mptun and the ALG: $out; PEER counters: $(peer_counters)"
log "algclient: $out"
[ "$(nft_ftp_alg_natted "$HOST")" -ge 1 ] || fail "the NAT rule took no connection"
rewritten=$(json_eval "$out" 'd["rewritten"]')
[ "$rewritten" -ge 1 ] || fail "the ALG rewrote no PORT line: $out"

# Linux's side: a bad DSS checksum, MP_FAIL sent and answered, the infinite mapping.
for k in MPTcpExtMPCapableSYNRX MPTcpExtMPCapableACKRX MPTcpExtDataCsumErr MPTcpExtMPFailTx MPTcpExtMPFailRx MPTcpExtInfiniteMapRx; do
    v=$(counter "$k")
    [ "${v:-0}" -ge 1 ] || fail "$k is ${v:-0} in PEER, expected >= 1; PEER counters: $(peer_counters)"
done
for k in MPTcpExtInfiniteMapTx MPTcpExtFallbackFailed MPTcpExtMPRstTx MPTcpExtMPRstRx MPTcpExtMPFastcloseTx MPTcpExtMPFastcloseRx; do
    v=$(counter "$k")
    [ "${v:-0}" = 0 ] || fail "$k is $v in PEER, expected 0; PEER counters: $(peer_counters)"
done

# mptun's side, once the connection is gone and its counters are folded in.
folded() { mptun_status_json | python3 -c 'import json, sys; c = json.load(sys.stdin)["counters"]; sys.exit(c["mptcp_connections"] + c["mptcp_fallbacks"] == 0)'; }
wait_until 10 folded || fail "the connection did not end in mptun: $(mptun_status_json)"
st=$(mptun_status_json)
problems=$(python3 -c '
import json, sys
c = json.loads(sys.argv[1])["counters"]
want = {"mptcp_mp_fail_rx": ">=1", "mptcp_mp_fail_tx": ">=1", "mptcp_infinite_map_tx": ">=1",
        "mptcp_fallbacks": ">=1", "mptcp_checksum_errors": "0", "mptcp_infinite_map_rx": "0",
        "resets_sent": "0", "resets_received": "0", "drop_bad_checksum": "0"}
bad = []
for k, w in want.items():
    v = c.get(k)
    if v is None or (w == ">=1" and v < 1) or (w == "0" and v != 0):
        bad.append(f"{k}={v} (want {w})")
print("; ".join(bad))
' "$st")
[ -z "$problems" ] || fail "mptun counters: $problems; all: $(json_eval "$st" 'd["counters"]')"
log "mptun counters: $(json_eval "$st" '{k: v for k, v in d["counters"].items() if k.startswith("mptcp_") or k in ("resets_sent", "resets_received", "drop_bad_checksum")}')"
log "PEER counters: $(peer_counters)"
