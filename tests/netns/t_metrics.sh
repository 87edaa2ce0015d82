#!/usr/bin/env bash
# `--metrics 127.0.0.1:9100` (in HOST's own loopback) serves Prometheus. A Linux
# MPTCP client with a join (PEER endpoint 10.2.0.1 subflow, as t_mptcp_join)
# echoes 16 MiB through `--echo 7`. Every scrape is parsed with the reference
# parser (Python's prometheus_client). During the transfer: a series per live
# subflow (two, distinct remotes) with RTT and cwnd; both on path 10.10.1.2
# (Linux joins the initial address), 10.10.2.2 listed at 0. While the
# connection idles (the client paused): per-path and per-subflow bytes, cwnd,
# RTT and subflow counts equal `mptun status --json`'s, and every counter lies
# between two status snapshots taken around the scrape. After it: mptcp_joins_established >= 1,
# the same in the scrape and in status, and equal to Linux's
# MPTcpExtMPJoinSynAckRx (mptun's SYN/ACKs Linux accepted), join SYNs equal
# Linux's MPJoinSynTx. HTTP: text/plain; version=0.0.4, 404 elsewhere. Bad
# values: `--metrics nonsense` exits 2, a port in use exits 1 with the address.
. "$(dirname "$0")/lib.sh"

# The parser: Debian's python3-prometheus-client (install-deps.sh), in
# whichever python3 has it (a pyenv python3 may come first in PATH).
PY=""
for p in python3 /usr/bin/python3; do
    if "$p" -c 'import prometheus_client' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || fail "no python3 with prometheus_client: run tests/netns/install-deps.sh"

mp_topology_up
METRICS=127.0.0.1:9100
mptun_start --echo 7 --metrics "$METRICS"
mp_endpoint 10.2.0.1 p2 subflow

# scrape FILE [PATH]: GET PATH (default /metrics) from HOST, body to FILE,
# headers to FILE.h; prints the HTTP status code.
scrape() {
    host_exec curl -sS --max-time 10 -D "$1.h" -o "$1" -w '%{http_code}' "http://$METRICS${2:-/metrics}"
}

# check.py MODE SCRAPE [JSON...]: parses SCRAPE with prometheus_client and
# checks it (MODE below); prints what it found, exits non-zero with why not.
cat >"$DIR/check.py" <<'PY'
import json, sys
from prometheus_client.parser import text_string_to_metric_families

mode, scrape = sys.argv[1], sys.argv[2]
text = open(scrape).read()
series = {}
types = {}
for fam in text_string_to_metric_families(text):
    types[fam.name] = fam.type
    if not fam.documentation:
        sys.exit(f"{fam.name} has no help text")
    for s in fam.samples:
        key = (s.name, tuple(sorted(s.labels.items())))
        if key in series:
            sys.exit(f"series twice: {key}")
        series[key] = s.value

def get(name, **labels):
    return series.get((name, tuple(sorted(labels.items()))))

def need(cond, msg):
    if not cond:
        sys.exit(msg)

need(any(n == "mptun_build_info" and dict(l).get("version") and v == 1 for (n, l), v in series.items()),
     "no mptun_build_info{version=...} 1")
need(types.get("mptun_packets_in") == "counter", f"mptun_packets_in_total is no counter: {types.get('mptun_packets_in')}")
need(get("mptun_uptime_seconds") is not None, "no mptun_uptime_seconds")

if mode == "during":
    subs = [dict(l) | {"rtt": get("mptun_subflow_rtt_seconds", **dict(l)), "cwnd": v}
            for (n, l), v in series.items() if n == "mptun_subflow_cwnd_bytes" and dict(l)["local"].endswith(":7")]
    remotes = {s["remote"].rsplit(":", 1)[0] for s in subs}
    need(len(subs) == 2 and len(remotes) == 2, f"want 2 subflow series with distinct remotes, got {subs}")
    for s in subs:
        need(s["cwnd"] > 0 and s["rtt"] is not None and 0 < s["rtt"] < 1, f"subflow without cwnd or a sane RTT: {s}")
        l = {k: s[k] for k in ("conn", "shard", "local", "remote")}
        need(get("mptun_subflow_sent_bytes_total", **l) is not None, f"no bytes for {l}")
    # Linux joins mptun's initial address: both subflows are on 10.10.1.2.
    need(get("mptun_path_subflows_established", local="10.10.1.2") == 2, "path 10.10.1.2 has not 2 established subflows")
    need(get("mptun_path_subflows", local="10.10.2.2") == 0, "path 10.10.2.2 (idle) is not listed at 0")
    need(get("mptun_connections", state="ESTABLISHED", protocol="mptcp") >= 1, "no ESTABLISHED mptcp connection")
    print(f"subflows: {subs}")

