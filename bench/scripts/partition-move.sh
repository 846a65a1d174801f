#!/bin/bash
# Time to move a partition of ~200 MB from one node to another, unthrottled
# and at a 20 MiB/s throttle, while nothing else runs.
set -u
cd "$(dirname "$0")/../.."
B=target/release
D=/tmp/bmove
rm -rf $D; mkdir -p $D
$B/sluice cluster local --nodes 3 --cores 1 --data-dir $D/nodes --base-port 32092 > $D/cluster.log 2>&1 &
CL=$!
trap 'kill $CL; wait $CL' EXIT
sleep 10
N0=127.0.0.1:32093
for t in fast paced; do
  $B/sluice topic create $t --replica-assignment 0 --brokers $N0
  python3 -c "
import sys
line=('x'*1023+'\n').encode()
out=sys.stdout.buffer
for i in range(200_000): out.write(line)
" | $B/sluice produce $t -p 0 --acks leader --brokers $N0
done
du -sh $D/nodes/node-0/data/topics/* 2>/dev/null || du -sh $D/nodes/*/data/topics/* 
for pass in 1 2; do
  s=$(date +%s.%N); $B/sluice topic move fast -p 0 --to $((pass % 2 + 1)) --wait --brokers $N0 >/dev/null; e=$(date +%s.%N)
  echo "unthrottled move $pass: $(python3 -c "print(round($e-$s,2))") s"
done
s=$(date +%s.%N); $B/sluice topic move paced -p 0 --to 2 --throttle 20M --wait --brokers $N0 >/dev/null; e=$(date +%s.%N)
echo "20 MiB/s move: $(python3 -c "print(round($e-$s,2))") s"
