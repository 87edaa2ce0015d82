#!/usr/bin/env bash
# Blind off-path injection of MPTCP options into live MPTCP connections of mptun.
#
# A third namespace, the attacker ATK ($PFX-atk), hangs off HOST (mptun's router)
# by its own veth (ATK a0 10.3.0.1/24 -- ha 10.3.0.2/24 HOST; rp_filter 0 on ha, so
# HOST forwards packets with spoofed sources into mptun's TUN) and is on no
# legitimate path. With blind_inject.py it sends spoofed TCP segments as the
# legitimate peer (the peer's address and port) to mptun, carrying MPTCP options.
# Raw sockets (IPPROTO_RAW, the IPv4 header written too) rather than scapy: the
# standard library suffices, so there is nothing to install (install-deps.sh is
# unchanged) and every byte is spelled out, checked against the project's codec
# (stack/src/wire/mptcp.rs) and decoded by tshark below. One class per connection:
#   rm_addr REMOVE_ADDR id 0 (and 0..7), mp_fail MP_FAIL, data_ack DSS DATA_ACK,
#   dss_map DSS mappings (some with payload), dss_infinite DSS infinite mapping,
#   data_fin DSS DATA_FIN, mp_prio MP_PRIO B=1, rst plain RST, mp_tcprst RST +
#   MP_TCPRST, fastclose MP_FASTCLOSE (ACK and RST) with a wrong key, add_addr
#   ADD_ADDR with a wrong HMAC.
# The attacker is blind: it learns the 4-tuples only (the test reads them from
# `mptun status --json` and passes them as --flow); every sequence and ACK
# number, timestamp, DSN, DATA_ACK, SSN, key and HMAC is drawn at random for each
# packet, nothing is sniffed. Each flood: BLIND_COUNT packets (2000; data_ack 3x,
# since a random 32-bit DATA_ACK must land among the bytes in flight) at most
# BLIND_RATE per second (20000), at most 10 s, to the test's own namespaces only.
#
# Scenarios, in one topology and one daemon (`--echo 7 --local-forward
# 127.0.0.1:6000=10.1.0.1:5000`; mptun's sending shaped to 500 Mbit/s on h1/h2 so
# that a 32 MiB transfer outlasts the flood and keeps a queue's worth in flight):
#   echo1  a Linux MPTCP client (tcpclient.py --mptcp) in PEER echoes BLIND_BYTES
#          (32 MiB) through `--echo 7`, one subflow;
#   fwd    mptun is the MPTCP client: a client in HOST echoes BLIND_BYTES through
#          `--local-forward` to a Linux MPTCP echo server (mpserver.py) in PEER;
#          the attacker poses as the server 10.1.0.1:5000;
#   echo2  as echo1 with PEER's endpoint `10.2.0.1 dev p2 subflow`: two subflows
#          (Linux's join over path 2), flooded round robin.
# Per class: the client sends 1 MiB and waits until it came back and the flood has
# begun, then sends the rest while the flood runs, and waits again before its FIN
# until mptun and Linux have been looked at (the connection is surely open). Each
# class must be harmless:
#   - the transfer completes exactly (length and SHA-256; fwd: the server's too);
#   - Linux: after the flood `ss -tniM` shows the MPTCP socket, not fallen back,
#     with as many subflows as before; MPTCP_INFO shows no fallback and the same
#     subflow count (echo: the client's samples; fwd: the server's);
#   - PEER's nstat: no counter of MP_PEER_ZERO (fallback, MP_FAIL, infinite
#     mapping, DSS mismatch, MP_RST, fast close, ...) moved, nor RmAddr/MPPrioRx;
#   - mptun's status after the flood: the connection ESTABLISHED, MPTCP, not
#     fallen back, the same subflows (4-tuple, state, backup flag);
#   - the flood reached the TUN (an nftables counter in HOST: ha into the TUN) and
#     mptun's TCP layer (no bad checksum, malformed or invalid option drops).
# A class that already broke the connection (gone, fallen back) is judged at the
# end, so its stalled transfer does not hold up the others. Every class runs; the
# verdicts are listed at the end (blind_check.py computes them). Finally tshark
# decodes the attacker's packets captured on HOST's ha: good TCP checksums,
# nothing malformed at IP/TCP/MPTCP level, as many options of each subtype as sent.
#
# Environment: BLIND_BYTES, BLIND_COUNT, BLIND_RATE, BLIND_SHAPE (500mbit),
# BLIND_CLASSES (a subset, space-separated), BLIND_SCENARIOS (of "echo1 fwd echo2").
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_pm.sh"

TOTAL=${BLIND_BYTES:-$((32 << 20))}
COUNT=${BLIND_COUNT:-2000}
RATE=${BLIND_RATE:-20000}
read -r -a CLASSES <<<"${BLIND_CLASSES:-rm_addr mp_fail data_ack dss_map dss_infinite data_fin mp_prio rst mp_tcprst fastclose add_addr}"
read -r -a SCENARIOS <<<"${BLIND_SCENARIOS:-echo1 fwd echo2}"
MARK=$((1 << 20))
ATK="$PFX-atk"
CHECK=(python3 "$NETNS_DIR/blind_check.py")
export BLIND_PEER_ZERO="${MP_PEER_ZERO[*]}"

