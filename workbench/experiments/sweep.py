"""``python -m workbench sweep``: run the training notebook with papermill once per preset and seed of
a grid, keep every output notebook and run directory, and tabulate the results beside the paper's numbers.
Runs execute inline, on this machine through submitit, or on a Slurm cluster (``workbench.experiments.executor``).

SWEEP_DIR/sweep.json                         the grid, seeds, dataset (and its stores' digests), overrides and
                                             provenance of the sweep
SWEEP_DIR/.lock                              held (flock) by the one sweep writing the folder
SWEEP_DIR/<preset>/seed-<s>/params.json      the notebook parameters of that run (overrides carry the seed)
SWEEP_DIR/<preset>/seed-<s>/02_train.ipynb   papermill's output notebook
SWEEP_DIR/<preset>/seed-<s>/run/             the run directory (as `python -m workbench train` writes it)
SWEEP_DIR/<preset>/seed-<s>/error.txt        why the run failed, was cancelled or pre-empted (absent when it succeeded)
SWEEP_DIR/<preset>/seed-<s>/job.json         executor, job id and log folder (submitit executors)
SWEEP_DIR/submitit/<job id>/                 submitit's job files and stdout / stderr logs (local / slurm)
SWEEP_DIR/results.csv                        one row per (preset, seed): four numbers per split, the paper's
SWEEP_DIR/results.md                         mean ± std per preset, seeds per row, paired Δ to stvg (95 % CI)
SWEEP_DIR/learning_curves.csv                val box micro per epoch of every run

Sweeps written before seeds existed (SWEEP_DIR/<preset>/{params.json,run/}) are still read.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import parse_sets
from .executor import ERROR, EXECUTORS, RUN, ClusterOptions, JobSpec, Progress, make_executor, recorded_error, terminate_as_interrupt
from ..io import DataError, atomic_path, read_json, write_json, write_text
from ..evaluate import HELDOUT, METRICS
from ..report.paper import GRID_TABLES, SPLITS, TABLES, paper_numbers
from ..report.results import HELDOUT_METRICS
from .identity import check_run_identity, claimed_config, folder_lock, store_digests, wanted_config
from ..paths import CLASS_FILE, DATASET_META, NOTEBOOKS, REPO

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
PARAMS, OUT_NB = "params.json", "02_train.ipynb"
DEFAULT_SEEDS = 3                                               # seeds per preset of a sweep (--seeds)


def unit_dir(sweep_dir: Path, preset: str, seed: int | None) -> Path:
    """The directory of one run of a sweep: <preset>/seed-<s> (<preset> for a seed-less legacy run)."""
    return sweep_dir / preset if seed is None else sweep_dir / preset / f"seed-{seed}"


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
    from ..config import Config

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


def _error_of(nb_path: Path, log: str) -> str:
    """The first error a papermill output notebook recorded, else the tail of the papermill log."""
    try:
        nb = json.loads(nb_path.read_text())
        for cell in nb.get("cells", []):
            for o in cell.get("outputs", []):
                if o.get("output_type") == "error":
                    return f"{o.get('ename')}: {o.get('evalue')}"
    except (OSError, json.JSONDecodeError):
        pass
    lines = [ln for ln in log.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-3:]) if lines else "papermill failed without output"


def run_one(preset: str, data: Path, sweep_dir: Path, overrides: dict[str, Any], gpu: int | None = None,
            notebook: Path = NOTEBOOK, seed: int | None = None) -> dict[str, Any]:
    """Execute the training notebook for ``preset`` and ``seed`` (skipped when finished); returns its status row."""
    d = unit_dir(sweep_dir, preset, seed)
    params = run_params(preset, data, sweep_dir, overrides, seed)
    if is_finished(d, params):
        return {"preset": preset, "seed": seed, "status": "ok", "skipped": True}
    d.mkdir(parents=True, exist_ok=True)
    (d / ERROR).unlink(missing_ok=True)
    write_json(d / PARAMS, params, indent=2)
    env = dict(os.environ, PYTHONUNBUFFERED="1", WORKBENCH_INTERACTIVE="0")
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    cmd = [sys.executable, "-m", "papermill", str(notebook), str(d / OUT_NB), "-f", str(d / PARAMS),
           "-k", "python3", "--cwd", str(REPO), "--no-progress-bar", "--log-output"]
    t0 = time.time()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = round(time.time() - t0, 1)
    write_text(d / "papermill.log", proc.stdout + proc.stderr)
    if proc.returncode != 0 or not (d / RUN / "metrics.json").is_file():
        err = _error_of(d / OUT_NB, proc.stdout + proc.stderr)
        write_text(d / ERROR, err + "\n")
        return {"preset": preset, "seed": seed, "status": "failed", "error": err, "seconds": seconds, "skipped": False}
    return {"preset": preset, "seed": seed, "status": "ok", "seconds": seconds, "skipped": False}


def encoder_label(run_dir: str | Path) -> str:
    """The contextual encoder a run was trained with, as tables name it ("MiniLM-L6"), or "" when the
    run uses no contextual LM features (GloVe-only rows, GloVe+biLSTM, Random / Upper Bound)."""
    from ..datasets.yc2 import DatasetDir
    from ..run import RunDir
    from ..text.contextual import display_name

    try:
        _, cfg = RunDir(run_dir).read_config()
        if cfg.context_encoder != "lm" or (cfg.query == "glove" and not cfg.context_branch and cfg.fusion == "none"):
            return ""
        import h5py

        with h5py.File(cfg.text_features or DatasetDir(cfg.data).text_features, "r") as f:
            enc = f.attrs.get("encoder", "")
        return display_name(enc.decode() if isinstance(enc, bytes) else str(enc))
    except (OSError, DataError, KeyError):
        return ""


def _units(sweep_dir: Path, preset: str) -> list[tuple[int | None, Path]]:
    """(seed, directory) of every run of ``preset`` in a sweep directory, seeds ascending."""
    d = sweep_dir / preset
    units = []
    for u in d.glob("seed-*"):
        try:
            units.append((int(u.name[len("seed-"):]), u))
        except ValueError:
            continue
    if not units and ((d / PARAMS).is_file() or (d / ERROR).is_file() or (d / RUN).is_dir()):
        units = [(None, d)]                                          # a sweep written before --seeds
    return sorted(units, key=lambda x: -1 if x[0] is None else x[0])


def results_frame(sweep_dir: str | Path, presets: list[str] | None = None) -> pd.DataFrame:
    """One row per (preset, seed) of a sweep directory: status, error, label (the preset, with the text
    encoder that ran: ``stvg-bert [MiniLM-L6]``), our four numbers per split and the paper's. A preset
    with no run yet gets one ``missing`` row per expected seed.

    When the sweep's grid reproduces a paper table (``paper.GRID_TABLES``), the table's rows without a
    run follow (seed empty): status "not implemented" (preset = the paper's row name, error = why) or "not run"."""
    from ..run import read_metrics  # local: keeps torch out of the light sweep commands

    sweep_dir = Path(sweep_dir)
    meta = read_json(sweep_dir / "sweep.json") if (sweep_dir / "sweep.json").is_file() else {}
    presets = presets or meta.get("presets") or sorted(p.name for p in sweep_dir.iterdir()
                                                       if p.is_dir() and _units(sweep_dir, p.name))
    dataset = meta.get("dataset", "youcook2-bb")
    timing = meta.get("seconds", {})
    want = meta.get("seeds")
    table = TABLES.get(GRID_TABLES.get(meta.get("grid", ""), ""))
    table = table if table is not None and table.compares(dataset) else None
    rows = []
    for p in presets:
        units = _units(sweep_dir, p)
        if want:
            have = {s for s, _ in units}
            units += [(s, unit_dir(sweep_dir, p, s)) for s in want if s not in have]
            units = [u for u in units if u[0] is None or u[0] in want]
        if not units:
            units = [(None, sweep_dir / p)]
        paper = paper_numbers(p, dataset)
        for seed, d in units:
            key = p if seed is None else f"{p}/seed-{seed}"
            row: dict[str, Any] = {"preset": p, "seed": seed, "label": p, "status": "missing", "error": "",
                                   "selected_epoch": None, "seconds": timing.get(key), "run": str(d / RUN),
                                   "paper_row": (table.row(p).label if table and table.row(p) else "")}
            if seed is None:                                             # legacy layout: the run's own seed
                if (d / RUN / "config.json").is_file():
                    row["seed"] = int(read_json(d / RUN / "config.json").get("config", {}).get("seed", 0))
                elif (d / PARAMS).is_file():
                    row["seed"] = int(read_json(d / PARAMS).get("overrides", {}).get("seed", 0))
            error = recorded_error(d)
            if error is not None:
                row.update(status="failed", error=error)
            elif (d / RUN / "metrics.json").is_file():
                check_run_identity(d, p, claimed_config(meta.get("overrides") or {}, row["seed"]),
                                   meta.get("stores"), None, meta.get("data", ""))
                m = read_metrics(d / RUN / "metrics.json")
                enc = encoder_label(d / RUN) if p not in ("random", "upper-bound") else ""
                row.update(status="ok", selected_epoch=m.get("selected_epoch"), label=f"{p} [{enc}]" if enc else p)
                for s in SPLITS:
                    for k in METRICS:
                        row[f"{s}_{k}"] = (m.get(s) or {}).get(k)
                held = m.get(HELDOUT)
                if isinstance(held, dict):                               # generalization protocol
                    for s in SPLITS:
                        for k in HELDOUT_METRICS:
                            row[f"{s}_{HELDOUT}_{k}"] = (held.get(s) or {}).get(k)
            for s in SPLITS:
                for k in METRICS:
                    row.setdefault(f"{s}_{k}", None)
                    row[f"paper_{s}_{k}"] = (paper.get(s) or {}).get(k)
            rows.append(row)
    for r in (table.rows if table else []):
        if r.preset in presets:
            continue
        row = {"preset": r.preset or r.label, "seed": None, "label": r.preset or r.label,
               "status": "not run" if r.preset else "not implemented",
               "error": r.note, "selected_epoch": None, "seconds": None, "run": "", "paper_row": r.label}
        for s in SPLITS:
            for k in METRICS:
                row[f"{s}_{k}"] = None
                row[f"paper_{s}_{k}"] = (r.numbers.get(s) or {}).get(k)
        rows.append(row)
    df = pd.DataFrame(rows)
    if "seed" in df:
        df["seed"] = df["seed"].astype("Int64")
    return df


def results_markdown(df: pd.DataFrame, title: str = "", curves: pd.DataFrame | None = None) -> str:
    """Markdown table: mean ± std per preset over its seeds, "(paper)" beside it, the seeds behind each
    number, the paired difference to stvg with its 95 % t-interval; failed runs and the paper's rows that
    are not implemented listed below."""
    from ..report.results import markdown

    return markdown(df, title=title, baseline="stvg", curves=curves)


def write_results(sweep_dir: str | Path, presets: list[str] | None = None) -> pd.DataFrame:
    """Write SWEEP_DIR/results.csv (per-seed rows), learning_curves.csv and results.md; returns the per-seed table."""
    from ..report.results import learning_curves

    sweep_dir = Path(sweep_dir)
    df = results_frame(sweep_dir, presets)
    with atomic_path(sweep_dir / "results.csv") as tmp:
        df.to_csv(tmp, index=False, float_format="%.4f")
    curves = learning_curves(df)
    with atomic_path(sweep_dir / "learning_curves.csv") as tmp:
        curves.to_csv(tmp, index=False, float_format="%.4f")
    meta = read_json(sweep_dir / "sweep.json") if (sweep_dir / "sweep.json").is_file() else {}
    title = f"sweep {meta.get('grid', '')} on {meta.get('data', '')}".strip()
    write_text(sweep_dir / "results.md", results_markdown(df, title, curves))
    return df


def sweep(presets: list[str], data: str | Path, out: str | Path, overrides: dict[str, Any] | None = None,
          jobs: int = 1, grid: str = "", notebook: Path = NOTEBOOK, log=print, seeds: int = 1,
          executor: str = "inline", options: ClusterOptions | None = None, progress_s: float = 2.0) -> pd.DataFrame:
    """Run ``presets`` through the training notebook into ``out``, each with ``seeds`` seeds (the
    overrides' seed, default 0, and the ones after it); a failure is recorded, not raised.

    ``executor`` (see ``workbench.experiments.executor``): inline (this process; with ``jobs`` > 1 and several GPUs,
    one run per GPU at once), local (submitit, one process per run, ``jobs`` at once) or slurm (submitit,
    one job array with ``options``). Finished runs are skipped, so re-running submits only what is missing
    (failed, cancelled or never run); a finished run is reused only when its preset, config and feature
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
        from ..datasets.yc2 import holdout_classes

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
        from ..prepare import fill_missing

        fill_missing(data, log=lambda m: log(f"sweep: {m}"))
    from ..check import require_ready

    require_ready(data, overrides.get("text_features") or None, log=log, who="sweep")   # check-dataset's checks
    stores = store_digests(data)                        # the data's identity, compared with every finished run's
    with folder_lock(out):                              # one writer per sweep folder, for the whole sweep
        return _sweep_locked(presets, data, out, overrides, jobs, grid, notebook, log, seed_list, units, stores,
                             executor, options, progress_s)


def _sweep_locked(presets, data, out, overrides, jobs, grid, notebook, log, seed_list, units, stores, executor,
                  options, progress_s) -> pd.DataFrame:
    from ..run import git_info

    meta_path = out / "sweep.json"
    old = read_json(meta_path) if meta_path.is_file() else {}
    seconds = dict(old.get("seconds", {}))
    same = old.get("data") == str(data) or (bool(stores) and old.get("stores") == stores)
    recorded = old.get("stores") if same and isinstance(old.get("stores"), dict) else None
    meta = {"grid": grid, "data": str(data), "dataset": _dataset_name(data), "overrides": overrides,
            "seeds": sorted(set(old.get("seeds") or []) | set(seed_list)) if same else seed_list,
            "presets": list(dict.fromkeys([*old.get("presets", []), *presets])) if same
            else list(presets), "notebook": str(notebook), "git": git_info(), "seconds": seconds,
            "executor": executor, "stores": stores}
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
                                      seed=s)))
    if options is not None and "device" in overrides:     # Slurm asks for a GPU per run when it trains on CUDA
        options = dataclasses.replace(options, device=str(overrides["device"]))
    runner = make_executor(executor, out / "submitit", jobs, options, log)
    unit_of = {f"{p}/seed-{s}": (p, s) for p, s in units}
    with Progress({sp.name: Path(sp.dir) / RUN for sp in specs}, log, progress_s) as progress:
        def done(spec: JobSpec, row: dict) -> None:
            progress.finished(spec.name)
            p, s = unit_of[spec.name]
            record({**row, "preset": p, "seed": s})

        with terminate_as_interrupt():                  # SIGTERM / SIGHUP: cancel what runs, as Ctrl-C does
            runner.run(specs, done)
    return write_results(out, meta["presets"])


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .worlds import AXES

    p.add_argument("--grid", required=True, choices=sorted(GRIDS) + sorted(AXES), help="main: every implemented "
                   f"Table 1 row ({', '.join(GRIDS['main'])}); ablations: every Table 3 row; anet: every implemented "
                   "Table 2 row (an ActivityNet-Entities directory); generalization: every implemented Table 4 row (a "
                   "world simulated with --holdout K; GRID_SETS apply); context: the context-effect curve (one world "
                   "per ρ, see --data-root)")
    p.add_argument("--data", help="dataset directory (stores and text features built); every grid but context")
    p.add_argument("--out", required=True, help="sweep directory (finished runs in it are skipped)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override for every run (repeatable)")
    p.add_argument("--seeds", type=int, default=DEFAULT_SEEDS,
                   help=f"runs per preset, seeds s, s+1, ... (s = --set seed, default 0); default {DEFAULT_SEEDS}")
    p.add_argument("--presets", help="comma-separated presets instead of the grid's rows (the context grid: its "
                   "seven); the grid's own settings still apply")
    w = p.add_argument_group("world sweeps (--grid context, or any simulator knob with --axis)")
    w.add_argument("--data-root", help="directory holding one simulated world per axis value (created as needed)")
    w.add_argument("--axis", metavar="KNOB=V1,V2,...", help="vary this world v2 knob instead of the grid's axis")
    w.add_argument("--world-preset", default="curve", help="simulator size of each world (curve | demo | smoke)")
    w.add_argument("--world-seed", type=int, default=0, help="simulator seed of every world")
    w.add_argument("--world-set", action="append", metavar="KNOB=VALUE", help="world knob held fixed (repeatable)")
    p.add_argument("--executor", default="inline", choices=EXECUTORS,
                   help="inline: in this process; local: submitit, one process per run on this machine; "
                        "slurm: submitit, one Slurm job array (see README, 'Sweeps on a Slurm cluster')")
    p.add_argument("--jobs", type=int, default=1, help="runs at once: inline, one per GPU (sequential without "
                   "GPUs); local, that many processes (one GPU each when there are GPUs)")
    d = ClusterOptions()
    g = p.add_argument_group("submitit (local / slurm)")
    g.add_argument("--partition", default=d.partition, help="Slurm partition (default: the cluster's default)")
    g.add_argument("--gpus-per-run", type=int, default=d.gpus, help="GPUs per run (Slurm; default: 1 when --set "
                   "device=cuda or the partition has GPUs, else 0, so CPU partitions work as is; local: 0 = CPU, "
                   "default: one GPU each when the machine has GPUs)")
    g.add_argument("--cpus-per-run", type=int, default=d.cpus, help="CPUs per run (Slurm)")
    g.add_argument("--time-limit", type=int, default=d.time_min, metavar="MINUTES",
                   help="time limit per run; on Slurm a run past it is requeued and resumes from its checkpoint")
    g.add_argument("--array-parallelism", type=int, default=d.array_parallelism,
                   help="Slurm: runs of the job array running at once")
    g.add_argument("--mem", default=d.mem, help="Slurm: memory per run, e.g. 32G (default: the partition's)")
    g.add_argument("--account", default=d.account, help="Slurm account")
    g.add_argument("--qos", default=d.qos, help="Slurm quality of service")
    g.add_argument("--requeues", type=int, default=d.requeues, help="Slurm: requeues of a pre-empted / timed-out run")
    g.add_argument("--setup", action="append", default=[], metavar="SHELL_LINE",
                   help="Slurm: shell line run before each job, e.g. 'module load cuda' (repeatable)")


def cluster_options(args: argparse.Namespace) -> ClusterOptions:
    for k in ("gpus_per_run", "cpus_per_run", "time_limit", "array_parallelism", "requeues"):
        if getattr(args, k) is not None and getattr(args, k) < (1 if k in ("time_limit", "array_parallelism",
                                                                            "cpus_per_run") else 0):
            raise DataError(f"--{k.replace('_', '-')}: {getattr(args, k)} is out of range")
    return ClusterOptions(partition=args.partition, gpus=args.gpus_per_run, cpus=args.cpus_per_run,
                          time_min=args.time_limit, array_parallelism=args.array_parallelism, mem=args.mem,
                          account=args.account, qos=args.qos, requeues=args.requeues, setup=list(args.setup))


def parse_presets(text: str) -> list[str]:
    """``--presets a,b``: the named presets (or random / upper-bound); an unknown or empty name is an error."""
    from ..config import PRESETS

    presets = [p.strip() for p in text.split(",")]
    unknown = [p for p in presets if p not in PRESETS and p not in ("random", "upper-bound")]
    if unknown:
        raise DataError(f"--presets: unknown preset(s) {unknown}")
    twice = sorted({p for p in presets if presets.count(p) > 1})
    if twice:
        raise DataError(f"--presets: {twice} named twice (one run directory per preset and seed); name each once")
    return presets


def run(args: argparse.Namespace) -> int:
    from ..config import Config
    from .worlds import AXES, CURVE_PRESETS, parse_axis, world_sweep

    sets = {**GRID_SETS.get(args.grid, {}), **parse_sets(args.set)}
    if "data" in sets:                                  # as train: the dataset is given once
        world = args.grid in AXES or args.axis
        if world or not args.data or Path(sets["data"]).resolve() != Path(args.data).resolve():
            raise DataError(f"--set data={sets['data']} contradicts " + ("--data-root (a world sweep trains on each "
                            "world of it)" if world else f"--data {args.data}") + "; give the dataset once"
                            + ("" if world else " (--data)"))
        del sets["data"]                                # the same dataset: it is the sweep's --data
    cfg = Config().replace(**sets)                      # unknown keys / bad values fail before any run
    overrides = {k: getattr(cfg, k) for k in sets}      # typed, as the notebook parameters record them
    if args.grid in AXES or args.axis:
        from ..sim.knobs import parse_world_sets

        if not args.data_root:
            raise DataError(f"--grid {args.grid}: pass --data-root (one world per axis value is kept there)")
        knob, values = parse_axis(args.axis) if args.axis else AXES[args.grid]
        presets = parse_presets(args.presets) if args.presets else list(CURVE_PRESETS)
        world_sets = parse_sets(args.world_set)
        parse_world_sets(world_sets, where="--world-set")
        runner = functools.partial(sweep, jobs=args.jobs, executor=args.executor, options=cluster_options(args))
        df = world_sweep(knob, values, presets, args.data_root, args.out, args.seeds, args.world_preset,
                         args.world_seed, world_sets, overrides, run_presets=runner)
        print((Path(args.out) / "results.md").read_text())
        return 1 if (df["status"] != "ok").any() else 0
    if not args.data:
        raise DataError(f"--grid {args.grid}: pass --data")
    presets = parse_presets(args.presets) if args.presets else GRIDS[args.grid]   # --presets: the grid's sets still apply
    df = sweep(presets, args.data, args.out, overrides, args.jobs, grid=args.grid, seeds=args.seeds,
               executor=args.executor, options=cluster_options(args))
    print((Path(args.out) / "results.md").read_text())
    failed = df[df["status"].isin(["failed", "missing"])]    # not the paper's rows without a preset
    return 1 if len(failed) else 0
