#!/usr/bin/env bash
# SIGHUP reloads the --config file while a Linux MPTCP client (add_addr_accepted
# 2, no endpoint of its own) echoes 16 MiB through mptun, both paths shaped to
# 20 Mbit/s from Linux. The client pauses (after 2 MiB and after 8 MiB sent)
# until the test lets it go on, so each reload surely lands mid-transfer:
#  1. a file with a bad value: the daemon keeps running with its old
#     configuration; `status` records the reload as failed, naming
#     file:line:col and the key;
#  2. 10.10.2.2 added with `signal`, limits.max-conns-per-source 100 -> 1,
#     tun.mtu changed, log.level set: Linux counts the ADD_ADDR (AddAddr) and
#     joins 10.10.2.2 (MPJoinSynTx/SynAckRx, an established subflow in mptun's
#     status); a second connection from the client's address is refused (RST:
#     the new limit holds); status shows the limit and the reload, with
#     tun.mtu and log.level not applied (a restart; RUST_LOG, which the
#     harness sets, wins);
#  3. 10.10.2.2 removed, the limit back to 100: Linux counts RmAddr, the
#     connection stays up, a new connection is served again;
# and the echo is exact (length and SHA-256), with no fallback on either side
# and no rejected join. mptun stops with status 0.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_pm.sh"
mp_topology_up
ip -n "$PEER" mptcp limits set subflows 2 add_addr_accepted 2
shape "$PEER" p1 20mbit
shape "$PEER" p2 20mbit
# The addresses come from the file (mptun_start still adds --tun, --control
# and --threads on the command line, which a reload keeps).
MPTUN_ADDRS=()
CONF="$DIR/mptun.toml"

conf() { # conf [ADDRESS TABLES] PER_SOURCE [MORE]: the whole file
    cat >"$CONF" <<EOF
[[address]]
ip = "10.10.1.2"
$1
[services]
echo = [7]

[limits]
max-conns-per-source = $2
${3:-}
EOF
}
conf "" 100
mptun_start --config "$CONF"

# reloaded PYCOND: SIGHUP, then wait until status's `reload` satisfies PYCOND
# on `r` (it replaces the previous record); prints the status JSON.
reloaded() {
    local cond=$1 st
    kill -HUP "$MPTUN_PID"
    local end=$((SECONDS + 10))
    while [ "$SECONDS" -lt "$end" ]; do
        st=$(mptun_status_json 2>/dev/null) &&
            json_eval "$st" "(lambda r: r is not None and ($cond) or None)(d.get('reload'))" >/dev/null &&
            { echo "$st"; return 0; }
        sleep 0.1
    done
    fail "no reload record with $cond: $(mptun_status_json | python3 -c 'import json,sys; print(json.load(sys.stdin).get("reload"))')"
}

total=$((16 << 20))
bg_run "$PEER" python3 "$NETNS_DIR/tcpclient.py" 10.10.1.2 7 --mptcp --bytes "$total" \
    --pause "$((2 << 20)):$DIR/go1" --mark "$((1 << 20)):$DIR/mark1" \
    --pause "$((8 << 20)):$DIR/go2" --mark "$((7 << 20)):$DIR/mark2" \
    >"$DIR/client.json" 2>"$DIR/client.err"
client=$BG_PID
client_fail() { fail "$1: $(cat "$DIR/client.json") $(cat "$DIR/client.err"); $(mp_diag)"; }
wait_file 30 "$DIR/mark1" "$client" || client_fail "1 MiB was never echoed"
conn_up() { mptun_conn_json 'c["local"] == "10.10.1.2:7" and c["state"] == "ESTABLISHED" and c["mptcp"] is not None' >/dev/null; }
conn_up || client_fail "no MPTCP connection on 10.10.1.2:7"

# 1. A bad file changes nothing.
conf "" '"many"'
st=$(reloaded 'not r["ok"]')
err=$(json_eval "$st" 'd["reload"]["error"]')
[[ $err == "$CONF:8:24: limits.max-conns-per-source: "* ]] || fail "the failed reload's error does not name file:line:col: key: $err"
[ "$(json_eval "$st" 'd["limits"]["max_conns_per_source"]')" = 100 ] || fail "a bad file changed the limit: $st"
[ "$(json_eval "$st" 'd["addresses"]')" = '["10.10.1.2"]' ] || fail "a bad file changed the addresses: $st"
grep -q "reload: $CONF:8:24: limits.max-conns-per-source: .*; the running configuration is kept" "$MPTUN_LOG" ||
    fail "the log does not say why the reload failed"
kill -0 "$MPTUN_PID" || fail "mptun died on a bad file"
conn_up || client_fail "the connection is gone after a bad reload"
log "bad file: $err"

# 2. An address with `signal`, a lower per-source limit, and two settings a
# reload does not apply.
addr_before=$(peer_counter MPTcpExtAddAddr)
conf '[[address]]
ip = "10.10.2.2"
signal = true
[tun]
mtu = 1400
[log]
level = "debug"' 1
st=$(reloaded 'r["ok"] and "address: added 10.10.2.2,signal" in r["applied"]')
r=$(json_eval "$st" 'd["reload"]')
log "reload 1: $r"
[ "$(json_eval "$st" 'd["reload"]["not_applied"]')" = '["tun.mtu", "log.level"]' ] ||
    fail "not applied should be tun.mtu and log.level: $r"
