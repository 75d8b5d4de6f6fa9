#!/usr/bin/env bash
# Runs the whole cache benchmark (issue 6) and prints the final table, then the
# streaming benchmark (issue 22, benches/streaming: cold epoch through a throttled
# proxy, warm epoch, epoch-2 fetch fraction against LRU and MIN, private memory).
#
#   scripts/bench.sh [--scale S] [--rounds R] [--figures 1,2,3,...] [--keep] [--no-streaming]
#
# Figures (benches/cache, `--figures` picks them; each a ratio against a baseline
# measured in the same run, CPU-time ratio beside the wall ratio):
#   1   warm passes over A and B vs cat (Rust view; C++ next() and next_view())
#   2   warm open, 1,000,000 vs 100,000 records
#   3   peak RSS of 2 epochs over 1 and 2 GB caches
#   4   cold HTTP fetch vs curl (nginx)        5  async first record vs the download
#   6   append to a big vs a small cache       7  populate A vs dd conv=fsync
#   8   warm shuffled view_at epoch over A vs the sequential pass (8n: no read_ahead)
#   9   private memory (peak RssAnon) of a SampledProducer epoch over a 2 GB cache
#       (9h: VmHWM of the same runs)
#   10  cold block-shuffled view_at epoch vs cold sequential (10g: global shuffle)
#   11  issue 23, through C++ (warm_pass): 11a warm SampledProducer::next() vs the
#       sequential next(); 11b warm view(i) in the caller's Sampler order after
#       read_ahead(sampler) vs the sequential next_view(); 11c cold block-shuffled
#       (B = 64) SampledProducer::next() vs cold sequential next(); 11d the same, global
#       shuffle; 11e BatchProducer(SampledProducer, 256) vs SampledProducer::next()
#
# Full sizes by default (A: 200,000 x float32[784] ~630 MB; B: 1,000 x float32[262144]
# ~1 GB, plus a 2 GB cache for peak RSS). `--scale 0.1` for a quick run.
# Data goes to $BENCH_DIR (default: a new temp dir under ${TMPDIR:-/tmp}, which must be
# on the filesystem you want measured; the dd baseline writes there too). The temp dir
# is removed at the end unless BENCH_DIR was given or --keep is passed.
#
# Builds the library in release mode, compiles the C++ pass (benches/cpp/warm_pass.cpp,
# figures 1 and 11) against it and runs `cargo bench --bench cache`, which starts nginx
# on 127.0.0.1 (serving $BENCH_DIR) for the HTTP figures when nginx is installed.
# Every figure is a ratio against a baseline measured in the same run.
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
