#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit, property and simulation tests.
# Installs what it needs itself, so a fresh machine needs no other step.
# As root it also runs the network-namespace interop tests against Linux peers
# (tests/netns/, which install their Debian packages themselves).
set -euo pipefail
cd "$(dirname "$0")/.."

need_cargo_component() {
    # rustfmt and clippy come with the toolchain; add them if a minimal one lacks them.
    if ! cargo "$1" --version >/dev/null 2>&1; then
        rustup component add "$2"
    fi
}
need_cargo_component fmt rustfmt
need_cargo_component clippy clippy

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== stack/ must not depend on tokio or I/O crates"
if cargo tree -p mptun-stack -e normal --prefix none --locked | grep -Eiq '^(tokio|mio|socket2|nix|libc|async-std) '; then
    echo "mptun-stack depends on an I/O crate:" >&2
    cargo tree -p mptun-stack -e normal --locked >&2
    exit 1
fi

echo "== cargo test"
cargo test --workspace --locked

echo "== fuzz targets: corpus, regressions and a short run each (scripts/fuzz.sh)"
scripts/fuzz.sh

if [ "$(id -u)" = 0 ]; then
    # Every daemon test runs with two engine threads (a multiqueue TUN, the
    # kernel spreading flows over both) and then with one.
    echo "== network-namespace interop tests (tests/netns), --threads 2"
    MPTUN_THREADS=2 tests/netns/run.sh
    echo "== network-namespace interop tests (tests/netns), --threads 1"
    MPTUN_THREADS=1 NETNS_NO_DEPS=1 tests/netns/run.sh
else
    echo "== network-namespace interop tests skipped: they need root"
fi
