#!/usr/bin/env bash
# MPTCP v0 (RFC 6824) between two mptun daemons, each on its own TUN in its own
# namespace, the kernel routing between them over the two paths:
#
#   HOST: mptun A (TUN mpt0) 10.10.1.2, 10.10.2.2  --local-forward client, v0 only
#         `--addr 10.10.2.2,subflow`; routes 10.30.0.2 by path 1, and (source
#         rule) A's packets from 10.10.2.2 by path 2
#   PEER: mptun B (TUN mpt1) 10.30.0.2  `--echo 7 --mptcp-version 1,0`; forwards
#         (PEER's routes take 10.10.N.0/24 by path N)
#
# A plain TCP client in HOST echoes 32 MiB through A (`--local-forward
# 127.0.0.1:6000=10.30.0.2:7`) to B's echo service: exact (length and SHA-256);
# both paths shaped to 100 Mbit/s both ways. A joins from 10.10.2.2 over path 2,
# which carries >= 1 MiB. Both daemons' status show the connection as version 0
# with DSS checksums, no fallback, a join established (B: MP_JOIN SYN received),
# no HMAC or checksum failure. tcpdump on HOST's h1 and h2 (the first 40 packets),
# dissected by tshark:
# A's SYN carries MP_CAPABLE version 0 with A's key (mptcp.sendkey, the key A's
# status reports, Wireshark's token of it A's token), B's SYN/ACK version 0 with
# B's key, and the token in the MP_JOIN SYN on path 2 is the mptcp.expected_token
# Wireshark derives from B's key (B's token). The tshark lines are printed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_pm.sh"
topology_up
peer_exec sysctl -qw net.ipv4.ip_forward=1
ip -n "$HOST" route add 10.30.0.0/24 via 10.1.0.1 dev h1
ip -n "$HOST" rule add from 10.10.2.2 table 102
ip -n "$HOST" route add 10.30.0.0/24 via 10.2.0.1 dev h2 table 102
for i in 1 2; do
    shape "$HOST" "h$i" 100mbit
    shape "$PEER" "p$i" 100mbit
done

CTL_B="$DIR/ctl-b.sock"
mptun2_start "$PEER" mpt1 "$CTL_B" "$DIR/mptun-b.log" --addr 10.30.0.2 --echo 7 --mptcp-version 1,0
MPTUN_ADDRS=(10.10.1.2 10.10.2.2,subflow)
mptun_start --mptcp-version 0 --local-forward 127.0.0.1:6000=10.30.0.2:7
status_b() { "$MPTUN" status --control "$CTL_B" --json; }

# The handshakes are all the capture needs: the first 40 TCP packets of each path.
bg_run "$HOST" tcpdump -i h1 -s 200 -c 40 -U -w "$DIR/path1.pcap" tcp 2>"$DIR/tcpdump1.err"
bg_run "$HOST" tcpdump -i h2 -s 200 -c 40 -U -w "$DIR/path2.pcap" tcp 2>"$DIR/tcpdump2.err"
wait_until 5 test -s "$DIR/path1.pcap" || fail "tcpdump on h1 did not start"
wait_until 5 test -s "$DIR/path2.pcap" || fail "tcpdump on h2 did not start"
sleep 0.5

total=$((32 << 20))
p2_before=$(link_bytes "$HOST" h2)
bg_run "$HOST" python3 "$NETNS_DIR/tcpclient.py" 127.0.0.1 6000 --bytes "$total" \
    >"$DIR/client.json" 2>"$DIR/client.err"
client=$BG_PID

# Both daemons' view while the transfer runs, once A's join is established.
joined() {
    local a b
    a=$(mptun_conn_json 'c["remote"] == "10.30.0.2:7" and len([s for s in c["subflows"] if s["state"] == "ESTABLISHED"]) == 2') || return 1
    b=$(json_eval "$(status_b)" 'next((c for c in d["connections"] if c["local"] == "10.30.0.2:7" and len(c["subflows"]) == 2), None)') || return 1
    echo "$a" >"$DIR/conn-a.json"
    echo "$b" >"$DIR/conn-b.json"
}
seen=0
while kill -0 "$client" 2>/dev/null; do
    if joined; then seen=1; break; fi
    sleep 0.05
