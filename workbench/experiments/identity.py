"""What a sweep's row must hold: the data's identity (the feature stores' digests), the config a row's run
is given, and one writer per sweep folder. Shared by grid sweeps (``sweep``) and world sweeps (``worlds``),
which import it; it imports neither. A finished run is checked against its row by
``report.runs.check_run_identity`` (the same check before a run is reused and before it is tabled)."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from ..datasets.yc2 import DatasetDir
from ..io import DataError
from ..paths import RUN_LOCK, SPLITS as STORE_SPLITS
from ..run import RunDir, RunLocked
from ..train import config_for


def store_digests(data: str | Path) -> dict[str, str]:
    """{split: index_sha256} of the feature stores of a dataset directory: the identity of the data a run
    records in its config.json (``stores``) and a sweep in sweep.json."""
    # h5py only where a store is opened
    import h5py


    ds, out = DatasetDir(Path(data)), {}
    for s in STORE_SPLITS:
        if ds.store(s).is_file():
            with h5py.File(ds.store(s), "r") as f:
                out[s] = str(f.attrs.get("index_sha256", ""))
    return out


def wanted_config(preset: str, data: str | Path, overrides: dict[str, Any], seed: int | None) -> dict | None:
    """The config (``Config.to_dict``) the training notebook gives ``preset`` in a sweep: what its row claims.
    None for a name that is no preset (its run fails and says why)."""
    over = dict(overrides) if seed is None else {**overrides, "seed": seed}
    try:
        return config_for(preset, **over, data=str(data)).to_dict()
    except DataError:
        return None


@contextlib.contextmanager
def folder_lock(folder: Path, what: str = "sweep"):
    """Hold ``folder`` for one writer (``fcntl.flock`` on FOLDER/.lock, as ``RunDir.lock`` holds a run
    folder): a second sweep into it fails at once naming the holder. The kernel drops it when the holder exits."""
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
