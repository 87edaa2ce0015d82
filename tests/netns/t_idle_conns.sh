#!/usr/bin/env bash
# 10,000 idle TCP connections at once (issue 12, hostile networks): what an idle
# connection costs mptun, and how fast it accepts them next to Linux.
#
# idleconns.py in PEER opens IDLE_COUNT (10,000) connections to an echo service,
# 100 handshaking at a time; each echoes 16 bytes of its own and then idles. Once
# all are open, the test reads mptun's RSS, lets them idle, and then every
# connection must echo 16 bytes more and close cleanly (the idle connections still
# work). Two runs over the same kind of path (PEER -> veth -> HOST -> ...):
#   - Linux: a single-threaded epoll echo server (idleconns.py serve, listen
#     backlog 4096) in a namespace SRV behind HOST (SRV s0 10.4.0.1/24 -- hs
#     10.4.0.2/24 HOST), i.e. the kernel's TCP plus a small Python event loop;
#   - mptun: `--echo 7` on 10.10.1.2 (HOST -> TUN -> mptun).
# Figures printed: accept rate (connections/s from the first connect to the last
# echo, and to the last handshake) for both; mptun's RSS before / with all open /
# after the close, and bytes per idle connection = (RSS with all open - RSS
# before) / count; Linux's socket memory (SRV's /proc/net/sockstat) for reference.
# Asserted: every connection opened, echoed, idled and closed cleanly on both;
# mptun's status lists all of them ESTABLISHED; mptun's RSS per idle connection
# <= IDLE_BOUND_BYTES (8 KiB, the goal of issue 12).
#
# Round 2: the same again once round 1's connections are gone (from another source
# address), to show whether their memory is reused (printed, not asserted).
#
# Measured on the 2-core dev VM (main dd42b41 with this branch: the echo holds
# no copy buffer while idle, rings start at what they hold), 10,000
# connections: mptun RSS 5.0 MiB before, 34.0 MiB with all open = ~3.0 KiB per
# idle connection (live heap, heaptrack on 038e6da: 2,936 B = the subflow
# record 1,272 (TCB 1,088 + MPTCP per-subflow state 176), the echo's task 638,
# the connection table's B-tree 561, the 4-tuple and stream hash maps 240, the
# congestion controller 96, the tuple list 72; dd42b41 adds 8 B to the TCB and
# 32 B to the table's slot). After the close (all echo 16 bytes more at once) RSS
# stays at that phase's peak, ~37.5 MiB (glibc keeps it), and round 2 reuses it
# (0 B per connection more). Accept rate (10,000 connections, 100 in flight,
# same Python client) mptun 16,000-18,800/s, Linux (kernel + Python epoll echo
# server) 8,000-16,000/s; noisy, only printed. Before, the echo held a zeroed
# 256 KiB buffer per connection: ~138 KiB of RSS per idle connection.
# See /work/reports/attacks.md.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_atk.sh"

COUNT=${IDLE_COUNT:-10000}
BOUND=${IDLE_BOUND_BYTES:-8192}
IDLE_SECS=${IDLE_SECS:-3}
SRV="$PFX-srv"
CLIENT=(python3 "$NETNS_DIR/idleconns.py" connect)

topology_up
# SRV: the Linux echo server's namespace, behind HOST like mptun's TUN.
ip netns add "$SRV"
EXTRA_NS+=("$SRV")
ip -n "$SRV" link set lo up
ip link add s0 netns "$SRV" type veth peer name hs netns "$HOST"
ip -n "$SRV" addr add 10.4.0.1/24 dev s0
ip -n "$HOST" addr add 10.4.0.2/24 dev hs
ip -n "$SRV" link set s0 up
ip -n "$HOST" link set hs up
ip -n "$SRV" route add default via 10.4.0.2
ip -n "$PEER" route add 10.4.0.0/24 via 10.1.0.2
# One source address per run: the client closes first, so each run leaves
# COUNT ports in TIME_WAIT in PEER, and Linux's connect() to the same server
# crawls through them (a second run from the same address opened ~500/s).
for i in 11 12 13; do ip -n "$PEER" addr add "10.1.0.$i/24" dev p1; done

# run_client NAME HOST PORT: the client in PEER; its JSON lines in $DIR/NAME.json.
# Waits until all are open ($DIR/NAME.ready), then runs the hook $2 (a function
# name) before releasing them after IDLE_SECS.
run_client() {
    local name=$1 dst=$2 port=$3 hook=$4 bind=$5 rc=0
    bg_run "$PEER" "${CLIENT[@]}" "$dst" "$port" --bind "$bind" --count "$COUNT" --ready "$DIR/$name.ready" \
        --hold "$DIR/$name.hold" --timeout 90 >"$DIR/$name.json" 2>"$DIR/$name.err"
    local pid=$BG_PID
    if wait_file 100 "$DIR/$name.ready" "$pid"; then
        "$hook"
        sleep "$IDLE_SECS"
        touch "$DIR/$name.hold"
    fi
    wait "$pid" || rc=$?
    [ "$rc" = 0 ] || fail "$name: $COUNT idle connections to $dst:$port: $(cat "$DIR/$name.json") $(tail -5 "$DIR/$name.err")"
    log "$name: $(tr '\n' ' ' <"$DIR/$name.json")"
}
open_json() { grep '"phase": "open"' "$DIR/$1.json"; }

