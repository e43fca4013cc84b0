#!/usr/bin/env bash
# The context-effect curve (issue 9): one `curve`-preset world v2 per ρ in {0, 0.25, 0.5, 0.75, 0.9},
# seven presets x SEEDS seeds on each, the table and the figure under figures/context_curve/.
# Finished worlds and runs are skipped on re-run (resumable). Estimated time: see data/SIMULATOR.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA_ROOT=${DATA_ROOT:-work/curve_worlds}
SWEEP=${SWEEP:-work/curve_sweep}
SEEDS=${SEEDS:-3}
EPOCHS=${EPOCHS:-3}
LR=${LR:-8e-4}
WORLD=${WORLD:-curve}
JOBS=${JOBS:-2}                # runs at once (one thread each; 2 on a 2-core machine)
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
t0=$(date +%s)
$PY -m workbench sweep --grid context --data-root "$DATA_ROOT" --out "$SWEEP" --seeds "$SEEDS" \
  --world-preset "$WORLD" --set epochs="$EPOCHS" --set lr="$LR" --set threads=1 \
  --executor local --jobs "$JOBS" || echo "curve: some runs failed (see $SWEEP/results.md)"
mkdir -p figures/context_curve
cp "$SWEEP/results.csv" "$SWEEP/results.md" "$SWEEP/sweep.json" figures/context_curve/
$PY -m workbench figures --sweep "$SWEEP" --out figures/context_curve
echo "curve job: $(( $(date +%s) - t0 )) s"
