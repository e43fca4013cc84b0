"""``python -m workbench sweep``: run the training notebook with papermill once per preset and seed of
a grid, keep every output notebook and run directory, and tabulate the results beside the paper's numbers.
Runs execute inline, on this machine through submitit, or on a Slurm cluster (``workbench.experiments.executor``),
each process a persistent worker that runs unit after unit in one kept kernel (``workbench.experiments.worker``;
``--no-notebooks``: in the worker itself; ``--process-per-run``: a papermill process per run, as before workers).

SWEEP_DIR/sweep.json                         the grid, seeds, dataset (and its stores' digests), overrides and
                                             provenance of the sweep
SWEEP_DIR/.lock                              held (flock) by the one sweep writing the folder
SWEEP_DIR/<preset>/seed-<s>/params.json      the notebook parameters of that run (overrides carry the seed)
SWEEP_DIR/<preset>/seed-<s>/02_train.ipynb   papermill's output notebook (none with --no-notebooks)
SWEEP_DIR/<preset>/seed-<s>/papermill.log    papermill's log, the notebook's output among it
SWEEP_DIR/<preset>/seed-<s>/kernel.log       the kept kernel's own output (in the run that started it)
SWEEP_DIR/<preset>/seed-<s>/run/             the run directory (as `python -m workbench train` writes it)
SWEEP_DIR/<preset>/seed-<s>/error.txt        why the run failed, was cancelled or pre-empted (absent when it succeeded)
SWEEP_DIR/<preset>/seed-<s>/job.json         executor, job id and log folder (submitit executors)
SWEEP_DIR/<preset>/seed-<s>/claim            created by the local worker job that took the run
SWEEP_DIR/submitit/<job id>/                 submitit's job files and stdout / stderr logs (local / slurm)
SWEEP_DIR/results.csv                        one row per (preset, seed): four numbers per split, the paper's
SWEEP_DIR/results.md                         mean ± std per preset, seeds per row, paired Δ to stvg (95 % CI)
SWEEP_DIR/learning_curves.csv                val box micro per epoch of every run
(the tables: ``report.grid``, which reads the run folders through ``report.runs``)

Sweeps written before seeds existed (SWEEP_DIR/<preset>/{params.json,run/}) are still read.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd

from . import worker
from ..check import require_ready
from ..config import Config
from ..datasets.yc2 import holdout_classes
from .executor import ClusterOptions, EXECUTORS, JobSpec, Progress, make_executor, terminate_as_interrupt
from .identity import folder_lock, store_digests, wanted_config
from ..io import DataError, read_json, write_json, write_text
from ..paths import CLASS_FILE, DATASET_META, NOTEBOOKS
from ..prepare import fill_missing
from ..report.grid import write_results
from ..report.paper import TABLES
from ..report.runs import ERROR, PARAMS, RUN, check_run_identity, recorded_error, unit_dir
from ..run import git_info

NOTEBOOK = NOTEBOOKS / "02_train.ipynb"
GRIDS = {
    "main": [r.preset for r in TABLES["table1"].rows if r.preset],       # every implemented Table 1 row
    "ablations": [r.preset for r in TABLES["table3"].rows if r.preset],  # every Table 3 row (stvg: its baseline)
    # Table 2 on an ActivityNet-Entities directory (simulate --dataset anet); its format's defaults give the
    # paper's T = 6, batch 24, lr 8e-4 (formats/anet.py).
    "anet": [r.preset for r in TABLES["table2"].rows if r.preset],
    # Table 4's protocol on a world with held-out classes (simulate --holdout K): query micro on testing.
    "generalization": [r.preset for r in TABLES["table4"].rows if r.preset],
}
# Config values a grid sets for every run (before --set): Table 4's methods all query with GloVe words,
# so Extended DVSA / VOG embed object names (object_query=glove), which also reaches held-out classes.
GRID_SETS = {"generalization": {"object_query": "glove"}}
OUT_NB = "02_train.ipynb"
DEFAULT_SEEDS = 3                                               # seeds per preset of a sweep (--seeds)


def _dataset_name(data: Path) -> str:
    meta = data / DATASET_META
    if meta.is_file():
        d = read_json(meta)
        if isinstance(d, dict) and isinstance(d.get("dataset"), str):
            # a world with held-out classes answers Table 4 (generalization), not Table 1
            return d["dataset"] + ("-holdout" if d.get("holdout_classes") else "")
    return "youcook2-bb"


def run_params(preset: str, data: Path, sweep_dir: Path, overrides: dict[str, Any],
               seed: int | None = None) -> dict[str, Any]:
    """The 02_train parameters of one preset (and seed) of a sweep."""
    over = dict(overrides) if seed is None else {**overrides, "seed": seed}
    return {"data": str(data), "preset": preset, "out": str((unit_dir(sweep_dir, preset, seed) / RUN).resolve()),
            "overrides": over}


def _normal(params: dict) -> dict:
    """The identity of a run's parameters: preset and overrides typed as Config types ("2" and 2 are the
    same epochs). Paths are not identity: the run folder (``out``) moves with a moved sweep folder, and the
    data is identified by its stores' digests (``store_digests``), not by where it lies."""
    ident = {"preset": params.get("preset"), "overrides": params.get("overrides", {})}
    try:
        cfg = Config().replace(**ident["overrides"])
        return {**ident, "overrides": {k: getattr(cfg, k) for k in ident["overrides"]}}
    except (DataError, TypeError):
        return ident


