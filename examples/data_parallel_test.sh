#!/bin/sh
# Runs examples/data_parallel.cpp as a job of 3 ranks sharing one cache, kills one rank
# with SIGKILL mid-epoch (and the rest, as a launcher tears a job down), resumes every
# rank from its last checkpoint, and checks that each rank's log is exactly the
# sequence of an uninterrupted run.   usage: data_parallel_test.sh path/to/data_parallel
set -u
bin=$1
W=3 N=1000 S=900 K=25
dir=$(pwd)/job
rm -rf "$dir" && mkdir -p "$dir"
common="--world $W --records $N --steps $S --every $K --dir $dir"

pids=""
for r in 0 1 2; do
  "$bin" run --rank $r $common --pause-us 2000 &
  pids="$pids $!"
done

# Wait (bounded) until rank 1 is well into its first epoch, then kill it with -9.
i=0
lines() { { wc -l < "$dir/log-1.txt"; } 2>/dev/null || echo 0; }
while [ "$(lines)" -lt 180 ]; do
  i=$((i + 1))
  if [ $i -gt 600 ]; then echo "rank 1 made no progress"; kill -9 $pids 2>/dev/null; exit 1; fi
  for p in $pids; do
    if ! kill -0 "$p" 2>/dev/null; then
      wait "$p"; rc=$?
      [ $rc -eq 77 ] && { echo "SKIP: no random access in this build"; exit 77; }
    fi
  done
  sleep 0.1
done
set -- $pids
kill -9 "$2"
echo "killed rank 1 (pid $2) with SIGKILL after $(lines) logged steps"
kill -9 $pids 2>/dev/null
for p in $pids; do wait "$p" 2>/dev/null; done

for r in 0 1 2; do
  "$bin" run --rank $r $common --resume &
done
wait
exec "$bin" verify $common
