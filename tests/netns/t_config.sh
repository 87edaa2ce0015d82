#!/usr/bin/env bash
# `mptun run --config FILE` and `mptun check-config FILE` with the files under
# examples/: each is parsed and run, its services must work, and the command
# line overrides it. Bad files (unknown key, wrong type, bad value, conflicting
# options, duplicate address, missing companion) exit 2 naming the file, the
# line and the key, from `run --config` and `check-config` alike.
. "$(dirname "$0")/lib.sh"
topology_up

EXAMPLES="$REPO_DIR/examples"
# The addresses come from the files, not from mptun_start (which still adds
# --tun and --control: command-line overrides of the files' own).
MPTUN_ADDRS=()

expect_exit() { # expect_exit CODE PATTERN CMD...
    local want=$1 pattern=$2 rc=0 out
    shift 2
    out=$("$@" 2>&1) || rc=$?
    [ "$rc" = "$want" ] || fail "'$*' exited $rc, expected $want: $out"
    grep -qE -- "$pattern" <<<"$out" || fail "'$*' said '$out', expected /$pattern/"
    log "exit $rc: $(head -n1 <<<"$out")"
}

# --- examples/mptun.toml as it is: its addresses are this topology's. ---
"$MPTUN" check-config "$EXAMPLES/mptun.toml" >"$DIR/effective.toml" ||
    fail "check-config examples/mptun.toml: $(cat "$DIR/effective.toml")"
# What check-config prints is a configuration file that says the same.
"$MPTUN" check-config "$DIR/effective.toml" >"$DIR/effective2.toml" ||
    fail "check-config of its own output failed"
cmp -s "$DIR/effective.toml" "$DIR/effective2.toml" ||
    fail "check-config's output does not read back the same: $(diff "$DIR/effective.toml" "$DIR/effective2.toml")"

mptun_start --config "$EXAMPLES/mptun.toml"
st=$(mptun_status_json)
[ "$(json_eval "$st" "d['addresses']")" = '["10.10.1.2", "10.10.2.2"]' ] ||
    fail "addresses from the file: $st"
for a in 10.10.1.2 10.10.2.2; do
    out=$(tcpclient_peer "$a" 7 --bytes $((4 << 20))) || fail "echo on $a:7 from the file: $out"
    log "echo $a:7: $out"
done
out=$(tcpclient_peer 10.10.1.2 9 --mode sink --bytes $((1 << 20))) || fail "sink on 10.10.1.2:9 from the file: $out"
log "sink 10.10.1.2:9: $out"
out=$(peer_exec python3 "$NETNS_DIR/chargenclient.py" 10.10.1.2 19 $((1 << 20))) || fail "chargen on 10.10.1.2:19 from the file: $out"
log "chargen 10.10.1.2:19: $out"
out=$(tcpclient_peer 10.10.1.2 17 --expect-refused) || fail "port 17 is in no file: $out"
mptun_stop || fail "mptun (examples/mptun.toml) did not exit cleanly"

# --- The command line wins: --echo replaces the file's list, --mtu its value. ---
mptun_start --config "$EXAMPLES/mptun.toml" --echo 17 --mtu 1400
out=$(tcpclient_peer 10.10.1.2 17 --bytes $((1 << 20))) || fail "echo on the command line's port 17: $out"
out=$(tcpclient_peer 10.10.1.2 7 --expect-refused) ||
    fail "the file's echo port 7 still answers: the command line's --echo should replace it: $out"
mtu=$(ip -n "$HOST" -o link show "$TUN" | grep -oE 'mtu [0-9]+')
[ "$mtu" = "mtu 1400" ] || fail "the command line's --mtu 1400 lost to the file: $mtu"
log "overrides: echo 17 only, $mtu"
mptun_stop || fail "mptun (overrides) did not exit cleanly"

