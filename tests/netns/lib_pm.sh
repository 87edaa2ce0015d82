# shellcheck shell=bash
# Helpers of the path-manager and MPTCP-version interop tests (t_mptcp_signal,
# t_mptcp_client_join, t_mptcp_rm_prio, t_mptcp_v0, t_mptcp_v0_linux). Sourced after
# lib.sh, whose topology, cleanup and helpers they use:
#   . "$(dirname "$0")/lib.sh"
#   . "$(dirname "$0")/lib_pm.sh"

# mptun_addr CMD ARGS...: `mptun addr CMD ARGS` against this test's daemon.
mptun_addr() {
    log "mptun addr $*"
    "$MPTUN" addr --control "$CTL" "$@"
}

# mp_signal_up RATE [MPTUN ARGS...]: the two-path topology with mptun announcing
# its second address (`--addr 10.10.1.2 --addr 10.10.2.2,signal`), Linux accepting
# announced addresses (`limits subflows 2 add_addr_accepted 2`), both paths shaped
# to RATE from Linux, and the daemon started with the given arguments.
mp_signal_up() {
    local rate=$1
    shift
    mp_topology_up
    ip -n "$PEER" mptcp limits set subflows 2 add_addr_accepted 2
    shape "$PEER" p1 "$rate"
    shape "$PEER" p2 "$rate"
    MPTUN_ADDRS=(10.10.1.2 10.10.2.2,signal)
    mptun_start "$@"
}

# mptun_counters_nonzero [JSON]: mptun's non-zero mptcp_* counters, "name=value ...".
mptun_counters_nonzero() {
    json_eval "${1:-$(mptun_status_json)}" '" ".join(f"{k}={v}" for k, v in d["counters"].items() if k.startswith("mptcp_") and v)'
}

# mptun_counters_expect JSON OP N NAME...: fails unless each of mptun's counters NAME
# in the status JSON satisfies `value OP N`.
mptun_counters_expect() {
    local st=$1 op=$2 n=$3 k v
    shift 3
    for k in "$@"; do
        v=$(mptun_counter "$k" "$st") || fail "mptun status has no counter $k"
        test "$v" "$op" "$n" || fail "mptun counter $k is $v, expected $op $n (non-zero: $(mptun_counters_nonzero "$st"))"
    done
}

# mptun_conn_json PYCOND [JSON]: the first of mptun's connections for which the
# Python condition PYCOND on `c` holds, e.g. 'c["remote"].endswith(":7")'.
mptun_conn_json() {
    json_eval "${2:-$(mptun_status_json)}" "next((c for c in d['connections'] if $1), None)"
}

# The join counters that must stay 0 on mptun's side.
MPTUN_ZERO=(mptcp_join_hmac_failures mptcp_join_rejected mptcp_fallbacks
    mptcp_checksum_errors mptcp_add_addr_hmac_failures)

# mpserver NS ADDR PORT LOG [ARGS]: a Linux echo server (mpserver.py, MPTCP with
# --mptcp) in NS that appends one JSON line per connection to LOG, with Linux's
# MPTCP_INFO of the accepted socket (largest subflow counts seen, fallback flag).
mpserver() {
    local ns=$1 addr=$2 port=$3 slog=$4
    shift 4
    local ready="$DIR/mpserver-$port.ready"
    bg_run "$ns" python3 "$NETNS_DIR/mpserver.py" "$addr" "$port" --log "$slog" --ready-file "$ready" "$@"
    wait_until 5 test -e "$ready" || fail "mpserver on $addr:$port did not start"
}

# mpserver_wait LOG N: wait (10 s) until LOG has N connection lines; prints the last.
mpserver_wait() {
    wait_until 10 sh -c "[ \$(wc -l <'$1' 2>/dev/null || echo 0) -ge $2 ]" ||
        fail "mpserver logged fewer than $2 connections: $(cat "$1" 2>/dev/null)"
    tail -n 1 "$1"
}

# mptun2_start NS TUN CTL LOG ARGS...: a second mptun daemon (`run --tun TUN
# --control CTL ARGS`) in namespace NS, output to LOG, stopped by the test or
# killed by lib.sh's cleanup with the namespace's other processes. Waits until its
# control socket answers. Sets MPTUN2_PID.
mptun2_start() {
    local ns=$1 tun=$2 ctl=$3 mlog=$4
    shift 4
    local args=(run --tun "$tun" --control "$ctl")
    [ -n "${MPTUN_SEED:-}" ] && args+=(--seed "$MPTUN_SEED")
    args+=("$@")
    log "($ns) mptun ${args[*]}"
    echo "# ip netns exec $ns $MPTUN ${args[*]}" >"$mlog"
    RUST_LOG=${RUST_LOG:-info} ip netns exec "$ns" "$MPTUN" "${args[@]}" >>"$mlog" 2>&1 &
    MPTUN2_PID=$!
    BG_PIDS+=("$MPTUN2_PID")
    local end=$((SECONDS + 10))
    until "$MPTUN" status --control "$ctl" --json >/dev/null 2>&1; do
        kill -0 "$MPTUN2_PID" 2>/dev/null || { tail -n 20 "$mlog" >&2; fail "mptun in $ns exited during startup"; }
        [ "$SECONDS" -ge "$end" ] && { tail -n 20 "$mlog" >&2; fail "mptun in $ns not ready after 10s"; }
        sleep 0.1
    done
}
