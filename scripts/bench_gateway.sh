#!/usr/bin/env bash
# Gateway benchmark (not a test): a LAN client's plain TCP carried over two WAN
# links by a link-aggregation gateway and concentrator, mptun at both ends next
# to the usual Linux set-up, on the same namespaces and shaped links
# (tests/netns/gateway_topology.sh):
#
#   LAN 192.168.50.2 ── GW ══ w1/w2: two veths, tbf RATE each way ══ CONC ── WEB 10.50.0.2
#
#   mptun  GW: mptun --transparent --upstream socks5://10.40.1.2:1080, a subflow
#          per WAN (scripts/gateway-routes.sh); CONC: mptun --socks5 1080
#   linux  GW: redsocks (nftables redirect of the LAN's TCP) made MPTCP by
#          mptcpize, kernel MPTCP with a `subflow` endpoint on the second WAN;
#          CONC: microsocks under mptcpize, kernel MPTCP (OpenMPTCProuter's
#          shape, with its SOCKS5 leg)
#
# Cases: up (the LAN client sends --bytes to a sink on WEB), down (WEB sends
# --bytes to the LAN client), scripts/benchnet.py at both ends; up1 (up with
# the gateway on its first WAN only: one subflow); failover (an echo of --bytes
# through tests/netns/tcpclient.py; once half has come back, GW's first WAN
# goes down: the client's longest wait for data is the stall). Each case runs
# --reps times per stack, the stacks interleaved (the order swapped every
# repetition), every run in fresh namespaces. Reported: the LAN client's
# goodput (connect to EOF) and the CPU seconds per GB of the gateway's process
# (mptun, or redsocks: the Linux kernel's own MPTCP and forwarding work runs in
# softirq and is not counted, so the Linux figure is a lower bound).
#
# Usage: scripts/bench_gateway.sh [--reps N] [--bytes N] [--rate RATE] [--write] [--no-build]
#   --reps N     repetitions of every case and stack (default 3); tables show medians
#   --bytes N    bytes per transfer (default 67108864 = 64 MiB)
#   --rate RATE  tbf rate of each WAN link, each way (default 50mbit)
#   --write      also write the "Gateway" section of docs/BENCHMARKS.md
#   --no-build   use the existing target/release/mptun
# Needs root, python3, iproute2, nftables, redsocks, microsocks, mptcpize
# (tests/netns/install-deps.sh installs them).
set -Eeuo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)

