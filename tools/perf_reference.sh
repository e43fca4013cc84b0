#!/usr/bin/env bash
# Issue 12's figures from ONE run on one machine (docs/PERFORMANCE.md, "Reference run"):
# the public STVG step against ours, bench of stvg and scl (both dtypes, FLOPs, GFLOP/s,
# efficiency), then per preset on the full-scale store: bench end to end, one training
# epoch and prediction over the validation split, each under /usr/bin/time -v.
#
#   tools/perf_reference.sh DATA OUT [PUBLIC]
#
# DATA: a dataset from `python -m workbench simulate --preset full --out DATA` (or any store);
# OUT: a new folder for the logs; PUBLIC (optional): a checkout of
# ppj567/WSVOG_Causal_Intervention for `python -m workbench bench-public`. As root, the page cache is
# dropped before each streamed measurement so that reads come from the disk.
set -u
DATA=${1:?usage: tools/perf_reference.sh DATA OUT [PUBLIC]}; OUT=${2:?usage: tools/perf_reference.sh DATA OUT [PUBLIC]}
PUBLIC=${3:-}
PY=${PYTHON:-python}
[ -e "$OUT" ] && { echo "perf_reference: $OUT exists; give a new folder" >&2; exit 2; }
[ -d "$DATA/store" ] || { echo "perf_reference: $DATA has no store/ folder (simulate --preset full writes one)" >&2; exit 2; }
mkdir -p "$OUT"
cold() { sync; if [ -w /proc/sys/vm/drop_caches ]; then echo 3 > /proc/sys/vm/drop_caches; fi; }
{ date -u +%FT%T; uptime; lscpu | grep -E "Model name|^CPU\(s\)|Thread|Flags"; $PY -c "import torch; print('torch', torch.__version__)";
  git rev-parse HEAD 2>/dev/null; } > "$OUT/machine.txt"
if [ -n "$PUBLIC" ]; then
  $PY -m workbench bench-public --public "$PUBLIC" --rounds 5 > "$OUT/public_compare.json" 2> "$OUT/public_compare.log"
fi
for P in stvg scl; do $PY -m workbench bench --preset $P --steps 10 --warmup 3 > "$OUT/bench_$P.json" 2> "$OUT/bench_$P.err"; done
for P in stvg scl; do
  cold; $PY -m workbench bench --preset $P --data "$DATA" --steps 8 --warmup 2 --e2e-steps 60 \
    > "$OUT/bench_data_$P.json" 2> "$OUT/bench_data_$P.err"
  cold; /usr/bin/time -v $PY -m workbench train --data "$DATA" --preset $P --out "$OUT/run_$P" --set epochs=1 \
    > "$OUT/train_$P.log" 2>&1
  /usr/bin/time -v $PY -m workbench predict --run "$OUT/run_$P" --split validation --out "$OUT/pred_val_$P.json" \
    > "$OUT/pred_$P.log" 2>&1
done
date -u +%FT%T > "$OUT/end.txt"
echo "perf_reference: wrote $OUT"
