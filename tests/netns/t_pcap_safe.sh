#!/usr/bin/env bash
# --pcap never writes where it should not: a symbolic link there (to a file, or
# dangling) and an existing file are refused with a clear message and exit status
# 1, the link's target and the file are left untouched, and no TUN device is left
# behind; a new capture file is created mode 0600 (it holds payloads and keys).
. "$(dirname "$0")/lib.sh"
topology_up

expect_exit() { # expect_exit CODE PATTERN CMD...
    local want=$1 pattern=$2 rc=0 out
    shift 2
    out=$("$@" 2>&1) || rc=$?
    [ "$rc" = "$want" ] || fail "'$*' exited $rc, expected $want: $out"
    grep -qiE -- "$pattern" <<<"$out" || fail "'$*' said '$out', expected /$pattern/"
    log "exit $rc: $(tail -n1 <<<"$out")"
}
run_pcap() { host_exec "$MPTUN" run --tun mpt1 --addr 10.10.1.2 --no-routes --control "$DIR/p.sock" --pcap "$1"; }

victim="$DIR/victim"
printf 'precious\n' >"$victim"
chmod 0644 "$victim"
ln -s "$victim" "$DIR/link.pcap"
expect_exit 1 "--pcap $DIR/link.pcap: is a symbolic link; the capture must be a new file" run_pcap "$DIR/link.pcap"
ln -s "$DIR/nowhere" "$DIR/dangling.pcap"
expect_exit 1 "--pcap $DIR/dangling.pcap: is a symbolic link" run_pcap "$DIR/dangling.pcap"
[ ! -e "$DIR/nowhere" ] || fail "a file was created through the dangling link"
cp "$victim" "$DIR/old.pcap"
expect_exit 1 "--pcap $DIR/old.pcap: exists; the capture must be a new file" run_pcap "$DIR/old.pcap"
[ "$(cat "$victim")" = precious ] && [ "$(stat -c %a "$victim")" = 644 ] || fail "the link's target was changed"
[ "$(cat "$DIR/old.pcap")" = precious ] || fail "the existing file was changed"
ip -n "$HOST" link show mpt1 >/dev/null 2>&1 && fail "TUN mpt1 left behind after a refused --pcap"
[ ! -e "$DIR/p.sock" ] || fail "control socket left behind after a refused --pcap"

# A new file: created 0600, and it captures.
pcap="$DIR/new.pcap"
mptun_start --echo 7 --pcap "$pcap"
[ "$(stat -c '%a %u' "$pcap")" = "600 0" ] || fail "capture is $(stat -c '%a %U' "$pcap"), expected 600 root"
tcpclient_peer 10.10.1.2 7 --bytes 10000 >/dev/null || fail "echo failed"
mptun_stop 5 || fail "mptun exited with status $?"
[ "$(stat -c %s "$pcap")" -gt 10000 ] || fail "capture too small: $(stat -c %s "$pcap") bytes"
log "PASS"
