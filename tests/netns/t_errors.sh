#!/usr/bin/env bash
# The command line's promises: bad arguments give a one-line error and exit 2; a TUN
# that cannot be created says why and exits 1 (name taken by another interface, no
# privilege); `status` without a daemon exits 1 with a clear message.
. "$(dirname "$0")/lib.sh"
topology_up

expect_exit() { # expect_exit CODE PATTERN CMD...
    local want=$1 pattern=$2 rc=0 out
    shift 2
    out=$("$@" 2>&1) || rc=$?
    [ "$rc" = "$want" ] || fail "'$*' exited $rc, expected $want: $out"
    grep -qiE -- "$pattern" <<<"$out" || fail "'$*' said '$out', expected /$pattern/"
    log "exit $rc: $(head -n1 <<<"$out")"
}

expect_exit 2 "invalid value.*--addr" host_exec "$MPTUN" run --addr 10.10.1.999
expect_exit 2 "required arguments were not provided" host_exec "$MPTUN" run --tun "$TUN"
expect_exit 2 "--impair.*unknown impairment key" \
    host_exec "$MPTUN" run --addr 10.10.1.2 --impair 10.10.1.2:lag=5ms
expect_exit 2 "unexpected argument" host_exec "$MPTUN" run --addr 10.10.1.2 --bogus

# HOST's end of path 1 is a veth: a TUN cannot take its name.
veth=$(ip -n "$HOST" -o link show | awk -F': ' '$2 ~ /^[^@]+@/ {split($2, a, "@"); print a[1]; exit}')
[ -n "$veth" ] || fail "no veth in $HOST to collide with"
expect_exit 1 "name in use" host_exec "$MPTUN" run --tun "$veth" --addr 10.10.1.2 --control "$DIR/x.sock"

# Without CAP_NET_ADMIN the TUN cannot be created (the control socket, checked
# first, goes where that user may put it).
if command -v setpriv >/dev/null; then
    chmod 0711 "$DIR"
    install -d -o 65534 -m 0755 "$DIR/nobody"
    expect_exit 1 "cannot create TUN device mptx0: permission denied" \
        host_exec setpriv --reuid=65534 --regid=65534 --clear-groups \
        "$MPTUN" run --tun mptx0 --addr 10.10.1.2 --control "$DIR/nobody/y.sock"
    [ ! -e "$DIR/nobody/y.sock" ] || fail "control socket left behind after a failed start"
fi

expect_exit 1 "cannot reach mptun" "$MPTUN" status --control "$DIR/none.sock"
