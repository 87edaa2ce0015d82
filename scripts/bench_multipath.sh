#!/usr/bin/env bash
# Multipath benchmark (not a test): mptun's MPTCP next to Linux-to-Linux MPTCP on the
# same two shaped paths. The client is always Linux MPTCP in namespace PEER
# (tests/netns/tcpclient.py --mptcp); the server is one of
#
#   mptun   `mptun run --tun mpt0 --addr 10.10.1.2 --addr 10.10.2.2 ... --sink 9`
#           (`--echo 7` for the failover) in HOST, behind its TUN, fresh for every run
#   linux   a Python server on an MPTCP socket in namespace SRV at 10.10.1.3, behind
#           a veth from HOST: scripts/benchnet.py serve-sink --mptcp (sink) and
#           tests/netns/mpserver.py --mptcp (echo); SRV has the same MPTCP limits as
#           PEER and no endpoint, so like mptun it announces nothing and opens no join
#
#   ns PEER                                   ns HOST (router)
#   p1 10.1.0.1 ── veth, tbf RATE each way ── h1 10.1.0.2 ─┬─ TUN mpt0 ── mptun 10.10.1.2, 10.10.2.2
#   p2 10.2.0.1 ── veth, tbf RATE each way ── h2 10.2.0.2 ─┴─ veth h9 10.10.9.1 ── s9 ns SRV: Linux 10.10.1.3
#
# Both servers are one forwarding hop behind HOST, so in both cases the shaped veths
# carry forwarded packets and a full tbf queue simply drops. (A server in HOST itself
# would queue its own packets into the tbf and get TCP Small Queues backpressure from
# it, which mptun, writing into a TUN, never gets.) PEER routes by source address
# (lib.sh mp_topology_up), so each subflow keeps to its path for either server.
#
# Cases, each repeated --reps times, mptun and linux interleaved (the order swapped
# every repetition, so slow drifts of the shared machine hit both):
#   sink1     one sink transfer of --sink-bytes, no PEER endpoint: one subflow
#   sink2     the same with PEER endpoint `10.2.0.1 dev p2 subflow`: Linux joins the
#             server's initial address over path 2, two subflows
#   failover  with that endpoint, an echo of --echo-bytes; once half has come back,
#             `ip link set h1 down` in HOST takes path 1, the initial subflow's, away
#             (as tests/netns/t_mptcp_failover.sh does); the client's longest wait
#             between two reads with data (max_rx_gap_s) and its total time. Then h1
#             comes up again and the run's server stays until PEER's stale path-1
#             subflow, still holding what it had in flight, has been dealt with; the
#             counters of that aftermath are kept apart
# Goodput is tcpclient.py's: bytes / seconds from connect to the server's close. A run
# counts only if the transfer completed, MPTCP_INFO shows no fallback and the expected
# number of subflows; otherwise it is reported as failed, with the reason.
#
# Usage: scripts/bench_multipath.sh [--reps N] [--sink-bytes N] [--echo-bytes N]
#                                   [--rate RATE] [--write] [--no-build] [--baseline BIN]
#   --reps N        repetitions of every case and stack (default 3); tables show medians
#   --sink-bytes N  bytes per sink transfer (default 25165824 = 24 MiB)
#   --echo-bytes N  bytes per failover echo (default 33554432 = 32 MiB)
#   --rate RATE     tbf rate of every shaped link (default 20mbit)
#   --write         also write the "Multipath" section of docs/BENCHMARKS.md
#   --no-build      use the existing target/release/mptun
#   --baseline BIN  also run every case with the daemon BIN, as stack mptun-base,
#                   interleaved with the others (the order mptun, mptun-base, linux
#                   reversed every repetition), and print the ratios mptun / mptun-base;
#                   not with --write
# The daemon: $MPTUN if set (tests/netns/lib.sh), else target/release/mptun.
# Needs root (network namespaces, TUN), python3, iproute2 (ip, tc, nstat).
set -Eeuo pipefail

ORIG_ARGS=("$@")
REPS=3
SINK_BYTES=$((24 << 20))
ECHO_BYTES=$((32 << 20))
RATE=20mbit
WRITE=0
BUILD=1
BASELINE=""
while [ $# -gt 0 ]; do
    case $1 in
    --reps) REPS=$2; shift 2 ;;
    --sink-bytes) SINK_BYTES=$2; shift 2 ;;
    --echo-bytes) ECHO_BYTES=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --write) WRITE=1; shift ;;
    --no-build) BUILD=0; shift ;;
    --baseline) BASELINE=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -E/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_multipath.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -n "$BASELINE" ]; then
    [ "$WRITE" = 0 ] || { echo "bench_multipath.sh: --baseline and --write do not go together" >&2; exit 2; }
    [ -x "$BASELINE" ] || { echo "bench_multipath.sh: --baseline $BASELINE is not an executable" >&2; exit 2; }
    BASELINE=$(realpath "$BASELINE")
