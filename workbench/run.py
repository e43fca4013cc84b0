"""A run directory: its config, provenance, checkpoints and logs (shared by train, predict,
the notebooks and sweeps)."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pickle
import platform
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .config import Config
from .io import DataError, atomic_path, is_percentage, read_json, read_jsonl, write_json

from .paths import CHECKPOINT_BEST as BEST, CHECKPOINT_LAST as LAST  # noqa: F401  (names of RunDir files)
from .paths import METRICS_FILE, REPO, RUN_CONFIG as CONFIG, RUN_LOG as LOG  # noqa: F401
from .paths import RUN_LOCK as LOCK
from .paths import RUN_PROGRESS as PROGRESS  # noqa: F401

SPLITS = ("validation", "testing")


class RunLocked(DataError):
    """Another process holds the run directory."""


def read_metrics(path: str | Path) -> dict:
    """Read a run's metrics.json and check its shape: each split an object whose accuracies are
    numbers in [0, 100] or null, and at least one split with a number (``{}`` is no finished run).
    DataError naming the file and key otherwise. The one reader of metrics files (train, predict, grid
    sweeps, world sweeps, figures)."""
    from .evaluate import METRICS as METRIC_NAMES  # local: evaluate is heavier than a run directory

    m = read_json(path)
    if not isinstance(m, dict):
        raise DataError(f"{path}: expected a JSON object with 'validation' / 'testing' metrics, got {type(m).__name__}")
    held = m.get("heldout")                      # held-out-class-only metrics (generalization protocol)
    if held is not None and not isinstance(held, dict):
        raise DataError(f"{path}: 'heldout' must be an object {{classes, validation, testing}}, got {held!r}")
    for prefix, block in (("", m), ("heldout.", held or {})):
        for split in SPLITS:
            if split not in block:
                continue
            v = block[split]
            if not isinstance(v, dict):
                raise DataError(f"{path}: '{prefix}{split}' must be an object of metrics, got {v!r}")
            for k in METRIC_NAMES:
                x = v.get(k)
                if not (x is None or is_percentage(x)):
                    raise DataError(f"{path}: '{prefix}{split}.{k}' must be a percentage in [0, 100] or null, "
                                    f"got {x!r}")
    if not any(isinstance(m.get(s), dict) and any(m[s].get(k) is not None for k in METRIC_NAMES) for s in SPLITS):
        raise DataError(f"{path}: holds no accuracy of 'validation' or 'testing' (expected e.g. "
                        "{'validation': {'box_micro': ...}}); not the metrics of a finished run")
    return m


def read_log(run_dir: str | Path) -> list[dict]:
    """A run's log.jsonl (one object per epoch with an integer ``epoch``; [] when absent); a bad line
    raises DataError naming the file and the line. The one reader of run logs (train, sweeps, figures)."""
    p = Path(run_dir) / LOG
    rows = read_jsonl(p)
    for n, r in enumerate(rows, 1):
        if not isinstance(r, dict) or not isinstance(r.get("epoch"), int) or isinstance(r.get("epoch"), bool):
            raise DataError(f"{p}: entry {n} is not an epoch record (expected an object with an integer 'epoch')")
    return rows


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
        return read_log(self.path)

    def write_log(self, rows: list[dict]) -> None:
        """Rewrite the whole log atomically (a resumed run drops epochs after its checkpoint)."""
        with atomic_path(self.file(LOG)) as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def save_checkpoint(self, name: str, state: dict) -> None:
        with atomic_path(self.file(name), suffix=".pt") as tmp:
            torch.save(state, tmp)

    def load_checkpoint(self, name: str, map_location="cpu", required: tuple[str, ...] = ("model", "epoch")
                        ) -> dict | None:
        """A checkpoint of the run (None if absent). Only tensors and plain containers are loaded
        (``weights_only=True``); a truncated, corrupt or hostile file is a DataError naming it."""
        p = self.file(name)
        if not p.is_file():
            return None
        try:
            ck = torch.load(p, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as e:
            lines = [ln.strip() for ln in str(e).splitlines() if "GLOBAL" in ln or "global" in ln.lower()]
            what = lines[0].rstrip(".") if lines else type(e).__name__
            raise DataError(f"{p}: refused to load the checkpoint: it holds Python objects that are not tensors or "
                            f"plain containers ({what.strip()[:200]}); it was not written by the workbench. "
                            "Remove it (training restarts from scratch) or use another --out") from None
        except (RuntimeError, OSError, EOFError, ValueError, KeyError) as e:
            raise DataError(f"{p}: not a readable checkpoint ({type(e).__name__}); the file is truncated or "
                            f"corrupt ({p.stat().st_size} bytes). Remove it to retrain") from None
        missing = [k for k in required if not isinstance(ck, dict) or k not in ck]
        if missing:
            raise DataError(f"{p}: checkpoint lacks {missing}; not a workbench checkpoint")
        return ck

    @contextlib.contextmanager
    def lock(self):
        """Hold the run directory exclusively (``fcntl.flock`` on DIR/.lock) for the block.

        A second process fails at once with RunLocked naming the holder (pid, host, start time).
        The kernel drops the lock when the holder exits, even after SIGKILL."""
        self.path.mkdir(parents=True, exist_ok=True)
        p = self.file(LOCK)
        fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
            except (ValueError, OSError):
                holder = {}
            os.close(fd)
            raise RunLocked(f"{self.path}: in use by another run (pid {holder.get('pid', '?')} on host "
                            f"{holder.get('host', '?')}, started {holder.get('started', '?')}); wait for it to "
                            "finish or choose another --out") from None
        try:
            info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                               "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, info, 0)
            yield
        finally:
            try:
                os.ftruncate(fd, 0)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
