#!/usr/bin/env bash
# The GPU check on the machine as lent (docs/GPU.md): its preinstalled python3 and torch, no install, no
# network. Lays out the carry folder (tools/gpu_wheels.sh filled it here; the call carries it) as a
# PYTHONPATH folder and runs `python -m workbench gpu-check`: bench bf16/fp32 at the reference shape, one
# resident epoch at YouCook2-BB size, the research-size step as a CUDA graph, the main sweep's notebooks
# under papermill on CUDA on the demo world built there; one JSON report, OUT/report.json, in < 8 minutes.
#
#   tools/gpu_check.sh [--out DIR] [--carry .gpu_carry] [-- gpu-check options]     on the GPU machine
#   tools/gpu_check.sh --dry-run [--out DIR] [--carry DIR]    here, on the CPU: the same path through a
#       stand-in of the lent machine's Python (only its preinstalled packages, as .venv has them), wheels
#       from a carry folder made from .venv (unless --carry), tiny sizes, the smoke world (the tests' run)
set -uo pipefail
cd "$(dirname "$0")/.."
export GPU_CHECK_T0=${GPU_CHECK_T0:-$(date +%s.%N)}
DRY=0
OUT=work/gpu_check
CARRY=
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --out) OUT="$2"; shift ;;
    --carry) CARRY="$2"; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if [ $DRY -eq 1 ]; then
  if [ -z "$CARRY" ]; then
    CARRY=$OUT/carry
    bash tools/gpu_wheels.sh --from-venv --dest "$CARRY" > "$OUT/carry.log" 2>&1 || { cat "$OUT/carry.log" >&2; exit 1; }
  fi
  .venv/bin/python -m workbench.experiments.gpu_carry standin --dest "$OUT/standin" > "$OUT/standin.log" 2>&1 \
    || { cat "$OUT/standin.log" >&2; exit 1; }
  PY=$OUT/standin/venv/bin/python
  EXTRA+=(--dry-run)
else
  CARRY=${CARRY:-.gpu_carry}
  PY=${PY:-python3}
fi
SITE=$OUT/site
"$PY" -m workbench.experiments.gpu_carry unpack --carry "$CARRY" --site "$SITE" || exit 1
export PYTHONPATH="$PWD:$SITE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
"$PY" -m workbench gpu-check --out "$OUT" "${EXTRA[@]}" 2>&1 | tee "$OUT/check.log"
exit "${PIPESTATUS[0]}"
