#!/usr/bin/env bash
# Throughput benchmark (not a test): one TCP connection at MTU 1500 over the same
# namespace path, three servers side by side in one run:
#
#   linux    a plain Linux socket server in namespace SRV (10.10.9.2), behind a veth
#            from the HOST router: the upper bound for this forwarding path
#   mptun    `mptun run --tun mpt0 --addr 10.10.1.2 --sink 9 --chargen 19
#            --local-forward 127.0.0.1:6000=10.1.0.1:5001` in HOST (TUN offloads on,
#            the default)
#   mptun-plain  the same with --no-offload: one packet per TUN read/write, like
#            smoltcp's TunTapInterface (shown for reference)
#   smoltcp  bench/smoltcp-sink (smoltcp's TunTapInterface) at 10.10.1.2 in HOST
#   linux-mptcp, mptun-mptcp  linux and mptun with MPTCP sockets at the Linux end
#            (one subflow): the PEER client's socket in both directions
#   mptun-fwd  from-server only: mptun relaying a local client's bytes
#            (--local-forward) over its own MPTCP connection to an MPTCP sink in PEER
#
#   ns PEER  p1 10.1.0.1 ── veth ── h1 10.1.0.2  ns HOST ─┬─ TUN mpt0/smt0 ── mptun | smoltcp
#                                                         └─ veth h9 10.10.9.1 ── s9 10.10.9.2  ns SRV
#
# Directions, always measured at the Linux endpoint in PEER (bytes / seconds, handshake
# to EOF):
#   to-server    PEER client writes N bytes to the server's sink (port 9), half-closes,
#                waits for the server's close.
#   from-server  the server sends N bytes to Linux in PEER, which reads until EOF.
#                linux/smoltcp: the server writes N bytes on an accepted connection and
#                closes. mptun: its --chargen service (RFC 864) sends until the
#                client has read N bytes and closes. mptun-fwd: a local client in
#                HOST writes N bytes to 127.0.0.1:6000, mptun opens its own
#                connection to a Linux sink in PEER (10.1.0.1:5001) and sends
#                them; the PEER sink times accept to EOF.
#
# CPU: user+system seconds of the server process per 10^9 bytes, from
# /proc/PID/stat (utime+stime) before and after each transfer. For linux that is the
# Python server process; the kernel's TCP work done in softirq context is charged to
# whoever was running, so it is a lower bound. "of it system": the share of the
# server's CPU spent in the kernel (stime): with one packet per system call most of
# it is the TUN's and the forwarding's, the same for any stack on that framing.
# "reads+writes per MB": the server's read and write system calls (/proc/PID/io
# syscr + syscw) per 10^6 bytes. The PEER client's own CPU (getrusage) is shown too.
#
# Usage: scripts/bench.sh [--bytes N] [--reps N] [--write] [--no-build] [--baseline BIN]
#                         [--cc NAME] [--only CASES]
#   --bytes N       bytes per transfer (default 1073741824 = 1 GiB)
#   --reps N        repetitions of every case (default 3); the table shows the median
#   --write         also write docs/BENCHMARKS.md
#   --no-build      use the existing release binaries
#   --baseline BIN  also run every mptun case with the daemon BIN, as cases mptun-base,
#                   mptun-plain-base, mptun-mptcp-base and mptun-fwd-base (no Linux
#                   MPTCP row), each next to its mptun case in every
#                   repetition (which of the two goes first alternates), and print the
#                   ratios mptun / mptun-base; not with --write. BIN must have
#                   --chargen
#   --cc NAME       TCP congestion control of the Linux ends (PEER and SRV), e.g. reno;
#                   default: the kernel's default (net.ipv4.tcp_congestion_control)
#   --only CASES    run only these cases, comma-separated (e.g. mptun,mptun-mptcp; with
#                   --baseline each brings its -base case along); not with --write
# The daemon: $MPTUN if set (tests/netns/lib.sh), else target/release/mptun.
# Needs root (network namespaces, TUN), python3, iproute2.
set -Eeuo pipefail