done
rc=0
wait "$client" || rc=$?
out=$(cat "$DIR/client.json")
[ "$rc" = 0 ] || { tail -n 20 "$DIR/mptun-b.log" >&2; fail "echo of 32 MiB over v0: $out $(cat "$DIR/client.err")"; }
log "client: $out"
[ "$seen" = 1 ] || fail "the daemons' status never showed the connection with two subflows (A: $(mptun_status_json); B: $(status_b))"
a=$(cat "$DIR/conn-a.json")
b=$(cat "$DIR/conn-b.json")
log "A: $(json_eval "$a" 'd["mptcp"]')"
log "A subflows: $(json_eval "$a" '[(s["local"], s["remote"], s["addr_id"], s["state"]) for s in d["subflows"]]')"
log "B: $(json_eval "$b" 'd["mptcp"]')"
log "B subflows: $(json_eval "$b" '[(s["local"], s["remote"], s["remote_addr_id"], s["state"]) for s in d["subflows"]]')"
for x in "$a" "$b"; do
    [ "$(json_eval "$x" 'd["mptcp"]["version"] == 0 and d["mptcp"]["checksum"] and not d["mptcp"]["fallback"]')" = true ] ||
        fail "not a v0 connection with checksums and without fallback: $x"
done
[ "$(json_eval "$a" 'd["mptcp"]["remote_key"] == "'"$(json_eval "$b" 'd["mptcp"]["local_key"]')"'"')" = true ] ||
    fail "A's remote key is not B's key"
[ "$(json_eval "$a" 'any(s["local"].startswith("10.10.2.2:") for s in d["subflows"])')" = true ] ||
    fail "A has no subflow from 10.10.2.2: $a"

sta=$(mptun_status_json)
stb=$(status_b)
mptun_counters_expect "$sta" -ge 1 mptcp_joins_established
mptun_counters_expect "$stb" -ge 1 mptcp_join_syn_rx mptcp_joins_established
for st in "$sta" "$stb"; do
    mptun_counters_expect "$st" -eq 0 "${MPTUN_ZERO[@]}" mptcp_v0_retries
done
log "A counters: $(mptun_counters_nonzero "$sta")"
log "B counters: $(mptun_counters_nonzero "$stb")"

read -r rx0 tx0 <<<"$p2_before"
read -r rx1 tx1 <<<"$(link_bytes "$HOST" h2)"
log "path 2 (HOST h2): $((tx1 - tx0)) bytes A -> B, $((rx1 - rx0)) bytes B -> A"
[ $((rx1 - rx0 + tx1 - tx0)) -ge $((1 << 20)) ] || fail "path 2 carried less than 1 MiB"

# The capture, dissected by Wireshark.
sleep 0.3
for p in "${BG_PIDS[@]}"; do
    [[ $(ps -o comm= -p "$p" 2>/dev/null) == tcpdump ]] && kill -INT "$p" 2>/dev/null
