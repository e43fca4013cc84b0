"""`--world v1` keeps writing the world of generator yc2-sim-1 byte for byte (old runs stay reproducible)."""
from __future__ import annotations

import hashlib
from pathlib import Path

from workbench.sim import simulate as sim

# sha256 over (relative path, bytes) of every file of `simulate(preset="smoke", seed=7)`, computed with the
# code of commit f16f460 (before world v2 existed).
V1_SMOKE_SEED7 = "de9ee1b2a3728e872dc732b79e8ed1639906ef7c3dd3c741e9315438236763f7"


def _tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def test_world_v1_reproduces_todays_bytes(tmp_path):
    out = sim.simulate(tmp_path / "v1", preset="smoke", seed=7, world="v1")
    assert _tree_hash(out) == V1_SMOKE_SEED7
