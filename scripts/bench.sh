#!/usr/bin/env bash
# Runs the whole cache benchmark (issue 6) and prints the final table, then the
# streaming benchmark (issue 22, benches/streaming: cold epoch through a throttled
# proxy, warm epoch, epoch-2 fetch fraction against LRU and MIN, private memory).
#
#   scripts/bench.sh [--scale S] [--rounds R] [--figures 1,2,3,...] [--keep] [--no-streaming]
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
# The streaming benchmark uses a 256 MiB dataset (times S, at least 32 MiB) under
# $BENCH_DIR/streaming and needs nginx.
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
STREAMING=1
SCALE=1
CACHE_ARGS=()
prev=
for a in "$@"; do
    [[ "$a" == --keep ]] && KEEP=1
    [[ "$prev" == --scale ]] && SCALE=$a
    prev=$a
    if [[ "$a" == --no-streaming ]]; then STREAMING=0; else CACHE_ARGS+=("$a"); fi
done

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

cargo bench --bench cache -- --dir "$BENCH_DIR" --cpp "$BENCH_DIR/warm_pass" ${CACHE_ARGS[@]+"${CACHE_ARGS[@]}"}

if [[ $STREAMING == 1 ]]; then
    STREAM_MIB=$(awk -v s="$SCALE" 'BEGIN { m = int(256 * s + 0.5); print (m < 32 ? 32 : m) }')
    echo
    echo "bench: streaming, ${STREAM_MIB} MiB dataset"
    HTTP_BENCH_DIR="$BENCH_DIR" cargo bench --bench streaming -- "$STREAM_MIB"
fi