json_eval "$st" '"limits.max-conns-per-source: 100 -> 1" in d["reload"]["applied"] or None' >/dev/null ||
    fail "the limit change is not among the applied: $r"
[ "$(json_eval "$st" 'd["limits"]["max_conns_per_source"]')" = 1 ] || fail "status does not show the new limit: $st"
[ "$(json_eval "$st" 'd["addresses"]')" = '["10.10.1.2", "10.10.2.2"]' ] || fail "addresses after reload 1: $st"
grep -q "reload: tun.mtu: changed (1500 -> 1400) but not applied: a restart is needed" "$MPTUN_LOG" ||
    fail "no warning naming tun.mtu"
grep -qF "reload done: applied 2 (address: added 10.10.2.2,signal; limits.max-conns-per-source: 100 -> 1), not applied 2 (tun.mtu, log.level)" "$MPTUN_LOG" ||
    fail "no one-line summary of reload 1"
peer_addaddr() { [ "$(peer_counter MPTcpExtAddAddr)" -gt "$addr_before" ]; }
wait_until 10 peer_addaddr || client_fail "Linux's MPTcpExtAddAddr did not grow after the reload added 10.10.2.2,signal"
joined() {
    local c
    c=$(mptun_conn_json 'c["local"] == "10.10.1.2:7"') || return 1
    json_eval "$c" 'any(s["local"].startswith("10.10.2.2:") and s["state"] == "ESTABLISHED" for s in d["subflows"]) or None' >/dev/null
}
wait_until 10 joined || client_fail "Linux never joined 10.10.2.2 after the announcement"
peer_counters_expect -ge 1 MPTcpExtMPJoinSynTx MPTcpExtMPJoinSynAckRx
# The lower limit holds for what comes next (the MPTCP connection is the
# source's one), and the transfer goes on.
out=$(connect_outcome "$PEER" 10.10.1.2 7)
[[ $out == *"refused"* ]] || fail "a second connection from the client's address under max-conns-per-source = 1: $out"
log "second connection under the limit: $out"
touch "$DIR/go1"

# 3. The address removed, the limit back.
wait_file 60 "$DIR/mark2" "$client" || client_fail "7 MiB were never echoed"
rm_before=$(peer_counter MPTcpExtRmAddr)
conf "" 100
st=$(reloaded 'r["ok"] and "address: removed 10.10.2.2" in r["applied"]')
log "reload 2: $(json_eval "$st" 'd["reload"]')"
[ "$(json_eval "$st" 'd["reload"]["not_applied"]')" = "[]" ] || fail "reload 2 left something: $st"
[ "$(json_eval "$st" 'd["limits"]["max_conns_per_source"]')" = 100 ] || fail "status does not show the limit back: $st"
peer_rm() { [ "$(peer_counter MPTcpExtRmAddr)" -gt "$rm_before" ]; }
wait_until 10 peer_rm || client_fail "Linux's MPTcpExtRmAddr did not grow after the reload removed 10.10.2.2"
conn_up || client_fail "the connection is gone after the reload removed 10.10.2.2"
out=$(tcpclient_peer 10.10.1.2 7 --bytes 100000) || fail "a new connection after the limit went back up: $out"
touch "$DIR/go2"

rc=0
wait "$client" || rc=$?
out=$(cat "$DIR/client.json")
[ "$rc" = 0 ] || client_fail "MPTCP echo of 16 MiB"
log "client: $out"
ok=$(json_eval "$out" 'not d["mptcp_info"]["fallback"] and not d["mptcp_info_end"]["fallback"]')
[ "$ok" = true ] || fail "Linux's MPTCP_INFO says fallback: $out"
[ "$(json_eval "$out" 'd["mptcp_max_subflows_total"]')" = 2 ] || fail "Linux's MPTCP_INFO never showed 2 subflows: $out"
# The removed address's subflow is reset with MP_TCPRST (MPRstRx, as `addr
# del` does): that one is allowed; at most one, the one subflow on it.
zero=()
for k in "${MP_PEER_ZERO[@]}"; do [ "$k" = MPTcpExtMPRstRx ] || zero+=("$k"); done
peer_counters_expect -eq 0 "${zero[@]}"
peer_counters_expect -le 1 MPTcpExtMPRstRx
log "PEER counters: $(peer_counters_nonzero)"
st=$(mptun_status_json)
mptun_counters_expect "$st" -ge 1 mptcp_add_addr_tx mptcp_joins_established mptcp_rm_addr_tx
mptun_counters_expect "$st" -eq 0 "${MPTUN_ZERO[@]}"
text=$(mptun_status_text)
grep -q "^limits: connections 65536  per source 100 " <<<"$text" || fail "status table without the limits: $text"
grep -q "^reload [0-9]*s ago: ok; applied: address: removed 10.10.2.2, limits.max-conns-per-source: 1 -> 100" <<<"$text" ||
    fail "status table without the last reload: $text"

rc=0
mptun_stop || rc=$?
[ "$rc" = 0 ] || fail "mptun exited $rc"
