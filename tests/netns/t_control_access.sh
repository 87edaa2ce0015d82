#!/usr/bin/env bash
# Who may use the control socket. By default it is mode 0600: an unprivileged user
# (nobody) cannot even connect, neither for `status` nor for `addr`. With
# --control-group (nobody's group) it is mode 0660 with that group: nobody reads
# `status`, but without MPTCP keys (null, keys_redacted, none of root's key values
# anywhere in the answer; the table says they are withheld) while root sees them;
# `addr add/del/set` from nobody get "permission denied" (logged at WARN with the
# uid and pid) and change nothing; a user outside the group cannot connect.
# Directories an attacker could change (world-writable without sticky bit, owned by
# another user, a symbolic link) are refused with exit status 1.
. "$(dirname "$0")/lib.sh"
topology_up
peer_exec sysctl -qw net.mptcp.enabled=1
command -v setpriv >/dev/null || fail "setpriv missing (util-linux)"

# Let the socket's own mode decide who may connect: $DIR is searchable by all.
chmod 0755 "$DIR"
NOBODY=$(id -u nobody)
NOGROUP=$(id -g nobody)
GROUP_NAME=$(getent group "$NOGROUP" | cut -d: -f1)
as_nobody() { setpriv --reuid="$NOBODY" --regid="$NOGROUP" --clear-groups "$@"; }
as_stranger() { setpriv --reuid=4242 --regid=4242 --clear-groups "$@"; }
USER_MPTUN=$MPTUN
if ! as_nobody "$MPTUN" --version >/dev/null 2>&1; then
    cp "$MPTUN" "$DIR/mptun"
    USER_MPTUN=$DIR/mptun
fi

expect_exit() { # expect_exit CODE PATTERN CMD...
    local want=$1 pattern=$2 rc=0 out
    shift 2
    out=$("$@" 2>&1) || rc=$?
    [ "$rc" = "$want" ] || fail "'$*' exited $rc, expected $want: $out"
    grep -qiE -- "$pattern" <<<"$out" || fail "'$*' said '$out', expected /$pattern/"
    log "exit $rc: $(head -n1 <<<"$out")"
}

# ---- default: 0600, nobody cannot connect ----
mptun_start --echo 7
[ "$(stat -c '%a %u' "$CTL")" = "600 0" ] || fail "control socket is $(stat -c '%a %U:%G' "$CTL"), expected 600 root"
expect_exit 1 "permission denied" as_nobody "$USER_MPTUN" status --control "$CTL"
expect_exit 1 "permission denied" as_nobody "$USER_MPTUN" addr add 10.10.3.2 --control "$CTL"
mptun_stop 5 || fail "mptun exited with status $?"

# ---- --control-group: members read status without keys, change nothing ----
mptun_start --echo 7 --control-group "$GROUP_NAME"
[ "$(stat -c '%a %u %g' "$CTL")" = "660 0 $NOGROUP" ] ||
    fail "control socket is $(stat -c '%a %U:%G' "$CTL"), expected 660 root:$GROUP_NAME"

# An MPTCP connection that stays open (the client pauses after 64 KiB).
go="$DIR/go"
bg_run "$PEER" python3 "$NETNS_DIR/tcpclient.py" 10.10.1.2 7 --mptcp --bytes $((1 << 20)) \
    --pause 65536:"$go" >"$DIR/client.json"
client=$BG_PID
has_keys() { json_eval "$(mptun_status_json)" 'any(c["mptcp"] and c["mptcp"]["remote_key"] for c in d["connections"]) or None'; }
wait_until 10 has_keys || fail "no MPTCP connection with both keys in root's status"
root=$(mptun_status_json)
[ "$(json_eval "$root" 'd["keys_redacted"]')" = false ] || fail "root's status is redacted"
mapfile -t keys < <(json_eval "$root" '[k for c in d["connections"] if c["mptcp"] for k in (c["mptcp"]["local_key"], c["mptcp"]["remote_key"])]' |
    python3 -c 'import json, sys; print("\n".join(json.load(sys.stdin)))')
[ "${#keys[@]}" -eq 2 ] || fail "expected 2 keys in root's status, got: ${keys[*]}"