# ---- Topology: the two paths, and the attacker on HOST ----
mp_topology_up
ip netns add "$ATK"
EXTRA_NS+=("$ATK")
ip -n "$ATK" link set lo up
ip link add a0 netns "$ATK" type veth peer name ha netns "$HOST"
ip -n "$ATK" addr add 10.3.0.1/24 dev a0
ip -n "$HOST" addr add 10.3.0.2/24 dev ha
host_exec sysctl -qw net.ipv4.conf.ha.rp_filter=0
ip -n "$ATK" link set a0 up
ip -n "$HOST" link set ha up
ip -n "$ATK" route add default via 10.3.0.2
# What HOST forwards from the attacker into mptun's TUN.
host_exec nft -f - <<EOF
table inet blind {
    chain atk {
        type filter hook forward priority 0; policy accept;
        iifname "ha" oifname "$TUN" counter comment "atk2tun"
    }
}
EOF
atk2tun() {
    host_exec nft list chain inet blind atk | sed -n 's/.*counter packets \([0-9]*\) .*atk2tun.*/\1/p'
}
[ -n "$(atk2tun)" ] || fail "nftables counter atk2tun not installed in HOST"
# Everything the attacker sends, for tshark at the end (ha carries nothing else).
bg_run "$HOST" tcpdump -i ha -s 0 -B 32768 -U --immediate-mode -w "$DIR/atk.pcap" tcp 2>"$DIR/tcpdump.err"
TCPDUMP_PID=$BG_PID
wait_until 5 grep -q "listening on" "$DIR/tcpdump.err" || fail "tcpdump on ha did not start: $(cat "$DIR/tcpdump.err")"

shape "$HOST" h1 "${BLIND_SHAPE:-500mbit}"
shape "$HOST" h2 "${BLIND_SHAPE:-500mbit}"
mpserver "$PEER" 10.1.0.1 5000 "$DIR/server.log" --mptcp
mptun_start --echo 7 --local-forward 127.0.0.1:6000=10.1.0.1:5000

# ---- One class on one connection ----

results=()
failed=0
n_attack=0
deferred=()

# attack SCEN CLASS NSUB: one connection of scenario SCEN with NSUB subflows,
# flooded with CLASS; judged now (finish) or, when the flood already broke it,
# at the end (deferred).
attack() {
    local scen=$1 cls=$2 nsub=$3 client flows=() fl=() f setup=""
    n_attack=$((n_attack + 1))
    local W
    W="$DIR/$(printf %02d "$n_attack")-$scen-$cls"
    mkdir -p "$W"
    echo "$EPOCHREALTIME" >"$W/t0"
    mptun_status_json >"$W/status_pre.json" || true
    # 1 MiB, a pause until it came back and the flood has begun, the rest, a pause
    # before the FIN. No progress for 10 s, or not done in 30 s (it takes about
    # 1 s here), on these local links: stuck.
    local copts=(--bytes "$TOTAL" --seed "$scen-$cls" --idle-timeout 10 --timeout 30
        --mark "$MARK:$W/inject" --mark "$TOTAL:$W/done" --pause "$MARK:$W/flow" --pause "$TOTAL:$W/go")
    case $scen in
    echo*) bg_run "$PEER" python3 "$NETNS_DIR/tcpclient.py" 10.10.1.2 7 --mptcp "${copts[@]}" \
        >"$W/client.json" 2>"$W/client.err" ;;
    fwd) bg_run "$HOST" python3 "$NETNS_DIR/tcpclient.py" 127.0.0.1 6000 "${copts[@]}" \
        >"$W/client.json" 2>"$W/client.err" ;;
    esac
    client=$BG_PID

    if ! wait_file 60 "$W/inject" "$client"; then
        setup="1 MiB never came back"
    elif ! "${CHECK[@]}" ready "$MPTUN" "$CTL" "$scen" "$nsub" "$client" "$W"; then
        setup="mptun never had the connection with $nsub established subflows"
    fi
    if [ -z "$setup" ]; then
        # The attacker's knowledge: the subflows' 4-tuples, and nothing else.
        read -r -a fl <"$W/flows"
        for f in "${fl[@]}"; do flows+=(--flow "$f"); done
        peer_exec nstat -az >"$W/nstat_before"
        atk2tun >"$W/fwd_before"
        local count=$COUNT inj irc=0
        [ "$cls" = data_ack ] && count=$((COUNT * 3))
        ip netns exec "$ATK" python3 "$NETNS_DIR/blind_inject.py" "$cls" "${flows[@]}" \
            --count "$count" --rate "$RATE" --max-seconds 10 --started "$W/started" \
            >"$W/inject.json" 2>"$W/inject.err" &
        inj=$!
        # The transfer goes on while the flood runs.
        wait_file 10 "$W/started" "$inj" || true
        touch "$W/flow"
        wait "$inj" || irc=$?
        [ "$irc" = 0 ] || setup="injector failed (exit $irc): $(cat "$W/inject.err")"
        # Evidence only: whether the whole flood fell within the transfer.
        if [ -e "$W/done" ]; then echo no >"$W/overlap"; else echo yes >"$W/overlap"; fi
        atk2tun >"$W/fwd_after"
        mptun_status_json >"$W/status_after.json" || echo '{}' >"$W/status_after.json"
        peer_exec ss -tniM >"$W/ss_after.txt" 2>&1 || true
    fi
    touch "$W/flow" "$W/go"
    if [ -z "$setup" ] && "${CHECK[@]}" broken "$W" "$scen" "$nsub" >"$W/broken"; then
        # Already broken: its evidence windows end here; its client ends by itself.
        peer_exec nstat -az >"$W/nstat_end"
        cp "$W/status_after.json" "$W/status_end.json"
        echo "$EPOCHREALTIME" >"$W/t1"
        log "$scen/$cls: broken by the flood ($(cat "$W/broken")): judged at the end"
        deferred+=("$W $scen $cls $nsub $client")
        return
    fi
    [ -z "$setup" ] || echo "$setup" >"$W/setup"
    finish "$W" "$scen" "$cls" "$nsub" "$client" 1
}

