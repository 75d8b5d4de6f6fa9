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
# (cpp_bench/warm_pass.cpp) against it, starts nginx on 127.0.0.1 (serving
# $BENCH_DIR) when the HTTP producers are built in, runs `cargo bench --bench cache`
# and stops nginx. Every figure is a ratio against a baseline measured in the same run.
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

NGINX_PID=""
NGINX_DIR=""
cleanup() {
    if [[ -n "$NGINX_PID" ]]; then
        kill "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    [[ -n "$NGINX_DIR" ]] && rm -rf "$NGINX_DIR"
    if [[ $OWN_DIR == 1 && $KEEP == 0 ]]; then
        rm -rf "$BENCH_DIR"
    fi
}
trap cleanup EXIT

echo "bench: data in $BENCH_DIR"
df -h "$BENCH_DIR" | tail -1 | sed 's/^/bench: filesystem: /'

cargo build --release --lib
g++ -std=c++17 -O2 -Wall -Wextra -I"$ROOT/include" "$ROOT/cpp_bench/warm_pass.cpp" \
    -L"$TARGET_DIR/release" -lharmonics_dataset -Wl,-rpath,"$TARGET_DIR/release" \
    -o "$BENCH_DIR/warm_pass"

HTTP_ARGS=()
if grep -q "pub struct HttpProducer" -r "$ROOT/src/http" 2>/dev/null && [[ -x /usr/sbin/nginx ]]; then
    NGINX_DIR=$(mktemp -d "${TMPDIR:-/tmp}/harmonics-bench-nginx.XXXXXX")
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    mkdir -p "$NGINX_DIR/tmp"
    cat > "$NGINX_DIR/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $NGINX_DIR/tmp/body;
    proxy_temp_path $NGINX_DIR/tmp/proxy;
    fastcgi_temp_path $NGINX_DIR/tmp/fastcgi;
    uwsgi_temp_path $NGINX_DIR/tmp/uwsgi;
    scgi_temp_path $NGINX_DIR/tmp/scgi;
    sendfile on;
    tcp_nopush on;
    types { }
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$PORT;
        root $BENCH_DIR;
    }
}
CONF
    /usr/sbin/nginx -c "$NGINX_DIR/nginx.conf" -p "$NGINX_DIR" &
    NGINX_PID=$!
    for _ in $(seq 50); do
        curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break
        sleep 0.1
    done
    echo "bench: nginx (pid $NGINX_PID) on 127.0.0.1:$PORT serving $BENCH_DIR"
    HTTP_ARGS=(--http "http://127.0.0.1:$PORT")
else
    echo "bench: HttpProducer not built in (or no nginx): HTTP figures 4 and 5 skipped"
fi

cargo bench --bench cache -- --dir "$BENCH_DIR" --cpp "$BENCH_DIR/warm_pass" "${HTTP_ARGS[@]}" "$@"
