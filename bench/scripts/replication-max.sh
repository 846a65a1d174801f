#!/bin/bash
# RF 3 against RF 1 at the most records/s the harness reaches (or, with
# `half RF1_RATE RF3_RATE`, at those rates), alternated, three runs each;
# CPU seconds per node from /proc over each run. Run after
# `cargo build --release -p sluice -p sluice-bench`.
set -u
cd "$(dirname "$0")/../.."
B=target/release
D=/tmp/bm
rm -rf $D; mkdir -p $D
$B/sluice cluster local --nodes 3 --cores 1 --data-dir $D/nodes --base-port 31092 > $D/cluster.log 2>&1 &
CL=$!
trap 'kill $CL; wait $CL' EXIT
sleep 10
BROKERS=127.0.0.1:31092,127.0.0.1:31102,127.0.0.1:31112
mk() { # rf rate name
  sed -e "s/^rate = .*/rate = $2/" -e 's/^warm_up_s = .*/warm_up_s = 3/' -e 's/^duration_s = .*/duration_s = 15/' \
    bench/workloads/1-topic-1-partition-100b.toml > $D/$3.toml
  echo "replication_factor = $1" >> $D/$3.toml
  if [ "$1" = 3 ]; then echo 'topic_configs = { "min.insync.replicas" = "2" }' >> $D/$3.toml; fi
}
pids() { ps -eo pid,args | grep "[s]luice serve" | awk '{print $1}'; }
cpu() { for p in $(pids); do awk '{print $14+$15}' /proc/$p/stat; done | paste -sd' '; }
run() { # rf rate tag
  mk $1 $2 $3
  before=$(cpu)
  $B/sluice-bench run $D/$3.toml --driver kafka --brokers $BROKERS --out $D/$3.json > $D/$3.log 2>&1
  after=$(cpu)
  python3 - "$D/$3.json" "$before" "$after" "$3" <<'PY'
import json,sys
r=json.load(open(sys.argv[1]))
b=[int(x) for x in sys.argv[2].split()]; a=[int(x) for x in sys.argv[3].split()]
acked=sum(s["acknowledged"] for s in r["seconds"])
cpu=sorted(((y-x)/100.0 for x,y in zip(b,a)), reverse=True)
l=r["produce_ack_latency"]
print(sys.argv[4], "rec/s=%.0f"%r["produced"]["records_per_s"], "acked=%d"%acked,
  "p50=%.2f p99=%.2f p999=%.2f"%(l["p50_us"]/1000,l["p99_us"]/1000,l["p999_us"]/1000),
  "cpu_s=%s"%[round(c,2) for c in cpu],
  "cpu_us_per_record=%s"%[round(c*1e6/max(acked,1),2) for c in cpu], flush=True)
PY
}
if [ "${1:-}" = half ]; then
  for i in 1 2 3; do run 1 "$2" half-rf1-$i; run 3 "$3" half-rf3-$i; done
else
  for i in 1 2 3; do for rf in 1 3; do run $rf '"max"' max-rf$rf-$i; done; done
fi
