#!/usr/bin/env bash
# mptun's character generator (--chargen, RFC 864): a Linux client in PEER reads
# 32 MiB over TCP and then over MPTCP from port 19, checks every byte against
# RFC 864's pattern, sends lines of its own (which the service discards) and
# closes while the stream is still coming. Asserted: every byte is the pattern;
# the second connection was MPTCP (Linux's MPCapableSYNACKRX rose, no fallback);
# mptun then holds no connection (each ended when the client's stack answered
# the data still coming with a RST), the chargen service counts both and at
# least the bytes read; a third client can still read.
. "$(dirname "$0")/lib.sh"
topology_up
mptun_start --chargen 19
BYTES=$((32 << 20))
read_chargen() {
    peer_exec python3 "$NETNS_DIR/chargenclient.py" 10.10.1.2 19 "$@"
}
out=$(read_chargen "$BYTES" 2>&1) || fail "TCP chargen read: $out"
log "TCP: $out"
syn_ack_before=$(peer_counter MPTcpExtMPCapableSYNACKRX)
out=$(read_chargen "$BYTES" --mptcp 2>&1) || fail "MPTCP chargen read: $out"
log "MPTCP: $out"
[ "$(peer_counter MPTcpExtMPCapableSYNACKRX)" -gt "$syn_ack_before" ] \
    || fail "Linux saw no MP_CAPABLE SYN-ACK: the MPTCP read was plain TCP ($(peer_counters_nonzero))"
peer_counters_expect -eq 0 "${MP_PEER_ZERO[@]}"

no_conns() { [ "$(json_eval "$(mptun_status_json)" 'len(d.get("connections", []))')" = 0 ]; }
wait_until 10 no_conns || fail "mptun still holds connections after the clients closed: $(mptun_status_text)"
svc=$(mptun_status_json)
conns=$(json_eval "$svc" '[s for s in d["services"] if s["kind"] == "chargen"][0]["connections"]')
bytes=$(json_eval "$svc" '[s for s in d["services"] if s["kind"] == "chargen"][0]["bytes"]')
[ "$conns" = 2 ] || fail "chargen counted $conns connections, expected 2"
[ "$bytes" -ge $((2 * BYTES)) ] || fail "chargen counted $bytes bytes sent, fewer than the $((2 * BYTES)) read"
log "chargen: $conns connections, $bytes bytes sent"
out=$(read_chargen 1000 2>&1) || fail "a third read after the first two: $out"