def is_finished(d: Path, params: dict, stores: dict | None = None, recorded_stores: dict | None = None) -> bool:
    """True when ``d`` holds a finished run of exactly ``params``; DataError when it holds a finished run of
    another preset, config or data (``check_run_identity``; ``stores``: the dataset's digests now)."""
    done = (d / RUN / "metrics.json").is_file()
    if done:
        check_run_identity(d, params["preset"], wanted_config(params["preset"], params["data"],
                                                              params.get("overrides", {}), None),
                           stores, recorded_stores, params["data"])
    if not (d / PARAMS).is_file():
        return False
    old = read_json(d / PARAMS)
    if _normal(old) != _normal(params):
        if done:
            raise DataError(f"{d}: holds a finished run with other parameters ({_normal(old)}, not "
                            f"{_normal(params)}); use another --out, or the same --set as that run")
        return False
    return done and recorded_error(d) is None


def run_one(preset: str, data: Path, sweep_dir: Path, overrides: dict[str, Any], gpu: int | None = None,
            notebook: Path = NOTEBOOK, seed: int | None = None, runs: str = "process") -> dict[str, Any]:
    """Run ``preset`` with ``seed`` (skipped when finished) as ``runs`` says (``worker.RUNS``: the training notebook
    in this process's kept kernel, ``run_preset`` in this process, or a papermill process of its own); returns
    its status row."""
    d = unit_dir(sweep_dir, preset, seed)
    params = run_params(preset, data, sweep_dir, overrides, seed)
    if is_finished(d, params):
        return {"preset": preset, "seed": seed, "status": "ok", "skipped": True}
    d.mkdir(parents=True, exist_ok=True)
    (d / ERROR).unlink(missing_ok=True)
    write_json(d / PARAMS, params, indent=2)
    t0 = time.time()
    if runs == "kernel":
        err = worker.kept_kernel(gpu).execute(notebook, d / OUT_NB, params)
    elif runs == "inline":
        err = worker.run_inline(params, gpu)
    else:
        err = worker.run_process(notebook, d / OUT_NB, d / PARAMS, gpu)
    seconds = round(time.time() - t0, 1)
    if err is None and not (d / RUN / "metrics.json").is_file():
        err = f"finished without writing {d / RUN / 'metrics.json'}"
    if err is not None:
        write_text(d / ERROR, err + "\n")
        return {"preset": preset, "seed": seed, "status": "failed", "error": err, "seconds": seconds, "skipped": False}
    return {"preset": preset, "seed": seed, "status": "ok", "seconds": seconds, "skipped": False}


def sweep(presets: list[str], data: str | Path, out: str | Path, overrides: dict[str, Any] | None = None,
          jobs: int = 1, grid: str = "", notebook: Path = NOTEBOOK, log=print, seeds: int = 1,
          executor: str = "inline", options: ClusterOptions | None = None, progress_s: float = 2.0,
          runs: str = "kernel") -> pd.DataFrame:
    """Run ``presets`` through the training notebook into ``out``, each with ``seeds`` seeds (the
    overrides' seed, default 0, and the ones after it); a failure is recorded, not raised.

    ``executor`` (see ``workbench.experiments.executor``): inline (this process; with ``jobs`` > 1 and several GPUs,
    one worker per GPU at once), local (submitit, ``jobs`` worker processes taking runs until none is left) or
    slurm (submitit, one job array with ``options``). ``runs`` (``worker.RUNS``): kernel (each worker executes
    the notebook in one kept Jupyter kernel), inline (``run_preset`` in the worker, no notebook) or process
    (a papermill process per run, as before workers); results are the same. Finished runs are skipped, so
    re-running submits only what is missing (failed, cancelled or never run); a finished run is reused only when its preset, config and feature
    stores are what its row asks for (``check_run_identity``), else the sweep is refused before any run.
    One sweep writes a sweep folder at a time (``folder_lock``). While runs train, their epoch, step and
    loss are logged.
    """
    data, out = Path(data).resolve(), Path(out)
    if not (data / CLASS_FILE).is_file() and not (data / DATASET_META).is_file():
        raise DataError(f"{data}: not a dataset directory (no class_file.csv or dataset.json); run `simulate` / "
                        "`prepare` first")
    if executor not in EXECUTORS:
        raise DataError(f"executor {executor!r}: expected one of {EXECUTORS}")
    if runs not in worker.RUNS:
        raise DataError(f"sweep: runs {runs!r}: expected one of {worker.RUNS}")
    overrides = dict(overrides or {})
    if seeds < 1:
        raise DataError(f"sweep: seeds must be >= 1, got {seeds}")
    twice = sorted({p for p in presets if list(presets).count(p) > 1})
    if twice:
        raise DataError(f"sweep: presets {twice} named twice (one run directory per preset and seed); name each once")
    if "data" in overrides:
        raise DataError(f"sweep: overrides name 'data' ({overrides['data']}); the sweep's dataset is {data} (--data): "
                        "give it once")
    if grid == "generalization":                        # Table 4's protocol scores held-out classes

        if not holdout_classes(data):
            raise DataError(f"--grid generalization: {data} has no held-out classes (dataset.json "
                            "'holdout_classes'); Table 4's protocol needs a world simulated with `simulate --holdout K` "
                            "(or use --grid main for Table 1)")
    base = int(overrides.pop("seed", 0))
    seed_list = [base + i for i in range(seeds)]
    units = [(p, s) for p in presets for s in seed_list]
    for p, s in units:                                  # a finished run of other parameters: refuse up front
        is_finished(unit_dir(out, p, s), run_params(p, data, out, overrides, s))
    if "text_features" not in overrides:                # built once here, not by every job at the same time

        fill_missing(data, log=lambda m: log(f"sweep: {m}"))

    require_ready(data, overrides.get("text_features") or None, log=log, who="sweep")   # check-dataset's checks
    stores = store_digests(data)                        # the data's identity, compared with every finished run's
    with folder_lock(out):                              # one writer per sweep folder, for the whole sweep
        return _sweep_locked(presets, data, out, overrides, jobs, grid, notebook, log, seed_list, units, stores,
                             executor, options, progress_s, runs)