# ---- Linux ----
bg_run "$SRV" python3 "$NETNS_DIR/idleconns.py" serve 10.4.0.1 7 --ready "$DIR/srv.ready"
wait_file 5 "$DIR/srv.ready" || fail "Linux echo server did not start"
linux_sockstat=""
linux_hook() { linux_sockstat=$(ip netns exec "$SRV" grep '^TCP:' /proc/net/sockstat); }
run_client linux 10.4.0.1 7 linux_hook 10.1.0.11

# ---- mptun ----
# All connections come from one address: mptun's per-source limit
# (--max-conns-per-source, 1024 by default) is raised to their number. This
# test measures what a connection costs, not that limit
# (stack/tests/memory_budget.rs tests it).
mptun_start --echo 7 --max-conns-per-source "$COUNT"
mptun_check_pid
out=$(tcpclient_peer 10.10.1.2 7 --bytes 65536 --seed warm --timeout 30) || fail "warm-up echo: $out"
sleep 0.5
rss_before=$(mptun_rss)
rss_open=""
n_est=""
mptun_hook() {
    sleep 1 # let the last ACKs and timers settle
    rss_open=$(mptun_rss)
    # The status of 10,000 connections is too long for an argument: via a file.
    mptun_status_json >"$DIR/status_open.json" || fail "mptun status failed with $COUNT connections open"
    n_est=$(python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(sum(1 for c in d["connections"] if c["state"] == "ESTABLISHED" and c["local"] == "10.10.1.2:7"))' "$DIR/status_open.json")
}
# Round 1 gives the figure; round 2 (the same again once round 1's connections
# are gone) shows whether their memory is reused or kept.
run_client mptun 10.10.1.2 7 mptun_hook 10.1.0.12
[ "$n_est" = "$COUNT" ] || fail "mptun's status listed $n_est ESTABLISHED connections on 10.10.1.2:7 with all $COUNT open"
rss_open1=$rss_open
wait_until 20 json_eval "$(mptun_status_json)" 'len(d["connections"]) == 0 or None' ||
    fail "mptun still lists connections 20 s after all $COUNT closed"
sleep 1
rss_after1=$(mptun_rss)
run_client mptun2 10.10.1.2 7 mptun_hook 10.1.0.13
[ "$n_est" = "$COUNT" ] || fail "round 2: mptun's status listed $n_est ESTABLISHED connections with all $COUNT open"
rss_open2=$rss_open
wait_until 20 json_eval "$(mptun_status_json)" 'len(d["connections"]) == 0 or None' ||
    fail "round 2: mptun still lists connections 20 s after all $COUNT closed"
sleep 1
rss_after2=$(mptun_rss)
hwm=$(mptun_hwm)
st=$(mptun_status_json)

per_conn=$(((rss_open1 - rss_before) * 1024 / COUNT))
lo=$(open_json linux)
mo=$(open_json mptun)
log "figures: Linux accept rate $(json_eval "$lo" 'd["rate"]')/s ($COUNT in $(json_eval "$lo" 'd["seconds"]') s; handshakes $(json_eval "$lo" 'd["handshake_rate"]')/s); SRV sockstat with all open: $linux_sockstat"
log "figures: mptun accept rate $(json_eval "$mo" 'd["rate"]')/s ($COUNT in $(json_eval "$mo" 'd["seconds"]') s; handshakes $(json_eval "$mo" 'd["handshake_rate"]')/s)"
log "figures: mptun RSS before $rss_before KiB; round 1: with $COUNT idle connections open $rss_open1 KiB ($(kib_mib "$rss_open1") MiB), after closing them $rss_after1 KiB; round 2: open $rss_open2 KiB, after $rss_after2 KiB; VmHWM $hwm KiB"
log "figures: mptun RSS per idle connection $per_conn bytes ($(awk -v b="$per_conn" 'BEGIN {printf "%.1f", b / 1024}') KiB; goal <= $BOUND bytes)"
log "figures: round 2: RSS per connection counted from the start $(((rss_open2 - rss_before) * 1024 / COUNT)) bytes; kept after round 1's close $(((rss_after1 - rss_before) * 1024 / COUNT)) bytes per connection, after round 2's $(((rss_after2 - rss_before) * 1024 / COUNT))"
log "mptun counters: connections_accepted=$(mptun_counter connections_accepted "$st") syncookies_sent=$(mptun_counter syncookies_sent "$st") drop_backlog_full=$(mptun_counter drop_backlog_full "$st") retransmitted_segments=$(mptun_counter retransmitted_segments "$st")"

[ "$per_conn" -le "$BOUND" ] || fail "mptun's RSS per idle connection is $per_conn bytes, goal <= $BOUND ($rss_before KiB before, $rss_open1 KiB with $COUNT open)"
