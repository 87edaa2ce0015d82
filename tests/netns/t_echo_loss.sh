#!/usr/bin/env bash
# Echo of 16 MiB, exact, with 1 % random loss in HOST's forward path (nftables, both
# directions) and mptun's own fault injector adding 10 ms delay with 5 ms jitter
# (which reorders) on 10.10.1.2.
. "$(dirname "$0")/lib.sh"
topology_up
nft_random_loss "$HOST" 1
mptun_start --echo 7 --impair 10.10.1.2:delay=10ms,jitter=5ms,seed=7
out=$(tcpclient_peer 10.10.1.2 7 --bytes $((16 << 20)) --timeout 400 --idle-timeout 60) ||
    fail "echo of 16 MiB with loss and jitter: $out"
log "$out"
dropped=$(nft_dropped "$HOST")
log "nftables dropped $dropped forwarded packets"
[ "${dropped:-0}" -gt 0 ] || fail "the loss rule dropped nothing: the test did not test loss"