fi
[ "$(id -u)" = 0 ] || { echo "bench_multipath.sh: needs root (network namespaces, TUN)" >&2; exit 1; }

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
if [ "$BUILD" = 1 ]; then
    echo "== cargo build --release (mptun)" >&2
    cargo build --release --locked -j 2 -p mptun >&2
fi

# The namespace helpers of the interop tests (mp_topology_up, shape, mptun_start,
# cleanup, ...) and lib_pm.sh's mpserver (a Linux MPTCP echo server with a JSON log).
# shellcheck source=../tests/netns/lib.sh
. "$REPO/tests/netns/lib.sh"
# shellcheck source=../tests/netns/lib_pm.sh
. "$REPO/tests/netns/lib_pm.sh"
# warn, not lib.sh's info: a daemon logging at info under load is not what is measured.
export RUST_LOG=${RUST_LOG:-warn}
SRV="$PFX-srv"
SRV_ADDR=10.10.1.3
# shellcheck source=lib_srv.sh
. "$REPO/scripts/lib_srv.sh"
SRV_PIDS=()
RESULTS=$DIR/results.jsonl
# Counters every run moves (handshakes, joins, reordering and window sharing between
# two subflows, the daemon's packet counts, and drop_not_for_us: the MLD reports the
# kernel sends into a new TUN): left out of the log and the tables, which show what
# went wrong or was repaired. MPTcpExt names without that prefix.
export ROUTINE_COUNTERS="MPCapableSYNTX MPCapableSYNACKRX MPCapableSYNRX MPCapableACKRX
    MPJoinSynTx MPJoinSynAckRx MPJoinSynRx MPJoinAckRx
    OFOQueue OFOQueueTail OFOMerge RcvWndShared SndWndShared
    packets_in packets_out segments_in segments_out drop_not_for_us
    connections_accepted mptcp_connections mptcp_join_syn_rx mptcp_joins_established"

bench_cleanup() {
    local rc=$?
    set +e
    trap - ERR # a server already gone makes kill and wait fail, which is fine here
    if [ "$_SRV" = 1 ]; then
        local p
        # SIGTERM and reap the servers here (lib.sh's cleanup would SIGKILL them
        # and the shell report each as "Killed"); SIGKILL what is left.
        for p in "${SRV_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
        for p in "${SRV_PIDS[@]}"; do wait "$p" 2>/dev/null; done
        srv_ns_down
    fi
    (exit "$rc")
    cleanup
}
trap bench_cleanup EXIT

# srv_up: namespace SRV behind veth h9 (HOST) / s9, owning SRV_ADDR, MPTCP on with the
# same limits as PEER.
srv_up() {
    srv_ns_up
    ip -n "$SRV" addr add "$SRV_ADDR/32" dev s9
    # PEER already routes 10.10.1.0/24 by path 1 and 10.10.0.0/16 by a subflow's own
    # path; HOST needs the way on to SRV (mptun's own /32 routes point into its TUN).
    ip -n "$HOST" route add "$SRV_ADDR/32" via 10.10.9.2 dev h9
    ip netns exec "$SRV" sysctl -qw net.mptcp.enabled=1
    ip -n "$SRV" mptcp limits set subflows 2 add_addr_accepted 2
}

# ns_counters NS: NS's MPTcpExt counters, TcpRetransSegs and the TcpExt counters
# that say why a segment was sent again (and whether it was needed: DSACKRecvSegs
# counts those the receiver reported as duplicates), "name=value ...";
# absolute (the namespaces are fresh), so a run's share is after minus before.
# -s: leave nstat's history file, shared by every namespace, alone.
ns_counters() {
    ip netns exec "$1" nstat -asz | awk '$1 ~ /^MPTcpExt/ || $1 == "TcpRetransSegs" ||
        $1 ~ /^TcpExtTCP(LossProbes|Timeouts|SpuriousRTOs|DSACKRecvSegs|FastRetrans|SlowStartRetrans|LostRetransmit|RetransFail)$/ {printf "%s=%s ", $1, $2}'
    # What the shaping dropped: the packets NS's own tbf qdiscs refused (for PEER,
    # its sending side of both paths).
    tc -n "$1" -s qdisc show | awk '/^qdisc tbf/ {tbf = 1; next} /^qdisc/ {tbf = 0}
        tbf && /dropped/ {gsub(/[(),]/, ""); n += $7} END {printf "TbfDropped=%d ", n}'
}