REPS=3
BYTES=$((64 << 20))
RATE=50mbit
WRITE=0
BUILD=1
ONE=()
while [ $# -gt 0 ]; do
    case "$1" in
    --reps) REPS=$2; shift 2 ;;
    --bytes) BYTES=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --write) WRITE=1; shift ;;
    --no-build) BUILD=0; shift ;;
    --one) ONE=("$2" "$3"); shift 3 ;;
    -h | --help) sed -n '2,33p' "$0"; exit 0 ;;
    *) echo "bench_gateway.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [ ${#ONE[@]} -eq 0 ]; then
    # The driver: every run in a child of its own (fresh namespaces), results
    # collected as JSON lines.
    for cmd in redsocks microsocks mptcpize nft; do
        command -v "$cmd" >/dev/null || { echo "bench_gateway.sh: $cmd missing (tests/netns/install-deps.sh)" >&2; exit 1; }
    done
    if [ "$BUILD" = 1 ]; then
        (cd "$REPO" && cargo build --release --locked -p mptun >&2)
    fi
    results=$(mktemp)
    trap 'rm -f "$results"' EXIT
    for rep in $(seq 1 "$REPS"); do
        order=(mptun linux)
        [ $((rep % 2)) = 0 ] && order=(linux mptun)
        for dir in up down up1 failover; do
            for stack in "${order[@]}"; do
                if out=$("$0" --bytes "$BYTES" --rate "$RATE" --one "$stack" "$dir"); then
                    echo "$out" >>"$results"
                    echo "rep $rep $stack $dir: $out" >&2
                else
                    echo "{\"stack\": \"$stack\", \"dir\": \"$dir\", \"failed\": true}" >>"$results"
                    echo "rep $rep $stack $dir: FAILED" >&2
                fi
            done
        done
    done
    table=$(python3 - "$results" "$REPS" "$BYTES" "$RATE" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
reps, nbytes, rate = sys.argv[2], int(sys.argv[3]), sys.argv[4]
def med(stack, d, key):
    v = [r[key] for r in rows if r["stack"] == stack and r["dir"] == d and not r.get("failed")]
    return (statistics.median(v), len(v)) if v else (None, 0)
out = [f"{reps} runs per cell, medians; {nbytes >> 20} MiB per transfer; two WAN links of {rate} each way.", "",
       "| direction | mptun Mbit/s | Linux Mbit/s | mptun / Linux | mptun GW CPU s/GB | redsocks CPU s/GB (kernel not counted) |",
       "|---|---:|---:|---:|---:|---:|"]
f = lambda x, p=1: "failed" if x is None else f"{x:.{p}f}"
for d, name in (("up", "LAN → WEB, two WANs"), ("down", "WEB → LAN, two WANs"), ("up1", "LAN → WEB, one WAN")):
    m, mn = med("mptun", d, "mbit_s")
    l, ln = med("linux", d, "mbit_s")
    mc, _ = med("mptun", d, "gw_cpu_s_per_gb")
    lc, _ = med("linux", d, "gw_cpu_s_per_gb")
    ratio = f"{m / l:.2f}" if m and l else "-"
    out.append(f"| {name} | {f(m)} ({mn} ok) | {f(l)} ({ln} ok) | {ratio} | {f(mc, 2)} | {f(lc, 2)} |")
out += ["", "| | mptun | Linux |", "|---|---:|---:|"]
agg = [med(s, "up", "mbit_s")[0] and med(s, "up1", "mbit_s")[0] and med(s, "up", "mbit_s")[0] / med(s, "up1", "mbit_s")[0] for s in ("mptun", "linux")]
out.append(f"| two WANs / one WAN (up) | {f(agg[0], 2)} | {f(agg[1], 2)} |")
st = [med(s, "failover", "max_rx_gap_s") for s in ("mptun", "linux")]
out.append(f"| failover: longest stall, s (first WAN down mid-echo) | {f(st[0][0], 2)} ({st[0][1]} ok) | {f(st[1][0], 2)} ({st[1][1]} ok) |")
print("\n".join(out))
EOF
)
    echo "$table"
    if [ "$WRITE" = 1 ]; then
        python3 - "$REPO/docs/BENCHMARKS.md" "$table" "scripts/bench_gateway.sh --reps $REPS --bytes $BYTES --rate $RATE --write" <<'EOF'
import sys, re, datetime
path, table, cmd = sys.argv[1:4]
text = open(path).read()
section = ("## Gateway\n\n"
           "A LAN client's plain TCP through a link-aggregation gateway and concentrator over two "
           "shaped WAN links (tests/netns/gateway_topology.sh): mptun at both ends "
           "(`--transparent --upstream socks5://…`, `--socks5`) against Linux kernel MPTCP with "
           "redsocks on the gateway and microsocks on the concentrator, both made MPTCP by mptcpize. "
           f"Measured {datetime.date.today()} with\n\n```\n{cmd}\n```\n\n{table}\n\n"
           "The CPU columns are not alike: mptun's is everything the gateway does (its TCP "
           "and MPTCP included); redsocks' is its own process only, the kernel's TCP, MPTCP "
           "and forwarding work running in softirq, unattributed. Goodput is the LAN client's "
           "(scripts/benchnet.py, connect to EOF).\n")
if "## Gateway\n" in text:
    text = re.sub(r"## Gateway\n.*?(?=\n## |\Z)", section.rstrip("\n") + "\n", text, flags=re.S)
else:
    text = text.rstrip("\n") + "\n\n" + section
open(path, "w").write(text)
EOF
    fi
    exit 0
fi

# One run: STACK DIR in fresh namespaces; prints one JSON line.
stack=${ONE[0]} dir=${ONE[1]}
export NETNS_TEST_NAME=bench_gateway
# shellcheck source=../tests/netns/lib.sh
. "$REPO/tests/netns/lib.sh"
export RUST_LOG=${RUST_LOG:-warn}
GATEWAY_WAN_RATE=$RATE
# shellcheck source=../tests/netns/gateway_topology.sh
. "$REPO/tests/netns/gateway_topology.sh"
exec 3>&1 1>&2

echo_server "$WEB" 10.50.0.2 7000
ip netns exec "$WEB" python3 "$REPO/scripts/benchnet.py" serve-sink 10.50.0.2 9000 &
BG_PIDS+=($!)
ip netns exec "$WEB" python3 "$REPO/scripts/benchnet.py" serve-source 10.50.0.2 9001 --bytes "$BYTES" &
BG_PIDS+=($!)

