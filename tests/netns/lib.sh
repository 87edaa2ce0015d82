# shellcheck shell=bash
# Library of the network-namespace interop tests; sourced by every t_*.sh.
#
# Topology (names unique per test run, so tests can run in parallel):
#
#   ns $PEER (Linux host)                      ns $HOST (router, owns mptun's TUN)
#   p1 10.1.0.1/24  fd01::1/64 ──── veth ──── h1 10.1.0.2/24  fd01::2/64 ┐
#   p2 10.2.0.1/24  fd02::1/64 ──── veth ──── h2 10.2.0.2/24  fd02::2/64 ┼─ mpt0 ─ mptun
#                                                                        ┘
#   PEER routes: 10.10.1.0/24 via 10.1.0.2, 10.10.2.0/24 via 10.2.0.2,
#                fd10:1::/64 via fd01::2, fd10:2::/64 via fd02::2
#   HOST: forwarding on (v4, v6), rp_filter 0; mptun adds host routes for its
#   --addr addresses through its TUN.
#
# Usage in a test:
#   . "$(dirname "$0")/lib.sh"
#   topology_up
#   mptun_start --echo 7
#   tcpclient_peer 10.10.1.2 7 --bytes $((64<<20)) || fail "echo failed"
#
# Environment: MPTUN (binary, default target/release/mptun), MPTUN_SEED (passed as
# --seed if set), MPTUN_THREADS (passed as --threads unless the test gives one),
# MPTUN_EXTRA_ARGS (more daemon options, e.g. --debug-misroute), KEEP_NETNS=1
# (keep namespaces and temp dir for debugging).

set -Eeuo pipefail

NETNS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$NETNS_DIR/../.." && pwd)
MPTUN=${MPTUN:-$REPO_DIR/target/release/mptun}
# A variant script (`FAMILY=6 exec bash t_x.sh`) names itself with NETNS_TEST_NAME.
TEST_NAME=${NETNS_TEST_NAME:-$(basename "$0" .sh)}
unset NETNS_TEST_NAME