# mptun_counters: mptun's non-zero counters, "name=value ..." (the daemon is fresh
# for every run, so they are the run's own).
mptun_counters() {
    json_eval "$(mptun_status_json)" '" ".join(f"{k}={v}" for k, v in d["counters"].items() if v)'
}

# mptun_idle: no connection left in mptun's status. Per-connection MPTCP counters
# (reinjected bytes, ...) are added to the totals when the connection closes.
mptun_idle() {
    [ "$(json_eval "$(mptun_status_json)" 'len(d["connections"])')" = 0 ]
}

# server_up STACK MPTUN_ARGS...: starts mptun (mptun-base: the --baseline daemon, see
# as_stack) with MPTUN_ARGS (its service); linux's
# servers run for the whole benchmark. Sets ADDR, and S0 to the server's counters
# (none for mptun, fresh for every run).
server_up() {
    if [ "${1%-base}" = mptun ]; then
        mptun_start "${@:2}"
        ADDR=10.10.1.2 S0=""
    else
        ADDR=$SRV_ADDR S0=$(ns_counters "$SRV")
    fi
}

# path_counters: PEER's counters, and as HostTbfDropped what HOST's tbf qdiscs
# (the paths' server-to-client side) dropped.
path_counters() {
    ns_counters "$PEER"
    tc -n "$HOST" -s qdisc show | awk '/^qdisc tbf/ {tbf = 1; next} /^qdisc/ {tbf = 0}
        tbf && /dropped/ {gsub(/[(),]/, ""); n += $7} END {printf "HostTbfDropped=%d ", n}'
}

# server_counters STACK: the server's counters now, "name=value ...".
server_counters() {
    if [ "${1%-base}" = mptun ]; then
        wait_until 3 mptun_idle || log "mptun still lists a connection; its counters may be incomplete"
        mptun_counters
    else
        ns_counters "$SRV"
    fi
}

# server_down STACK: stops mptun (linux's servers stay). Not in a $(...) subshell:
# mptun_stop must wait for its own child.
server_down() {
    if [ "${1%-base}" = mptun ]; then
        mptun_stop 5 || log "mptun exited with status $?"
    fi
}

# record CASE STACK REP RC REASON CLIENT_JSON PEER0 PEER1 SERVER0 SERVER1 [PEER2
# SERVER2]: appends one JSON line to RESULTS: the client's figures, MPTCP_INFO's
# verdict (a run is valid only if it completed, without fallback, with the expected
# subflows; REASON, if not empty, fails it anyway), the counter deltas over the
# transfer (0 to 1) and, for the failover, after it, while path 1 came back (1 to 2).
record() {
    python3 - "$RESULTS" "$@" <<'PY'
import json, os, sys
path, case, stack, rep, rc, reason, out, p0, p1, s0, s1 = sys.argv[1:12]
p2, s2 = (sys.argv[12:14] + [None, None])[:2]
def kv(text):
    return {k: int(v) for k, v in (x.split("=") for x in text.split())}
def delta(a, b):
    a, b = kv(a), kv(b)
    return {k: v - a.get(k, 0) for k, v in b.items() if v - a.get(k, 0)}
try:
    c = json.loads(out.strip().splitlines()[-1])
except (ValueError, IndexError):
    c = {}
want = 1 if case == "sink1" else 2
info = c.get("mptcp_info_end") or {}
client_err = "; ".join(c.get("errors") or [c.get("error") or f"client exit status {rc}"])
if reason:
    if rc != "0" or not c.get("ok"):
        reason += f" (client: {client_err})"
elif rc != "0" or not c.get("ok"):
    reason = client_err
elif not info:
    reason = "no MPTCP_INFO (not MPTCP)"
elif info.get("fallback"):
    reason = "fell back to TCP"
elif c.get("mptcp_max_subflows_total") != want:
    reason = f"{c.get('mptcp_max_subflows_total')} subflows, expected {want}"
rec = {"case": case, "stack": stack, "rep": int(rep), "ok": not reason, "reason": reason,
       "mbit_s": c.get("mbit_s"), "seconds": c.get("seconds"), "max_rx_gap_s": c.get("max_rx_gap_s"),
       "subflows_total": c.get("mptcp_max_subflows_total"),
       "peer": delta(p0, p1), "server": delta(s0, s1),
       "peer_after": delta(p1, p2) if p2 is not None else {},
       "server_after": delta(s1, s2) if s2 is not None else {}}
with open(path, "a") as f:
    f.write(json.dumps(rec) + "\n")
summary = f"{rec['mbit_s']} Mbit/s, {rec['seconds']} s"
if case == "failover":
    summary += f", longest stall {rec['max_rx_gap_s']} s"
routine = set(os.environ["ROUTINE_COUNTERS"].split())
def moved(d):
    return " ".join(f"{k}={v}" for k, v in sorted(d.items()) if k.removeprefix("MPTcpExt") not in routine) or "-"
line = (f"{case} {stack} rep {rep}: " + (summary if rec["ok"] else f"FAILED ({reason})") +
        f"; PEER {moved(rec['peer'])}; server {moved(rec['server'])}")
if p2 is not None:
    line += f"; after path 1 came back: PEER {moved(rec['peer_after'])}; server {moved(rec['server_after'])}"
print(line, file=sys.stderr)
PY
}

