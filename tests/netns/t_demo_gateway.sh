#!/usr/bin/env bash
# The README's gateway quick start works: scripts/demo_gateway.sh --check
# downloads 64 MiB from WEB to the LAN host with curl through an mptun gateway
# and concentrator (two WANs), checks the file is exact and that the upstream
# MPTCP connection had two subflows.
. "$(dirname "$0")/lib.sh"
out=$(MPTUN="$MPTUN" "$REPO_DIR/scripts/demo_gateway.sh" --check 2>&1) ||
    fail "scripts/demo_gateway.sh --check: $out"
log "scripts/demo_gateway.sh --check: ok"
