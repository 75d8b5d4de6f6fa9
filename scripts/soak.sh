#!/usr/bin/env bash
# The long randomized soak (issue 20; tests/all/soak/): scripts/soak.sh [EPISODES] [SEED]
# EPISODES defaults to 1000; SEED (decimal or 0x hex) to a fresh one, printed first.
# The test command runs the same test with 16 episodes from a fixed seed.
#
# Replay one failed episode: scripts/soak.sh 1 <its seed> (each episode's seed is
# printed on its line). Other knobs, passed through the environment:
#   HARMONICS_SOAK_FAULTS=cp,mv   only these fault kinds (prefixes of the names in the
#                                 table, or a whole name ending in $; kill, initial;
#                                 "none": the processes alone)
#   HARMONICS_SOAK_KEEP=1         keep a failed episode's directory
#   HARMONICS_SOAK_HANG_SECS=120  the bound after which a process counts as hung
#   HARMONICS_SOAK_SABOTAGE=swap  the checker swaps two records: every episode must fail
# The output (one line per episode, the tables, the summary line) is also written to
# build/soak-<seed>.log. Exit status: 0 when no episode failed.
set -euo pipefail
cd "$(dirname "$0")/.."

episodes=${1:-1000}
seed=${2:-$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')}
mkdir -p build
log="build/soak-${seed}.log"
echo "soak: $episodes episodes from seed $seed (log: $log)"
set +e
HARMONICS_SOAK_SEED="$seed" HARMONICS_SOAK_EPISODES="$episodes" RUST_BACKTRACE=0 \
    nice cargo test --test all -- --exact soak::soak_episodes_serve_no_wrong_record --nocapture \
    2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
grep '^soak: .* episodes, ' "$log" | tail -n 1
exit "$status"
