#!/usr/bin/env bash
# The README's quick start works: scripts/demo.sh --check sets up the Linux
# host with two links, runs mptun (`--addr 10.10.2.2,signal`) and the quick
# start's MPTCP client, and checks that `mptun status` showed the connection
# with an established subflow on each path and that `mptun monitor` printed
# CREATED, an SF_ESTABLISHED from 10.10.2.2, and CLOSED.
. "$(dirname "$0")/lib.sh"
out=$(MPTUN="$MPTUN" "$REPO_DIR/scripts/demo.sh" --check ${MPTUN_THREADS:+--threads "$MPTUN_THREADS"} 2>&1) ||
    fail "scripts/demo.sh --check: $out"
log "scripts/demo.sh --check: ok"
