#!/usr/bin/env bash
# The test command (README.md; .ci/run calls exactly this).
# Installs what a fresh machine lacks, then runs every suite: cargo test (Rust unit,
# end-to-end, reliability, HTTP against in-process servers and a real nginx), the
# CMake build with ctest (GoogleTest suites, the C99 test, valgrind runs, header
# checks, install consumer), and checks that the committed C header is fresh.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/install-s3s.sh

step() { printf '\n==> %s\n' "$*"; }
start=$SECONDS

step "cargo test"
cargo test --locked
mkdir -p build

step "the demo, small and on the debug build: the second run must be served from the cache"
DEMO_PROFILE=debug DEMO_RECORDS=2000 scripts/demo.sh | tee build/demo.log
awk '/run 2: from the cache/ { second = 1 }
     second && /train.cache: reused \(read from the cache\)/ { ok = 1 }
     END { if (!ok) print "demo: the second run was not served from the cache"; exit !ok }' build/demo.log

step "cmake build + ctest"
cmake -S . -B build/test -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build/test -j2
ctest --test-dir build/test --output-on-failure -j2

if [[ -e .git ]]; then
    step "the committed C header is what cbindgen generates"
    git diff --exit-code -- include/
fi

step "all tests passed in $((SECONDS - start)) s"