# sink_run STACK REP N: one sink transfer of SINK_BYTES with N subflows (the PEER
# endpoint is there or not).
sink_run() {
    local stack=$1 rep=$2 n=$3 out rc=0 p0 s1
    p0=$(path_counters)
    server_up "$stack" --sink 9
    out=$(tcpclient_peer "$ADDR" 9 --mode sink --mptcp --bytes "$SINK_BYTES" --seed "$stack.$rep.$n" \
        --idle-timeout 15 --timeout 120 2>>"$DIR/client.err") || rc=$?
    s1=$(server_counters "$stack")
    server_down "$stack"
    record "sink$n" "$stack" "$rep" "$rc" "" "$out" "$p0" "$(path_counters)" "$S0" "$s1"
}

p1_up() { [ "$(peer_exec cat /sys/class/net/p1/operstate)" = up ]; }

# path1_restore: h1 up again (HOST's route to 10.1.0.0/24 comes back with it), its
# tbf in place, PEER's p1 with carrier, for the next run.
path1_restore() {
    ip -n "$HOST" link set h1 up
    shape "$HOST" h1 "$RATE"
    wait_until 5 p1_up || fail "PEER's p1 has no carrier 5 s after h1 came back up"
}

# peer_quiet ADDR PORT: PEER has no TCP socket (subflow) to ADDR:PORT left that
# would still send: none but in TIME-WAIT or FIN-WAIT-2 (everything it sent was
# acknowledged; it only waits for the server's FIN).
peer_quiet() {
    [ -z "$(peer_exec ss -tnH exclude time-wait exclude fin-wait-2 dst "$1" and dport = ":$2")" ]
}

# peer_fin_wait2 ADDR: PEER's subflows to ADDR:7 in FIN-WAIT-2, "local remote" a line.
peer_fin_wait2() {
    peer_exec ss -tnH state fin-wait-2 dst "$1" and dport = :7 | awk '{print $3, $4}'
}

# failover_run STACK REP: the echo of ECHO_BYTES over two subflows; path 1 goes down
# when half has come back.
failover_run() {
    local stack=$1 rep=$2 out rc=0 p0 p1 s1 client reason="" fw2 fw2_before
    p0=$(path_counters)
    server_up "$stack" --echo 7
    fw2_before=$(peer_fin_wait2 "$ADDR")
    rm -f "$DIR/half"
    bg_run "$PEER" python3 "$NETNS_DIR/tcpclient.py" "$ADDR" 7 --mptcp --bytes "$ECHO_BYTES" \
        --seed "fo.$stack.$rep" --mark "$((ECHO_BYTES / 2)):$DIR/half" --idle-timeout 15 --timeout 120 \
        >"$DIR/client.json" 2>>"$DIR/client.err"
    client=$BG_PID
    if wait_file 60 "$DIR/half" "$client"; then
        ip -n "$HOST" link set h1 down
    else
        reason="half the echo never came back, path 1 stayed up"
    fi
    wait "$client" || rc=$?
    out=$(cat "$DIR/client.json")
    p1=$(path_counters)
    s1=$(server_counters "$stack")
    # PEER's subflow on path 1 outlives the connection (FIN-WAIT-1 with the data it
    # had in flight) and retransmits until path 1 is back. This run's server must
    # answer it, so that it neither runs into the next run's server nor counts there;
    # what that takes is counted apart ("after path 1 came back").
    path1_restore
    wait_until 30 peer_quiet "$ADDR" 7 ||
        log "PEER still has a subflow to $ADDR:7 30 s after path 1 came back: $(peer_exec ss -tnH dst "$ADDR")"
    # A subflow the server never closed stays in FIN-WAIT-2 (tcp_fin_timeout, 60 s):
    # counted, unless an earlier run left it.
    fw2=$(peer_fin_wait2 "$ADDR" | grep -cvxF -e "$fw2_before" || true)
    record failover "$stack" "$rep" "$rc" "$reason" "$out" "$p0" "$p1" "$S0" "$s1" \
        "$(path_counters) FinWait2Left=$fw2" "$(server_counters "$stack")"
    server_down "$stack"
}