ORIG_ARGS=("$@")
BYTES=$((1 << 30))
REPS=3
WRITE=0
BUILD=1
BASELINE=""
CC=""
ONLY=""
while [ $# -gt 0 ]; do
    case $1 in
    --bytes) BYTES=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --write) WRITE=1; shift ;;
    --no-build) BUILD=0; shift ;;
    --baseline) BASELINE=$2; shift 2 ;;
    --cc) CC=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -E/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -n "$ONLY" ]; then
    [ "$WRITE" = 0 ] || { echo "bench.sh: --only and --write do not go together" >&2; exit 2; }
    for c in ${ONLY//,/ }; do
        case $c in
        linux | linux-mptcp | mptun | mptun-plain | mptun-mptcp | mptun-fwd | smoltcp) ;;
        *) echo "bench.sh: --only: unknown case $c (linux, linux-mptcp, mptun, mptun-plain, mptun-mptcp, mptun-fwd, smoltcp)" >&2; exit 2 ;;
        esac
    done
fi
if [ -n "$BASELINE" ]; then
    [ "$WRITE" = 0 ] || { echo "bench.sh: --baseline and --write do not go together" >&2; exit 2; }
    [ -x "$BASELINE" ] || { echo "bench.sh: --baseline $BASELINE is not an executable" >&2; exit 2; }
    "$BASELINE" run --help 2>/dev/null | grep -q -- --chargen ||
        { echo "bench.sh: --baseline $BASELINE has no --chargen (the from-server rows need it)" >&2; exit 2; }
    BASELINE=$(realpath "$BASELINE")
fi
[ "$(id -u)" = 0 ] || { echo "bench.sh: needs root (network namespaces, TUN)" >&2; exit 1; }

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
if [ "$BUILD" = 1 ]; then
    echo "== cargo build --release (mptun, mptun-bench-smoltcp)" >&2
    cargo build --release --locked -j 2 -p mptun -p mptun-bench-smoltcp >&2
fi
SMOLTCP=$REPO/target/release/smoltcp-sink
[ -x "$SMOLTCP" ] || { echo "bench.sh: no $SMOLTCP (run without --no-build)" >&2; exit 1; }

# The namespace helpers of the interop tests (topology_up, mptun_start, cleanup, ...).
# shellcheck source=../tests/netns/lib.sh
. "$REPO/tests/netns/lib.sh"
MPTUN_ADDRS=(10.10.1.2)
export RUST_LOG=${RUST_LOG:-warn}
BENCHNET=$REPO/scripts/benchnet.py
SRV="$PFX-srv"
# shellcheck source=lib_srv.sh
. "$REPO/scripts/lib_srv.sh"
HZ=$(getconf CLK_TCK)
RESULTS=$DIR/results.tsv

bench_cleanup() {
    local rc=$?
    set +e
    srv_ns_down
    (exit "$rc")
    cleanup
}
trap bench_cleanup EXIT

srv_up() {
    srv_ns_up
    ip -n "$PEER" route add 10.10.9.0/24 via 10.1.0.2
    # The *-mptcp cases: MPTCP sockets in PEER and SRV.
    peer_exec sysctl -qw net.mptcp.enabled=1
    ip netns exec "$SRV" sysctl -qw net.mptcp.enabled=1
    if [ -n "$CC" ]; then
        peer_exec sysctl -qw net.ipv4.tcp_congestion_control="$CC" &&
            ip netns exec "$SRV" sysctl -qw net.ipv4.tcp_congestion_control="$CC" ||
            fail "--cc $CC: not available to namespaces (see net.ipv4.tcp_allowed_congestion_control)"
    fi
    CC_USED=$(peer_exec sysctl -n net.ipv4.tcp_congestion_control)
}

