"""A run directory: its config, provenance, checkpoints and logs (shared by train, predict,
the notebooks and sweeps)."""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import pickle
import platform
import socket
import subprocess
import sys
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
from .evaluate import METRICS as METRIC_NAMES

SPLITS = ("validation", "testing")


class RunLocked(DataError):
    """Another process holds the run directory."""


def read_metrics(path: str | Path, expected: dict | None = None) -> dict:
    """Read a run's metrics.json and check its shape: each split an object whose accuracies are
    numbers in [0, 100] or null, and at least one split with a number (``{}`` is no finished run).
    DataError naming the file and key otherwise. The one reader of metrics files (train, predict, grid
    sweeps, world sweeps, figures).

    Provenance: metrics.json records the identity of the run it was computed from (``run_identity``). It must
    match ``expected`` (a run identity) when given, else the config.json beside it (a hand-edited config
    would label the numbers with values they were not computed under). Metrics written before identities
    were recorded are read unchecked."""
    m = read_json(path)
    if not isinstance(m, dict):
        raise DataError(f"{path}: expected a JSON object with 'validation' / 'testing' metrics, got {type(m).__name__}")
    _check_metrics_identity(Path(path), m.get("identity"), expected)
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


def _check_metrics_identity(path: Path, got: Any, expected: dict | None) -> None:
    if got is None:
        return                                       # written before identities were recorded
    if not isinstance(got, dict) or not isinstance(got.get("run"), str) or not isinstance(got.get("config_digest"), str):
        raise DataError(f"{path}: 'identity' must be an object {{run, config_digest}} (the run the metrics were "
                        f"computed from), got {got!r}")
    if expected is not None:
        if expected.get("run") != got["run"]:
            raise DataError(f"{path}: computed by another run (run identity {got['run'][:12]}), not by this run "
                            f"({str(expected.get('run'))[:12]}); rerun it into a new --out")
        return
    cfg_file = path.parent / CONFIG
    if not cfg_file.is_file():
        return
    raw = read_json(cfg_file)
    if not isinstance(raw, dict) or not isinstance(raw.get("config"), dict):
        return                                       # config.json's own reader names that fault
    here = config_digest(Config.from_dict(raw["config"], where=str(cfg_file)))
    if here != got["config_digest"]:
        rec = raw.get("identity", {}).get("config") if isinstance(raw.get("identity"), dict) else None
        diff = (f" ({describe_difference({'config': rec}, {'config': config_identity(Config.from_dict(raw['config']))})})"
                if isinstance(rec, dict) else "")
        raise DataError(f"{path}: computed under another config than {cfg_file} holds now (config digest "
                        f"{got['config_digest'][:12]} there, {here[:12]} in config.json{diff}); config.json was edited "
                        "after the run: restore it, or rerun into a new --out")


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


def package_version(name: str) -> str | None:
    """An installed package's version from its metadata, without importing it (importing ``transformers`` for
    its version string cost each run ~0.5 s of CPU); None when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def provenance() -> dict[str, Any]:
    return {"git": git_info(), "workbench": __version__, "python": platform.python_version(),
            "torch": torch.__version__, "numpy": package_version("numpy"), "h5py": package_version("h5py"),
            "transformers": package_version("transformers"), "host": platform.node(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}


# --- the run's identity (issue 24: every number knows where it came from) ----------------------------
# A run is identified by what its numbers depend on, never by paths: its config (less the paths and the
# settings that do not change results), the index digests of the feature stores it read (they cover every
# frame's feature and box bytes through their checksums) and the text cache's inputs hash (segments,
# sentences, objects, encoder revision, GloVe source and fingerprint, OOV policies, bf16). Checkpoints and
# metrics.json record it; resume, skip-as-finished, predict and read_metrics compare it.
RESUMABLE = {"device", "threads", "resident_features", "prefetch"}   # settings a run may change and resume: results do not depend on them
NOT_IDENTITY = {"data", "text_features", *RESUMABLE}    # and the paths: data is identified by its digests


def config_identity(cfg: Config) -> dict[str, Any]:
    """The config values a run's numbers depend on (no paths, no device / thread settings)."""
    return {k: v for k, v in cfg.to_dict().items() if k not in NOT_IDENTITY}


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def config_digest(cfg: Config) -> str:
    return _digest(config_identity(cfg))


def text_cache_identity(text) -> dict[str, Any]:
    """What identifies a text cache (``TextFeatures``): its inputs hash, with the GloVe source and encoder named."""
    a = text.attrs
    return {"inputs_hash": str(a.get("inputs_hash", "")), "glove_source": str(a.get("glove_source", "")),
            "encoder": str(a.get("encoder", "")), "encoder_revision": str(a.get("encoder_revision", ""))}


def text_cache_name(t: dict) -> str:
    """A text cache identity in words (for messages naming two caches)."""
    return (f"encoder {t.get('encoder')} {str(t.get('encoder_revision'))[:12]}, GloVe {t.get('glove_source')}, "
            f"inputs hash {str(t.get('inputs_hash'))[:12]}")


def store_digests(stores: dict) -> dict[str, str]:
    """{split: index_sha256} of a workspace's feature stores."""
    return {s: str(st.attrs.get("index_sha256", "")) for s, st in stores.items()}


def run_identity(cfg: Config, stores: dict[str, str], text: dict[str, Any]) -> dict[str, Any]:
    """{"run": digest, "config": the config identity, "config_digest", "stores", "text_cache"} of a run."""
    body = {"config": config_identity(cfg), "stores": dict(stores), "text_cache": str(text.get("inputs_hash", ""))}
    return {"run": _digest(body), "config_digest": _digest(body["config"]), **body}


def describe_difference(there: dict, here: dict) -> str:
    """The parts of two run identities that differ, e.g. ``config epochs: 2 there, 1 here``."""
    out = []
    a, b = there.get("config") or {}, here.get("config") or {}
    out += [f"config {k}: {a.get(k)!r} there, {b.get(k)!r} here" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    a, b = there.get("stores") or {}, here.get("stores") or {}
    out += [f"store {s}: {str(a.get(s))[:12]} there, {str(b.get(s))[:12]} here"
            for s in sorted(set(a) | set(b)) if a.get(s) != b.get(s)]
    if there.get("text_cache") != here.get("text_cache"):
        out.append(f"text cache: {str(there.get('text_cache'))[:12]} there, {str(here.get('text_cache'))[:12]} here")
    return "; ".join(out[:6]) or f"run {str(there.get('run'))[:12]} there, {str(here.get('run'))[:12]} here"


def check_checkpoint_identity(path: Path, ck: dict, want: dict, what: str = "this run") -> None:
    """A checkpoint belongs to the run whose identity it records; one of another run is refused, naming
    both. A checkpoint written before identities were recorded is accepted with a note."""
    got = ck.get("identity") if isinstance(ck, dict) else None
    if not isinstance(got, dict) or "run" not in got:
        note(f"{path}: records no run identity (written before identities were recorded); not checked")
        return
    if got["run"] != want["run"]:
        raise DataError(f"{path}: belongs to another run (run identity {str(got['run'])[:12]}), not {what} "
                        f"({want['run'][:12]}): {describe_difference(got, want)}; a checkpoint copied from another run, "
                        f"or {CONFIG} / the data changed since it was written: restore them, or use a new --out")


def note(msg: str) -> None:
    """A one-line note on stderr (stdout may carry a command's JSON)."""
    print(f"note: {msg}", file=sys.stderr)


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
