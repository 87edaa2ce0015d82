#!/usr/bin/env bash
# `mptun monitor` against Linux's own `ip mptcp monitor`. mptun announces
# 10.10.2.2 (`--addr 10.10.2.2,signal`), the Linux MPTCP client joins it over
# path 2 and echoes 12 MiB through `--echo 7`; at 4 MiB path 2 is cut
# (nftables drops everything on HOST's h2), then `mptun addr del 10.10.2.2`
# withdraws the address (REMOVE_ADDR over path 1); the echo completes on path 1.
# Two watchers run throughout, one `--json`, one text. Checked: for the echo's
# connection CREATED, ESTABLISHED and CLOSED once each, CREATED first and
# CLOSED last; LOCAL_ANNOUNCED 10.10.2.2 < SF_ESTABLISHED from 10.10.2.2 <
# LOCAL_REMOVED < its SF_CLOSED ("address removed", reset_reason 3); no event
# twice; the counts equal Linux's counters (MPJoinSynAckRx, AddAddr, RmAddr)
# and mptun's (its REMOVE_ADDR goes up to three times, each counted by Linux); Linux's monitor saw the same address id ANNOUNCED and REMOVED
# and the same subflow (ports mirrored) established; the text watcher printed
# the same events in ip-mptcp-monitor layout. A Prometheus scrape at the end
# (`--metrics`, parsed with prometheus_client) has the same join, ADD_ADDR and
# REMOVE_ADDR counts as status and Linux.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_pm.sh"
PY=""
for p in python3 /usr/bin/python3; do
    if "$p" -c 'import prometheus_client' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || fail "no python3 with prometheus_client: run tests/netns/install-deps.sh"
METRICS=127.0.0.1:9100
mp_signal_up 20mbit --echo 7 --metrics "$METRICS"

"$MPTUN" monitor --control "$CTL" --json >"$DIR/events.json" 2>"$DIR/events.err" &
json_watcher=$!
"$MPTUN" monitor --control "$CTL" >"$DIR/events.txt" 2>"$DIR/events_txt.err" &
text_watcher=$!
ip -n "$PEER" mptcp monitor >"$DIR/linux.txt" 2>&1 &
linux_watcher=$!
BG_PIDS+=("$json_watcher" "$text_watcher" "$linux_watcher")
stop_watchers() { kill "$json_watcher" "$text_watcher" "$linux_watcher" 2>/dev/null || true; }
sleep 0.5
kill -0 "$json_watcher" || fail "mptun monitor exited: $(cat "$DIR/events.err")"

total=$((12 << 20))
bg_run "$PEER" python3 "$NETNS_DIR/tcpclient.py" 10.10.1.2 7 --mptcp --bytes "$total" \
    --mark "$((4 << 20)):$DIR/mark.cut" --idle-timeout 30 \
    >"$DIR/client.json" 2>"$DIR/client.err"
client=$BG_PID
mptun_wait_subflows 7 2 "$client" >/dev/null || mp_fail "never two established subflows"
wait_file 60 "$DIR/mark.cut" "$client" || mp_fail "4 MiB were never echoed"
host_exec nft -f - <<'NFT'
table inet cut {
    chain in { type filter hook prerouting priority -300; iifname "h2" drop; }
    chain out { type filter hook postrouting priority -300; oifname "h2" drop; }
}
NFT
log "path 2 cut"
sleep 1
mptun_addr del 10.10.2.2
rc=0
wait "$client" || rc=$?
[ "$rc" = 0 ] || mp_fail "MPTCP echo failed: $(cat "$DIR/client.json" "$DIR/client.err")"
# The connection is gone once mptun has no connection left to port 7.
wait_until 20 sh -c "! '$MPTUN' status --control '$CTL' --json | grep -q '\"local\": \"10.10.1.2:7\"'" ||
    fail "the echo connection never went away"
sleep 0.5
mptun_status_json >"$DIR/status.json"
host_exec curl -sS --max-time 10 -o "$DIR/metrics.txt" "http://$METRICS/metrics" || fail "scrape failed"
stop_watchers
log "mptun events: $(wc -l <"$DIR/events.json"), Linux events: $(wc -l <"$DIR/linux.txt")"

