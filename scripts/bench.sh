#!/usr/bin/env bash
# Runs the whole cache benchmark (issue 6) and prints the final table.
#
#   scripts/bench.sh [--scale S] [--rounds R] [--figures 1,2,3,...] [--keep]
#
# Full sizes by default (A: 200,000 x float32[784] ~630 MB; B: 1,000 x float32[262144]
# ~1 GB, plus a 2 GB cache for peak RSS). `--scale 0.1` for a quick run.
# Data goes to $BENCH_DIR (default: a new temp dir under ${TMPDIR:-/tmp}, which must be
# on the filesystem you want measured; the dd baseline writes there too). The temp dir
# is removed at the end unless BENCH_DIR was given or --keep is passed.
#
# Builds the library in release mode, compiles the C++ HTensor pass
# (benches/cpp/warm_pass.cpp) against it and runs `cargo bench --bench cache`, which
# starts nginx on 127.0.0.1 (serving $BENCH_DIR) for the HTTP figures when nginx is
# installed. Every figure is a ratio against a baseline measured in the same run.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

if [[ -n "${BENCH_DIR:-}" ]]; then
    mkdir -p "$BENCH_DIR"
    OWN_DIR=0
else
    BENCH_DIR=$(mktemp -d "${TMPDIR:-/tmp}/harmonics-bench.XXXXXX")
    OWN_DIR=1
fi
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
KEEP=0
for a in "$@"; do [[ "$a" == --keep ]] && KEEP=1; done

cleanup() {
    if [[ $OWN_DIR == 1 && $KEEP == 0 ]]; then
        rm -rf "$BENCH_DIR"
    fi
}
trap cleanup EXIT

echo "bench: data in $BENCH_DIR"
df -h "$BENCH_DIR" | tail -1 | sed 's/^/bench: filesystem: /'

cargo build --release --lib
g++ -std=c++17 -O2 -Wall -Wextra -I"$ROOT/include" "$ROOT/benches/cpp/warm_pass.cpp" \
    -L"$TARGET_DIR/release" -lharmonics_dataset -Wl,-rpath,"$TARGET_DIR/release" \
    -o "$BENCH_DIR/warm_pass"

cargo bench --bench cache -- --dir "$BENCH_DIR" --cpp "$BENCH_DIR/warm_pass" "$@"