def _sweep_locked(presets, data, out, overrides, jobs, grid, notebook, log, seed_list, units, stores, executor,
                  options, progress_s, runs) -> pd.DataFrame:
    meta_path = out / "sweep.json"
    old = read_json(meta_path) if meta_path.is_file() else {}
    seconds = dict(old.get("seconds", {}))
    same = old.get("data") == str(data) or (bool(stores) and old.get("stores") == stores)
    recorded = old.get("stores") if same and isinstance(old.get("stores"), dict) else None
    meta = {"grid": grid, "data": str(data), "dataset": _dataset_name(data), "overrides": overrides,
            "seeds": sorted(set(old.get("seeds") or []) | set(seed_list)) if same else seed_list,
            "presets": list(dict.fromkeys([*old.get("presets", []), *presets])) if same
            else list(presets), "notebook": str(notebook), "git": git_info(), "seconds": seconds,
            "executor": executor, "runs": runs, "stores": stores}
    # Every finished run of the table, also of presets and seeds an earlier sweep into this folder ran: its
    # preset, config and stores must be what its row now claims (one table, one config, one dataset).
    for p in meta["presets"]:
        for s in meta["seeds"]:
            d = unit_dir(out, p, s)
            if (p, s) in units:
                is_finished(d, run_params(p, data, out, overrides, s), stores, recorded)
            elif (d / RUN / "metrics.json").is_file():
                check_run_identity(d, p, wanted_config(p, data, overrides, s), stores, recorded, data)
    write_json(meta_path, meta, indent=2)
    lock = threading.Lock()

    def record(row: dict) -> None:
        with lock:
            key = f"{row['preset']}/seed-{row['seed']}"
            if not row.get("skipped"):
                seconds[key] = row.get("seconds")
                write_json(meta_path, meta, indent=2)
                if row["status"] != "ok":               # also a job that died before its notebook could say why
                    d = unit_dir(out, row["preset"], row["seed"])
                    d.mkdir(parents=True, exist_ok=True)
                    write_text(d / ERROR, row.get("error", "") + "\n")
            what = "skipped (finished)" if row.get("skipped") else f"{row['status']} in {row.get('seconds')} s"
            log(f"sweep: {key}: {what}" + (f": {row['error']}" if row.get("error") else ""))

    specs = []
    for p, s in units:
        if is_finished(unit_dir(out, p, s), run_params(p, data, out, overrides, s), stores, recorded):
            record({"preset": p, "seed": s, "status": "ok", "skipped": True})
        else:
            specs.append(JobSpec(f"{p}/seed-{s}", str(unit_dir(out, p, s)), run_one,
                                 dict(preset=p, data=data, sweep_dir=out, overrides=overrides, notebook=notebook,
                                      seed=s, runs=runs)))
    if options is not None and "device" in overrides:     # Slurm asks for a GPU per run when it trains on CUDA
        options = dataclasses.replace(options, device=str(overrides["device"]))
    # runs in this process (inline) share its torch threads and global RNG: one at a time
    runner = make_executor(executor, out / "submitit", jobs, options, log, threads=runs != "inline")
    unit_of = {f"{p}/seed-{s}": (p, s) for p, s in units}
    with Progress({sp.name: Path(sp.dir) / RUN for sp in specs}, log, progress_s) as progress:
        def done(spec: JobSpec, row: dict) -> None:
            progress.finished(spec.name)
            p, s = unit_of[spec.name]
            record({**row, "preset": p, "seed": s})

        with terminate_as_interrupt():                  # SIGTERM / SIGHUP: cancel what runs, as Ctrl-C does
            runner.run(specs, done)
    return write_results(out, meta["presets"])