# cpu_ticks PID: "UTIME STIME CALLS" of PID (all its threads): user and
# system time in clock ticks, and its read plus write system calls so far
# (/proc/PID/io's syscr + syscw).
cpu_ticks() {
    local s calls
    s=$(<"/proc/$1/stat")
    s=${s##*) }
    calls=$(awk '/^sysc[rw]:/{n += $2} END{print n + 0}' "/proc/$1/io")
    awk -v c="$calls" '{print $12, $13, c}' <<<"$s"
}

json_field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# record CASE DIR REP SERVER_PID TICKS0 JSON: appends one result line.
record() {
    local case=$1 dir=$2 rep=$3 pid=$4 t0=$5 json=$6 t1 mbit bytes ccpu
    t1=$(cpu_ticks "$pid")
    mbit=$(json_field "$json" mbit_s)
    bytes=$(json_field "$json" bytes)
    ccpu=$(json_field "$json" cpu_s)
    if [ "$bytes" != "$BYTES" ]; then
        log "$case $dir rep $rep: moved $bytes of $BYTES bytes"
        printf '%s\t%s\t%s\tFAIL\t\t\t\n' "$case" "$dir" "$rep" >>"$RESULTS"
        return
    fi
    local scpu ssys calls
    read -r scpu ssys calls < <(awk -v a="$t0" -v b="$t1" -v hz="$HZ" 'BEGIN{
        split(a, x, " "); split(b, y, " ")
        printf "%.3f %.3f %d\n", (y[1] + y[2] - x[1] - x[2]) / hz, (y[2] - x[2]) / hz, y[3] - x[3]}')
    log "$case $dir rep $rep: $mbit Mbit/s, server CPU ${scpu}s (system ${ssys}s, $calls reads and writes), client CPU ${ccpu}s"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$case" "$dir" "$rep" "$mbit" "$scpu" "$ccpu" "$bytes" "$ssys" "$calls" >>"$RESULTS"
}

fail_case() {
    log "$1 $2 rep $3: FAILED ($4)"
    printf '%s\t%s\t%s\tFAIL\t\t\t\n' "$1" "$2" "$3" >>"$RESULTS"
}

stop_pid() {
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# A Python server in namespace NS; sets BG_PID once it listens.
py_server() {
    local ns=$1 ready="$DIR/ready.$RANDOM"
    shift
    bg_run "$ns" python3 "$BENCHNET" "$@" --ready-file "$ready"
    wait_until 5 test -e "$ready" || fail "benchnet $* did not start"
}

client_peer() { peer_exec python3 "$BENCHNET" "$@" --timeout 120; }

# mptcp_flag CASE: --mptcp for the *-mptcp cases (sockets at the Linux ends).
mptcp_flag() { [[ $1 == *-mptcp || $1 == *-mptcp-base ]] && echo --mptcp || true; }

# run_linux REP [CASE]: CASE linux (default) or linux-mptcp.
run_linux() {
    local rep=$1 case=${2:-linux} pid t0 out m
    m=$(mptcp_flag "$case")
    py_server "$SRV" serve-sink 10.10.9.2 9 $m
    pid=$BG_PID t0=$(cpu_ticks "$BG_PID")
    if out=$(client_peer send 10.10.9.2 9 --bytes "$BYTES" $m); then
        record "$case" to-server "$rep" "$pid" "$t0" "$out"
    else fail_case "$case" to-server "$rep" "client failed"; fi
    stop_pid "$pid"

    py_server "$SRV" serve-source 10.10.9.2 10 --bytes "$BYTES" $m
    pid=$BG_PID t0=$(cpu_ticks "$BG_PID")
    if out=$(client_peer recv 10.10.9.2 10 --bytes "$BYTES" $m); then
        record "$case" from-server "$rep" "$pid" "$t0" "$out"
    else fail_case "$case" from-server "$rep" "client failed"; fi
    stop_pid "$pid"
}

# run_mptun REP [CASE [MPTUN_ARGS...]]: CASE defaults to mptun (mptun-mptcp:
# MPTCP sockets at the Linux ends).
run_mptun() {
    local rep=$1 case=${2:-mptun} t0 out m
    m=$(mptcp_flag "$case")
    shift $(($# < 2 ? $# : 2))
    mptun_start --sink 9 --chargen 19 "$@"
    t0=$(cpu_ticks "$MPTUN_PID")
    if out=$(client_peer send 10.10.1.2 9 --bytes "$BYTES" $m); then
        record "$case" to-server "$rep" "$MPTUN_PID" "$t0" "$out"
    else fail_case "$case" to-server "$rep" "client failed"; fi

    t0=$(cpu_ticks "$MPTUN_PID")
    if out=$(client_peer recv 10.10.1.2 19 --bytes "$BYTES" --then-close $m); then
        record "$case" from-server "$rep" "$MPTUN_PID" "$t0" "$out"
    else fail_case "$case" from-server "$rep" "client failed"; fi
    mptun_stop 5 || log "mptun exited with status $?"
}

# run_mptun_fwd REP [CASE]: from-server through --local-forward: HOST writer ->
# 127.0.0.1:6000 -> mptun -> its MPTCP connection -> Linux MPTCP sink in PEER.
run_mptun_fwd() {
    local rep=$1 case=${2:-mptun-fwd} t0 rfile sink_pid ready
    rfile="$DIR/lf-sink.$rep"
    mptun_start --local-forward 127.0.0.1:6000=10.1.0.1:5001
    : >"$rfile"
    ready="$DIR/ready.$RANDOM"
    bg_run "$PEER" python3 "$BENCHNET" serve-sink 10.1.0.1 5001 --report --mptcp --ready-file "$ready" >"$rfile"
    sink_pid=$BG_PID
    wait_until 5 test -e "$ready" || fail "Linux sink in PEER did not start"
    t0=$(cpu_ticks "$MPTUN_PID")
    if host_exec python3 "$BENCHNET" send 127.0.0.1 6000 --bytes "$BYTES" --timeout 120 >/dev/null &&
        wait_until 10 test -s "$rfile"; then
        record "$case" from-server "$rep" "$MPTUN_PID" "$t0" "$(head -n1 "$rfile")"
    else fail_case "$case" from-server "$rep" "local-forward transfer failed"; fi
    stop_pid "$sink_pid"
    mptun_stop 5 || log "mptun exited with status $?"
}

# smoltcp_start MODE: bench/smoltcp-sink on TUN smt0 in HOST, set up like mptun's.
smoltcp_start() {
    bg_run "$HOST" "$SMOLTCP" --tun smt0 --addr 10.10.1.2 --port 9 --mode "$1" --bytes "$BYTES" \
        2>>"$DIR/smoltcp.log"
    SMOLTCP_PID=$BG_PID
    wait_until 5 ip -n "$HOST" link show smt0 || fail "smoltcp-sink did not create smt0"
    ip -n "$HOST" link set smt0 mtu 1500 txqueuelen "$DEFAULT_TXQUEUELEN" up
    ip -n "$HOST" route add 10.10.1.2/32 dev smt0
}

run_smoltcp() {
    local rep=$1 t0 out
    smoltcp_start sink
    t0=$(cpu_ticks "$SMOLTCP_PID")
    if out=$(client_peer send 10.10.1.2 9 --bytes "$BYTES"); then
        record smoltcp to-server "$rep" "$SMOLTCP_PID" "$t0" "$out"
    else fail_case smoltcp to-server "$rep" "client failed"; fi
    stop_pid "$SMOLTCP_PID"
    wait_until 5 bash -c "! ip -n '$HOST' link show smt0" || fail "smt0 still there"

    smoltcp_start source
    t0=$(cpu_ticks "$SMOLTCP_PID")
    if out=$(client_peer recv 10.10.1.2 9 --bytes "$BYTES"); then
        record smoltcp from-server "$rep" "$SMOLTCP_PID" "$t0" "$out"
    else fail_case smoltcp from-server "$rep" "client failed"; fi
    stop_pid "$SMOLTCP_PID"
    wait_until 5 bash -c "! ip -n '$HOST' link show smt0" || fail "smt0 still there"
}

# as_base CMD...: CMD with the --baseline daemon (lib.sh's mptun_start and
# mptun_stop read MPTUN).
as_base() {
    local MPTUN=$BASELINE
    "$@"
}

DEFAULT_TXQUEUELEN=10000 # what mptun sets on its TUN (src/cli.rs DEFAULT_TXQUEUELEN)
topology_up
srv_up
: >"$RESULTS"
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
log "$REPS repetitions of $BYTES bytes per case and direction (load average $LOADAVG, Linux TCP congestion control $CC_USED)"
log "mptun: $MPTUN${BASELINE:+; mptun-base: $BASELINE}"
START=$SECONDS
# case_if CASE CMD...: CMD, unless --only leaves CASE out.
case_if() {
    local c=$1
    shift
    [ -z "$ONLY" ] || [[ ",$ONLY," == *",$c,"* ]] || return 0
    "$@"
}

for rep in $(seq 1 "$REPS"); do
    # Interleaved, so slow drifts of the shared machine hit every case alike.
    case_if linux run_linux "$rep"
    if [ -z "$BASELINE" ]; then
        case_if mptun run_mptun "$rep"
        case_if smoltcp run_smoltcp "$rep"
        case_if mptun-plain run_mptun "$rep" mptun-plain --no-offload
        case_if linux-mptcp run_linux "$rep" linux-mptcp
        case_if mptun-mptcp run_mptun "$rep" mptun-mptcp
        case_if mptun-fwd run_mptun_fwd "$rep"
    elif ((rep % 2)); then
        # Each mptun case next to its baseline, which of the two first alternating.
        case_if mptun run_mptun "$rep"
        case_if mptun as_base run_mptun "$rep" mptun-base
        case_if smoltcp run_smoltcp "$rep"
        case_if mptun-plain run_mptun "$rep" mptun-plain --no-offload
        case_if mptun-plain as_base run_mptun "$rep" mptun-plain-base --no-offload
        case_if mptun-mptcp run_mptun "$rep" mptun-mptcp
        case_if mptun-mptcp as_base run_mptun "$rep" mptun-mptcp-base
        case_if mptun-fwd run_mptun_fwd "$rep"
        case_if mptun-fwd as_base run_mptun_fwd "$rep" mptun-fwd-base
    else
        case_if mptun as_base run_mptun "$rep" mptun-base
        case_if mptun run_mptun "$rep"
        case_if smoltcp run_smoltcp "$rep"
        case_if mptun-plain as_base run_mptun "$rep" mptun-plain-base --no-offload
        case_if mptun-plain run_mptun "$rep" mptun-plain --no-offload
        case_if mptun-mptcp as_base run_mptun "$rep" mptun-mptcp-base
        case_if mptun-mptcp run_mptun "$rep" mptun-mptcp
        case_if mptun-fwd as_base run_mptun_fwd "$rep" mptun-fwd-base
        case_if mptun-fwd run_mptun_fwd "$rep"
    fi
done
log "all runs took $((SECONDS - START))s"

TABLE=$(python3 - "$RESULTS" "${BASELINE:+base}" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
base = sys.argv[2] == "base"
cases = (["linux", "mptun", "mptun-base", "smoltcp", "mptun-plain", "mptun-plain-base",
          "mptun-mptcp", "mptun-mptcp-base", "mptun-fwd", "mptun-fwd-base"] if base
         else ["linux", "mptun", "smoltcp", "mptun-plain", "linux-mptcp", "mptun-mptcp", "mptun-fwd"])
dirs = ["to-server", "from-server"]
def med(xs):
    return statistics.median(xs) if xs else None
res = {}
for c in cases:
    for d in dirs:
        rs = [r for r in rows if r[0] == c and r[1] == d]
        ok = [r for r in rs if r[3] != "FAIL"]
        res[c, d] = {
            "mbit": med([float(r[3]) for r in ok]),
            "runs": [r[3] if r[3] == "FAIL" else f"{float(r[3]):.0f}" for r in rs],
            "scpu": med([float(r[4]) / (int(r[6]) / 1e9) for r in ok]),
            "ccpu": med([float(r[5]) / (int(r[6]) / 1e9) for r in ok]),
            "ssys": med([float(r[7]) / float(r[4]) for r in ok if float(r[4]) > 0]),
            "calls": med([int(r[8]) / (int(r[6]) / 1e6) for r in ok]),
        }
def f(x, fmt):
    return "n/a" if x is None else format(x, fmt)
def pct(x):
    return "n/a" if x is None else f"{100 * x:.0f} %"
def ratio(x, base):
    return "n/a" if (x is None or not base) else f"{x / base:.2f}"
print("| case | direction | Mbit/s (median) | runs, Mbit/s | server CPU s/GB | of it system | server reads+writes per MB | PEER client CPU s/GB | Mbit/s vs linux | Mbit/s vs smoltcp |")
print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|")
for d in dirs:
    for c in cases:
        r = res[c, d]
        if not r["runs"]:
            continue  # a case of the other direction only
        print(f"| {c} | {d} | {f(r['mbit'], '.0f')} | {' / '.join(r['runs'])} | "
              f"{f(r['scpu'], '.2f')} | {pct(r['ssys'])} | "
              f"{f(r['calls'], '.0f')} | {f(r['ccpu'], '.2f')} | "
              f"{ratio(r['mbit'], res['linux', d]['mbit'])} | "
              f"{ratio(r['mbit'], res['smoltcp', d]['mbit'])} |")
if base:
    # Per repetition too: a case and its baseline ran one after the other.
    def per_rep(c, d, col, scale):
        by = {}
        for r in rows:
            if r[1] == d and r[3] != "FAIL" and r[0] in (c, c + "-base"):
                by.setdefault(r[2], {})[r[0]] = float(r[col]) / (int(r[6]) / 1e9 if scale else 1)
        return [v[c] / v[c + "-base"] for _, v in sorted(by.items(), key=lambda kv: int(kv[0]))
                if c in v and v.get(c + "-base")]
    print()
    print("Against the baseline daemon (--baseline): ratio of the medians, then the "
          "ratio in every repetition.")
    print()
    print("| case / baseline | direction | Mbit/s ratio | runs | server CPU s/GB ratio | runs |")
    print("|---|---|---:|---|---:|---|")
    for d in dirs:
        for c in ("mptun", "mptun-plain", "mptun-mptcp", "mptun-fwd"):
            a, b = res[c, d], res[c + "-base", d]
            if not a["runs"]:
                continue  # a case of the other direction only
            g = ", ".join(f"{x:.2f}" for x in per_rep(c, d, 3, False))
            cp = ", ".join(f"{x:.2f}" for x in per_rep(c, d, 4, True))
            print(f"| {c} / {c}-base | {d} | {ratio(a['mbit'], b['mbit'])} | {g} | "
                  f"{ratio(a['scpu'], b['scpu'])} | {cp} |")
EOF
)
echo
echo "$TABLE"

if [ "$WRITE" = 1 ]; then
    CMD="scripts/bench.sh${ORIG_ARGS[*]:+ ${ORIG_ARGS[*]}}"
    # Before the redirection below truncates the file, which would count as a change.
    DIRTY=$(git -C "$REPO" diff --quiet HEAD -- . ':!docs/BENCHMARKS.md' 2>/dev/null || echo ' (with uncommitted changes)')
    # scripts/bench_multipath.sh's section is its own: kept as it is, at the end.
    # The other scripts' sections (multipath, gateway, engine cost, threads)
    # are theirs: kept as they are, after this one's.
    MULTIPATH=$(awk '/^## /{keep = ($0 != "## Setup")} keep' "$REPO/docs/BENCHMARKS.md" 2>/dev/null || true)
    {
        echo "# Benchmarks"
        echo
        echo "Produced by \`$CMD\` (as root) on $(date -u '+%Y-%m-%d %H:%M UTC'),"
        echo "commit $(git -C "$REPO" rev-parse --short HEAD)$DIRTY."
        echo
        echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')),"
        echo "Linux $(uname -r), $(rustc --version 2>/dev/null || echo 'rustc ?'); load average $LOADAVG at the start;"
        echo "the Linux ends' TCP congestion control: $CC_USED."
        echo "A shared machine: absolute figures move from run to run; read the ratios,"
        echo "which were measured side by side (cases interleaved in every repetition)."
        echo
        echo "One TCP connection, MTU 1500, $BYTES bytes per transfer, $REPS repetitions, median shown."
        echo
        echo "$TABLE"
        echo
        cat <<'NOTES'
## Setup

```
ns PEER  p1 10.1.0.1 ── veth ── h1 10.1.0.2  ns HOST (router) ─┬─ TUN mpt0 / smt0 ── mptun | smoltcp (10.10.1.2)
                                                                └─ veth h9 10.10.9.1 ── s9 10.10.9.2  ns SRV (Linux)
```

Every transfer is one TCP connection between Linux in PEER and the server, forwarded
by HOST, MTU 1500 everywhere. Cases are run interleaved (linux, mptun, smoltcp,
mptun-plain, linux-mptcp, mptun-mptcp, mptun-fwd, then again) and each server is
started fresh for its case.

- **linux**: a Python socket server (`scripts/benchnet.py`) in namespace SRV behind
  a veth from HOST. The upper bound of the path. Note that veth keeps TSO/GRO, so
  Linux moves 64 KiB super-packets through HOST; a TUN device without
  `IFF_VNET_HDR` gets one 1500-byte packet per read/write, so part of the gap is the
  device, not the TCP stack.
- **mptun**: `mptun run --tun mpt0 --addr 10.10.1.2 --sink 9 --chargen 19`
  in HOST (TUN txqueuelen 10000, its
  default), with its default TUN offloads: `IFF_VNET_HDR` + TSO, so a read or write
  carries a TCP super-packet of up to 64 KiB, which mptun splits into, or builds
  from, its 1500-byte segments (docs/ARCHITECTURE.md, "TUN offloads"). The engine
  still receives and sends MSS-sized segments and Linux in PEER sees the same TCP;
  what changes is how many system calls and kernel passes it takes to move them:
  as for Linux's own TCP over the veths, the kernel carries them as GSO/GRO
  super-packets and would segment them only where a device needs it.
- **mptun-plain**: the same with `--no-offload`: one 1500-byte packet per read or
  write, the framing smoltcp's `TunTapInterface` uses (it has no offload support).
  For reference: the engines on identical device framing.
- **linux-mptcp**, **mptun-mptcp**: linux and mptun again, with MPTCP sockets
  (`IPPROTO_MPTCP`) at the Linux ends, one subflow: the PEER client in both
  directions, and for linux-mptcp the SRV server too. Their "vs linux" ratio is
  against Linux's plain TCP.
- **mptun-fwd** (from-server only): mptun as a relay, the way a gateway sends:
  `mptun run ... --local-forward 127.0.0.1:6000=10.1.0.1:5001`; a local client in
  HOST writes N bytes to 127.0.0.1:6000 and mptun carries them over its own
  connection (MPTCP, its default) to an MPTCP sink in PEER, which times accept
  to EOF. mptun's CPU here also includes reading the bytes from the loopback
  socket, and the HOST writer competes for the same CPUs. (Until 2026-12-06 this
  was how the mptun rows' from-server figures were measured.)
- **smoltcp**: `bench/smoltcp-sink` (smoltcp 0.14, `TunTapInterface`, one TCP socket
  with 4 MiB rx/tx buffers, `Interface::poll` + `phy::wait(poll_delay)` loop) on TUN
  smt0 in HOST, brought up with the same MTU and txqueuelen and a host route for
  10.10.1.2, in sink or source mode. Unchanged by the offload work.

Directions, measured at the Linux end in PEER (bytes / seconds from connect, or
accept, to EOF):

- **to-server**: the PEER client writes N bytes to port 9 (sink), half-closes and
  waits for the server to close.
- **from-server**: the server sends N bytes to Linux in PEER, which reads until EOF.
  linux and smoltcp write N bytes on the accepted connection and close. mptun's
  `--chargen` service (RFC 864) sends an endless stream: the PEER client reads N
  bytes and closes (`benchnet.py recv --then-close`), timed from connect to the
  Nth byte. Like the smoltcp source and the Linux server, the sender makes its
  bytes in the process that sends them.

CPU columns: user+system CPU seconds per 10^9 bytes. "server" is the server process
from `/proc/PID/stat` (utime+stime, `getconf CLK_TCK` ticks) before and after the
transfer, all its threads; "of it system" is the share of that time spent in the
kernel (stime), and "reads+writes per MB" counts the server's read and write
system calls (`/proc/PID/io`'s syscr + syscw: TUN reads and writes, plus
whatever else the process reads or writes) per 10^6 bytes moved; for linux it is the Python server, and the kernel's TCP work that runs in
softirq context is charged to whatever process was on the CPU, so it is a lower
bound, not the cost of the Linux stack. "PEER client" is the Linux endpoint's process
(getrusage), the same program in every case. Ratios are median throughput relative
to the linux (or smoltcp) row of the same direction.

A `write()` to a TUN device hands the packet to the kernel's receive path in the
writer's own context, so in the from-server direction the mptun and smoltcp server
CPU also covers HOST's forwarding and much of PEER's TCP receive work for that packet;
in to-server the PEER sender is charged for the forwarding into the TUN instead.
Compare CPU figures within a direction, not across directions.

Reproduce: `sudo scripts/bench.sh [--bytes N] [--reps N] [--write]`.
NOTES
        if [ -n "$MULTIPATH" ]; then
            echo
            echo "$MULTIPATH"
        fi
    } >"$REPO/docs/BENCHMARKS.md"
    log "wrote docs/BENCHMARKS.md"
fi