elif mode == "idle":
    before, after = json.load(open(sys.argv[3])), json.load(open(sys.argv[4]))
    need(before["paths"] == after["paths"], "the paths moved while idle")
    for p in after["paths"]:
        ip = p["local"]
        for fam, key in (("mptun_path_sent_bytes", "bytes_sent"), ("mptun_path_received_bytes", "bytes_received"),
                         ("mptun_path_retransmitted_bytes", "retransmitted_bytes"), ("mptun_path_subflows", "subflows"),
                         ("mptun_path_subflows_established", "established"), ("mptun_path_subflows_backup", "backup")):
            need(get(fam, local=ip) == p[key], f"{fam}{{local={ip}}} = {get(fam, local=ip)}, status says {p[key]}")
    # Each subflow's bytes, the join's (from 10.2.0.1) included, as status has them.
    subs = [(c, s) for c in after["connections"] for s in c["subflows"] if c["local"].endswith(":7")]
    need(len(subs) == 2, f"want 2 subflows in status: {subs}")
    for c, s in subs:
        l = dict(conn=str(c["id"]), shard=str(c["shard"]), local=s["local"], remote=s["remote"])
        for fam, key in (("mptun_subflow_sent_bytes_total", "bytes_sent"), ("mptun_subflow_received_bytes_total", "bytes_received"),
                         ("mptun_subflow_cwnd_bytes", "cwnd")):
            need(get(fam, **l) == s[key], f"{fam}{l} = {get(fam, **l)}, status says {s[key]}")
        need(get("mptun_subflow_rtt_seconds", **l) == s["rtt_us"] / 1e6, f"rtt of {l}: {get('mptun_subflow_rtt_seconds', **l)} vs {s['rtt_us']} us")
        need(s["bytes_received"] > 0, f"subflow {l} received nothing")
    for k, v in after["counters"].items():
        got = get(f"mptun_{k}_total")
        need(got is not None and before["counters"][k] <= got <= v, f"counter {k}: scrape {got}, status {before['counters'][k]}..{v}")
    print("paths: " + " ".join(f"{p['local']} sent={p['bytes_sent']} received={p['bytes_received']}" for p in after["paths"]))

elif mode == "after":
    status = json.load(open(sys.argv[3]))
    for k in ("mptcp_joins_established", "mptcp_join_syn_rx", "mptcp_join_hmac_failures", "mptcp_fallbacks", "connections_accepted"):
        need(get(f"mptun_{k}_total") == status["counters"][k], f"{k}: scrape {get(f'mptun_{k}_total')}, status {status['counters'][k]}")
    print(" ".join(f"{k}={int(get(f'mptun_{k}_total'))}" for k in ("mptcp_joins_established", "mptcp_join_syn_rx", "packets_in", "packets_out")))
PY
check() { "$PY" "$DIR/check.py" "$@"; }

# HTTP: the content type of the text format 0.0.4; other paths are 404.
code=$(scrape "$DIR/m0") || fail "scrape failed: $(cat "$DIR/m0.h" 2>/dev/null)"
[ "$code" = 200 ] || fail "GET /metrics: HTTP $code"
grep -qi '^content-type: text/plain; version=0.0.4' "$DIR/m0.h" || fail "content type: $(cat "$DIR/m0.h")"
[ "$(scrape "$DIR/m404" /)" = 404 ] || fail "GET / is not 404"
[ "$(scrape "$DIR/m404" /status)" = 404 ] || fail "GET /status is not 404"
check start "$DIR/m0" || fail "the first scrape does not parse or lacks families: $(head -c 2000 "$DIR/m0")"

