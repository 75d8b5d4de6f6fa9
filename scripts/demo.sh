#!/usr/bin/env bash
# The demo (README's first command). Builds what it needs, generates a dataset,
# serves it over HTTP on 127.0.0.1:8080, and runs examples/training_loop.cpp (the
# reference documentation's example) twice: the first run downloads and caches,
# the second runs with the server stopped and reads the caches. Then the Rust
# example reads the same caches, and `tools/cache_cli list` shows them.
#
# DEMO_RECORDS / DEMO_ELEMENTS size the dataset (default 20000 x float32[784], 63 MB).
# DEMO_PROFILE=debug reuses the debug build (the test run uses it as a smoke test).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
records=${DEMO_RECORDS:-20000}
elements=${DEMO_ELEMENTS:-784}
port=8080   # the port the reference example is written against

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

scripts/install-deps.sh

profile=${DEMO_PROFILE:-release}
case $profile in
    release) cargo_profile=(--release) ;;
    debug) cargo_profile=() ;;
    *) echo "demo: DEMO_PROFILE must be release or debug" >&2; exit 2 ;;
esac
export HARMONICS_CLI_PROFILE=$profile

say "building the library, cache_cli and the examples ($profile)"
cargo build "${cargo_profile[@]}" --locked --lib --bin cache_cli --examples
target="${CARGO_TARGET_DIR:-$root/target}/$profile"
g++ -std=c++17 -O2 -Wall -Wextra -Werror -I include examples/training_loop.cpp \
    -L "$target" -lharmonics_dataset -Wl,-rpath,"$target" -o "$target/training_loop_cpp"

work=$(mktemp -d /tmp/harmonics-demo.XXXXXX)
server=
cleanup() {
    [[ -n $server ]] && kill "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

say "generating $records records of float32[$elements]"
mkdir -p "$work/www" "$work/run"
"$target/examples/generate_dataset" "$work/www/data" "$records" "$elements"
ls -l "$work/www/data" | awk '{ printf "dataset: %s bytes\n", $5 }'

if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "demo: port $port on 127.0.0.1 is in use; the reference example needs it free" >&2
    exit 1
fi
say "serving it at http://127.0.0.1:$port/data"
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$work/www" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do
    curl -sf -o /dev/null -r 0-0 "http://127.0.0.1:$port/data" && break
    sleep 0.1
done

export HARMONICS_CACHE_DIR="$work/cache"
cd "$work/run"

say "run 1: download + cache (server up)"
t0=$(now); "$target/training_loop_cpp"; t1=$(now)
first=$(secs "$t0" "$t1")

say "stopping the server"
kill "$server"; wait "$server" 2>/dev/null || true; server=
if curl -s -o /dev/null "http://127.0.0.1:$port/data"; then
    echo "demo: the server is still answering" >&2; exit 1
fi
echo "http://127.0.0.1:$port/data now refuses connections"

say "run 2: from the cache (server down)"
t0=$(now); "$target/training_loop_cpp"; t1=$(now)
second=$(secs "$t0" "$t1")

say "the Rust example, same caches (server down)"
"$target/examples/training_loop"

say "timings"
awk -v a="$first" -v b="$second" 'BEGIN {
    printf "run 1 (download + cache): %8.3f s\nrun 2 (cache only):       %8.3f s\nspeed-up:                 %8.1fx\n", a, b, a / b }'

say "tools/cache_cli list --long   (HARMONICS_CACHE_DIR=$HARMONICS_CACHE_DIR)"
cd "$root"
tools/cache_cli list --long