done
sleep 0.5
ts() { tshark -r "$@" 2>/dev/null; }
f='-T fields -E header=y -E separator=/t -e frame.number -e ip.src -e ip.dst -e tcp.srcport -e tcp.dstport -e tcp.flags.str'
mpc='tcp.options.mptcp.subtype == 0 && tcp.flags.syn == 1'
log "tshark, path 1, MP_CAPABLE on SYN and SYN/ACK:"
# shellcheck disable=SC2086
ts "$DIR/path1.pcap" -Y "$mpc" $f -e tcp.options.mptcp.version -e tcp.options.mptcp.checksumreq.flags -e tcp.options.mptcp.sendkey -e mptcp.expected_token -e mptcp.expected_idsn | tee "$DIR/mpc.txt" | sed 's/^/    /' >&2
log "tshark, path 1, third ACK (MP_CAPABLE with both keys):"
# shellcheck disable=SC2086
ts "$DIR/path1.pcap" -Y 'tcp.options.mptcp.subtype == 0 && tcp.flags.syn == 0' $f -e tcp.options.mptcp.version -e tcp.options.mptcp.sendkey -e tcp.options.mptcp.recvkey | head -n 3 | sed 's/^/    /' >&2
log "tshark, path 2, MP_JOIN:"
# shellcheck disable=SC2086
ts "$DIR/path2.pcap" -Y 'tcp.options.mptcp.subtype == 1' $f -e tcp.options.mptcp.recvtok -e tcp.options.mptcp.sendrand -e tcp.options.mptcp.sendtrunchmac -e tcp.options.mptcp.sendhmac -e tcp.options.mptcp.addrid | head -n 4 | tee "$DIR/join.txt" | sed 's/^/    /' >&2
log "tshark -V, A's SYN:"
ts "$DIR/path1.pcap" -Y "$mpc && tcp.flags.ack == 0" -O tcp -V | sed -n '/Multipath TCP/,/Multipath TCP Data\|Timestamps\|\[/p' | head -n 12 | sed 's/^/    /' >&2

# A's SYN: v0 with A's key; B's SYN/ACK: v0 with B's key.
read -r _ _ _ _ _ _ syn_ver _ syn_key syn_tok _ < <(awk -F'\t' 'NR > 1 && $4 != 7 {print; exit}' "$DIR/mpc.txt" | tr '\t' ' ')
read -r _ _ _ _ _ _ sa_ver _ sa_key sa_tok _ < <(awk -F'\t' 'NR > 1 && $4 == 7 {print; exit}' "$DIR/mpc.txt" | tr '\t' ' ')
[ "${syn_ver:-}" = 0 ] || fail "A's SYN: MP_CAPABLE version '${syn_ver:-}', expected 0"
[ -n "${syn_key:-}" ] || fail "A's SYN carries no key (mptcp.sendkey)"
[ "$(printf '%016x' "$syn_key")" = "$(json_eval "$a" 'd["mptcp"]["local_key"]')" ] || fail "the key in A's SYN ($syn_key) is not A's key"
[ "$(printf '%08x' "$syn_tok")" = "$(json_eval "$a" 'd["mptcp"]["local_token"]')" ] || fail "Wireshark's token of A's key ($syn_tok) is not A's token"
[ "${sa_ver:-}" = 0 ] || fail "B's SYN/ACK: MP_CAPABLE version '${sa_ver:-}', expected 0"
[ "$(printf '%016x' "$sa_key")" = "$(json_eval "$b" 'd["mptcp"]["local_key"]')" ] || fail "the key in B's SYN/ACK ($sa_key) is not B's key"
[ "$(printf '%08x' "$sa_tok")" = "$(json_eval "$b" 'd["mptcp"]["local_token"]')" ] || fail "Wireshark's token of B's key ($sa_tok) is not B's token"
# The MP_JOIN SYN names B by the token Wireshark derives from B's key.
join_tok=$(awk -F'\t' 'NR > 1 && $5 == 7 && $7 != "" {print $7; exit}' "$DIR/join.txt")
[ -n "$join_tok" ] || fail "no MP_JOIN SYN from A on path 2"
[ "$join_tok" = "$sa_tok" ] || fail "the MP_JOIN SYN's token $join_tok is not Wireshark's expected token $sa_tok of B's key"
log "v0: A's SYN key $syn_key (token $syn_tok), B's SYN/ACK key $sa_key (token $sa_tok); MP_JOIN SYN token $join_tok = B's expected token"
bad=$(ts "$DIR/path1.pcap" -Y 'mptcp.connection.echoed_key_mismatch || mptcp.connection.missing_algorithm || mptcp.connection.unsupported_algorithm' | wc -l)
[ "$bad" = 0 ] || fail "Wireshark flags $bad MPTCP handshake problems on path 1"
