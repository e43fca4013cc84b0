#!/usr/bin/env bash
# The prepared GPU check (docs/GPU.md). On a machine with CUDA:
#   1. installs (tools/bootstrap.sh) and checks that torch sees the GPU,
#   2. runs the main sweep's notebooks under papermill on the GPU (demo dataset, device=cuda),
#   3. runs `bench` on CUDA at the reference shape (B=48, T=5, N=20, D=4096) in bf16 and fp32,
#   4. trains one demo epoch with the training features resident on the GPU,
# and writes a JSON report (default work/gpu_check/report.json) with every step's status, time and output.
#
#   tools/gpu_check.sh [--out DIR] [--epochs N]     on the GPU machine
#   tools/gpu_check.sh --dry-run [--out DIR]        CPU, tiny shapes, no install, the sweep only
#                                                   planned: checks the script and its report (tests)
set -uo pipefail
cd "$(dirname "$0")/.."
DRY=0
OUT=work/gpu_check
EPOCHS=4
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --out) OUT="$2"; shift ;;
    --epochs) EPOCHS="$2"; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
STEPS="$OUT/steps.jsonl"
: > "$STEPS"

# step NAME COMMAND...: run it, keep its output in $OUT/NAME.log, record status and seconds.
step() {
  local name="$1"; shift
  local t0=$(date +%s.%N)
  echo "== $name: $*"
  "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  local t1=$(date +%s.%N)
  "$PY" - "$name" "$rc" "$t0" "$t1" "$OUT/$name.log" "$*" >> "$STEPS" <<'EOF'
import json, sys
name, rc, t0, t1, log, cmd = sys.argv[1:]
text = open(log, errors="replace").read()
rows = []
for line in text.splitlines():  # JSON lines the workbench commands print (bench, simulate, ...)
    line = line.strip()
    if line.startswith("{") and line.endswith("}"):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            pass
print(json.dumps({"step": name, "command": cmd, "rc": int(rc), "seconds": round(float(t1) - float(t0), 1),
                  "json": rows, "log_tail": text[-2000:]}))
EOF
  [ $rc -eq 0 ] || echo "   $name failed (rc=$rc), see $OUT/$name.log" >&2
  return 0
}

if [ $DRY -eq 1 ]; then
  PY=${PY:-$(command -v python3)}
  DEVICE=cpu
  DATA=${DATA:-$OUT/smoke}
  BENCH_SHAPE=(--batch 4 --frames 2 --proposals 5 --feature-dim 32 --steps 2 --warmup 1)
  TRAIN_SETS=(--set embed_dim=32 --set attn_heads=4 --set batch_size=8 --set max_eval_segments=5)
else
  step bootstrap bash tools/bootstrap.sh
  PY=.venv/bin/python
  DEVICE=cuda
  DATA=${DATA:-work/demo}
  BENCH_SHAPE=(--steps 20 --warmup 5)
  TRAIN_SETS=()
fi

step device "$PY" -c "
import json, platform, torch
ok = torch.cuda.is_available()
print(json.dumps({'torch': torch.__version__, 'cuda': torch.version.cuda, 'cuda_available': ok,
                  'device': torch.cuda.get_device_name(0) if ok else platform.processor(),
                  'bf16_supported': bool(ok and torch.cuda.is_bf16_supported())}))
raise SystemExit(0 if ok or '$DEVICE' == 'cpu' else 3)"

PRESET=$([ $DRY -eq 1 ] && echo smoke || echo demo)
step prepare "$PY" -c "from workbench.prepare import prepare; prepare('$DATA', preset='$PRESET', quiet=False)"

if [ $DRY -eq 1 ]; then
  # The sweep is planned only: its notebooks need minutes even on the smoke data.
  step sweep echo "{\"planned\": \"$PY -m workbench sweep --grid main --data $DATA --out $OUT/sweep --set device=cuda --set epochs=$EPOCHS\"}"
else
  step sweep "$PY" -m workbench sweep --grid main --data "$DATA" --out "$OUT/sweep" --set device=cuda --set epochs="$EPOCHS"
fi

BENCH_PRESETS=$([ $DRY -eq 1 ] && echo stvg || echo "stvg scl")
for preset in $BENCH_PRESETS; do
  for dtype in $([ $DRY -eq 1 ] && echo fp32 || echo "bf16 fp32"); do  # dry run: auto below times bf16 too
    step "bench_${preset}_${dtype}" "$PY" -m workbench bench --preset "$preset" --device "$DEVICE" --dtype "$dtype" "${BENCH_SHAPE[@]}"
  done
  step "bench_${preset}_auto" "$PY" -m workbench bench --preset "$preset" --device "$DEVICE" "${BENCH_SHAPE[@]}" \
    --data "$DATA"
done

step resident_epoch "$PY" -m workbench train --data "$DATA" --preset stvg --out "$OUT/resident_epoch" \
  --set device="$DEVICE" --set epochs=1 --set resident_features=true "${TRAIN_SETS[@]}"

"$PY" - "$OUT" "$DRY" <<'EOF'
import json, sys, time
from pathlib import Path
out, dry = Path(sys.argv[1]), sys.argv[2] == "1"
steps = [json.loads(l) for l in (out / "steps.jsonl").read_text().splitlines() if l.strip()]
report = {"dry_run": dry, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "steps": steps,
          "ok": all(s["rc"] == 0 for s in steps)}
dev = next((s["json"][-1] for s in steps if s["step"] == "device" and s["json"]), {})
report["device"] = dev
bench = {s["step"][6:]: s["json"][-1] for s in steps if s["step"].startswith("bench_") and s["json"]}
report["bench"] = bench
ref = bench.get("stvg_auto") or bench.get("stvg_bf16")
if ref and not dry:
    # A YouCook2-BB-size epoch (9,184 segments, D = 4096, features resident): steps x step time.
    report["yc2_epoch_seconds_estimate"] = round(9184 // 48 * ref["sec_per_step"], 2)
log = out / "resident_epoch" / "log.jsonl"
if log.is_file():
    report["resident_epoch"] = [json.loads(l) for l in log.read_text().splitlines() if l.strip()]
(out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
print(f"gpu_check: report {out / 'report.json'} ({'ok' if report['ok'] else 'FAILED steps: ' + ', '.join(s['step'] for s in steps if s['rc'])})")
sys.exit(0 if report["ok"] else 1)
EOF