cat >"$DIR/check.py" <<'PY'
import json, re, sys
events = [json.loads(l) for l in open(sys.argv[1])]
text = [l.rstrip("\n") for l in open(sys.argv[2])]
linux = [l.rstrip("\n") for l in open(sys.argv[3])]
status = json.load(open(sys.argv[4]))
peer = dict(a.split("=") for a in sys.argv[5:])

def need(cond, msg):
    if not cond:
        sys.exit(msg + "\n  events:\n    " + "\n    ".join(json.dumps(e) for e in events))

need(not any("lost" in e for e in events), "the watcher lost events")
echo = [e for e in events if e["event"] == "CREATED" and e.get("sport") == 7]
need(len(echo) == 1, f"want one CREATED for the echo connection, got {echo}")
token = echo[0]["token"]
ev = [e for e in events if e["token"] == token]
names = [e["event"] for e in ev]
for once in ("CREATED", "ESTABLISHED", "CLOSED"):
    need(names.count(once) == 1, f"{once} {names.count(once)} times: {names}")
need(names[0] == "CREATED" and names[-1] == "CLOSED", f"order: {names}")
need(ev[0]["server_side"] is True and ev[0]["saddr"] == "10.10.1.2", f"CREATED: {ev[0]}")
strip = lambda e: {k: v for k, v in e.items() if k != "time_ms"}
seen = [json.dumps(strip(e), sort_keys=True) for e in ev]
need(len(seen) == len(set(seen)), f"an event twice: {names}")
times = [e["time_ms"] for e in ev]
need(times == sorted(times), "times go backwards")

def first(cond, what):
    for i, e in enumerate(ev):
        if cond(e):
            return i, e
    need(False, f"no {what}: {names}")

ia, ann = first(lambda e: e["event"] == "LOCAL_ANNOUNCED" and e["saddr"] == "10.10.2.2", "LOCAL_ANNOUNCED 10.10.2.2")
ij, join = first(lambda e: e["event"] == "SF_ESTABLISHED" and e["saddr"] == "10.10.2.2", "SF_ESTABLISHED from 10.10.2.2")
ir, rm = first(lambda e: e["event"] == "LOCAL_REMOVED", "LOCAL_REMOVED")
ic, closed = first(lambda e: e["event"] == "SF_CLOSED" and e["saddr"] == "10.10.2.2", "SF_CLOSED of the 10.10.2.2 subflow")
need(ia < ij < ir < ic, f"order: announced {ia}, joined {ij}, removed {ir}, closed {ic}: {names}")
need(rm["locid"] == ann["locid"] == join["locid"], f"address ids: {ann} {join} {rm}")
need(closed["reset_reason"] == 3 and "address removed" in closed["reason"], f"why the subflow closed: {closed}")
need(closed["sport"] == join["sport"] and closed["dport"] == join["dport"], "SF_CLOSED names another subflow")

# Counts against mptun's counters and Linux's.
c = status["counters"]
joins = names.count("SF_ESTABLISHED")
need(joins == c["mptcp_joins_established"] == int(peer["MPTcpExtMPJoinSynAckRx"]),
     f"SF_ESTABLISHED {joins}, mptun joins {c['mptcp_joins_established']}, Linux MPJoinSynAckRx {peer['MPTcpExtMPJoinSynAckRx']}")
need(names.count("LOCAL_ANNOUNCED") == 1 and int(peer["MPTcpExtAddAddr"]) >= 1, f"ADD_ADDR: Linux AddAddr {peer['MPTcpExtAddAddr']}")
# mptun sends a REMOVE_ADDR up to three times (it has no echo); Linux counts
# each one, and its monitor prints REMOVED for each.
need(names.count("LOCAL_REMOVED") == 1 and int(peer["MPTcpExtRmAddr"]) == c["mptcp_rm_addr_tx"] >= 1,
     f"REMOVE_ADDR: Linux RmAddr {peer['MPTcpExtRmAddr']}, mptun sent {c['mptcp_rm_addr_tx']}")