theirs=$(as_nobody "$USER_MPTUN" status --control "$CTL" --json) || fail "nobody (in the group) cannot read status: $theirs"
[ "$(json_eval "$theirs" 'd["keys_redacted"] and all(c["mptcp"]["local_key"] is None and c["mptcp"]["remote_key"] is None and c["mptcp"]["local_token"] for c in d["connections"] if c["mptcp"]) and len(d["connections"]) >= 1')" = true ] ||
    fail "nobody's status is not redacted as expected: $theirs"
table=$(as_nobody "$USER_MPTUN" status --control "$CTL") || fail "nobody cannot read the status table"
grep -q "MPTCP keys withheld" <<<"$table" || fail "the table does not say that keys are withheld: $table"
for k in "${keys[@]}"; do
    for form in "$k" "$((16#$k))" "${k^^}"; do
        ! grep -qi -- "$form" <<<"$theirs$table" || fail "key $k ($form) visible to nobody"
    done
done
log "nobody sees $(json_eval "$theirs" 'len(d["connections"])') connection(s), keys null; root sees ${keys[*]}"

expect_exit 1 "permission denied: .addr_add." as_nobody "$USER_MPTUN" addr add 10.10.3.2,signal --control "$CTL"
expect_exit 1 "permission denied: .addr_del." as_nobody "$USER_MPTUN" addr del fd10:1::2 --control "$CTL"
expect_exit 1 "permission denied: .addr_set." as_nobody "$USER_MPTUN" addr set 10.10.1.2 backup --control "$CTL"
# A hand-made request gets the same answer (with a Python nobody may run).
py=""
for p in /usr/bin/python3 /usr/local/bin/python3 "$(command -v python3)"; do
    as_nobody "$p" -c 1 >/dev/null 2>&1 && { py=$p; break; }
done
if [ -n "$py" ]; then
    raw=$(as_nobody "$py" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"{\"cmd\":\"addr_del\",\"addr\":\"10.10.1.2\"}\n")
print(s.makefile().readline().strip())' "$CTL")
    [ "$(json_eval "$raw" 'd["ok"] is False and d["error"].startswith("permission denied: ")')" = true ] ||
        fail "raw addr_del from nobody: $raw"
    log "raw addr_del from nobody: $raw"
else
    log "no python3 that nobody may run: raw request skipped"
fi
[ "$(json_eval "$(mptun_status_json)" 'd["addresses"]')" = '["10.10.1.2", "fd10:1::2"]' ] ||
    fail "the addresses changed: $(json_eval "$(mptun_status_json)" 'd["addresses"]')"
grep -E "WARN.*refused.*uid=$NOBODY.*pid=[1-9]" "$MPTUN_LOG" >/dev/null ||
    fail "no WARN line with nobody's uid and pid for the refused commands"
log "$(grep -c "WARN.*refused" "$MPTUN_LOG") refusals logged: $(grep -m1 "WARN.*refused" "$MPTUN_LOG")"

expect_exit 1 "permission denied" as_stranger "$USER_MPTUN" status --control "$CTL"

# Root may change addresses.
"$MPTUN" addr add 10.10.3.2 --control "$CTL" || fail "root cannot add an address"
"$MPTUN" addr del 10.10.3.2 --control "$CTL" || fail "root cannot remove an address"

touch "$go"
wait "$client" || fail "the MPTCP echo failed: $(cat "$DIR/client.json")"
mptun_stop 5 || fail "mptun exited with status $?"

# ---- directories an attacker could change are refused ----
run_with_control() { host_exec "$MPTUN" run --tun mpt1 --addr 10.10.1.2 --no-routes --control "$1"; }
mkdir -m 0777 "$DIR/open"
chmod 0777 "$DIR/open"
expect_exit 1 "writable by everyone \(mode 0777\) without the sticky bit" run_with_control "$DIR/open/ctl.sock"
mkdir "$DIR/real"
ln -s "$DIR/real" "$DIR/link"
expect_exit 1 "is a symbolic link" run_with_control "$DIR/link/ctl.sock"
mkdir "$DIR/theirs"
chown "$NOBODY" "$DIR/theirs"
expect_exit 1 "owned by uid $NOBODY" run_with_control "$DIR/theirs/ctl.sock"
ln -s "$DIR/victim" "$DIR/real/ctl.sock"
expect_exit 1 "is a symbolic link" run_with_control "$DIR/real/ctl.sock"
[ ! -e "$DIR/victim" ] || fail "something was created through the symbolic link"
ip -n "$HOST" link show mpt1 >/dev/null 2>&1 && fail "TUN mpt1 left behind after a refused control socket"
log "PASS"