# as_stack STACK CMD...: CMD, with the --baseline daemon if STACK is mptun-base
# (lib.sh's mptun_start, mptun_stop and mptun_status_json read MPTUN).
as_stack() {
    if [ "$1" = mptun-base ]; then
        local MPTUN=$BASELINE
        "${@:2}"
    else
        "${@:2}"
    fi
}

mp_topology_up
# The limits asked of both ends. Neither server announces an address, so
# add_addr_accepted changes nothing; subflows 2 lets the endpoint's join happen.
ip -n "$PEER" mptcp limits set subflows 2 add_addr_accepted 2
srv_up
for i in 1 2; do
    shape "$PEER" "p$i" "$RATE"
    shape "$HOST" "h$i" "$RATE"
done
bg_run "$SRV" python3 "$REPO/scripts/benchnet.py" serve-sink "$SRV_ADDR" 9 --mptcp --ready-file "$DIR/sink.ready"
SRV_PIDS+=("$BG_PID")
wait_until 5 test -e "$DIR/sink.ready" || fail "the Linux MPTCP sink in SRV did not start"
mpserver "$SRV" "$SRV_ADDR" 7 "$DIR/mpserver.log" --mptcp
SRV_PIDS+=("$BG_PID")
: >"$RESULTS"
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
log "$REPS repetitions; sink $SINK_BYTES bytes, echo $ECHO_BYTES bytes, every path $RATE each way (load average $LOADAVG)"
log "mptun: $MPTUN${BASELINE:+; mptun-base: $BASELINE}"
START=$SECONDS
for rep in $(seq 1 "$REPS"); do
    # Which stack goes first alternates, so neither always runs on a warmer machine.
    if [ -n "$BASELINE" ]; then
        if ((rep % 2)); then stacks=(mptun mptun-base linux); else stacks=(linux mptun-base mptun); fi
    elif ((rep % 2)); then stacks=(mptun linux); else stacks=(linux mptun); fi
    ip -n "$PEER" mptcp endpoint flush
    for s in "${stacks[@]}"; do as_stack "$s" sink_run "$s" "$rep" 1; done
    mp_endpoint 10.2.0.1 p2 subflow
    for s in "${stacks[@]}"; do as_stack "$s" sink_run "$s" "$rep" 2; done
    for s in "${stacks[@]}"; do as_stack "$s" failover_run "$s" "$rep"; done
done
ELAPSED=$((SECONDS - START))
log "all runs took ${ELAPSED}s"

