#!/usr/bin/env bash
# Primary plus overflow on a gateway (issue 13): GW's second WAN address is a
# backup (`--addr 10.20.2.2,subflow,backup`), its upstream MPTCP connections
# use `--upstream-scheduler overflow`, and CONC sends with `--scheduler
# overflow`; each WAN is 20 Mbit/s each way. An echo paced at 4 Mbit/s (well
# within one WAN) leaves the backup WAN idle but for its join and a few ACKs;
# a bulk echo fills WAN 1 and spills onto WAN 2, which then carries a good
# share of the bytes in both directions. Status shows the upstream
# connection's scheduler and its backup subflow. (With the default minrtt
# scheduler the backup would carry nothing until WAN 1 died: t_mptcp_backup.)
. "$(dirname "$0")/lib.sh"
GATEWAY_WAN_RATE=20mbit
. "$NETNS_DIR/gateway_topology.sh"

echo_server "$WEB" 10.50.0.2 7000
start_mptun "$CONC" conc --tun mpt1 --addr 10.40.1.2 --socks5 1080 --socks5-allow 10.20.0.0/16 \
    --scheduler overflow
start_mptun "$GW" gw --tun mpt0 --addr 10.20.1.2 --addr 10.20.2.2,subflow,backup \
    --transparent --upstream socks5://10.40.1.2:1080 --upstream-scheduler overflow
gateway_routes

# The upstream connection while one is held open: its scheduler, its backup subflow.
lan_client 10.50.0.2 7000 --bytes $((256 << 10)) --timeout 60 --pause $((64 << 10)):"$DIR/go" >"$DIR/held.json" &
held=$!
backup_joined() {
    json_eval "$(status_json gw)" \
        "[(c['mptcp']['scheduler'], sorted(s['backup'] for s in c['subflows'] if s['state'] == 'ESTABLISHED')) for c in d['connections'] if c['remote'] == '10.40.1.2:1080'] == [('overflow', [False, True])]" |
        grep -qx true
}
wait_until 20 backup_joined || fail "no upstream connection with scheduler overflow and a backup subflow: $(status_json gw)"
touch "$DIR/go"
wait "$held" || fail "held echo: $(cat "$DIR/held.json")"

# w2 is WAN 2 on GW: rx is what came from CONC, tx what went to it.
wan2_delta() { # wan2_delta RX0 TX0: bytes each way since
    local rx tx
    read -r rx tx <<<"$(link_bytes "$GW" w2)"
    echo "$((rx - $1)) $((tx - $2))"
}

read -r rx0 tx0 <<<"$(link_bytes "$GW" w2)"
paced=$((3 << 20))
out=$(lan_client 10.50.0.2 7000 --bytes "$paced" --rate 4e6 --seed paced --timeout 60) ||
    fail "paced echo: $out"
read -r rx tx <<<"$(wan2_delta "$rx0" "$tx0")"
log "echo of 3 MiB paced at 4 Mbit/s: $(json_eval "$out" "{k: d[k] for k in ('ok', 'seconds', 'mbit_s')}"); WAN 2 (backup) carried $rx bytes down, $tx up"
# A join costs a few hundred bytes; ACKs of what the backup carried a few more.
[ "$rx" -lt $((paced / 20)) ] && [ "$tx" -lt $((paced / 20)) ] ||
    fail "the backup WAN carried $rx bytes down and $tx up of a transfer WAN 1 could carry alone ($paced each way)"

read -r rx0 tx0 <<<"$(link_bytes "$GW" w2)"
bulk=$((16 << 20))
out=$(lan_client 10.50.0.2 7000 --bytes "$bulk" --seed bulk --timeout 120) || fail "bulk echo: $out"
read -r rx tx <<<"$(wan2_delta "$rx0" "$tx0")"
log "bulk echo of 16 MiB: $(json_eval "$out" "{k: d[k] for k in ('ok', 'seconds', 'mbit_s')}"); WAN 2 (backup) carried $rx bytes down, $tx up"
# How much spills over depends on how far WAN 1's congestion window grows
# into its queue before a loss (14 to 40 % each way in runs here); a tenth
# each way is far beyond the paced case's few ACKs and a minrtt backup's
# nothing.
[ "$rx" -gt $((bulk / 10)) ] && [ "$tx" -gt $((bulk / 10)) ] ||
    fail "a bulk transfer that fills WAN 1 put only $rx bytes down and $tx up on the backup WAN (of $bulk each way)"
