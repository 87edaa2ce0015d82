#!/usr/bin/env bash
# Runs the network-namespace interop tests against the mptun daemon.
#
#   tests/netns/run.sh                  every tests/netns/t_*.sh
#   tests/netns/run.sh t_echo_v4 t_ping names (with or without .sh / path)
#
# Each test builds its own topology (lib.sh) and removes it. Prints `PASS name (secs)`
# or `FAIL name` per test (a failed test's output follows), then `N passed, M failed`.
# Needs root; without it everything is skipped (exit 0).
#
# Known failures: a test whose file has a line `# KNOWN_FAILING: reason` (a bug of
# mptun it exposes, not of the test) still runs in full. When it fails it prints
# `XFAIL name (secs): reason` and its output, and counts as known failing, not as
# failed; when it passes it prints `XPASS name`, counted as passed (time to remove
# the line). NETNS_STRICT=1 counts known failures as failures.
#
# Environment:
#   MPTUN=path          binary to test; when unset, `cargo build --release` builds
#                       target/release/mptun first
#   NETNS_TIMEOUT=secs  per-test limit (default 600)
#   NETNS_VERBOSE=1     show every test's output, not only failures'
#   NETNS_NO_DEPS=1     don't run install-deps.sh
#   NETNS_STRICT=1      a KNOWN_FAILING test that fails fails the run
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

tests=()
if [ $# -gt 0 ]; then
    for t in "$@"; do
        t=$(basename "$t" .sh)
        [ -f "$HERE/$t.sh" ] || { echo "run.sh: no test $HERE/$t.sh" >&2; exit 2; }
        tests+=("$t")
    done
else
    for f in "$HERE"/t_*.sh; do tests+=("$(basename "$f" .sh)"); done
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "netns tests need root (network namespaces, TUN): skipping ${#tests[@]} tests"
    echo "0 passed, 0 failed, ${#tests[@]} skipped"
    exit 0
fi

if [ "${NETNS_NO_DEPS:-0}" != 1 ]; then
    "$HERE/install-deps.sh" || { echo "run.sh: installing test dependencies failed" >&2; exit 1; }
fi

if [ -z "${MPTUN:-}" ]; then
    echo "== cargo build --release" >&2
    (cd "$REPO" && cargo build --release --locked) || { echo "run.sh: build failed" >&2; exit 1; }
    MPTUN=$REPO/target/release/mptun
fi
MPTUN=$(realpath "$MPTUN")
export MPTUN
if ! "$MPTUN" run --help >/dev/null 2>&1; then
    echo "run.sh: warning: '$MPTUN run --help' fails: the daemon has no 'run' subcommand yet?" >&2
fi

timeout_s=${NETNS_TIMEOUT:-600}
logdir=$(mktemp -d /tmp/mptun-netns-run.XXXXXX)
passed=0
failed=0
xfailed=0
failed_names=()
xfailed_names=()
for t in "${tests[@]}"; do
    out="$logdir/$t.log"
    start=$(date +%s.%N)
    timeout -k 15 "$timeout_s" bash "$HERE/$t.sh" >"$out" 2>&1 </dev/null
    rc=$?
    secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
    known=$(sed -n 's/^# KNOWN_FAILING: *//p' "$HERE/$t.sh" | head -n 1)
    if [ "$rc" -ne 0 ] && [ -n "$known" ] && [ "${NETNS_STRICT:-0}" != 1 ]; then
        xfailed=$((xfailed + 1))
        xfailed_names+=("$t")
        echo "XFAIL $t (${secs}s$([ "$rc" -eq 124 ] && echo ", timeout")): $known"
        sed 's/^/    /' "$out" | tail -n 80
    elif [ "$rc" -eq 0 ] && [ -n "$known" ]; then
        passed=$((passed + 1))
        echo "XPASS $t (${secs}s): passed although marked KNOWN_FAILING ($known)"
        [ "${NETNS_VERBOSE:-0}" = 1 ] && sed 's/^/    /' "$out"
    elif [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        echo "PASS $t (${secs}s)"
        [ "${NETNS_VERBOSE:-0}" = 1 ] && sed 's/^/    /' "$out"
    else
        failed=$((failed + 1))
        failed_names+=("$t")
        [ "$rc" -eq 124 ] && echo "FAIL $t (timeout after ${timeout_s}s)" || echo "FAIL $t"
        sed 's/^/    /' "$out" | tail -n 80
    fi
done

left=$(ip netns list 2>/dev/null | grep -c '^mpt-' || true)
[ "$left" -gt 0 ] && echo "run.sh: warning: $left mpt-* network namespaces left behind" >&2
[ "$xfailed" -gt 0 ] && echo "known failing (KNOWN_FAILING in the test): ${xfailed_names[*]}"
[ "$failed" -gt 0 ] && echo "failed: ${failed_names[*]} (logs in $logdir)"
[ "$failed" -eq 0 ] && rm -rf "$logdir"
if [ "$xfailed" -gt 0 ]; then
    echo "$passed passed, $failed failed, $xfailed known failing"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