# summary PART: the tables ("tables") or the generated reading ("reading"), markdown.
summary() {
    python3 - "$1" "$RESULTS" "$SINK_BYTES" "$ECHO_BYTES" "$RATE" "${MP_PEER_ZERO[*]}" <<'PY'
import json, os, statistics, sys
part, path, sink_bytes, echo_bytes, rate = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
# lib.sh's MP_PEER_ZERO: the Linux counters of a fallback, a refused or failed join,
# a DSS mismatch, a checksum error, MP_FAIL, MP_FASTCLOSE or MP_RST received.
bad = {k.removeprefix("MPTcpExt") for k in sys.argv[6].split()}
rows = [json.loads(l) for l in open(path) if l.strip()]
base = any(r["stack"] == "mptun-base" for r in rows)
stacks = ["mptun", "mptun-base", "linux"] if base else ["mptun", "linux"]
def runs(case, stack):
    return sorted((r for r in rows if r["case"] == case and r["stack"] == stack), key=lambda r: r["rep"])
def med(case, stack, key):
    xs = [r[key] for r in runs(case, stack) if r["ok"]]
    return statistics.median(xs) if xs else None
def cell(case, stack, key, fmt):
    rs = runs(case, stack)
    m = med(case, stack, key)
    each = ", ".join(format(r[key], fmt) if r["ok"] else "failed" for r in rs)
    return f"{'n/a' if m is None else format(m, fmt)} ({each})"
def ratios(stack):
    """two / one per repetition: both runs of a pair ran within a minute of each other."""
    one = {r["rep"]: r["mbit_s"] for r in runs("sink1", stack) if r["ok"]}
    two = {r["rep"]: r["mbit_s"] for r in runs("sink2", stack) if r["ok"]}
    return [two[k] / one[k] for k in sorted(one) if k in two]
def ratio_med(stack):
    xs = ratios(stack)
    return statistics.median(xs) if xs else None
def f(x, fmt):
    return "n/a" if x is None else format(x, fmt)
def mib(n):
    return f"{n / 2**20:g} MiB"

ROUTINE = set(os.environ["ROUTINE_COUNTERS"].split())
def counters(case, stack, side):
    tot = {}
    for r in runs(case, stack):
        for k, v in r[side].items():
            k = k.removeprefix("MPTcpExt").removeprefix("TcpExt")
            if k not in ROUTINE:
                tot[k] = tot.get(k, 0) + v
    return " ".join(f"{k}={v}" for k, v in sorted(tot.items())) or "–"

if part == "tables":
    print(f"Aggregation: one transfer of {mib(sink_bytes)} into a sink, Mbit/s of goodput "
          f"(median, then every run); two / one is the median of the per-repetition ratios.")
    print()
    print("| case | stack | one path, Mbit/s | two paths, Mbit/s | two / one |")
    print("|---|---|---:|---:|---:|")
    for s in stacks:
        rs = ", ".join(f"{x:.2f}" for x in ratios(s))
        print(f"| {mib(sink_bytes)} sink, {rate} per path | {s} | {cell('sink1', s, 'mbit_s', '.1f')} | "
              f"{cell('sink2', s, 'mbit_s', '.1f')} | {f(ratio_med(s), '.2f')} ({rs}) |")
    print()
    print(f"Failover: {mib(echo_bytes)} echoed over two subflows, path 1 (the initial subflow's) "
          "down when half has come back; seconds (median, then every run).")
    print()
    print("| case | stack | longest stall, s | total, s |")
    print("|---|---|---:|---:|")
    for s in stacks:
        print(f"| {mib(echo_bytes)} echo, path 1 down at half | {s} | "
              f"{cell('failover', s, 'max_rx_gap_s', '.2f')} | {cell('failover', s, 'seconds', '.1f')} |")
    print()
    print("Counters that moved, summed over the runs of a row (nstat's MPTcpExt without "
          "the prefix, TcpRetransSegs and TcpExt's retransmission causes without the prefix; "
          "mptun's status counters; routine ones left out). "
          "The failover rows end when the client has its last byte; the last rows cover "
          "what followed once path 1 was back up, until PEER's stale path-1 subflow was "
          "gone. FinWait2Left: PEER's subflows left in FIN-WAIT-2 then (the server never "
          "sent its FIN on them).")
    print()
    print("| case | stack | Linux client (PEER) | server (SRV's kernel / mptun) |")
    print("|---|---|---|---|")
    for case in ("sink1", "sink2", "failover"):
        for s in stacks:
            print(f"| {case} | {s} | {counters(case, s, 'peer')} | {counters(case, s, 'server')} |")
    for s in stacks:
        print(f"| failover, after path 1 came back | {s} | {counters('failover', s, 'peer_after')} | "
              f"{counters('failover', s, 'server_after')} |")
    if base:
        def per_rep(case, key):
            a = {r["rep"]: r[key] for r in runs(case, "mptun") if r["ok"]}
            b = {r["rep"]: r[key] for r in runs(case, "mptun-base") if r["ok"]}
            return ", ".join(f"{a[k] / b[k]:.2f}" for k in sorted(a) if k in b and b[k])
        def rmed(case, key):
            a, b = med(case, "mptun", key), med(case, "mptun-base", key)
            return "n/a" if a is None or not b else f"{a / b:.2f}"
        print()
        print("Against the baseline daemon (--baseline): mptun / mptun-base, the ratio of "
              "the medians, then the ratio in every repetition.")
        print()
        print("| case | figure | mptun / mptun-base |")
        print("|---|---|---:|")
        for case, key, what in (("sink1", "mbit_s", "one path, Mbit/s"),
                                ("sink2", "mbit_s", "two paths, Mbit/s"),
                                ("failover", "max_rx_gap_s", "longest stall, s"),
                                ("failover", "seconds", "total, s")):
            print(f"| {case} | {what} | {rmed(case, key)} ({per_rep(case, key)}) |")
    failed = [r for r in rows if not r["ok"]]
    if failed:
        print()
        print("Failed runs (left out of the medians):")
        print()
        for r in failed:
            print(f"- {r['case']} {r['stack']} repetition {r['rep']}: {r['reason']}")
else:
    m1, l1 = med("sink1", "mptun", "mbit_s"), med("sink1", "linux", "mbit_s")
    m2, l2 = med("sink2", "mptun", "mbit_s"), med("sink2", "linux", "mbit_s")
    def vs(a, b):
        return "n/a" if a is None or not b else f"{a / b:.2f}"
    print(f"- Aggregation: two paths give mptun {f(ratio_med('mptun'), '.2f')} × its one-path "
          f"goodput and Linux {f(ratio_med('linux'), '.2f')} ×. mptun / Linux goodput: "
          f"{vs(m1, l1)} on one path ({f(m1, '.1f')} vs {f(l1, '.1f')} Mbit/s), "
          f"{vs(m2, l2)} on two ({f(m2, '.1f')} vs {f(l2, '.1f')} Mbit/s).")
    # What the tbf lets through: tbf counts whole frames, 1514 bytes for a full
    # segment, which carries 1420 bytes of payload next to the timestamp and DSS options.
    units = {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "bit": 1}
    unit = next((u for u in units if rate.lower().endswith(u)), None)
    if unit and rate[:-len(unit)].replace(".", "", 1).isdigit():
        cap = float(rate[:-len(unit)]) * units[unit] / 1e6 * 1420 / 1514
        print(f"- The most {rate} lets through is about {cap:.1f} Mbit/s of payload per path "
              f"(1420 bytes in a 1514-byte frame), {2 * cap:.1f} over two.")
    gm, gl = med("failover", "mptun", "max_rx_gap_s"), med("failover", "linux", "max_rx_gap_s")
    tm, tl = med("failover", "mptun", "seconds"), med("failover", "linux", "seconds")
    print(f"- Failover: the client's longest wait for data was {f(gm, '.2f')} s with mptun and "
          f"{f(gl, '.2f')} s with Linux; the whole echo took {f(tm, '.1f')} s and {f(tl, '.1f')} s.")
    seen = []
    for case in ("sink1", "sink2", "failover"):
        for s in stacks:
            for side, who in (("peer", "the client"), ("server", "the server")):
                tot = {}
                for r in runs(case, s):
                    for k, v in r[side].items():
                        k = k.removeprefix("MPTcpExt")
                        if k in bad:
                            tot[k] = tot.get(k, 0) + v
                if tot:
                    seen.append(f"{who} of the {s} {case} runs: " + " ".join(f"{k}={v}" for k, v in sorted(tot.items())))
    print("- During the transfers Linux counted no fallback, refused join, DSS mismatch, "
          "checksum error, MP_FAIL, MP_FASTCLOSE or MP_RST received." if not seen else
          "- During the transfers Linux counted fallbacks, join failures or resets "
          "(lib.sh's MP_PEER_ZERO): " + "; ".join(seen) + ".")
    failed = [r for r in rows if not r["ok"]]
    print(f"- {len(failed)} of {len(rows)} runs failed" +
          (": " + "; ".join(f"{r['case']} {r['stack']} #{r['rep']}: {r['reason']}" for r in failed) if failed else "."))
PY
}

