#!/usr/bin/env bash
# Many connections at once (not a test): CONNS Linux TCP clients in namespace
# PEER each write BYTES to mptun's `--sink 9` at the same time, the daemon
# running with `--threads 1` and with `--threads 2` (a multiqueue TUN, one
# engine per queue), the two cases alternating in every repetition so that
# both see the same machine. The clients and the daemon share the machine's
# cores, as they would on a gateway that also runs its applications.
#
#   ns PEER  p1 10.1.0.1 ── veth ── h1 10.1.0.2  ns HOST ── TUN mpt0 ── mptun
#
# Aggregate goodput: all bytes / (first connect to last close), measured
# around the clients. CPU: the daemon's user+system seconds per 10^9 bytes
# (all its threads, /proc/PID/stat). The table shows medians and the ratio
# threads-2 / threads-1; the load average of the machine is printed with it.
#
# Usage: scripts/bench_threads.sh [--conns N] [--bytes N] [--reps N] [--mptcp] [--write] [--no-build]
#   --conns N   connections at once (default 16)
#   --bytes N   bytes per connection (default 1073741824 = 1 GiB; shorter runs
#               measure mostly the connections' ramp-up)
#   --reps N    repetitions (default 3)
#   --mptcp     the clients use MPTCP sockets (IPPROTO_MPTCP; `mptcpize`)
#   --write     also replace the "Many connections" section of docs/BENCHMARKS.md
#   --no-build  use the existing target/release/mptun
# Needs root (network namespaces, TUN), python3, iproute2.
set -Eeuo pipefail

ORIG_ARGS=("$@")
CONNS=16
BYTES=$((1 << 30))
REPS=3
MPTCP=0
WRITE=0
BUILD=1
while [ $# -gt 0 ]; do
    case $1 in
    --conns) CONNS=$2; shift 2 ;;
    --bytes) BYTES=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --mptcp) MPTCP=1; shift ;;
    --write) WRITE=1; shift ;;
    --no-build) BUILD=0; shift ;;
    -h | --help) sed -n '2,/^set -E/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_threads.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "bench_threads.sh: needs root (network namespaces, TUN)" >&2; exit 1; }

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
if [ "$BUILD" = 1 ]; then
    echo "== cargo build --release" >&2
    cargo build --release --locked -p mptun >&2
fi
# shellcheck source=../tests/netns/lib.sh
. "$REPO/tests/netns/lib.sh"
MPTUN_ADDRS=(10.10.1.2)
export RUST_LOG=${RUST_LOG:-warn}
BENCHNET=$REPO/scripts/benchnet.py
HZ=$(getconf CLK_TCK)
RESULTS=$DIR/results.tsv
: >"$RESULTS"
trap cleanup EXIT

cpu_ticks() {
    local s
    s=$(<"/proc/$1/stat")
    s=${s##*) }
    awk '{print $12 + $13}' <<<"$s"
}

# run_case REP THREADS: one round of CONNS parallel senders.
run_case() {
    local rep=$1 threads=$2 t0 c0 c1 start end i pids=() ok=1
    mptun_start --sink 9 --threads "$threads"
    c0=$(cpu_ticks "$MPTUN_PID")
    local wrap=()
    [ "$MPTCP" = 1 ] && wrap=(mptcpize run)
    start=$(date +%s.%N)
    for i in $(seq "$CONNS"); do
        ip netns exec "$PEER" "${wrap[@]}" python3 "$BENCHNET" send 10.10.1.2 9 --bytes "$BYTES" --timeout 300 \
            >"$DIR/c.$i.json" 2>"$DIR/c.$i.err" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || ok=0; done
    end=$(date +%s.%N)
    c1=$(cpu_ticks "$MPTUN_PID")
    local load
    load=$(cut -d' ' -f1 /proc/loadavg)
    mptun_stop 5 || log "mptun exited with status $?"
    if [ "$ok" != 1 ]; then
        log "threads-$threads rep $rep: a client failed: $(cat "$DIR"/c.*.err | head -3)"
        printf 'threads-%s\t%s\tFAIL\t\t\n' "$threads" "$rep" >>"$RESULTS"
        return
    fi
    local total=$((CONNS * BYTES))
    local mbit cpu
    mbit=$(awk -v b="$total" -v s="$start" -v e="$end" 'BEGIN{printf "%.1f", b * 8 / (e - s) / 1e6}')
    cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" -v t="$total" 'BEGIN{printf "%.3f", (b - a) / hz / (t / 1e9)}')
    log "threads-$threads rep $rep: $mbit Mbit/s aggregate, daemon CPU ${cpu} s/GB, load $load"
    printf 'threads-%s\t%s\t%s\t%s\t%s\n' "$threads" "$rep" "$mbit" "$cpu" "$load" >>"$RESULTS"
}

topology_up
for rep in $(seq "$REPS"); do
    # Alternate which case goes first.
    if [ $((rep % 2)) = 1 ]; then order=(1 2); else order=(2 1); fi
    # BENCH_CASES="2" (say) runs only those, e.g. to profile one.
    [ -n "${BENCH_CASES:-}" ] && read -r -a order <<<"$BENCH_CASES"
    for t in "${order[@]}"; do run_case "$rep" "$t"; done
done

TABLE=$(python3 - "$RESULTS" <<'PYEOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
by = {}
for case, rep, mbit, cpu, load in rows:
    by.setdefault(case, []).append((mbit, cpu, load))
def med(case, i):
    v = [float(r[i]) for r in by.get(case, []) if r[0] != "FAIL"]
    return statistics.median(v) if v else None
print("| case | aggregate Mbit/s (median) | rounds | daemon CPU s/GB | load avg |")
print("|---|---:|---|---:|---:|")
for case in ("threads-1", "threads-2"):
    rs = by.get(case, [])
    rounds = ", ".join(r[0] for r in rs)
    m, c = med(case, 0), med(case, 1)
    loads = ", ".join(r[2] for r in rs if r[0] != "FAIL")
    print(f"| {case} | {m if m is not None else 'FAIL'} | {rounds} | {c if c is not None else '-'} | {loads} |")
a, b = med("threads-1", 0), med("threads-2", 0)
if a and b:
    print(f"\nthreads-2 / threads-1: {b / a:.2f}x aggregate goodput")
PYEOF
)
echo
echo "$TABLE"

if [ "$WRITE" = 1 ]; then
    python3 - "$REPO/docs/BENCHMARKS.md" "$TABLE" "scripts/bench_threads.sh ${ORIG_ARGS[*]}" "$CONNS" "$BYTES" "$MPTCP" "$(nproc)" "$(git -C "$REPO" rev-parse --short HEAD)" <<'PYEOF'
import re, sys
path, table, cmd, conns, nbytes, mptcp, cpus, rev = sys.argv[1:]
kind = "MPTCP" if mptcp == "1" else "TCP"
section = f"""## Many connections: `--threads 2` against `--threads 1`

Command: `{cmd}` (commit {rev}, {cpus} CPUs). {conns} Linux {kind} clients in
PEER each send {int(nbytes) >> 20} MiB to `--sink 9` at the same time; the two
cases alternate in every repetition. The clients, the kernel's forwarding and
the daemon share the machine's cores.

{table}
"""
text = open(path).read()
pat = re.compile(r"## Many connections: .*?(?=\n## |\Z)", re.S)
text = pat.sub(section.rstrip() + "\n", text) if pat.search(text) else text.rstrip() + "\n\n" + section
open(path, "w").write(text)
PYEOF
    echo "wrote docs/BENCHMARKS.md" >&2
fi