need(names.count("SF_CLOSED") == joins + 1, f"every subflow closes once: {names}")

# Linux's own monitor: the same address announced and removed, the same join.
def linux_events(kind):
    return [dict(re.findall(r"(\w+)=(\S+)", l)) for l in linux if re.match(r"\[\s*" + kind + r"\]", l)]
la = [e for e in linux_events("ANNOUNCED") if e.get("daddr4") == "10.10.2.2"]
need(len(la) == 1 and int(la[0]["remid"]) == ann["locid"], f"Linux ANNOUNCED {la} vs ours {ann}\n" + "\n".join(linux))
lr = linux_events("REMOVED")
need(len(lr) == c["mptcp_rm_addr_tx"] and all(int(e["remid"]) == rm["locid"] for e in lr), f"Linux REMOVED {lr}\n" + "\n".join(linux))
lj = [e for e in linux_events("SF_ESTABLISHED") if e.get("daddr4") == "10.10.2.2"]
need(len(lj) == 1 and int(lj[0]["sport"]) == join["dport"] and int(lj[0]["dport"]) == join["sport"],
     f"Linux SF_ESTABLISHED {lj} vs ours {join}\n" + "\n".join(linux))

# The text watcher: the same events, in `ip mptcp monitor`'s layout.
need(len(text) == len(events), f"{len(text)} text lines for {len(events)} events")
for t, e in zip(text, events):
    need(re.match(r"\[ *" + e["event"] + r"\] token=" + e["token"] + r"( |$)", t), f"text line {t!r} for {e}")
tj = [t for t in text if t.startswith("[SF_ESTABLISHED]") and "saddr4=10.10.2.2" in t]
need(len(tj) == 1 and re.search(r" remid=\d+ locid=\d+ saddr4=10\.10\.2\.2 daddr4=10\.2\.0\.1 sport=7 dport=\d+ backup=0$", tj[0]), f"text: {tj}")
print(" ".join(names))
PY
counters=()
for k in MPTcpExtMPJoinSynAckRx MPTcpExtAddAddr MPTcpExtRmAddr; do counters+=("$k=$(peer_counter "$k")"); done
summary=$(python3 "$DIR/check.py" "$DIR/events.json" "$DIR/events.txt" "$DIR/linux.txt" "$DIR/status.json" "${counters[@]}") ||
    fail "events disagree (above); Linux monitor: $(cat "$DIR/linux.txt")"
log "echo connection: $summary"
"$PY" - "$DIR/metrics.txt" "$DIR/status.json" "${counters[@]}" <<'PY' || fail "the scrape disagrees (above)"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
values = {s.name: s.value for f in text_string_to_metric_families(open(sys.argv[1]).read()) for s in f.samples if not s.labels}
c = json.load(open(sys.argv[2]))["counters"]
peer = dict(a.split("=") for a in sys.argv[3:])
for k in ("mptcp_joins_established", "mptcp_add_addr_tx", "mptcp_rm_addr_tx", "mptcp_add_addr_echo_rx"):
    got = values.get(f"mptun_{k}_total")
    if got != c[k]:
        sys.exit(f"{k}: scrape {got}, status {c[k]}")
if values["mptun_mptcp_joins_established_total"] != int(peer["MPTcpExtMPJoinSynAckRx"]):
    sys.exit("joins: scrape vs Linux MPJoinSynAckRx")
if values["mptun_mptcp_rm_addr_tx_total"] != int(peer["MPTcpExtRmAddr"]):
    sys.exit("REMOVE_ADDR: scrape vs Linux RmAddr")
print("scrape agrees: " + " ".join(f"{k}={int(values[f'mptun_{k}_total'])}" for k in ("mptcp_joins_established", "mptcp_add_addr_tx", "mptcp_rm_addr_tx")))
PY
peer_counters_expect -eq 0 "${MP_PEER_ZERO[@]}"
log "PEER: $(peer_counters_nonzero)"
