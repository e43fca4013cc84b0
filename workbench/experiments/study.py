"""``python -m workbench study``: named variants (a preset plus its own config overrides) trained with
several seeds on one dataset, in this process, sharing one opened workspace; per-seed rows, mean ± std
and the paired difference to a baseline variant (95 % t-interval over seeds, ``report.results``).

    python -m workbench study --data work/demo --out work/study_temporal --seeds 0 1 2 \\
        --set max_train_segments=480 --set epochs=10 \\
        --variant stvg=stvg --variant stvg-additive=stvg:temporal=additive --baseline stvg

A variant is NAME=PRESET[:key=value,key=value]. What a grid sweep (``sweep``) cannot say: every run of a
sweep shares one set of overrides and runs as a notebook; a study's variants each carry their own and
train in-process. Its runs go through the sweep's executor (``executor.InlineExecutor``: one after
another, a failed run recorded, not raised); ``train`` resumes or re-reads each run, so a finished one
costs only its check.

STUDY_DIR/<variant>/seed-<s>/      the run directory (as ``train`` writes it) and the executor's outcome.json
STUDY_DIR/results.csv              one row per (variant, seed): status, label, selected epoch, four numbers per split
STUDY_DIR/learning_curves.csv      val box micro per epoch of every run
STUDY_DIR/results.md               mean ± std per variant, paired Δ to the baseline, learning curves, failures
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..config import Config, parse_sets, preset
from .executor import InlineExecutor, JobSpec
from ..io import DataError, atomic_path, write_text
from ..report.results import display_name, learning_curves, markdown
from ..run import read_metrics
from ..train import text_encoder, train
from ..workspace import Workspace

METRICS = ("query_macro", "query_micro", "box_macro", "box_micro")
SPLITS = ("validation", "testing")
ERROR_CHARS = 300                       # a failed run's error as the table keeps it


@dataclass(frozen=True)
class Variant:
    """One row of a study: its name, the preset it starts from and its own overrides."""

    name: str
    preset: str
    overrides: dict


def parse_variant(text: str) -> Variant:
    """``NAME=PRESET[:key=value,key=value]`` -> Variant (values are typed by ``preset()`` later)."""
    name, eq, rest = text.partition("=")
    if not eq or not name.strip():
        raise DataError(f"--variant {text!r}: expected NAME=PRESET[:key=value,...]")
    pre, _, sets = rest.partition(":")
    return Variant(name, pre, parse_sets([s for s in sets.split(",") if s]) if sets else {})


def train_unit(cfg: Config, run: str, preset_name: str, ws: Workspace | None = None,
               gpu: int | None = None) -> dict:
    """One run of a study (an executor job): its outcome row. A non-finite loss or a runtime error is the
    run's outcome, not the study's end. ``gpu`` (the executor's) is not used: ``cfg.device`` places the run."""
    t0 = time.time()
    try:
        metrics = train(cfg, run, preset_name, ws=ws)
    except (FloatingPointError, RuntimeError) as e:
        return {"status": "failed", "error": f"{type(e).__name__}: {e}"[:ERROR_CHARS]}
    return {"status": "ok", "seconds": round(time.time() - t0, 1),
            "val_box_micro": round(metrics["validation"]["box_micro"], 2)}


def unit_row(name: str, seed: int, label: str, run: Path, error: str | None) -> dict:
    """The results row of one run, read from its directory: ok (metrics.json), failed (``error``) or missing."""
    row = {"preset": name, "seed": seed, "label": label, "status": "ok", "error": "", "selected_epoch": None,
           "run": str(run)}
    if error is not None:
        return {**row, "status": "failed", "error": error}
    if not (run / "metrics.json").is_file():
        return {**row, "status": "missing"}
    metrics = read_metrics(run / "metrics.json")
    row["selected_epoch"] = metrics["selected_epoch"]
    for s in SPLITS:
        for m in METRICS:
            row[f"{s}_{m}"] = metrics.get(s, {}).get(m)
    return row


def study(variants: list[Variant], data: str, out: str | Path, seeds: list[int], common: dict[str, str],
          baseline: str = "", report_only: bool = False, sets_text: str = "") -> pd.DataFrame:
    """Train every (seed, variant) into ``out`` (unless ``report_only``) and write its tables; returns the
    per-seed frame. Every variant's config is checked before any run. ``sets_text``: the common overrides
    as the title shows them (the command line's --set)."""
    cfgs = {v.name: preset(v.preset, **{**common, **v.overrides, "data": data}) for v in variants}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ws = Workspace(next(iter(cfgs.values())))          # opened once: the text cache and stores of every run
    enc = text_encoder(ws)
    units = [(seed, v) for seed in seeds for v in variants]
    runs = {(v.name, seed): out / v.name / f"seed-{seed}" for seed, v in units}
    errors: dict[str, str] = {}
    if not report_only:
        specs = [JobSpec(f"{v.name}/seed-{seed}", str(runs[v.name, seed]), train_unit,
                         dict(cfg=cfgs[v.name].replace(seed=seed), run=str(runs[v.name, seed]),
                              preset_name=v.preset, ws=ws))
                 for seed, v in units]

        def record(spec: JobSpec, row: dict) -> None:
            name, _, seed = spec.name.rpartition("/seed-")
            if row["status"] == "ok":
                print(json.dumps({"variant": name, "seed": int(seed), "seconds": row["seconds"],
                                  "val_box_micro": row["val_box_micro"]}), flush=True)
            else:
                errors[spec.name] = row["error"][:ERROR_CHARS]
                print(json.dumps({"variant": name, "seed": int(seed), "failed": errors[spec.name]}), flush=True)

        InlineExecutor().run(specs, record)
    rows = [unit_row(v.name, seed, display_name(v.name, cfgs[v.name].replace(seed=seed).to_dict(), enc),
                     runs[v.name, seed], errors.get(f"{v.name}/seed-{seed}")) for seed, v in units]
    return write_tables(pd.DataFrame(rows), variants, out, baseline, f"study {out.name} on {data} ({sets_text})")


def write_tables(df: pd.DataFrame, variants: list[Variant], out: Path, baseline: str, title: str) -> pd.DataFrame:
    """results.csv (variants in their given order, seeds ascending), learning_curves.csv and results.md."""
    order = {v.name: i for i, v in enumerate(variants)}
    df = df.sort_values(["preset", "seed"], key=lambda c: c.map(order) if c.name == "preset" else c)
    with atomic_path(out / "results.csv") as tmp:
        df.to_csv(tmp, index=False, float_format="%.4f")
    curves = learning_curves(df)
    with atomic_path(out / "learning_curves.csv") as tmp:
        curves.to_csv(tmp, index=False, float_format="%.4f")
    write_text(out / "results.md", markdown(df, title, baseline=baseline or variants[0].name, curves=curves))
    return df


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="dataset directory (stores and text features built)")
    p.add_argument("--out", required=True, help="study directory (finished runs in it are re-read, not retrained)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of every variant (default 0 1 2)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every variant")
    p.add_argument("--variant", action="append", required=True, metavar="NAME=PRESET[:k=v,...]",
                   help="a row of the study: a preset and its own overrides (repeatable)")
    p.add_argument("--baseline", default="", help="variant the others are paired with (default: the first)")
    p.add_argument("--report-only", action="store_true", help="tabulate finished runs only; train nothing")


def run(args: argparse.Namespace) -> int:
    variants = [parse_variant(v) for v in args.variant]
    twice = sorted({v.name for v in variants if [w.name for w in variants].count(v.name) > 1})
    if twice:
        raise DataError(f"--variant: {twice} named twice (one run directory per variant and seed); name each once")
    study(variants, args.data, args.out, args.seeds, parse_sets(args.set), args.baseline, args.report_only,
          " ".join(args.set))
    print((Path(args.out) / "results.md").read_text())
    return 0