case "$stack" in
mptun)
    start_mptun "$CONC" conc --tun mpt1 --addr 10.40.1.2 --socks5 1080 --socks5-allow 10.20.0.0/16
    second=(--addr 10.20.2.2,subflow)
    [ "$dir" = up1 ] && second=()
    start_mptun "$GW" gw --tun mpt0 --addr 10.20.1.2 "${second[@]}" \
        --transparent --upstream socks5://10.40.1.2:1080
    gateway_routes
    gw_pid=$(pgrep -f -- "--control $DIR/gw.sock")
    ;;
linux)
    ip -n "$CONC" addr add 10.40.1.2/32 dev lo
    for ns in "$GW" "$CONC"; do
        ip netns exec "$ns" sysctl -qw net.mptcp.enabled=1
        ip -n "$ns" mptcp limits set subflows 2 add_addr_accepted 0
    done
    # The initial subflow over WAN 1, a join from WAN 2's address over WAN 2.
    ip -n "$GW" route add 10.40.1.2/32 via 10.31.0.2 dev w1
    ip -n "$GW" rule add from 10.32.0.1 table 202
    ip -n "$GW" route add 10.40.1.2/32 via 10.32.0.2 dev w2 table 202
    [ "$dir" = up1 ] || ip -n "$GW" mptcp endpoint add 10.32.0.1 dev w2 subflow
    ip netns exec "$CONC" mptcpize run microsocks -i 10.40.1.2 -p 1080 >"$DIR/microsocks.log" 2>&1 &
    BG_PIDS+=($!)
    cat >"$DIR/redsocks.conf" <<EOF
base { log_debug = off; log_info = off; log = stderr; daemon = off; redirector = iptables; }
redsocks { local_ip = 0.0.0.0; local_port = 12345; ip = 10.40.1.2; port = 1080; type = socks5; }
EOF
    ip netns exec "$GW" nft -f - <<'EOF'
table ip benchnat {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        iifname "g0" meta l4proto tcp redirect to :12345
    }
}
EOF
    ip netns exec "$GW" mptcpize run redsocks -c "$DIR/redsocks.conf" >"$DIR/redsocks.log" 2>&1 &
    BG_PIDS+=($!)
    listening() { ip netns exec "$1" ss -Htln "sport = :$2" | grep -q .; }
    wait_until 10 listening "$CONC" 1080 || fail "microsocks: $(cat "$DIR/microsocks.log")"
    wait_until 10 listening "$GW" 12345 || fail "redsocks: $(cat "$DIR/redsocks.log")"
    gw_pid=$(pgrep -f -- "redsocks -c $DIR/redsocks.conf")
    ;;
*) fail "unknown stack $stack" ;;
esac

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks=$(getconf CLK_TCK)
c0=$(cpu "$gw_pid")
case "$dir" in
up | up1) out=$(ip netns exec "$LAN" python3 "$REPO/scripts/benchnet.py" send 10.50.0.2 9000 --bytes "$BYTES") ;;
down) out=$(ip netns exec "$LAN" python3 "$REPO/scripts/benchnet.py" recv 10.50.0.2 9001 --bytes "$BYTES") ;;
failover)
    # microsocks closes both ways at the first end of stream: no half-close.
    lan_client 10.50.0.2 7000 --bytes "$BYTES" --no-half-close --timeout 120 \
        --mark $((BYTES / 2)):"$DIR/half" >"$DIR/echo.json" &
    client=$!
    wait_file 120 "$DIR/half" "$client" || fail "half the echo did not come back: $(cat "$DIR/echo.json")"
    ip -n "$GW" link set w1 down
    wait "$client" || fail "echo across the failover: $(cat "$DIR/echo.json")"
    out=$(cat "$DIR/echo.json")
    ;;
esac
c1=$(cpu "$gw_pid")
python3 - "$out" "$stack" "$dir" "$((c1 - c0))" "$ticks" "$BYTES" >&3 <<'EOF'
import json, sys
d = json.loads(sys.argv[1])
stack, direction, ticks, hz, nbytes = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
cpu = ticks / hz
r = {"stack": stack, "dir": direction, "mbit_s": d["mbit_s"], "seconds": d["seconds"],
     "gw_cpu_s": round(cpu, 2), "gw_cpu_s_per_gb": round(cpu / (nbytes / 1e9), 2)}
if "max_rx_gap_s" in d:
    r["max_rx_gap_s"] = d["max_rx_gap_s"]
print(json.dumps(r))
EOF
