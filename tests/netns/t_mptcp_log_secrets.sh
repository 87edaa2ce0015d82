#!/usr/bin/env bash
# The daemon's log holds no secret, even at RUST_LOG=trace, over a whole MPTCP run
# with joins in both roles: a Linux MPTCP client echoes 4 MiB through `--echo 7`
# and joins from path 2, and mptun, as the client of a Linux MPTCP server
# (`--local-forward`), opens its own join from `--addr 10.10.2.2,subflow`; root's
# `status --json` shows both connections' keys (4 keys), and the addresses change
# once over the control socket. Afterwards the log must contain none of the keys,
# in any form (hex with and without leading zeros, either case, decimal, the 8
# bytes either way round as a list of numbers or as hex), no mention of a seed, and
# no run of 32 or more hex digits (a 256-bit seed in hex would be one).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_pm.sh"
unset MPTUN_SEED
mp_topology_up
# mptun's own join from 10.10.2.2 to the server goes by path 2 both ways.
ip -n "$HOST" rule add from 10.10.2.2 table 102
ip -n "$HOST" route add 10.1.0.0/24 via 10.2.0.1 dev h2 table 102
ip -n "$PEER" rule add to 10.10.2.0/24 table 102 pref 100
mpserver "$PEER" 0.0.0.0 5007 "$DIR/server.log" --mptcp
MPTUN_ADDRS=(10.10.1.2 10.10.2.2,subflow)
RUST_LOG=trace mptun_start --echo 7 --local-forward 127.0.0.1:6000=10.1.0.1:5007
mp_endpoint 10.2.0.1 p2 subflow

total=$((4 << 20))
bg_run "$PEER" python3 "$NETNS_DIR/tcpclient.py" 10.10.1.2 7 --mptcp --bytes "$total" \
    --pause "$((1 << 20)):$DIR/go-a" >"$DIR/a.json"
a=$BG_PID
bg_run "$HOST" python3 "$NETNS_DIR/tcpclient.py" 127.0.0.1 6000 --bytes "$total" \
    --pause "$((1 << 20)):$DIR/go-b" >"$DIR/b.json"
b=$BG_PID

mptun_wait_subflows 7 2 "$a" >/dev/null || mp_fail "the Linux client's join never showed in mptun's status"
# The Linux server's PM may also open a subflow of its own, from its endpoint
# 10.2.0.1 to mptun's address (seen once in CI: 3 subflows): look for mptun's
# join by its addresses, not by a subflow count.
joined_b() { mptun_conn_json 'c["remote"] == "10.1.0.1:5007" and c["mptcp"]["remote_key"] and any(s["state"] == "ESTABLISHED" and s["local"].startswith("10.10.2.2:") and s["remote"] == "10.1.0.1:5007" for s in c["subflows"])'; }
wait_until 15 joined_b || mp_fail "mptun's own join to the Linux server never showed in its status"
st=$(mptun_status_json)
keys=$(json_eval "$st" '[k for c in d["connections"] if c["mptcp"] for k in (c["mptcp"]["local_key"], c["mptcp"]["remote_key"]) if k]')
[ "$(json_eval "$keys" 'len(d)')" = 4 ] || fail "expected 4 keys in root's status: $keys"
log "keys: $keys"
mptun_addr add 10.10.3.2,signal
mptun_addr del 10.10.3.2
touch "$DIR/go-a" "$DIR/go-b"
wait "$a" || fail "the echo with a Linux join failed: $(cat "$DIR/a.json")"
wait "$b" || fail "the local-forward with mptun's join failed: $(cat "$DIR/b.json")"
mptun_stop 5 || fail "mptun exited with status $?"

lines=$(wc -l <"$MPTUN_LOG")
[ "$(grep -c ' DEBUG ' "$MPTUN_LOG")" -ge 1 ] || fail "no DEBUG line in the log: was RUST_LOG=trace in effect?"
found=$(python3 - "$MPTUN_LOG" "$keys" <<'EOF'
import json, re, sys
log = open(sys.argv[1], encoding="utf-8", errors="replace").read()
low = log.lower()
found = []
for k in json.loads(sys.argv[2]):
    v = int(k, 16)
    be, le = v.to_bytes(8, "big"), v.to_bytes(8, "little")
    forms = {k, k.lstrip("0"), str(v), be.hex(), le.hex()}
    for b in (be, le):
        forms |= {", ".join(map(str, b)), ",".join(map(str, b)), " ".join(map(str, b)),
                  ":".join(f"{x:02x}" for x in b), " ".join(f"{x:02x}" for x in b)}
    found += [f"key {k} as {f!r}" for f in forms if len(f) >= 8 and f.lower() in low]
if re.search(r"seed", log, re.I):
    found.append("the word 'seed': " + next(l for l in log.splitlines() if re.search("seed", l, re.I)))
m = re.search(r"[0-9a-fA-F]{32,}", log)
if m:
    found.append("a run of hex digits: " + m.group(0))
print("\n".join(found))
EOF
)
[ -z "$found" ] || fail "secrets in the log ($lines lines): $found"
log "no key, seed or long hex run in $lines log lines ($(grep -c ' TRACE \| DEBUG ' "$MPTUN_LOG") at debug/trace)"
log "PASS"
