#!/usr/bin/env bash
# The concentrator's SOCKS5 service (`--socks5`, issue 13): a Linux MPTCP
# client in PEER (with a second subflow) and a plain TCP one ask mptun to
# CONNECT to an echo server that only mptun's host can reach (HOST's
# loopback); mptun dials it from the host's sockets and relays. Bytes come back
# exact; Linux's counters show MPTCP with the join. Error paths, each with its
# RFC 1928 reply: a closed port (5, refused), a name that does not resolve
# (4, host unreachable), a client outside --socks5-allow (2, not allowed);
# RFC 1929: wrong password refused, no credentials refused (method 0xFF).
# The daemon keeps serving after each. And the Linux way: `mptcpize run curl
# --socks5-hostname` downloads 16 MiB exactly from an HTTP server on HOST's
# loopback, the name resolved by mptun, Linux counting another MPTCP
# connection.
. "$(dirname "$0")/lib.sh"
mp_topology_up
mp_endpoint 10.2.0.1 p2 subflow
echo_server "$HOST" 127.0.0.1 7000
users="$DIR/users"
printf '# test account\nalice:s3cret\n' >"$users"
chmod 600 "$users"
mptun_start --socks5 1080 --socks5-allow 10.0.0.0/8 --socks5-users "$users"

socks() { peer_exec python3 "$NETNS_DIR/socks5client.py" "$@"; }
field() { json_eval "$1" "d['$2']"; }
expect_reply() { # expect_reply WANT DESCRIPTION ARGS...
    local want=$1 what=$2 out
    shift 2
    out=$(socks "$@") || fail "$what: $out"
    [ "$(field "$out" reply)" = "$want" ] || fail "$what: expected reply $want, got $out"
    log "$what: $out"
}

creds=(--user alice --password s3cret)
out=$(socks 10.10.1.2 1080 127.0.0.1 7000 --mptcp "${creds[@]}" --bytes $((8 << 20))) ||
    fail "8 MiB through SOCKS5 over MPTCP: $out"
[ "$(field "$out" ok)" = true ] || fail "MPTCP echo through SOCKS5: $out"
log "MPTCP client, 8 MiB: $out"
peer_counters_expect -ge 1 MPTcpExtMPCapableSYNACKRX MPTcpExtMPJoinSynAckRx
peer_counters_expect -eq 0 "${MP_PEER_ZERO[@]}"

expect_reply 0 "plain TCP client, host name" 10.10.1.2 1080 localhost 7000 "${creds[@]}" --bytes 100000
expect_reply 5 "closed port" 10.10.1.2 1080 127.0.0.1 7001 "${creds[@]}"
expect_reply 4 "unknown host name" 10.10.1.2 1080 no-such-host.invalid 80 "${creds[@]}"
# PEER's IPv6 address is not on the allow-list.
expect_reply 2 "client outside --socks5-allow" fd10:1::2 1080 127.0.0.1 7000 "${creds[@]}"

out=$(socks 10.10.1.2 1080 127.0.0.1 7000 --user alice --password guess) || fail "bad password: $out"
[ "$(field "$out" auth)" = 1 ] || fail "a wrong password must fail RFC 1929 authentication: $out"
out=$(socks 10.10.1.2 1080 127.0.0.1 7000) || fail "no credentials: $out"
[ "$(field "$out" method)" = 255 ] || fail "a client without credentials must get method 0xFF: $out"

# Unmodified curl made MPTCP by mptcpize, the name sent as such.
if command -v mptcpize >/dev/null; then
    mkdir -p "$DIR/www"
    head -c $((16 << 20)) /dev/urandom >"$DIR/www/file"
    host_exec python3 "$NETNS_DIR/httpd.py" 127.0.0.1 8080 --dir "$DIR/www" &
    BG_PIDS+=($!)
    before=$(peer_counter MPTcpExtMPCapableSYNACKRX)
    got="$DIR/got"
    wait_until 10 host_exec curl -s -o /dev/null http://127.0.0.1:8080/ || fail "the HTTP server did not start"
    out=$(peer_exec mptcpize run curl -sS -o "$got" -w '%{speed_download}' --max-time 60 \
        --socks5-hostname 10.10.1.2:1080 --proxy-user alice:s3cret http://localhost:8080/file) ||
        fail "mptcpize run curl --socks5-hostname: $out"
    cmp -s "$got" "$DIR/www/file" || fail "curl through SOCKS5: the file differs"
    [ "$(peer_counter MPTcpExtMPCapableSYNACKRX)" -gt "$before" ] ||
        fail "curl's connection was not MPTCP: $(peer_counters_nonzero)"
    log "mptcpize run curl --socks5-hostname: 16 MiB exact, $(python3 -c "print(round($out * 8 / 1e6, 1))") Mbit/s, MPTCP"
else
    fail "mptcpize missing: run tests/netns/install-deps.sh"
fi

# Still serving.
expect_reply 0 "after the refusals" 10.10.1.2 1080 127.0.0.1 7000 "${creds[@]}"
log "mptun status: $(mptun_status_text | head -20)"