TABLES=$(summary tables)
READING=$(summary reading)
echo
echo "$TABLES"
echo
echo "$READING"

if [ "$WRITE" = 1 ]; then
    CMD="scripts/bench_multipath.sh${ORIG_ARGS[*]:+ ${ORIG_ARGS[*]}}"
    DIRTY=$(git -C "$REPO" diff --quiet HEAD -- . ':!docs/BENCHMARKS.md' 2>/dev/null || echo ' (with uncommitted changes)')
    SECTION=$DIR/section.md
    {
        echo "## Multipath (two shaped paths)"
        echo
        echo "Produced by \`$CMD\` (as root) on $(date -u '+%Y-%m-%d %H:%M UTC'),"
        echo "commit $(git -C "$REPO" rev-parse --short HEAD)$DIRTY; $REPS repetitions, ${ELAPSED} s in all."
        echo "Machine: $(nproc) CPUs, Linux $(uname -r); load average $LOADAVG at the start."
        echo "mptun and Linux-to-Linux MPTCP, the same Linux client, the same two paths, each"
        echo "shaped by \`tc qdisc ... tbf rate $RATE burst 32kbit latency 50ms\` on both veth ends."
        echo "Timing on a shared machine is noisy: compare the stacks side by side, run by run."
        echo
        echo "$TABLES"
        echo
        echo "Reading (generated from the medians above):"
        echo
        echo "$READING"
        echo
        cat <<'NOTES'
Setup (`scripts/bench_multipath.sh --help` has the details):

```
ns PEER (Linux client)                    ns HOST (router)
p1 10.1.0.1 ── veth, tbf each way ── h1 10.1.0.2 ─┬─ TUN mpt0 ── mptun 10.10.1.2, 10.10.2.2
p2 10.2.0.1 ── veth, tbf each way ── h2 10.2.0.2 ─┴─ veth h9 ── ns SRV: Linux MPTCP server 10.10.1.3
```

- The client is `tests/netns/tcpclient.py --mptcp` in PEER for both stacks; PEER
  routes by source address, so each subflow keeps to its own path. One path: no PEER
  endpoint, one subflow. Two paths: PEER endpoint `10.2.0.1 dev p2 subflow`, Linux
  joins the server's initial address over path 2.
- mptun: `mptun run --tun mpt0 --addr 10.10.1.2 --addr 10.10.2.2 --addr fd10:1::2
  --addr fd10:2::2 --sink 9` (or `--echo 7`), started fresh for every run. Linux:
  `scripts/benchnet.py serve-sink --mptcp` and `tests/netns/mpserver.py --mptcp` in
  namespace SRV behind HOST, with `ip mptcp limits set subflows 2 add_addr_accepted 2`
  (as PEER) and no endpoint. Both servers are one forwarding hop behind HOST, so in
  both cases the shaped links carry forwarded packets; a Linux server in HOST itself
  would feed its own packets into the tbf and get local backpressure (TCP Small
  Queues) that mptun behind its TUN cannot have.
- Goodput is the client's: bytes / seconds from connect to the server's close. The
  ceiling is the tbf rate minus headers, a little under the rate per path.
- Failover: once half the echo is back, `ip link set h1 down` in HOST (no carrier on
  PEER's p1 either). "Longest stall" is the client's longest wait between two reads
  that returned data (`max_rx_gap_s`), the whole echo included. Then h1 comes back
  up and the run's server stays until PEER's stale path-1 subflow (it outlives the
  connection, with the data it had in flight) has been answered, so that it cannot
  reach the next run's server; the counters of that aftermath have rows of their own.
  mptun moves a subflow's unacknowledged data to the other subflows at that
  subflow's first retransmission timeout (`subflow_upkeep` in
  stack/src/mptcp/connection.rs): with its 200 ms minimum RTO, 200 ms after the last
  acknowledgment on path 1 at the earliest (it was two timeouts, 600 ms, until
  f52b9d4: 0.60 s median stall then). Linux in PEER sees p1 lose its carrier and
  moves at once in its own direction; which stack stalls less varies run to run.
- A run counts only if it completed with MPTCP (MPTCP_INFO: no fallback) and the
  expected number of subflows; failed runs are listed and left out of the medians.
- The counters are deltas of `nstat -as` in PEER and SRV around each run, and
  mptun's `status --json` counters (the daemon is fresh for every run).

Reproduce: `sudo scripts/bench_multipath.sh [--reps N] [--write]`.
NOTES
    } >"$SECTION"
    # Replace the section where it is (up to the next "## " heading), or append it.
    python3 - "$REPO/docs/BENCHMARKS.md" "$SECTION" <<'PY'
import sys
doc_path, sec_path = sys.argv[1], sys.argv[2]
head = "## Multipath (two shaped paths)"
lines = open(doc_path).read().splitlines()
section = open(sec_path).read().rstrip("\n").splitlines()
if head in lines:
    i = lines.index(head)
    j = next((k for k in range(i + 1, len(lines)) if lines[k].startswith("## ")), len(lines))
    lines[i:j] = section + ([""] if j < len(lines) else [])
else:
    while lines and not lines[-1].strip():
        lines.pop()
    lines += [""] + section
open(doc_path, "w").write("\n".join(lines) + "\n")
PY
    log "wrote the multipath section of docs/BENCHMARKS.md"
fi
