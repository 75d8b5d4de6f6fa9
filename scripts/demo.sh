#!/usr/bin/env bash
# The demo (README's first command). Builds what it needs, generates a dataset,
# serves it over HTTP on 127.0.0.1:8080, and runs examples/training_loop.cpp (the
# reference documentation's example, compiled verbatim) twice: the first run downloads
# and caches, the second runs with the server stopped and reads the caches. Then the Rust
# example reads the same caches, and cache_cli lists them. The caches stay in the work
# directory it prints (DEMO_DIR, default /tmp/harmonics-demo), emptied at the start.
#
# DEMO_RECORDS / DEMO_ELEMENTS size the dataset (default 20000 x float32[784], 63 MB).
# DEMO_PROFILE=debug reuses the debug build (the test command runs it that way, after
# `cargo test` has built it).
#
# It builds only the library, cache_cli and the two Rust examples it runs: the examples
# are compiled by rustc against the library cargo built, because `cargo build --example`
# would also compile the dev-dependencies (proptest and its tree), which the demo never
# uses. Build output is shown only when a build fails.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
records=${DEMO_RECORDS:-20000}
elements=${DEMO_ELEMENTS:-784}
port=8080   # the port the reference example is written against
work=${DEMO_DIR:-/tmp/harmonics-demo}

if [[ -t 1 ]]; then bold=$'\033[1m' plain=$'\033[0m'; else bold= plain=; fi
say() { printf '%s==> %s%s\n' "$bold" "$*" "$plain"; }
indent() { sed 's/^/    /'; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# quietly <log> <command...>: runs it with its output in <log>, shown only on failure.
quietly() {
    local log=$1; shift
    if ! "$@" >"$log" 2>&1; then
        echo "demo: failed: $*" >&2
        cat "$log" >&2
        exit 1
    fi
}

scripts/install-deps.sh demo   # g++, python3, curl: only what the demo uses

profile=${DEMO_PROFILE:-release}
case $profile in
    release) cargo_profile=(--release) rustc_opt=(-C opt-level=3) cxx_opt=-O2 ;;
    debug) cargo_profile=() rustc_opt=() cxx_opt=-O0 ;;
    *) echo "demo: DEMO_PROFILE must be release or debug" >&2; exit 2 ;;
esac
target="${CARGO_TARGET_DIR:-$root/target}/$profile"
case $target in /*) ;; *) target=$root/$target ;; esac
bin="$target/demo"

case $work in /*) ;; *) work=$PWD/$work ;; esac
if [[ -e $work && ! -e $work/.harmonics-demo ]]; then
    echo "demo: $work exists and was not made by the demo; set DEMO_DIR to another directory" >&2
    exit 1
fi
rm -rf "$work"
mkdir -p "$work/www" "$work/run" "$work/logs"
touch "$work/.harmonics-demo"
server=
cleanup() { if [[ -n $server ]]; then kill "$server" 2>/dev/null || true; fi; }
trap cleanup EXIT

t0=$(now)
say "building the library, cache_cli and the examples ($profile build, output in $work/logs)"
quietly "$work/logs/cargo.log" cargo build "${cargo_profile[@]}" --locked --lib --bin cache_cli
mkdir -p "$bin"
for example in generate_dataset training_loop; do
    if [[ ! -x $bin/$example || examples/$example.rs -nt $bin/$example
          || $target/libharmonics_dataset.rlib -nt $bin/$example ]]; then
        quietly "$work/logs/$example.log" rustc --edition 2021 --crate-type bin \
            --crate-name "$example" "${rustc_opt[@]}" "examples/$example.rs" \
            -L "dependency=$target/deps" \
            --extern "harmonics_dataset=$target/libharmonics_dataset.rlib" -o "$bin/$example"
    fi
done
quietly "$work/logs/g++.log" g++ -std=c++17 "$cxx_opt" -Wall -Wextra -Werror -I include \
    examples/training_loop.cpp -L "$target" -lharmonics_dataset -Wl,-rpath,"$target" \
    -o "$bin/training_loop_cpp"
echo "    built in $(secs "$t0" "$(now)") s"

say "generating $records records of float32[$elements]: $work/www/data"
"$bin/generate_dataset" "$work/www/data" "$records" "$elements" >/dev/null
echo "    $(stat -c %s "$work/www/data") bytes"

if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "demo: port $port on 127.0.0.1 is in use; the reference example needs it free" >&2
    exit 1
fi
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$work/www" >"$work/logs/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do
    curl -sf -o /dev/null -r 0-0 "http://127.0.0.1:$port/data" && break
    sleep 0.1
done
say "serving it at http://127.0.0.1:$port/data"

export HARMONICS_CACHE_DIR="$work/cache"
cd "$work/run"

say "run 1: download + cache (server up), C++ examples/training_loop.cpp"
t0=$(now); "$bin/training_loop_cpp" | indent; t1=$(now)
first=$(secs "$t0" "$t1")

kill "$server"; wait "$server" 2>/dev/null || true; server=
if curl -s -o /dev/null "http://127.0.0.1:$port/data"; then
    echo "demo: the server is still answering" >&2; exit 1
fi
say "server stopped: http://127.0.0.1:$port/data now refuses connections"

say "run 2: from the cache (server down), C++ examples/training_loop.cpp"
t0=$(now); "$bin/training_loop_cpp" | indent; t1=$(now)
second=$(secs "$t0" "$t1")

say "run 3: the Rust example examples/training_loop.rs, same caches (server down)"
"$bin/training_loop" | indent

say "$(awk -v a="$first" -v b="$second" 'BEGIN {
    printf "run 1 (download + cache) %.3f s, run 2 (cache only) %.3f s: %.1fx faster", a, b, a / b }')"

say "the caches in $HARMONICS_CACHE_DIR (cache_cli list --long)"
echo "    two caches, as the reference example asks: dataset.cache is HttpProducer's copy of the download, train.cache the DiskCacheProducer's training copy"
cd "$root"
"$target/cache_cli" list --long | indent
say "done; the caches stay in $work; remove them with: rm -rf $work"