# --- examples/gateway.toml, with this topology's addresses (sed) and a direct
# upstream instead of its concentrator (the command line), as in t_gateway_direct. ---
sed -e 's/10\.20\.1\.2/10.10.1.2/; s/10\.20\.2\.2/10.10.2.2/' "$EXAMPLES/gateway.toml" >"$DIR/gateway.toml"
grep -q '^ip = "10.10.1.2"' "$DIR/gateway.toml" || fail "sed found no address in examples/gateway.toml"
"$MPTUN" check-config "$DIR/gateway.toml" >/dev/null || fail "check-config of the gateway example"
WEB="$PFX-web"
EXTRA_NS+=("$WEB")
ip netns add "$WEB"
ip link add h9 netns "$HOST" type veth peer name e0 netns "$WEB"
ip -n "$HOST" addr add 10.99.0.1/24 dev h9
ip -n "$WEB" addr add 10.99.0.2/24 dev e0
ip -n "$HOST" link set h9 up
ip -n "$WEB" link set e0 up
ip -n "$WEB" link set lo up
ip -n "$WEB" route add default via 10.99.0.1
ip -n "$PEER" route add 10.99.0.0/24 via 10.1.0.2
echo_server "$WEB" 10.99.0.2 7000
mptun_start --config "$DIR/gateway.toml" --upstream direct
host_exec "$REPO_DIR/scripts/gateway-routes.sh" --lan h1 --tun "$TUN" --wan 10.10.1.2,10.1.0.1,h1
out=$(tcpclient_peer 10.99.0.2 7000 --bytes $((4 << 20)) --timeout 60) ||
    fail "echo through the gateway of examples/gateway.toml: $out"
log "transparent (gateway.toml): $out"
# Its socks5-listen on the host's loopback takes the same way upstream.
out=$(host_exec python3 "$NETNS_DIR/socks5client.py" 127.0.0.1 1080 10.99.0.2 7000 --bytes 65536) ||
    fail "socks5-listen of examples/gateway.toml: $out"
[ "$(json_eval "$out" "d['ok']")" = true ] || fail "socks5-listen echo: $out"
log "socks5-listen (gateway.toml): $out"
mptun_stop || fail "mptun (gateway.toml) did not exit cleanly"

# --- Bad files: exit 2, file:line:column: key: why. ---
bad() { # bad NAME CONTENT PATTERN: both commands refuse the file the same way
    local f="$DIR/$1.toml"
    printf '%s\n' "$2" >"$f"
    expect_exit 2 "^mptun: $f:$3" "$MPTUN" check-config "$f"
    expect_exit 2 "^mptun: $f:$3" host_exec "$MPTUN" run --config "$f" --tun "$TUN" --control "$CTL"
    ! tun_is_up || fail "a TUN was created for the bad file $1"
}
addr='[[address]]
ip = "10.10.1.2"'
bad unknown_key "$addr
[services]
echo = [7]
ecco = [8]" "5:1: services\.ecco: unknown field \`ecco\`"
bad wrong_type "$addr
[tun]
mtu = \"1500\"" "4:7: tun\.mtu: invalid type: string \"1500\", expected an integer"
bad bad_value "[[address]]
ip = \"10.10.1.999\"" "2:6: address: '10\.10\.1\.999' is not an IPv4 or IPv6 address"
bad conflict "$addr
[mptcp]
enabled = false
checksum = true" "4:11: mptcp\.enabled: mptcp\.enabled = false cannot be used with mptcp\.checksum = true"
bad duplicate_address "$addr

[[address]]
ip = \"10.10.1.2\"
signal = true" "5:6: address: address 10\.10\.1\.2 is given twice"
bad port_clash "$addr
[services]
echo = [7]
sink = [7]" "5:9: services\.sink: port 7 is used by both services\.echo and services\.sink"
bad needs_upstream "$addr
[gateway]
transparent = true" "4:15: gateway\.transparent: gateway\.transparent = true needs gateway\.upstream"
expect_exit 2 "^mptun: $DIR/missing\.toml: cannot read it" "$MPTUN" check-config "$DIR/missing.toml"
# Without --config the command line is as strict as ever.
expect_exit 2 "required arguments were not provided" host_exec "$MPTUN" run --tun "$TUN"
