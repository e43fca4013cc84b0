"""SCL workbench: weakly-supervised video object grounding with Stable Context Learning.

The package holds all model and data code; notebooks and the CLI (``python -m workbench``)
only call it. See README.md for the two commands that run everything.
"""

import os as _os

# OpenMP threads that spin while waiting made CPU training steps up to 9x slower whenever
# another process shared the cores (measured: stvg step 1.82 s -> 0.21 s on 2 cores, see
# docs/DECISIONS.md). Passive waiting costs nothing measurable on an idle machine. Must be set
# before torch loads its OpenMP runtime; an explicit user setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
