#!/usr/bin/env bash
# ctest tests example_*: runs one examples/ program the way its comment says, in the
# test's scratch directory (caches under $HARMONICS_CACHE_DIR), and checks its output.
#   run_example.sh csv_with_token  <bin>
#   run_example.sh custom_producer <bin>
#   run_example.sh c_api           <bin>
#   run_example.sh async_http      <bin> <custom_producer bin>   (python3 http.server, loopback)
set -euo pipefail
name=$1 bin=$2

expect() { # expect <pattern> <command...>
    local pattern=$1 out; shift
    out=$("$@")
    printf '%s\n' "$out"
    if ! grep -Eq -- "$pattern" <<<"$out"; then
        echo "example $name: expected output matching /$pattern/" >&2
        exit 1
    fi
}

case $name in
csv_with_token)
    expect '^example-csv.cache: created, 4 rows, sum 66.75$' "$bin"
    expect '^example-csv.cache: reused, 4 rows' "$bin"
    echo "12,13,14" >>example.csv    # the token (size, mtime) changes
    expect '^example-csv.cache: rebuilt, 5 rows, sum 105.75$' "$bin"
    ;;
custom_producer)
    expect '^custom.cache: created, 1000 records, computed 1000 of them now' "$bin"
    expect '^custom.cache: reused, 1000 records, computed 0 of them now' "$bin" export data.bin
    [[ -s data.bin ]] || { echo "example $name: export wrote nothing" >&2; exit 1; }
    ;;
c_api)
    expect '^example-c.cache: created, 3 rows, sum 21.5$' "$bin"
    expect '^example-c.cache: reused, 3 rows, sum 21.5$' "$bin"
    ;;
async_http)
    producer=$3
    mkdir -p www
    (cd www && "$producer" export data.bin >/dev/null)
    python3 -u -m http.server 0 --bind 127.0.0.1 --directory www >server.log 2>&1 &
    server=$!
    trap 'kill $server 2>/dev/null || true' EXIT
    port=
    for _ in $(seq 100); do
        port=$(sed -n 's/.* port \([0-9][0-9]*\) .*/\1/p' server.log | head -1)
        [[ -n $port ]] && break
        sleep 0.1
    done
    [[ -n $port ]] || { echo "example $name: the HTTP server did not start: $(cat server.log)" >&2; exit 1; }
    url=http://127.0.0.1:$port/data.bin
    expect "^$url: 1000 records, 64000 bytes, first record after" "$bin" "$url"
    kill $server; wait $server 2>/dev/null || true
    # Server gone: revalidation fails, the cached copy is used (with a warning).
    expect "^$url: 1000 records, 64000 bytes" env HARMONICS_LOG=off "$bin" "$url"
    ;;
*)
    echo "run_example.sh: unknown example $name" >&2
    exit 2
    ;;
esac
echo "example $name: ok"
