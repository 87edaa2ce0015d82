#!/usr/bin/env bash
# mptun's sink service receives 256 MiB intact: the client sends 256 MiB, half-closes
# and waits for the close; `mptun status --json` then counts 268435456 bytes for the
# sink. If the sink reports a sha256 (status field, or the log), it must match.
. "$(dirname "$0")/lib.sh"
topology_up
mptun_start --sink 9 --sink-sha256
total=$((256 << 20))
out=$(tcpclient_peer 10.10.1.2 9 --mode sink --bytes "$total") || fail "sink transfer of 256 MiB: $out"
log "$out"
sent_sha=$(json_eval "$out" 'd["sha256"]')

sink_bytes() {
    json_eval "$(mptun_status_json)" '[s for s in d["services"] if s["kind"] == "sink"][0]["bytes"]'
}
got=""
for _ in $(seq 50); do
    got=$(sink_bytes) || fail "no sink service with a bytes count in mptun status --json: $(mptun_status_json)"
    [ "$got" = "$total" ] && break
    sleep 0.2
done
[ "$got" = "$total" ] || fail "sink counted $got bytes, expected $total"
log "sink counted $got bytes"

status=$(mptun_status_json)
if sha=$(json_eval "$status" '[s for s in d["services"] if s["kind"] == "sink"][0].get("sha256")'); then
    [ "$sha" = "$sent_sha" ] || fail "sink sha256 $sha, client sent $sent_sha"
    log "status sha256 matches: $sha"
elif grep -qi 'sha256' "$MPTUN_LOG"; then
    grep -q "$sent_sha" "$MPTUN_LOG" || fail "the log reports a sha256, but not the sent stream's $sent_sha"
    log "log sha256 matches: $sent_sha"
else
    fail "no sha256 in status or log although --sink-sha256 was given"
fi
