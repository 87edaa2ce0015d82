#!/usr/bin/env bash
# A DSS checksum failure that mptun catches (RFC 8684 §3.7), against Linux. A Linux
# MPTCP client with DSS checksums (net.mptcp.checksum_enabled=1) runs an FTP-like
# dialogue (algclient.py) through mptun's echo service on port 21, across HOST as a
# NAT whose kernel FTP ALG rewrites the address in PORT commands (10,1,0,1 ->
# 10,1,0,9) and fixes the TCP checksum. USER and 1 MiB of text pass unchanged first,
# so the first rewritten PORT line is a later mapping: mptun's DSS checksum catches
# it, mptun sends MP_FAIL and takes the subflow's bytes as the stream; Linux echoes
# MP_FAIL and sends an infinite mapping; the connection goes on as plain TCP (1 MiB
# more) and ends without a reset, every byte echoed, rewritten ones as the ALG left
# them. Checked on both sides: algclient's result and MPTCP_INFO, Linux's counters
# (MPFailRx, InfiniteMapTx, no checksum error of its own, no reset) and mptun's
# status counters (mptcp_checksum_errors, mptcp_mp_fail_tx/rx, mptcp_infinite_map_rx,
# mptcp_fallbacks; no bad TCP checksum: the ALG's segments were valid TCP).
# CHECKSUM_BY=mptun: mptun asks for DSS checksums (--checksum) instead of Linux.
. "$(dirname "$0")/lib.sh"
topology_up
peer_exec sysctl -qw net.mptcp.enabled=1
nft_ftp_alg "$HOST" "$TUN" 10.1.0.1 10.1.0.9
if [ "${CHECKSUM_BY:-linux}" = mptun ]; then
    mptun_start --echo 21 --checksum
else
    peer_exec sysctl -qw net.mptcp.checksum_enabled=1
    mptun_start --echo 21
fi

counter() { peer_exec nstat -az "$1" | awk -v k="$1" '$1 == k {print $2}'; }
peer_counters() { peer_exec nstat -az | awk '$1 ~ /^MPTcpExt/ && $2 != 0 {printf "%s=%s ", $1, $2}'; }

out=$(peer_exec python3 "$NETNS_DIR/algclient.py" 10.10.1.2 21 --mptcp --addr 10.1.0.1 --nat-addr 10.1.0.9) ||
    fail "dialogue through the ALG: $out; PEER counters: $(peer_counters)"
log "algclient: $out"
[ "$(nft_ftp_alg_natted "$HOST")" -ge 1 ] || fail "the NAT rule took no connection"
rewritten=$(json_eval "$out" 'd["rewritten"]')
[ "$rewritten" -ge 1 ] || fail "the ALG rewrote no PORT line: $out"
ok=$(json_eval "$out" 'd["mptcp_info_before"] is not None and not d["mptcp_info_before"]["fallback"] and d["mptcp_info_before"]["remote_key_received"]')
[ "$ok" = true ] || fail "Linux was not running MPTCP before the PORT lines: $out"
ok=$(json_eval "$out" 'd["mptcp_info_after"] is None or d["mptcp_info_after"]["fallback"]')
[ "$ok" = true ] || fail "Linux did not fall back to TCP: $out"

# Linux's side: it received our MP_FAIL and answered with an infinite mapping.
for k in MPTcpExtMPCapableSYNACKRX MPTcpExtMPFailRx MPTcpExtInfiniteMapTx; do
    v=$(counter "$k")
    [ "${v:-0}" -ge 1 ] || fail "$k is ${v:-0} in PEER, expected >= 1; PEER counters: $(peer_counters)"
done
for k in MPTcpExtDataCsumErr MPTcpExtInfiniteMapRx MPTcpExtFallbackFailed MPTcpExtMPRstTx MPTcpExtMPRstRx MPTcpExtMPFastcloseTx MPTcpExtMPFastcloseRx; do
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
want = {"mptcp_checksum_errors": ">=1", "mptcp_mp_fail_tx": ">=1", "mptcp_mp_fail_rx": ">=1",
        "mptcp_infinite_map_rx": ">=1", "mptcp_fallbacks": ">=1", "mptcp_infinite_map_tx": "0",
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
