"""``python -m workbench sweep``: run the training notebook with papermill once per preset of a grid,
keep every output notebook and run directory, and tabulate the results beside the paper's numbers.

SWEEP_DIR/sweep.json                 the grid, dataset, overrides and provenance of the sweep
SWEEP_DIR/<preset>/params.json       the notebook parameters of that run
SWEEP_DIR/<preset>/02_train.ipynb    papermill's output notebook
SWEEP_DIR/<preset>/run/              the run directory (as `python -m workbench train` writes it)
SWEEP_DIR/<preset>/error.txt         why the run failed (absent when it succeeded)
SWEEP_DIR/results.csv, results.md    one row per preset: four numbers per split, ours and the paper's
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd

from .config import parse_sets
from .io import DataError, atomic_path, read_json, write_json, write_text
from .evaluate import METRICS
from .paper import GRID_TABLES, SPLITS, TABLES, paper_numbers
from .paths import CLASS_FILE, DATASET_META, NOTEBOOKS, REPO

NOTEBOOK = NOTEBOOKS / "02_train.ipynb"
GRIDS = {
    "main": [r.preset for r in TABLES["table1"].rows if r.preset],       # every implemented Table 1 row
    "ablations": [r.preset for r in TABLES["table3"].rows if r.preset],  # every Table 3 row (stvg: its baseline)
}
PARAMS, OUT_NB, RUN, ERROR = "params.json", "02_train.ipynb", "run", "error.txt"


def _dataset_name(data: Path) -> str:
    meta = data / DATASET_META
    if meta.is_file():
        d = read_json(meta)
        if isinstance(d, dict) and isinstance(d.get("dataset"), str):
            return d["dataset"]
    return "youcook2-bb"


def run_params(preset: str, data: Path, sweep_dir: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """The 02_train parameters of one preset of a sweep."""
    return {"data": str(data), "preset": preset, "out": str((sweep_dir / preset / RUN).resolve()),
            "overrides": dict(overrides)}


def _normal(params: dict) -> dict:
    """Parameters with their overrides typed as Config types ("2" and 2 are the same epochs)."""
    from .config import Config

    try:
        cfg = Config().replace(**params.get("overrides", {}))
        return {**params, "overrides": {k: getattr(cfg, k) for k in params.get("overrides", {})}}
    except DataError:
        return params


def is_finished(d: Path, params: dict) -> bool:
    """True when ``d`` holds a finished run of exactly ``params``; DataError when it holds another one."""
    if not (d / PARAMS).is_file():
        return False
    old = read_json(d / PARAMS)
    done = (d / RUN / "metrics.json").is_file()
    if _normal(old) != _normal(params):
        if done:
            raise DataError(f"{d}: holds a finished run with other parameters ({old}); use another --out")
        return False
    return done and not (d / ERROR).is_file()


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
            notebook: Path = NOTEBOOK) -> dict[str, Any]:
    """Execute the training notebook for ``preset`` (skipped when finished); returns its status row."""
    d = sweep_dir / preset
    params = run_params(preset, data, sweep_dir, overrides)
    if is_finished(d, params):
        return {"preset": preset, "status": "ok", "skipped": True}
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
        return {"preset": preset, "status": "failed", "error": err, "seconds": seconds, "skipped": False}
    return {"preset": preset, "status": "ok", "seconds": seconds, "skipped": False}


def _gpu_count() -> int:
    try:
        import torch
        return torch.cuda.device_count()
    except Exception:                                   # noqa: BLE001 - no torch / no driver: no GPU
        return 0


def encoder_label(run_dir: str | Path) -> str:
    """The contextual encoder a run was trained with, as tables name it ("MiniLM-L6"), or "" when the
    run uses no contextual LM features (GloVe-only rows, GloVe+biLSTM, Random / Upper Bound)."""
    from .data.layout import DatasetDir
    from .run import RunDir
    from .text.contextual import display_name

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


def results_frame(sweep_dir: str | Path, presets: list[str] | None = None) -> pd.DataFrame:
    """One row per preset of a sweep directory: status, error, our four numbers per split and the paper's.

    When the sweep's grid reproduces a paper table (``paper.GRID_TABLES``), the table's rows without a
    run follow: status "not implemented" (preset = the paper's row name, error = why) or "not run"."""
    from .run import read_metrics  # local: keeps torch out of the light sweep commands

    sweep_dir = Path(sweep_dir)
    meta = read_json(sweep_dir / "sweep.json") if (sweep_dir / "sweep.json").is_file() else {}
    presets = presets or meta.get("presets") or sorted(p.name for p in sweep_dir.iterdir() if (p / PARAMS).is_file())
    dataset = meta.get("dataset", "youcook2-bb")
    timing = meta.get("seconds", {})
    table = TABLES.get(GRID_TABLES.get(meta.get("grid", ""), ""))
    table = table if table is not None and table.dataset == dataset else None
    rows = []
    for p in presets:
        d = sweep_dir / p
        row: dict[str, Any] = {"preset": p, "status": "missing", "error": "", "selected_epoch": None,
                               "seconds": timing.get(p), "run": str(d / RUN),
                               "paper_row": (table.row(p).label if table and table.row(p) else "")}
        if (d / ERROR).is_file():
            row.update(status="failed", error=(d / ERROR).read_text().strip())
        elif (d / RUN / "metrics.json").is_file():
            m = read_metrics(d / RUN / "metrics.json")
            enc = encoder_label(d / RUN) if p not in ("random", "upper-bound") else ""
            row.update(status="ok", selected_epoch=m.get("selected_epoch"), label=f"{p} [{enc}]" if enc else p)
            for s in SPLITS:
                for k in METRICS:
                    row[f"{s}_{k}"] = (m.get(s) or {}).get(k)
        paper = paper_numbers(p, dataset)
        for s in SPLITS:
            for k in METRICS:
                row.setdefault(f"{s}_{k}", None)
                row[f"paper_{s}_{k}"] = (paper.get(s) or {}).get(k)
        row.setdefault("label", p)
        rows.append(row)
    for r in (table.rows if table else []):
        if r.preset in presets:
            continue
        row = {"preset": r.preset or r.label, "label": r.preset or r.label,
               "status": "not run" if r.preset else "not implemented",
               "error": r.note, "selected_epoch": None, "seconds": None, "run": "", "paper_row": r.label}
        for s in SPLITS:
            for k in METRICS:
                row[f"{s}_{k}"] = None
                row[f"paper_{s}_{k}"] = (r.numbers.get(s) or {}).get(k)
        rows.append(row)
    return pd.DataFrame(rows)


def _cell(ours: Any, paper: Any) -> str:
    o = "" if ours is None or pd.isna(ours) else f"{ours:.2f}"
    return f"{o} ({paper:.2f})" if paper is not None and not pd.isna(paper) else o


def results_markdown(df: pd.DataFrame, title: str = "") -> str:
    """Markdown table: each cell "ours (paper)"; failed runs listed with their error below."""
    cols = [(s, k) for s in SPLITS for k in METRICS]
    head = ["preset", "status"] + [f"{'val' if s == 'validation' else 'test'} {k.replace('_', ' ')}" for s, k in cols]
    lines = [f"# {title}", ""] if title else []
    lines += ["Accuracy in %, ours (paper's number where the paper reports that row).", "",
              "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in df.iterrows():
        name = r.get("label") if isinstance(r.get("label"), str) and r.get("label") else r["preset"]
        lines.append("| " + " | ".join([name, r["status"]] +
                                       [_cell(r[f"{s}_{k}"], r[f"paper_{s}_{k}"]) for s, k in cols]) + " |")
    failed = df[df["status"] == "failed"]
    if len(failed):
        lines += ["", "Failed runs:", ""] + [f"- {r['preset']}: {r['error']}" for _, r in failed.iterrows()]
    missing = df[df["status"] == "not implemented"] if "status" in df else df.iloc[:0]
    if len(missing):
        lines += ["", "Rows of the paper's table that are not implemented:", ""]
        lines += [f"- {r['preset']}: {r['error']}" for _, r in missing.iterrows()]
    return "\n".join(lines) + "\n"


def write_results(sweep_dir: str | Path, presets: list[str] | None = None) -> pd.DataFrame:
    """Write SWEEP_DIR/results.csv and results.md; returns the table."""
    sweep_dir = Path(sweep_dir)
    df = results_frame(sweep_dir, presets)
    with atomic_path(sweep_dir / "results.csv") as tmp:
        df.to_csv(tmp, index=False, float_format="%.4f")
    meta = read_json(sweep_dir / "sweep.json") if (sweep_dir / "sweep.json").is_file() else {}
    title = f"sweep {meta.get('grid', '')} on {meta.get('data', '')}".strip()
    write_text(sweep_dir / "results.md", results_markdown(df, title))
    return df


def sweep(presets: list[str], data: str | Path, out: str | Path, overrides: dict[str, Any] | None = None,
          jobs: int = 1, grid: str = "", notebook: Path = NOTEBOOK, log=print) -> pd.DataFrame:
    """Run ``presets`` through the training notebook into ``out``; a failure is recorded, not raised.

    With ``jobs`` > 1 and several GPUs, up to ``min(jobs, GPUs)`` runs go in parallel, each on its own
    device (``CUDA_VISIBLE_DEVICES``); otherwise runs go one after another.
    """
    from .run import git_info

    data, out = Path(data).resolve(), Path(out)
    if not (data / CLASS_FILE).is_file():
        raise DataError(f"{data}: not a dataset directory (no class_file.csv); run `simulate` / `prepare` first")
    overrides = dict(overrides or {})
    for p in presets:                                   # a finished run of other parameters: refuse up front
        is_finished(out / p, run_params(p, data, out, overrides))
    out.mkdir(parents=True, exist_ok=True)
    meta_path = out / "sweep.json"
    old = read_json(meta_path) if meta_path.is_file() else {}
    seconds = dict(old.get("seconds", {}))
    meta = {"grid": grid, "data": str(data), "dataset": _dataset_name(data), "overrides": overrides,
            "presets": list(dict.fromkeys([*old.get("presets", []), *presets])) if old.get("data") == str(data)
            else list(presets), "notebook": str(notebook), "git": git_info(), "seconds": seconds}
    write_json(meta_path, meta, indent=2)

    gpus = _gpu_count()
    workers = max(1, min(jobs, gpus)) if gpus > 1 else 1
    if jobs > 1 and workers == 1:
        log(f"sweep: {gpus} GPU(s): running sequentially")
    lock = threading.Lock()

    def record(row: dict) -> None:
        with lock:
            if not row.get("skipped"):
                seconds[row["preset"]] = row.get("seconds")
                write_json(meta_path, meta, indent=2)
            what = "skipped (finished)" if row.get("skipped") else f"{row['status']} in {row.get('seconds')} s"
            log(f"sweep: {row['preset']}: {what}" + (f": {row['error']}" if row.get("error") else ""))

    todo: "queue.Queue[str]" = queue.Queue()
    for p in presets:
        todo.put(p)

    def worker(gpu: int | None) -> None:
        while True:
            try:
                p = todo.get_nowait()
            except queue.Empty:
                return
            try:
                row = run_one(p, data, out, overrides, gpu, notebook)
            except Exception as e:                     # noqa: BLE001 - a failed run must not stop the others
                err = f"{type(e).__name__}: {e}"
                (out / p).mkdir(parents=True, exist_ok=True)
                write_text(out / p / ERROR, err + "\n")
                row = {"preset": p, "status": "failed", "error": err}
            record(row)

    if workers == 1:
        worker(0 if gpus == 1 else None)
    else:
        threads = [threading.Thread(target=worker, args=(g,)) for g in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return write_results(out, meta["presets"])


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--grid", required=True, choices=sorted(GRIDS), help="main: every implemented Table 1 row "
                   f"({', '.join(GRIDS['main'])}); ablations: every Table 3 row")
    p.add_argument("--data", required=True, help="dataset directory (stores and text features built)")
    p.add_argument("--out", required=True, help="sweep directory (finished runs in it are skipped)")
    p.add_argument("--jobs", type=int, default=1, help="parallel runs, one per GPU (sequential without GPUs)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override for every run (repeatable)")


def run(args: argparse.Namespace) -> int:
    from .config import Config

    sets = parse_sets(args.set)
    cfg = Config().replace(**sets)                      # unknown keys / bad values fail before any run
    overrides = {k: getattr(cfg, k) for k in sets}      # typed, as the notebook parameters record them
    df = sweep(GRIDS[args.grid], args.data, args.out, overrides, args.jobs, grid=args.grid)
    print((Path(args.out) / "results.md").read_text())
    failed = df[df["status"] != "ok"]
    return 1 if len(failed) else 0
