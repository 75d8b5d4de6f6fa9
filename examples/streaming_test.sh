#!/bin/sh
# Runs examples/streaming.cpp as a job of 2 nodes x 2 ranks against a dataset published
# in the test's directory and served by nginx on 127.0.0.1 (byte ranges, strong ETags),
# with each node's stream cache limited to a quarter of the dataset, and checks the job's
# exit status and its own checks (order, disk limit, exact resume).
#   usage: streaming_test.sh path/to/streaming        (exit 77: no nginx, skipped)
set -u
bin=$1
nginx=${HARMONICS_NGINX:-/usr/sbin/nginx}
[ -x "$nginx" ] || nginx=$(command -v nginx 2>/dev/null) || { echo "SKIP: no nginx"; exit 77; }
here=$(pwd)
rm -rf www job nginx && mkdir -p www job nginx/temp

"$bin" publish www --records 4000 --dims 1024 || exit 1
bytes=$(stat -c %s www/train.cache)
limit=$((bytes / 4))

# nginx on a free port: a port taken by someone else makes nginx exit; try another.
port=
for attempt in 1 2 3 4 5 6 7 8; do
  p=$((20000 + ($$ * 7 + attempt * 4099) % 40000))
  cat >nginx/nginx.conf <<EOF
daemon off;
master_process off;
pid $here/nginx/nginx.pid;
error_log $here/nginx/error.log;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $here/nginx/temp/body;
    proxy_temp_path $here/nginx/temp/proxy;
    fastcgi_temp_path $here/nginx/temp/fastcgi;
    uwsgi_temp_path $here/nginx/temp/uwsgi;
    scgi_temp_path $here/nginx/temp/scgi;
    default_type application/octet-stream;
    sendfile on;
    etag on;
    server {
        listen 127.0.0.1:$p;
        root $here/www;
    }
}
EOF
  "$nginx" -p "$here/nginx" -e "$here/nginx/error.log" -c "$here/nginx/nginx.conf" &
  server=$!
  i=0
  while [ $i -lt 100 ]; do
    if curl -sf -o /dev/null -r 0-0 "http://127.0.0.1:$p/train.cache"; then port=$p; break; fi
    kill -0 $server 2>/dev/null || break
    i=$((i + 1)); sleep 0.05
  done
  [ -n "$port" ] && break
  kill $server 2>/dev/null; wait $server 2>/dev/null
done
[ -n "$port" ] || { echo "nginx did not start: $(cat nginx/error.log)"; exit 1; }
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
url=http://127.0.0.1:$port/train.cache
# The stream pins the object by a strong ETag: make sure this server gives one.
curl -sfI "$url" | grep -qi '^etag: "' || { echo "nginx gives no strong ETag"; exit 1; }
echo "serving $url ($bytes bytes); each node's limit: $limit bytes (a quarter of the dataset)"

"$bin" job "$url" --dir job --limit $limit --nodes 2 --ranks-per-node 2 >job.out 2>&1
rc=$?
cat job.out
[ $rc -eq 0 ] || { echo "the streaming job failed (exit $rc)"; exit 1; }
grep -q '^streaming: every check passed$' job.out || { echo "the job did not report its checks"; exit 1; }
grep -q '^resume: .*exactly what the first run read' job.out || { echo "no exact resume reported"; exit 1; }
echo "example streaming: ok"
