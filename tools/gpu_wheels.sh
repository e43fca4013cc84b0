#!/usr/bin/env bash
# Fill the carry folder for the lent GPU machine (docs/GPU.md), here on a CPU machine with the registry:
#   wheels/   one wheel per package the check needs there and does not find there (python -m workbench.experiments.gpu_carry plan:
#             the versions installed in .venv), downloaded for the lent machine's Python (cp312, x86-64)
#   encoder/  MiniLM-L6 packed to fit a call (int8 layer weights, the word pieces YouCook2-BB uses)
#   MANIFEST.json   sha256 and size of every file; the list and the sizes are printed
# and check that the working tree plus the folder stay within what one call carries (64 MiB).
#
#   tools/gpu_wheels.sh [--dest .gpu_carry] [--python-version 3.12]
#   tools/gpu_wheels.sh --from-venv [--dest DIR]    wheels made from .venv's installed files for THIS Python
#                                                   (no network; the CPU dry run's carry folder)
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.gpu_carry
PYV=3.12
FROM_VENV=0
PY=${PY:-.venv/bin/python}
while [ $# -gt 0 ]; do
  case "$1" in
    --dest) DEST="$2"; shift ;;
    --python-version) PYV="$2"; shift ;;
    --from-venv) FROM_VENV=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "gpu_wheels: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
rm -rf "$DEST/wheels" "$DEST/encoder" "$DEST/MANIFEST.json"
mkdir -p "$DEST/wheels"
if [ $FROM_VENV -eq 1 ]; then
  "$PY" -m workbench.experiments.gpu_carry repack --dest "$DEST/wheels"
else
  "$PY" -m workbench.experiments.gpu_carry plan > "$DEST/plan.txt"
  # Each wheel for the lent machine's interpreter; pip matches manylinux_2_N exactly, hence the list.
  plats=()
  for p in manylinux1 manylinux2014 manylinux_2_5 manylinux_2_17 manylinux_2_24 manylinux_2_26 manylinux_2_27 \
           manylinux_2_28 manylinux_2_31 manylinux_2_34 manylinux_2_35; do plats+=(--platform "${p}_x86_64"); done
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYV" --implementation cp \
    "${plats[@]}" -d "$DEST/wheels" -r "$DEST/plan.txt"
  rm "$DEST/plan.txt"
fi
"$PY" -m workbench.experiments.gpu_carry pack-encoder --dest "$DEST/encoder"
"$PY" -m workbench.experiments.gpu_carry manifest --carry "$DEST"
if [ $FROM_VENV -eq 0 ]; then
  "$PY" -m workbench.experiments.gpu_carry travel --carry "$DEST"
fi
