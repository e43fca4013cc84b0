"""A run directory: its config, provenance, checkpoints and logs (shared by train, predict,
the notebooks and sweeps)."""
from __future__ import annotations

import json
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .config import Config
from .io import DataError, atomic_path, read_json, write_json

from .paths import CHECKPOINT_BEST as BEST, CHECKPOINT_LAST as LAST  # noqa: F401  (names of RunDir files)
from .paths import METRICS_FILE, REPO, RUN_CONFIG as CONFIG, RUN_LOG as LOG  # noqa: F401


def git_info(cwd: str | Path | None = None) -> dict[str, Any]:
    """Commit sha and whether the work tree is dirty (None outside a git checkout)."""
    cwd = cwd or REPO
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return {"sha": None, "dirty": None}
        st = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True,
                            text=True, timeout=10)
        return {"sha": sha.stdout.strip(), "dirty": bool(st.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"sha": None, "dirty": None}


def provenance() -> dict[str, Any]:
    import h5py
    import numpy
    import transformers

    return {"git": git_info(), "workbench": __version__, "python": platform.python_version(),
            "torch": torch.__version__, "numpy": numpy.__version__, "h5py": h5py.__version__,
            "transformers": transformers.__version__, "host": platform.node(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}


@dataclass
class RunDir:
    path: Path

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def file(self, name: str) -> Path:
        return self.path / name

    def read_config(self) -> tuple[str, Config]:
        raw = read_json(self.file(CONFIG))
        if not isinstance(raw, dict) or "config" not in raw:
            raise DataError(f"{self.file(CONFIG)}: expected {{'preset', 'config', ...}}")
        return raw.get("preset", ""), Config.from_dict(raw["config"], where=str(self.file(CONFIG)))

    def write_config(self, preset: str, cfg: Config, extra: dict | None = None) -> None:
        write_json(self.file(CONFIG), {"preset": preset, "config": cfg.to_dict(), "provenance": provenance(),
                                       **(extra or {})}, indent=2)

    def read_log(self) -> list[dict]:
        p = self.file(LOG)
        if not p.is_file():
            return []
        rows = []
        for n, line in enumerate(p.read_text().splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    raise DataError(f"{p}:{n}: not a JSON line") from None
        return rows

    def write_log(self, rows: list[dict]) -> None:
        """Rewrite the whole log atomically (a resumed run drops epochs after its checkpoint)."""
        with atomic_path(self.file(LOG)) as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def save_checkpoint(self, name: str, state: dict) -> None:
        with atomic_path(self.file(name), suffix=".pt") as tmp:
            torch.save(state, tmp)

    def load_checkpoint(self, name: str, map_location="cpu") -> dict | None:
        p = self.file(name)
        if not p.is_file():
            return None
        return torch.load(p, map_location=map_location, weights_only=True)
