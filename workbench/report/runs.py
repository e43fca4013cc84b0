"""The run folders of a sweep as its results tables read them: where each run lies, whether it failed,
finished or is missing, whether a finished run is the one its row claims, and the name its row is shown under.
Grid sweeps (``report.grid``) and world sweeps (``report.curve``) read their runs here; the launchers
(``experiments.sweep``, ``experiments.world_sweep``) write the same layout and check finished runs with the same
``check_run_identity`` before they skip them.

SWEEP_DIR/<preset>/seed-<s>/params.json      the notebook parameters of that run
SWEEP_DIR/<preset>/seed-<s>/run/             the run directory (run/metrics.json when finished)
SWEEP_DIR/<preset>/seed-<s>/error.txt        why the run failed (absent when it succeeded)
SWEEP_DIR/<preset>/{params.json,run/}        a run of a sweep written before seeds existed
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..config import Config
from ..io import DataError, read_json
from ..paths import METRICS_FILE, RUN_CONFIG as CONFIG
from .results import display_name
from ..run import RESUMABLE, read_metrics

RUN = "run"                             # <unit>/run: the run directory
ERROR = "error.txt"                     # <unit>/error.txt: why the run failed
PARAMS = "params.json"                  # <unit>/params.json: the notebook parameters of the run


def unit_dir(sweep_dir: Path, preset: str, seed: int | None) -> Path:
    """The directory of one run of a sweep: <preset>/seed-<s> (<preset> for a seed-less legacy run)."""
    return sweep_dir / preset if seed is None else sweep_dir / preset / f"seed-{seed}"


def units(sweep_dir: Path, preset: str) -> list[tuple[int | None, Path]]:
    """(seed, directory) of every run of ``preset`` in a sweep directory, seeds ascending."""
    d = sweep_dir / preset
    found = []
    for u in d.glob("seed-*"):
        try:
            found.append((int(u.name[len("seed-"):]), u))
        except ValueError:
            continue
    if not found and ((d / PARAMS).is_file() or (d / ERROR).is_file() or (d / RUN).is_dir()):
        found = [(None, d)]                                          # a sweep written before --seeds
    return sorted(found, key=lambda x: -1 if x[0] is None else x[0])


def recorded_error(unit: str | Path) -> str | None:
    """The failure recorded in a sweep unit's ``error.txt``, or None when there is none or when the run's
    ``metrics.json`` is newer: a run that finished after a failed attempt was recorded (e.g. a job of an
    interrupted sweep that went on while a rerun found its run locked) is finished, not failed."""
    err, metrics = Path(unit) / ERROR, Path(unit) / RUN / METRICS_FILE
    try:
        text, t_err = err.read_text().strip(), err.stat().st_mtime
    except FileNotFoundError:
        return None
    try:
        if metrics.stat().st_mtime > t_err:
            return None
    except FileNotFoundError:
        pass
    return text


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
    over = dict(overrides)
    if seed is not None and not (isinstance(seed, float) and math.isnan(seed)):
        over["seed"] = int(seed)
    try:
        cfg = Config().replace(**over).to_dict()
    except (DataError, TypeError):
        return None
    return {k: cfg[k] for k in over}


def read_unit(d: Path, preset: str, seed: Any, overrides: dict | None, stores: dict | None = None,
              data: str | Path = "") -> tuple[str, str, dict | None]:
    """(status, error, metrics) of the run of one row: ("failed", its recorded error, None); ("ok", "", its
    metrics.json as ``run.read_metrics`` reads it) once ``check_run_identity`` found it the row's (preset, the
    sweep's ``overrides`` and the row's seed, ``stores``); else ("missing", "", None)."""
    error = recorded_error(d)
    if error is not None:
        return "failed", error, None
    if (d / RUN / METRICS_FILE).is_file():
        check_run_identity(d, preset, claimed_config(overrides or {}, seed), stores, None, data)
        return "ok", "", read_metrics(d / RUN / METRICS_FILE)
    return "missing", "", None


def run_label(preset: str, run: Path) -> str:
    """The name a run's row is shown under: ``stvg-bert [MiniLM-L6]`` for a run on cached contextual features
    (the encoder its config.json records as ``text_encoder``), else the preset (``display_name``)."""
    try:
        d = read_json(Path(run) / CONFIG)
        return display_name(preset, d.get("config"), d.get("text_encoder"))
    except (OSError, DataError, AttributeError):
        return preset
