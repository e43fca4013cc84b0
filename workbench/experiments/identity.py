"""What a sweep's row must hold: the identity of a finished run (preset, config, feature stores) checked
before it is reused or tabled, and one writer per sweep folder. Shared by grid sweeps (``sweep``) and world
sweeps (``curve``), which import it; it imports neither."""
from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

from .executor import RUN
from ..io import DataError, read_json
from ..paths import RUN_CONFIG as CONFIG
from ..run import RESUMABLE


def store_digests(data: str | Path) -> dict[str, str]:
    """{split: index_sha256} of the feature stores of a dataset directory: the identity of the data a run
    records in its config.json (``stores``) and a sweep in sweep.json."""
    import h5py

    from ..datasets.yc2 import DatasetDir
    from ..paths import SPLITS as STORE_SPLITS

    ds, out = DatasetDir(Path(data)), {}
    for s in STORE_SPLITS:
        if ds.store(s).is_file():
            with h5py.File(ds.store(s), "r") as f:
                out[s] = str(f.attrs.get("index_sha256", ""))
    return out


def wanted_config(preset: str, data: str | Path, overrides: dict[str, Any], seed: int | None) -> dict | None:
    """The config (``Config.to_dict``) the training notebook gives ``preset`` in a sweep: what its row claims.
    None for a name that is no preset (its run fails and says why)."""
    from ..train import config_for

    over = dict(overrides) if seed is None else {**overrides, "seed": seed}
    try:
        return config_for(preset, **over, data=str(data)).to_dict()
    except DataError:
        return None


def check_run_identity(d: Path, preset: str, want: dict | None, stores: dict | None = None,
                       recorded_stores: dict | None = None, data: str | Path = "") -> None:
    """Refuse the finished run of the unit folder ``d`` where it is not what its row says: its config.json
    names another preset, records another config than ``want`` (keys of ``want`` only; the data path and
    ``run.RESUMABLE`` keys aside) or was computed on other feature stores than ``stores`` (the run's own record; for a run that
    records none, e.g. the baseline rows, ``recorded_stores``: the digests the sweep recorded). No config.json
    (a run of a version before it, a hand-made table): nothing to compare."""
    run = d / RUN
    path = run / CONFIG
    if not path.is_file():
        return
    raw = read_json(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("config"), dict):
        raise DataError(f"{path}: expected {{'preset', 'config', ...}} (a run's config.json)")
    if raw.get("preset") != preset:
        raise DataError(f"{run}: holds a finished run of preset {raw.get('preset')!r}, but its folder is the row "
                        f"{preset!r} ({d.name} of {preset}); a run folder copied or moved in? Move it out (or back)")
    if want:
        from ..config import Config
        aside = {"data", *RESUMABLE}         # and the dataset's path: its identity is the stores' digests
        have = Config.from_dict(raw["config"], where=str(path)).to_dict()
        diff = {k: (have.get(k), v) for k, v in want.items() if k not in aside and have.get(k) != v}
        if diff:
            raise DataError(f"{run}: holds a finished run with other parameters than this sweep asks for ("
                            + ", ".join(f"{k}={a!r} there, {b!r} now" for k, (a, b) in sorted(diff.items()))
                            + "); one table holds one config: use a new --out for the new settings, or the same "
                            "--set as the finished runs to extend this sweep")
    rec = raw.get("stores") if isinstance(raw.get("stores"), dict) else recorded_stores
    if stores is not None and isinstance(rec, dict):
        changed = sorted(s for s in set(rec) | set(stores) if rec.get(s) != stores.get(s))
        if changed:
            raise DataError(f"{run}: was computed on other feature stores ({changed}) than the dataset {data} holds "
                            "now (its index_sha256 differ: the dataset was re-simulated or rebuilt since); its numbers "
                            "are not of this data: use a new --out, or restore the dataset the runs were made on")


def claimed_config(overrides: dict[str, Any], seed: Any) -> dict | None:
    """What a results table says of each run's config: the sweep's overrides (typed) and the row's seed; None
    when sweep.json's overrides are no longer a Config's (a key since renamed): nothing to compare."""
    from ..config import Config

    over = dict(overrides)
    if seed is not None and not (isinstance(seed, float) and math.isnan(seed)):
        over["seed"] = int(seed)
    try:
        cfg = Config().replace(**over).to_dict()
    except (DataError, TypeError):
        return None
    return {k: cfg[k] for k in over}


@contextlib.contextmanager
def folder_lock(folder: Path, what: str = "sweep"):
    """Hold ``folder`` for one writer (``fcntl.flock`` on FOLDER/.lock, as ``RunDir.lock`` holds a run
    folder): a second sweep into it fails at once naming the holder. The kernel drops it when the holder exits."""
    from ..paths import RUN_LOCK
    from ..run import RunDir, RunLocked

    stack = contextlib.ExitStack()
    try:
        stack.enter_context(RunDir(folder).lock())
    except RunLocked:
        try:
            holder = json.loads((folder / RUN_LOCK).read_text() or "{}")
        except (OSError, ValueError):
            holder = {}
        raise DataError(f"{folder}: in use by another {what} (pid {holder.get('pid', '?')} on host "
                        f"{holder.get('host', '?')}, started {holder.get('started', '?')}); one {what} writes a "
                        f"{what} folder at a time: wait for it to finish or choose another --out") from None
    with stack:
        yield
