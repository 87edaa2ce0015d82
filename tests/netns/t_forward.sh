#!/usr/bin/env bash
# --forward 80=10.1.0.1:8080: curl in PEER fetches a 5 MiB file from http://10.10.1.2/file;
# mptun relays to python's http.server in PEER through the OS (from HOST's namespace).
. "$(dirname "$0")/lib.sh"
topology_up
mkdir -p "$DIR/www"
head -c $((5 << 20)) /dev/urandom >"$DIR/www/file"
bg_run "$PEER" python3 -m http.server --bind 10.1.0.1 --directory "$DIR/www" 8080
wait_until 10 peer_exec curl -sf -o /dev/null http://10.1.0.1:8080/file || fail "http.server did not start"
mptun_start --forward 80=10.1.0.1:8080
peer_exec curl -sS -f --max-time 120 -o "$DIR/got" http://10.10.1.2/file || fail "curl through --forward failed"
want=$(sha256_of "$DIR/www/file")
got=$(sha256_of "$DIR/got")
[ "$want" = "$got" ] || fail "fetched file differs: $(stat -c %s "$DIR/got") bytes, sha256 $got, want $want"
log "5 MiB through --forward, sha256 $got"
