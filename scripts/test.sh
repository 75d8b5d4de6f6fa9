#!/usr/bin/env bash
# The test command (README.md; .ci/run calls exactly this).
# Installs what a fresh machine lacks, then runs every check: cargo fmt --check and
# clippy (-D warnings), cargo test (Rust unit, end-to-end, reliability, HTTP against
# in-process servers and a real nginx, the docs reference check), cargo doc with
# warnings as errors, the demo small on the debug build, the CMake build with ctest
# (GoogleTest suites, the C99 test, valgrind and ASan+UBSan runs, header checks, the
# examples, install and corrosion consumers, the docs' C++ blocks and the README's job),
# and checks that the committed C header is fresh. The last line says how long it took
# and which checks were skipped (and why they can be).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/install-s3s.sh

step() { printf '\n==> %s\n' "$*"; }
start=$SECONDS
skipped=()
mkdir -p build

step "cargo fmt --check"
cargo fmt --all --check

step "cargo test"
cargo test --locked

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --locked --all-targets -- -D warnings

step "cargo doc --no-deps, warnings as errors (the Rust reference; its examples ran as doctests)"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps

step "the demo, small and on the debug build: the second run must be served from the cache"
DEMO_PROFILE=debug DEMO_RECORDS=2000 DEMO_DIR="$PWD/build/demo" scripts/demo.sh | tee build/demo.log
awk '/run 2: from the cache/ { second = 1 }
     second && /train.cache: reused \(read from the cache\)/ { ok = 1 }
     END { if (!ok) print "demo: the second run was not served from the cache"; exit !ok }' build/demo.log
rm -rf build/demo

step "cmake build + ctest"
cmake -S . -B build/test -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build/test -j2
ctest --test-dir build/test --output-on-failure -j2 | tee build/ctest.log
# ctest lists each skipped test as "<n> - <name> (Skipped)".
while read -r name; do
    skipped+=("ctest $name")
    # Why: the test's own SKIP line (re-running a skipped test costs nothing).
    ctest --test-dir build/test -R "^$name\$" -V 2>&1 | grep -m1 -E '^[0-9]+: SKIP' | sed "s/^[^:]*: /    $name: /" || true
done < <(sed -n 's/^[[:space:]]*[0-9]* - \([^ ]*\) (Skipped)$/\1/p' build/ctest.log)

if [[ -e .git ]]; then
    step "the committed C header is what cbindgen generates"
    git diff --exit-code -- include/
else
    skipped+=("header diff (not a git checkout)")
fi

if ((${#skipped[@]})); then
    step "all tests passed in $((SECONDS - start)) s; SKIPPED ${#skipped[@]}: $(IFS=,; echo "${skipped[*]}" | sed 's/,/, /g')"
else
    step "all tests passed in $((SECONDS - start)) s; nothing skipped"
fi