# Unique per run: namespace names carry the test name, the shell's pid and a random number.
_short=${TEST_NAME#t_}
PFX="mpt-${_short:0:12}-$$-$RANDOM"
PEER="$PFX-peer"
HOST="$PFX-host"
TUN=mpt0
DIR=$(mktemp -d "/tmp/mptun-netns-${_short}.XXXXXX")
CTL="$DIR/ctl.sock"
MPTUN_LOG="$DIR/mptun.log"
MPTUN_PID=""
MPTUN_ADDRS=(10.10.1.2 fd10:1::2)
BG_PIDS=()
# Further namespaces a test made itself (e.g. "$PFX-atk"): cleaned up like PEER and HOST.
EXTRA_NS=()
_TOPOLOGY=0

log() { echo "[$TEST_NAME] $*" >&2; }

mptun_log_tail() {
    if [ -s "$MPTUN_LOG" ]; then
        echo "---- last lines of $MPTUN_LOG ----" >&2
        tail -n "${1:-40}" "$MPTUN_LOG" >&2
        echo "----" >&2
    else
        echo "(no mptun log at $MPTUN_LOG)" >&2
    fi
}

# fail MSG: report, show the mptun log tail, exit 1 (the EXIT trap cleans up).
fail() {
    echo "[$TEST_NAME] FAIL: $*" >&2
    mptun_counters_note >&2
    mptun_log_tail 40
    exit 1
}

# mptun_counters_note: mptun's non-zero counters, when it runs (a rare failure's
# only record of which path the engine took).
mptun_counters_note() {
    [ -n "$MPTUN_PID" ] && kill -0 "$MPTUN_PID" 2>/dev/null || return 0
    echo "mptun counters: $(json_eval "$(mptun_status_json 2>/dev/null)" '" ".join(f"{k}={v}" for k, v in d["counters"].items() if v)' 2>&1)"
}

peer_exec() { ip netns exec "$PEER" "$@"; }
host_exec() { ip netns exec "$HOST" "$@"; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# wait_until SECS CMD...: poll CMD every 0.1 s until it succeeds; 1 on timeout.
wait_until() {
    local secs=$1
    shift
    local end=$((SECONDS + secs))
    while ! "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -ge "$end" ] && return 1
        sleep 0.1
    done
}

# bg_run NS CMD...: runs CMD in namespace NS in the background; killed by cleanup.
# Sets BG_PID.
bg_run() {
    local ns=$1
    shift
    ip netns exec "$ns" "$@" &
    BG_PID=$!
    BG_PIDS+=("$BG_PID")
}

topology_up() {
    local ns
    ip netns add "$PEER"
    ip netns add "$HOST"
    _TOPOLOGY=1
    for ns in "$PEER" "$HOST"; do
        ip -n "$ns" link set lo up
        ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0
        ip netns exec "$ns" sysctl -qw net.ipv4.conf.default.rp_filter=0
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.accept_dad=0
    done
    host_exec sysctl -qw net.ipv4.ip_forward=1
    host_exec sysctl -qw net.ipv6.conf.all.forwarding=1

    ip link add p1 netns "$PEER" type veth peer name h1 netns "$HOST"
    ip link add p2 netns "$PEER" type veth peer name h2 netns "$HOST"
    local i
    for i in 1 2; do
        ip -n "$PEER" addr add "10.$i.0.1/24" dev "p$i"
        ip -n "$HOST" addr add "10.$i.0.2/24" dev "h$i"
        ip -n "$PEER" addr add "fd0$i::1/64" dev "p$i" nodad
        ip -n "$HOST" addr add "fd0$i::2/64" dev "h$i" nodad
        ip netns exec "$PEER" sysctl -qw "net.ipv4.conf.p$i.rp_filter=0"
        ip netns exec "$HOST" sysctl -qw "net.ipv4.conf.h$i.rp_filter=0"
        ip -n "$PEER" link set "p$i" up
        ip -n "$HOST" link set "h$i" up
        ip -n "$PEER" route add "10.10.$i.0/24" via "10.$i.0.2"
        ip -n "$PEER" -6 route add "fd10:$i::/64" via "fd0$i::2"
    done
}

# Runs mptun in HOST with the standard addresses plus ARGS (services, options),
# logs to $MPTUN_LOG, waits until the TUN is up and the control socket answers.
mptun_start() {
    [ -x "$MPTUN" ] || fail "no mptun binary at $MPTUN (cargo build --release, or set MPTUN)"
    local args=(run --tun "$TUN" --control "$CTL")
    local a
    for a in "${MPTUN_ADDRS[@]}"; do args+=(--addr "$a"); done
    [ -n "${MPTUN_SEED:-}" ] && args+=(--seed "$MPTUN_SEED")
    # The suite runs twice, with MPTUN_THREADS=2 and 1 (scripts/test.sh);
    # a test that sets --threads itself keeps its own.
    if [ -n "${MPTUN_THREADS:-}" ] && [[ " $* " != *" --threads "* ]]; then
        args+=(--threads "$MPTUN_THREADS")
    fi
    # MPTUN_EXTRA_ARGS: more options for every daemon (debugging), e.g.
    # "--debug-misroute".
    # shellcheck disable=SC2206
    [ -n "${MPTUN_EXTRA_ARGS:-}" ] && args+=($MPTUN_EXTRA_ARGS)
    args+=("$@")
    log "mptun ${args[*]}"
    echo "# ip netns exec $HOST $MPTUN ${args[*]}" >"$MPTUN_LOG"
    RUST_LOG=${RUST_LOG:-info} ip netns exec "$HOST" "$MPTUN" "${args[@]}" >>"$MPTUN_LOG" 2>&1 &
    MPTUN_PID=$!
    local end=$((SECONDS + ${MPTUN_START_TIMEOUT:-10}))
    while :; do
        if ! kill -0 "$MPTUN_PID" 2>/dev/null; then
            local rc=0
            wait "$MPTUN_PID" || rc=$?
            MPTUN_PID=""
            fail "mptun exited during startup (status $rc)"
        fi
        if tun_is_up && mptun_status_json >/dev/null 2>&1; then
            log "mptun up (pid $MPTUN_PID)"
            return 0
        fi
        [ "$SECONDS" -ge "$end" ] && fail "mptun not ready after ${MPTUN_START_TIMEOUT:-10}s (TUN $TUN up: $(tun_is_up && echo yes || echo no); control socket $CTL)"
        sleep 0.1
    done
}

tun_is_up() {
    local l
    l=$(ip -n "$HOST" -o link show "$TUN" 2>/dev/null) || return 1
    [[ $l =~ [\<,]UP[,\>] ]]
}

# mptun_stop [SECS]: SIGTERM, wait up to SECS (default 5), then SIGKILL.
# Returns mptun's exit status (137 when it had to be killed).
mptun_stop() {
    local secs=${1:-5} rc=0
    [ -n "$MPTUN_PID" ] || return 0
    kill -TERM "$MPTUN_PID" 2>/dev/null || true
    local end=$((SECONDS + secs))
    while kill -0 "$MPTUN_PID" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do sleep 0.1; done
    if kill -0 "$MPTUN_PID" 2>/dev/null; then
        log "mptun did not exit ${secs}s after SIGTERM: SIGKILL"
        kill -KILL "$MPTUN_PID" 2>/dev/null || true
    fi
    wait "$MPTUN_PID" 2>/dev/null || rc=$?
    MPTUN_PID=""
    return "$rc"
}

mptun_status_json() { "$MPTUN" status --control "$CTL" --json; }
mptun_status_text() { "$MPTUN" status --control "$CTL"; }

# json_eval JSON EXPR: prints the Python expression EXPR evaluated with `d` bound to
# the parsed JSON (dicts/lists). Lists print as JSON, None prints nothing and fails.
json_eval() {
    python3 -c '
import json, sys
d = json.loads(sys.argv[1])
v = eval(sys.argv[2])
if v is None:
    sys.exit(1)
print(json.dumps(v) if isinstance(v, (list, dict, bool)) else v)
' "$1" "$2"
}

# The TCP test client (tcpclient.py) in PEER / in HOST; its JSON line on stdout.
tcpclient_peer() { peer_exec python3 "$NETNS_DIR/tcpclient.py" "$@"; }
tcpclient_host() { host_exec python3 "$NETNS_DIR/tcpclient.py" "$@"; }

# A Linux echo server in namespace NS on ADDR PORT (background; waits until listening).
echo_server() {
    local ns=$1 addr=$2 port=$3
    shift 3
    local ready="$DIR/echo-$port.ready"
    bg_run "$ns" python3 "$NETNS_DIR/echoserver.py" "$addr" "$port" --ready-file "$ready" "$@"
    wait_until 5 test -e "$ready" || fail "echo server on $addr:$port did not start"
}

# connect_outcome NS ADDR PORT: connects from NS, then waits for the first
# byte; prints "reset" (RST after the handshake), "eof", "data" or
# "error: ..." (refused, timed out, ...).
connect_outcome() {
    ip netns exec "$1" python3 -c '
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
    print("eof" if s.recv(1) == b"" else "data")
except ConnectionResetError:
    print("reset")
except OSError as e:
    print(f"error: {e}")
' "$2" "$3" 2>&1
}

# nft_random_loss NS PCT: drop PCT % of the packets forwarded by NS (both directions).
# nft_dropped NS prints how many it dropped so far.
nft_random_loss() {
    local ns=$1 pct=$2
    command -v nft >/dev/null || fail "nft missing: run tests/netns/install-deps.sh"
    ip netns exec "$ns" nft -f - <<EOF
table inet mptest {
    chain fwdloss {
        type filter hook forward priority 0; policy accept;
        numgen random mod 100 < $pct counter drop
    }
}
EOF
    [[ $(ip netns exec "$ns" nft list chain inet mptest fwdloss) == *"numgen random mod 100"* ]] ||
        fail "nftables loss rule not installed in $ns"
}

nft_dropped() {
    ip netns exec "$1" nft list chain inet mptest fwdloss | sed -n 's/.*counter packets \([0-9]*\).*/\1/p' | head -n1
}

# nft_ftp_alg NS OIF SADDR NATADDR: makes router NS a NAT with the kernel's FTP ALG,
# a real middlebox that rewrites payload: connections to TCP port 21 get conntrack's
# FTP helper, and those from SADDR leaving through OIF are source-NATed to NATADDR,
# so nf_nat_ftp rewrites the address in PORT commands to NATADDR and fixes the TCP
# checksum. Keep both addresses the same length as text: the rewrite then changes
# bytes, not the segment's length. nft_ftp_alg_natted NS prints how many packets the
# NAT rule took (the first of each connection).
nft_ftp_alg() {
    local ns=$1 oif=$2 saddr=$3 nat=$4
    command -v nft >/dev/null || fail "nft missing: run tests/netns/install-deps.sh"
    ip netns exec "$ns" nft -f - <<EOF
table ip mptalg {
    ct helper ftp-std {
        type "ftp" protocol tcp
    }
    chain pre {
        type filter hook prerouting priority filter; policy accept;
        tcp dport 21 ct helper set "ftp-std"
    }
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr $saddr oifname "$oif" tcp dport 21 counter snat to $nat
    }
}
EOF
    [[ $(ip netns exec "$ns" nft list table ip mptalg) == *'ct helper set "ftp-std"'* ]] ||
        fail "FTP ALG not installed in $ns"
}

nft_ftp_alg_natted() {
    ip netns exec "$1" nft list chain ip mptalg post | sed -n 's/.*counter packets \([0-9]*\).*/\1/p' | head -n1
}

# ---- Two paths (multipath tests) ----

# mp_topology_up: topology_up for MPTCP over both paths. PEER: MPTCP on, up to two
# extra subflows (`ip mptcp limits set subflows 2`; add_addr_accepted 0: mptun
# announces nothing yet), and source routing so that a subflow from 10.N.0.1 /
# fd0N::1 leaves by path N whatever its destination: Linux opens a join from an
# endpoint's address to mptun's *initial* address, which the main table routes by
# path 1 (and a join bound to p2 would find no route at all). mptun answers on both
# paths' addresses, 10.10.1.2 (primary) 10.10.2.2 fd10:1::2 fd10:2::2.
mp_topology_up() {
    topology_up
    peer_exec sysctl -qw net.mptcp.enabled=1
    local i
    for i in 1 2; do
        ip -n "$PEER" rule add from "10.$i.0.1" table "10$i"
        ip -n "$PEER" route add 10.10.0.0/16 via "10.$i.0.2" dev "p$i" table "10$i"
        ip -n "$PEER" -6 rule add from "fd0$i::1" table "10$i"
        ip -n "$PEER" -6 route add fd10::/16 via "fd0$i::2" dev "p$i" table "10$i"
    done
    ip -n "$PEER" mptcp limits set subflows 2 add_addr_accepted 0
    MPTUN_ADDRS=(10.10.1.2 10.10.2.2 fd10:1::2 fd10:2::2)
}

# mp_endpoint ADDR IF FLAGS...: a Linux path-manager endpoint in PEER, e.g.
# `mp_endpoint 10.2.0.1 p2 subflow backup`: Linux then opens a join from ADDR
# (bound to IF) to mptun's initial address on every new MPTCP connection.
mp_endpoint() {
    local addr=$1 dev=$2
    shift 2
    ip -n "$PEER" mptcp endpoint add "$addr" dev "$dev" "$@"
    log "PEER endpoint: $(ip -n "$PEER" mptcp endpoint show | tr '\n' ';')"
}

# shape NS IF RATE: egress of IF in NS limited to RATE by a token bucket (this
# kernel has no netem): PEER's p1/p2 shape Linux -> mptun, HOST's h1/h2 mptun -> Linux.
shape() {
    ip netns exec "$1" tc qdisc replace dev "$2" root tbf rate "$3" burst 32kbit latency 50ms
}

# link_bytes NS IF: "RX TX" byte counters of IF in NS.
link_bytes() {
    echo "$(ip netns exec "$1" cat "/sys/class/net/$2/statistics/rx_bytes")" \
        "$(ip netns exec "$1" cat "/sys/class/net/$2/statistics/tx_bytes")"
}

# PEER's kernel MPTCP counters (the namespace is fresh: absolute values are this
# test's): peer_counter NAME prints one (0 if absent); peer_counters_nonzero the
# non-zero MPTcpExt ones as "Name=value ..."; peer_counters_expect OP N NAME...
# fails unless every NAME's value satisfies `value OP N` (OP: -eq -ge -le ...).
peer_counter() {
    local v
    v=$(peer_exec nstat -az "$1" | awk -v k="$1" '$1 == k {print $2}')
    echo "${v:-0}"
}
peer_counters_nonzero() {
    peer_exec nstat -az | awk '$1 ~ /^MPTcpExt/ && $2 != 0 {printf "%s=%s ", $1, $2}'
}
peer_counters_expect() {
    local op=$1 n=$2 k v
    shift 2
    for k in "$@"; do
        v=$(peer_counter "$k")
        test "$v" "$op" "$n" || fail "PEER counter $k is $v, expected $op $n (non-zero: $(peer_counters_nonzero))"
    done
}

# The counters that must stay 0 whenever Linux ran MPTCP with joins: no fallback of
# any kind, no join refused or failing its HMAC, no DSS mismatch or checksum error.
MP_PEER_ZERO=(MPTcpExtMPCapableFallbackSYNACK MPTcpExtMPCapableFallbackACK
    MPTcpExtMPCapableDataFallback MPTcpExtDssFallback MPTcpExtFallbackFailed
    MPTcpExtDSSCorruptionFallback MPTcpExtDSSCorruptionReset MPTcpExtDSSNotMatching
    MPTcpExtDataCsumErr MPTcpExtInfiniteMapRx MPTcpExtInfiniteMapTx
    MPTcpExtMPJoinSynAckHMacFailure MPTcpExtMPJoinAckHMacFailure
    MPTcpExtMPJoinSynTxCreatSkErr MPTcpExtMPJoinSynTxBindErr MPTcpExtMPJoinSynTxConnectErr
    MPTcpExtMPJoinNoTokenFound MPTcpExtMPJoinRejected MPTcpExtMPFailTx MPTcpExtMPFailRx
    MPTcpExtMPFastcloseRx MPTcpExtMPRstRx)

# mptun_counter NAME [JSON]: one of `mptun status --json`'s counters.
mptun_counter() {
    json_eval "${2:-$(mptun_status_json)}" "d['counters']['$1']"
}

# mptun_subflows_json PORT: the subflows[] of mptun's connections whose local port
# is PORT, as JSON ([] when there is none).
mptun_subflows_json() {
    json_eval "$(mptun_status_json)" "[s for c in d['connections'] if c['local'].rsplit(':', 1)[1] == '$1' for s in c['subflows']]"
}

# mptun_wait_subflows PORT N PID [SECS]: wait (while process PID runs, at most
# SECS, default 30) until mptun's connection on local port PORT has N ESTABLISHED
# subflows with N distinct remote addresses; prints that subflows[] JSON. 1 if not.
mptun_wait_subflows() {
    local port=$1 n=$2 pid=$3 end=$((SECONDS + ${4:-30})) subs
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do
        if subs=$(mptun_subflows_json "$port" 2>/dev/null) &&
            json_eval "$subs" "len(d) == $n and all(s['state'] == 'ESTABLISHED' for s in d) and len({s['remote'].rsplit(':', 1)[0] for s in d}) == $n or None" >/dev/null; then
            echo "$subs"
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# mp_diag: one-line evidence for a failure report: PEER's non-zero MPTcpExt
# counters, mptun's connections (data level and per subflow) and its non-zero
# mptcp_* counters (or why status did not answer, e.g. a busy-looping daemon).
mp_diag() {
    local st
    echo "PEER: $(peer_counters_nonzero)"
    if st=$(mptun_status_json 2>&1); then
        python3 -c '
import json, sys
d = json.loads(sys.argv[1])
for c in d["connections"]:
    subs = [(s["remote"], s["state"], "backup" if s["backup"] else "active", s["bytes_sent"], s["bytes_received"], s["rto_us"]) for s in c["subflows"]]
    print("mptun connection %(remote)s %(state)s sent=%(bytes_sent)s received=%(bytes_received)s mptcp=%(mptcp)s" % c,
          f"subflows (remote, state, role, sent, received, rto_us)={subs}", "buffers=" + str(c.get("buffers")))
print("mptun counters: " + " ".join(f"{k}={v}" for k, v in d["counters"].items() if v))
' "$st"
    else
        echo "mptun status failed: $st (mptun: $(ps -o %cpu=,stat= -p "$MPTUN_PID" 2>/dev/null || echo gone) % CPU, state)"
    fi
}

# mp_fail MSG: fail with MSG and mp_diag's evidence.
mp_fail() {
    fail "$*"$'\n'"$(mp_diag)"
}

# wait_file SECS FILE [PID]: wait until FILE exists; 1 on timeout or when process
# PID (e.g. the client writing FILE) ended first.
wait_file() {
    local end=$((SECONDS + $1))
    while [ ! -e "$2" ]; do
        [ "$SECONDS" -ge "$end" ] && return 1
        [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null && { [ -e "$2" ]; return; }
        sleep 0.02
    done
}

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM ERR
    if [ -n "$MPTUN_PID" ]; then
        if [ "${NETNS_COUNTERS:-0}" = 1 ]; then
            log "at the end: $(mptun_counters_note)"
        fi
        mptun_stop 3 >/dev/null 2>&1
    fi
    local p ns
    for p in "${BG_PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null
    done
    if [ "$_TOPOLOGY" = 1 ]; then
        # Anything still running inside our namespaces was started by this test.
        for ns in "$PEER" "$HOST" "${EXTRA_NS[@]}"; do
            for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        done
    fi
    for p in "${BG_PIDS[@]}"; do
        wait "$p" 2>/dev/null
    done
    if [ "${KEEP_NETNS:-0}" = 1 ]; then
        log "KEEP_NETNS=1: keeping namespaces $PEER $HOST ${EXTRA_NS[*]} and $DIR"
        exit "$rc"
    fi
    if [ "$_TOPOLOGY" = 1 ]; then
        ip netns del "$PEER" 2>/dev/null
        ip netns del "$HOST" 2>/dev/null
        for ns in "${EXTRA_NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
        # Per-namespace /etc files a test wrote (ip netns exec mounts them).
        for ns in "$PEER" "$HOST" "${EXTRA_NS[@]}"; do
            [ -n "$ns" ] && rm -rf "/etc/netns/$ns"
        done
    fi
    rm -rf "$DIR"
    exit "$rc"
}
trap cleanup EXIT
# set -e exits silently: say which command failed.
trap 'echo "[$TEST_NAME] FAIL: command failed (status $?) at ${BASH_SOURCE[0]##*/}:$LINENO: $BASH_COMMAND" >&2' ERR
trap 'exit 130' INT
trap 'exit 143' TERM
