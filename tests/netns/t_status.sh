#!/usr/bin/env bash
# During an open echo connection, `mptun status --json` lists it: local 10.10.1.2:7,
# state ESTABLISHED, byte counters > 0, a subflow with rtt_us and cwnd; the text
# `mptun status` has a line with ESTABLISHED.
. "$(dirname "$0")/lib.sh"
topology_up
mptun_start --echo 7

# A client that echoes 1 MiB (16 KiB at a time), then holds the connection open.
cat >"$DIR/hold.py" <<'PY'
import socket, sys
s = socket.create_connection(("10.10.1.2", 7), timeout=20)
block = bytes(range(256)) * 64
for i in range(64):
    s.sendall(block)
    got = b""
    while len(got) < len(block):
        chunk = s.recv(len(block) - len(got))
        if not chunk:
            sys.exit("echo closed early")
        got += chunk
    if got != block:
        sys.exit("echo returned other bytes")
open(sys.argv[1], "w").write("ready\n")
s.settimeout(None)
s.recv(1)  # until killed
PY
bg_run "$PEER" python3 "$DIR/hold.py" "$DIR/hold.ready"
wait_until 20 test -e "$DIR/hold.ready" || fail "the echo client did not get its 1 MiB back"

json=$(mptun_status_json) || fail "mptun status --json failed"
echo "$json" >"$DIR/status.json"
python3 - "$DIR/status.json" <<'PY' || fail "status JSON does not show the connection as expected: $json"
import json, sys
d = json.load(open(sys.argv[1]))
conns = [c for c in d.get("connections", []) if c.get("local") == "10.10.1.2:7"]
if not conns:
    sys.exit(f"no connection with local 10.10.1.2:7 in connections[]")
c = conns[0]
problems = []
if str(c.get("state", "")).upper() != "ESTABLISHED":
    problems.append(f"state {c.get('state')!r}, want ESTABLISHED")
counters = {k: v for k, v in c.items() if "bytes" in k and isinstance(v, int)}
if not counters:
    problems.append("no byte counters (fields named *bytes*)")
elif not any(v > 0 for v in counters.values()):
    problems.append(f"byte counters all zero: {counters}")
subs = c.get("subflows")
if not isinstance(subs, list) or not subs:
    problems.append("no subflows[] entry")
else:
    s = subs[0]
    for k in ("rtt_us", "cwnd"):
        if not isinstance(s.get(k), (int, float)):
            problems.append(f"subflows[0].{k} missing or not a number: {s.get(k)!r}")
    if isinstance(s.get("cwnd"), (int, float)) and s["cwnd"] <= 0:
        problems.append(f"subflows[0].cwnd = {s['cwnd']}")
if problems:
    sys.exit("; ".join(problems))
print(f"connection: {json.dumps(c)}", file=sys.stderr)
PY

text=$(mptun_status_text) || fail "mptun status (text) failed"
grep -q ESTABLISHED <<<"$text" || fail "mptun status (text) has no ESTABLISHED line: $text"
log "text status: $(grep ESTABLISHED <<<"$text" | head -n 1)"
