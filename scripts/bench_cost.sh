#!/usr/bin/env bash
# The engine's instructions per MiB (not a test): stack/examples/cost.rs moves
# a fixed transfer between two stacks in memory (1 Gbit/s, 1 ms each way, no
# loss, virtual time), once as plain TCP and once as MPTCP (one subflow), and
# valgrind's callgrind counts the instructions spent inside each stack: the
# sender's (send, segmenting, checksums, ACK processing, timers) and the
# receiver's (parsing, checksum checks, reassembly, recv, ACKs). Instruction
# counts repeat from run to run where timings on a shared machine do not; this
# is the figure to compare before and after a change to the per-packet path.
# Each is measured twice: segment by segment, and with super-packets both ways
# as the daemon moves them over a TUN with offloads (`cost --offload`: TSO out,
# GRO-merged in, checksums left to the device).
#
# Usage: scripts/bench_cost.sh [--mib N] [--top N] [--write] [--no-build]
#   --mib N     MiB per transfer (default 16)
#   --top N     also list each case's N costliest functions (self cost)
#   --write     also write the "Engine cost" section of docs/BENCHMARKS.md
#   --no-build  use the existing target/release/examples/cost
# Needs valgrind (apt install valgrind).
set -Eeuo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
MIB=16 TOP=0 WRITE=0 BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
    --mib) MIB=$2; shift 2 ;;
    --top) TOP=$2; shift 2 ;;
    --write) WRITE=1; shift ;;
    --no-build) BUILD=0; shift ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "bench_cost.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ $MIB =~ ^[1-9][0-9]*$ ]] || { echo "bench_cost.sh: --mib wants a positive number" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "bench_cost.sh: valgrind is not installed" >&2; exit 1; }
cd "$REPO"
[ "$BUILD" = 1 ] && cargo build --release --locked -p mptun-stack --example cost >&2
BIN=$REPO/target/release/examples/cost
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

results=()
for mode in plain offload direct; do
for kind in tcp mptcp; do
    for side in sender receiver; do
        # direct: the receiving application reads with a direct reader (as
        # the daemon's sink and relays do); only the receiver changes.
        [ "$mode" = direct ] && [ "$side" = sender ] && continue
        out=$TMP/$kind.$mode.$side.out
        flag=()
        [ "$mode" = offload ] && flag=(--offload)
        [ "$mode" = direct ] && flag=(--offload --direct)
        run=$(valgrind --tool=callgrind --callgrind-out-file="$out" \
            --toggle-collect="*cost::$side*" "$BIN" "$kind" "$MIB" "${flag[@]}" 2>"$TMP/vg.err") ||
            { cat "$TMP/vg.err" >&2; exit 1; }
        ir=$(awk '$1 == "summary:" {print $2}' "$out")
        results+=("$kind.$mode $side $ir $run")
        if [ "$TOP" -gt 0 ]; then
            echo "== $kind $mode $side: top $TOP functions (self instructions)" >&2
            callgrind_annotate "$out" 2>/dev/null | grep -E '^ *[0-9,]+ \(' | grep -v 'PROGRAM TOTALS' |
                head -n "$TOP" | sed 's/\[.*\]$//' >&2 || true
        fi
    done
done
done

table=$(printf '%s\n' "${results[@]}" | python3 -c '
import json, sys
mib = int(sys.argv[1])
rows = {}
for line in sys.stdin:
    kind, side, ir, run = line.split(" ", 3)
    rows[(kind, side)] = (int(ir), json.loads(run))
out = ["| | TCP | MPTCP (one subflow) | MPTCP / TCP |", "|---|---:|---:|---:|"]
cases = [("plain", "segment by segment", "sender"), ("plain", "segment by segment", "receiver"),
         ("offload", "super-packets", "sender"), ("offload", "super-packets", "receiver"),
         ("direct", "super-packets, direct reader", "receiver")]
for mode, how, side in cases:
        t, m = rows[("tcp." + mode, side)][0] / mib, rows[("mptcp." + mode, side)][0] / mib
        out.append(f"| {side}, {how}: instructions per MiB | {t/1e6:.2f} M | {m/1e6:.2f} M | {m/t:.2f} |")
for mode, how, side in cases:
        t = rows[("tcp." + mode, side)][1]["segments_sender"]
        m = rows[("mptcp." + mode, side)][1]["segments_sender"]
        ti, mi = rows[("tcp." + mode, side)][0] / t, rows[("mptcp." + mode, side)][0] / m
        out.append(f"| {side}, {how}: instructions per data segment | {ti:,.0f} | {mi:,.0f} | {mi/ti:.2f} |")
for mode, how in (("plain", "segment by segment"), ("offload", "super-packets")):
    t, m = rows[("tcp." + mode, "sender")][1], rows[("mptcp." + mode, "sender")][1]
    ts, tr, ms, mr = t["segments_sender"], t["segments_receiver"], m["segments_sender"], m["segments_receiver"]
    out.append(f"| {how}: data segments, ACK segments | {ts}, {tr} | {ms}, {mr} | |")
print("\n".join(out))
' "$MIB")
echo "$table"

if [ "$WRITE" = 1 ]; then
    python3 - "$REPO/docs/BENCHMARKS.md" "$table" "scripts/bench_cost.sh --mib $MIB --write" "$(git -C "$REPO" rev-parse --short HEAD)" <<'PYEOF'
import sys, re, datetime
path, table, cmd, commit = sys.argv[1:5]
text = open(path).read()
section = ("## Engine cost (instructions per MiB)\n\n"
           "The engine alone, without the TUN or the daemon: stack/examples/cost.rs moves one "
           "transfer between two stacks in memory (1 Gbit/s, 1 ms each way, no loss, virtual "
           "time; MPTCP without DSS checksums), and callgrind counts the instructions executed "
           "inside each stack's calls. The counts repeat from run to run, so they compare "
           "changes to the per-packet path where timings on this shared machine cannot. "
           f"Measured {datetime.date.today()} on {commit} with\n\n```\n{cmd}\n```\n\n{table}\n\n"
           "The sender's figure holds copying the application's bytes in, segmenting, the TCP "
           "checksum of every segment and the ACKs' processing; the receiver's, the checksum "
           "check, reassembly, copying the bytes out and its ACKs. With super-packets (`cost --offload`) "
           "the stacks move their segments as the daemon does over a TUN with offloads: up to 44 "
           "at once each way (`Stack::poll_transmit_gso`, `Stack::handle_super_packet`), checksums "
           "left to the device. With a direct reader (`cost --offload --direct`) the receiving "
           "application takes the bytes straight from the segments (`Stack::set_direct_reader`), as "
           "the daemon's sink and relays do, instead of copying them out of the receive buffer. "
           "`--top N` lists where they go.\n")
if "## Engine cost (instructions per MiB)\n" in text:
    text = re.sub(r"## Engine cost \(instructions per MiB\)\n.*?(?=\n## |\Z)", section.rstrip("\n") + "\n", text, flags=re.S)
else:
    text = text.rstrip("\n") + "\n\n" + section
open(path, "w").write(text)
PYEOF
fi