# Bad values: clap's exit 2; a port in use: exit 1 naming it, before any TUN.
rc=0
host_exec "$MPTUN" run --tun mpt9 --control "$DIR/bad.sock" --addr 10.10.9.2 --metrics nonsense >"$DIR/bad.out" 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "--metrics nonsense exited $rc, want 2: $(cat "$DIR/bad.out")"
grep -q "ADDR:PORT" "$DIR/bad.out" || fail "--metrics nonsense: unclear message: $(cat "$DIR/bad.out")"
rc=0
host_exec "$MPTUN" run --tun mpt9 --control "$DIR/busy.sock" --addr 10.10.9.2 --metrics "$METRICS" >"$DIR/busy.out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "--metrics on a port in use exited $rc, want 1: $(cat "$DIR/busy.out")"
grep -q -- "--metrics $METRICS" "$DIR/busy.out" || fail "port in use: the message does not name it: $(cat "$DIR/busy.out")"
! ip -n "$HOST" link show mpt9 >/dev/null 2>&1 || fail "a TUN was left behind by the failed start"
log "bad values: $(grep -m1 error "$DIR/bad.out") / $(tail -n 1 "$DIR/busy.out")"

# The transfer: it pauses after 8 MiB until we have looked.
bg_run "$PEER" python3 "$NETNS_DIR/tcpclient.py" 10.10.1.2 7 --mptcp --bytes $((16 << 20)) --idle-timeout 20 \
    --pause "$((8 << 20)):$DIR/go" >"$DIR/client.json" 2>"$DIR/client.err"
client=$BG_PID
mptun_wait_subflows 7 2 "$client" >/dev/null || { touch "$DIR/go"; mp_fail "never two established subflows"; }
scrape "$DIR/m1" >/dev/null || fail "scrape during the transfer failed"
check during "$DIR/m1" || { touch "$DIR/go"; mp_fail "scrape during the transfer: see above"; }

# Idle (paused): wait until status stops moving, then scrape between two snapshots.
prev="" ok=0
for _ in $(seq 50); do
    cur=$(json_eval "$(mptun_status_json)" 'd["paths"]')
    if [ "$cur" = "$prev" ]; then ok=1; break; fi
    prev=$cur
    sleep 0.2
done
[ "$ok" = 1 ] || { touch "$DIR/go"; mp_fail "the paused connection never went idle"; }
mptun_status_json >"$DIR/s_before.json"
scrape "$DIR/m2" >/dev/null || fail "scrape while idle failed"
mptun_status_json >"$DIR/s_after.json"
check idle "$DIR/m2" "$DIR/s_before.json" "$DIR/s_after.json" || { touch "$DIR/go"; mp_fail "idle scrape disagrees with status"; }

touch "$DIR/go"
rc=0
wait "$client" || rc=$?
[ "$rc" = 0 ] || mp_fail "MPTCP echo failed: $(cat "$DIR/client.json" "$DIR/client.err")"

# After: counters agree with status and with Linux's.
mptun_status_json >"$DIR/s_end.json"
scrape "$DIR/m3" >/dev/null || fail "scrape after the transfer failed"
check after "$DIR/m3" "$DIR/s_end.json" || fail "scrape after the transfer disagrees with status"
joins=$(json_eval "$(cat "$DIR/s_end.json")" 'd["counters"]["mptcp_joins_established"]')
syns=$(json_eval "$(cat "$DIR/s_end.json")" 'd["counters"]["mptcp_join_syn_rx"]')
[ "$joins" -ge 1 ] || mp_fail "mptcp_joins_established is $joins"
[ "$joins" = "$(peer_counter MPTcpExtMPJoinSynAckRx)" ] ||
    mp_fail "mptun's joins established ($joins) != Linux's MPJoinSynAckRx ($(peer_counter MPTcpExtMPJoinSynAckRx))"
[ "$syns" = "$(peer_counter MPTcpExtMPJoinSynTx)" ] ||
    mp_fail "mptun's join SYNs ($syns) != Linux's MPJoinSynTx ($(peer_counter MPTcpExtMPJoinSynTx))"
peer_counters_expect -eq 0 "${MP_PEER_ZERO[@]}"
log "PEER: $(peer_counters_nonzero)"
log "scrape: $(wc -l <"$DIR/m3") lines, $(grep -c '^# TYPE' "$DIR/m3") families"
