"""The tables of a grid sweep (``python -m workbench sweep --grid main|ablations|anet|generalization``):
one row per (preset, seed) in the schema of ``report.results``, beside the paper's numbers.

SWEEP_DIR/results.csv                        one row per (preset, seed): four numbers per split, the paper's
SWEEP_DIR/results.md                         mean ± std per preset, seeds per row, paired Δ to stvg (95 % CI)
SWEEP_DIR/learning_curves.csv                val box micro per epoch of every run
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..evaluate import HELDOUT
from ..io import read_json, write_text
from .paper import GRID_TABLES, METRICS, SPLITS, TABLES, paper_numbers
from .results import HELDOUT_METRICS, column, learning_curves, markdown, write_table
from .runs import PARAMS, RUN, read_unit, run_label, unit_dir, units

BASELINE_ROWS = ("random", "upper-bound")                        # rows without a trained model (no encoder)


def results_frame(sweep_dir: str | Path, presets: list[str] | None = None) -> pd.DataFrame:
    """One row per (preset, seed) of a sweep directory: status, error, label (the preset, with the text
    encoder that ran: ``stvg-bert [MiniLM-L6]``), our four numbers per split and the paper's. A preset
    with no run yet gets one ``missing`` row per expected seed.

    When the sweep's grid reproduces a paper table (``paper.GRID_TABLES``), the table's rows without a
    run follow (seed empty): status "not implemented" (preset = the paper's row name, error = why) or "not run"."""
    sweep_dir = Path(sweep_dir)
    meta = read_json(sweep_dir / "sweep.json") if (sweep_dir / "sweep.json").is_file() else {}
    presets = presets or meta.get("presets") or sorted(p.name for p in sweep_dir.iterdir()
                                                       if p.is_dir() and units(sweep_dir, p.name))
    dataset = meta.get("dataset", "youcook2-bb")
    timing = meta.get("seconds", {})
    want = meta.get("seeds")
    table = TABLES.get(GRID_TABLES.get(meta.get("grid", ""), ""))
    table = table if table is not None and table.compares(dataset) else None
    rows = []
    for p in presets:
        found = units(sweep_dir, p)
        if want:
            have = {s for s, _ in found}
            found += [(s, unit_dir(sweep_dir, p, s)) for s in want if s not in have]
            found = [u for u in found if u[0] is None or u[0] in want]
        if not found:
            found = [(None, sweep_dir / p)]
        paper = paper_numbers(p, dataset)
        for seed, d in found:
            key = p if seed is None else f"{p}/seed-{seed}"
            row: dict[str, Any] = {"preset": p, "seed": seed, "label": p, "status": "missing", "error": "",
                                   "selected_epoch": None, "seconds": timing.get(key), "run": str(d / RUN),
                                   "paper_row": (table.row(p).label if table and table.row(p) else "")}
            if seed is None:                                             # legacy layout: the run's own seed
                if (d / RUN / "config.json").is_file():
                    row["seed"] = int(read_json(d / RUN / "config.json").get("config", {}).get("seed", 0))
                elif (d / PARAMS).is_file():
                    row["seed"] = int(read_json(d / PARAMS).get("overrides", {}).get("seed", 0))
            status, error, m = read_unit(d, p, row["seed"], meta.get("overrides"), meta.get("stores"),
                                         meta.get("data", ""))
            if status == "failed":
                row.update(status="failed", error=error)
            elif status == "ok":
                label = run_label(p, d / RUN) if p not in BASELINE_ROWS else p
                row.update(status="ok", selected_epoch=m.get("selected_epoch"), label=label)
                for s in SPLITS:
                    for k in METRICS:
                        row[column(s, k)] = (m.get(s) or {}).get(k)
                held = m.get(HELDOUT)
                if isinstance(held, dict):                               # generalization protocol
                    for s in SPLITS:
                        for k in HELDOUT_METRICS:
                            row[column(s, k, HELDOUT)] = (held.get(s) or {}).get(k)
            for s in SPLITS:
                for k in METRICS:
                    row.setdefault(column(s, k), None)
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
                row[column(s, k)] = None
                row[f"paper_{s}_{k}"] = (r.numbers.get(s) or {}).get(k)
        rows.append(row)
    df = pd.DataFrame(rows)
    if "seed" in df:
        df["seed"] = df["seed"].astype("Int64")
    return df


def write_results(sweep_dir: str | Path, presets: list[str] | None = None) -> pd.DataFrame:
    """Write SWEEP_DIR/results.csv (per-seed rows), learning_curves.csv and results.md; returns the per-seed table."""
    sweep_dir = Path(sweep_dir)
    df = results_frame(sweep_dir, presets)
    write_table(df, sweep_dir / "results.csv")
    curves = learning_curves(df)
    write_table(curves, sweep_dir / "learning_curves.csv")
    meta = read_json(sweep_dir / "sweep.json") if (sweep_dir / "sweep.json").is_file() else {}
    title = f"sweep {meta.get('grid', '')} on {meta.get('data', '')}".strip()
    write_text(sweep_dir / "results.md", markdown(df, title=title, baseline="stvg", curves=curves))
    return df
