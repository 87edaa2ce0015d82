#!/usr/bin/env bash
# Wireshark checks our MPTCP crypto independently: in a capture of a Linux MPTCP
# client talking to mptun, the key mptun sent in its SYN/ACK is the key `status`
# reports, the token Wireshark derives from it is the token `status` reports, the
# first DSN mptun maps is Wireshark's expected IDSN + 1, and Wireshark flags no
# MPTCP problem (echoed key mismatch, missing or infinite mapping).
. "$(dirname "$0")/lib.sh"
topology_up
peer_exec sysctl -qw net.mptcp.enabled=1
mptun_start --echo 7 --pcap "$DIR/mptcp.pcap"

# Keep the connection open while status is read: send, then wait before closing.
peer_exec python3 - <<'PY' &
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)
s.connect(("10.10.1.2", 7))
s.sendall(b"x" * 100000)
got = 0
while got < 100000:
    got += len(s.recv(65536))
time.sleep(2)
s.close()
PY
client=$!
wait_until 5 sh -c "\"$MPTUN\" status --control \"$CTL\" --json | grep -q '\"local_token\"'" \
    || fail "status never showed an MPTCP connection"
st=$(mptun_status_json)
wait "$client" || fail "MPTCP client failed"
mptun_stop || fail "mptun did not exit cleanly"

key_status=$(json_eval "$st" 'd["connections"][0]["mptcp"]["local_key"]')
token_status=$(json_eval "$st" 'd["connections"][0]["mptcp"]["local_token"]')
fallback=$(json_eval "$st" 'd["connections"][0]["mptcp"]["fallback"]')
[ "$fallback" = false ] || fail "status says fallback: $st"

read -r key_wire token_ws idsn_ws < <(tshark -r "$DIR/mptcp.pcap" -Y 'tcp.srcport == 7 && tcp.flags.syn == 1 && tcp.flags.ack == 1' \
    -T fields -e tcp.options.mptcp.sendkey -e mptcp.expected_token -e mptcp.expected_idsn 2>/dev/null | head -n1)
[ -n "${key_wire:-}" ] || fail "no MP_CAPABLE key in mptun's SYN/ACK"
log "SYN/ACK key $key_wire, Wireshark token $token_ws, IDSN $idsn_ws; status key $key_status token $token_status"
[ "$(printf '%016x' "$key_wire")" = "$key_status" ] || fail "key on the wire $key_wire != status key $key_status"
[ "$(printf '%08x' "$token_ws")" = "$token_status" ] || fail "Wireshark token $token_ws != status token $token_status"

first_dsn=$(tshark -r "$DIR/mptcp.pcap" -Y 'tcp.srcport == 7 && tcp.len > 0' \
    -T fields -e tcp.options.mptcp.rawdataseqno 2>/dev/null | awk 'NF {print; exit}')
[ "$first_dsn" = "$(python3 -c "print(($idsn_ws + 1) % 2**64)")" ] \
    || fail "first DSN $first_dsn is not Wireshark's expected IDSN $idsn_ws + 1"

bad=$(tshark -r "$DIR/mptcp.pcap" -Y 'mptcp.connection.echoed_key_mismatch || mptcp.dss.missing_mapping || mptcp.dss.infinite_mapping || mptcp.connection.missing_algorithm' 2>/dev/null | wc -l)
[ "$bad" = 0 ] || fail "Wireshark flags $bad MPTCP problems"