# finish W SCEN CLASS NSUB CLIENT SNAPSHOT: wait for the client, take the end
# snapshots (SNAPSHOT=1), find the Linux server's line (fwd), record the verdict.
finish() {
    local W=$1 scen=$2 cls=$3 nsub=$4 client=$5 rc=0 setup="" me server
    wait "$client" || rc=$?
    [ -e "$W/setup" ] && setup=$(cat "$W/setup")
    if [ "$6" = 1 ]; then
        peer_exec nstat -az >"$W/nstat_end"
        mptun_status_json >"$W/status_end.json" || echo '{}' >"$W/status_end.json"
    fi
    if [ "$scen" = fwd ] && [ -z "$setup" ]; then
        # The Linux server's line for this connection: its peer is mptun's subflow.
        me=$(json_eval "$(cat "$W/conn_before.json")" 'd["subflows"][0]["local"]')
        wait_until 5 grep -q "\"peer\": \"$me\"" "$DIR/server.log" || true
        server=$(grep "\"peer\": \"$me\"" "$DIR/server.log" | tail -n 1) || true
        echo "${server:-null}" >"$W/server.json"
    fi
    local verdict
    verdict=$("${CHECK[@]}" verdict "$W" "$scen" "$cls" "$nsub" "$rc" "$TOTAL" "$setup")
    # Its own time (a deferred class's until it was deferred).
    local t1=$EPOCHREALTIME note=""
    if [ -e "$W/t1" ]; then t1=$(cat "$W/t1") note=", judged at the end"; fi
    verdict+=" ($(awk -v a="$(cat "$W/t0")" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s$note)"
    log "$verdict"
    results+=("$verdict")
    [[ $verdict == PASS* ]] || failed=$((failed + 1))
}

for scen in "${SCENARIOS[@]}"; do
    nsub=1
    if [ "$scen" = echo2 ]; then
        mp_endpoint 10.2.0.1 p2 subflow
        nsub=2
    fi
    for cls in "${CLASSES[@]}"; do
        attack "$scen" "$cls" "$nsub"
    done
    # Linux would use the subflow endpoint on the connections it accepts too.
    [ "$scen" = echo2 ] && ip -n "$PEER" mptcp endpoint flush
done
for d in "${deferred[@]}"; do
    # shellcheck disable=SC2086 # "W scen cls nsub client", no blanks inside
    finish $d 0
done

# ---- The attacker's packets, decoded by tshark ----
# An independent decoder of the injector's encodings; each packet on its own (the
# handshakes are not in this capture, so no analysis across packets).
kill -INT "$TCPDUMP_PID" 2>/dev/null || true
wait "$TCPDUMP_PID" 2>/dev/null || true
if command -v tshark >/dev/null && [ -s "$DIR/atk.pcap" ]; then
    tshark -r "$DIR/atk.pcap" -o tcp.check_checksum:TRUE -o tcp.analyze_sequence_numbers:FALSE \
        -o mptcp.analyze_mptcp:FALSE -T fields -e tcp.options.mptcp.subtype -e tcp.checksum.status \
        -e _ws.malformed -e tcp.flags.reset -e frame.number -e _ws.expert.message -e frame.protocols \
        2>/dev/null >"$DIR/atk.txt" || true
    summary=$("${CHECK[@]}" tshark "$DIR") || { results+=("FAIL tshark: $summary"); failed=$((failed + 1)); }
    log "tshark on the attacker's packets: $summary"
fi

log "---- verdicts (${#results[@]}) ----"
for r in "${results[@]}"; do echo "$r" >&2; done
[ "$failed" = 0 ] || fail "$failed of ${#results[@]} checks failed: injected segments were not harmless"
log "PEER counters: $(peer_counters_nonzero)"
