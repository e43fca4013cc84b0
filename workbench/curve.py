"""World-knob sweeps: one simulated world per value of a simulator knob, the same presets and seeds
trained on each, and the results beside the world's oracle headroom (the context-effect curve).

``python -m workbench sweep --grid context --data-root DIR --out SWEEP_DIR [--seeds N]`` runs the
``context`` axis (ρ in {0, 0.25, 0.5, 0.75, 0.9}); ``--axis KNOB=V1,V2,...`` varies any world v2 knob.

DIR/<knob>-<value>/                          the world of that value (simulate + stores + text features)
SWEEP_DIR/sweep.json                         axis, values, presets, seeds, world preset and knobs, provenance
SWEEP_DIR/<knob>-<value>/                    a `sweep` directory of the presets (seeds: <preset>/seed-<s>/)
SWEEP_DIR/<knob>-<value>/<preset>/seed-<s>/run/breakdown.json   val box accuracy by mention type / twin / phase
SWEEP_DIR/results.csv                        one row per (value, preset, seed), oracle rows per value
SWEEP_DIR/results.md                         mean ± std per (value, preset), gain over stvg, oracles, breakdowns

Every step is skipped when its output is there (worlds, runs, breakdowns): a sweep resumes.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .io import DataError, atomic_path, read_json, write_json, write_text

AXES = {"context": ("context", (0.0, 0.25, 0.5, 0.75, 0.9))}
CURVE_PRESETS = ("dvsa", "stvg", "stvg-bert", "fusion-ensemble", "scl", "scl-infer-u", "scl-infer-both")
DEFAULT_SEEDS = 3
ORACLES = ("random", "upper_bound", "oracle_class", "oracle_language", "oracle_state")
BREAKDOWN = "breakdown.json"


def value_name(knob: str, value: float) -> str:
    return f"{knob}-{value:g}"


def parse_axis(text: str) -> tuple[str, tuple[float, ...]]:
    """``KNOB=V1,V2,...`` -> (knob, values); the knob and every value are checked by world v2's parser."""
    from .world.knobs import parse_world_sets

    if "=" not in text:
        raise DataError(f"--axis {text!r}: expected KNOB=V1,V2,...")
    knob, vals = text.split("=", 1)
    knob = knob.strip()
    values = []
    for v in vals.split(","):
        k = parse_world_sets([f"{knob}={v.strip()}"], where="--axis")
        values.append(float(getattr(k, knob)))
    if not values:
        raise DataError(f"--axis {text!r}: no values")
    return knob, tuple(values)


def ensure_world(data_root: Path, knob: str, value: float, preset: str, seed: int, world_sets: dict,
                 text_from: Path | None = None, log=print) -> Path:
    """The prepared world (simulated, stores, text features) of one axis value under ``data_root``."""
    from .data.simulator import ensure_dataset
    from .prepare import prepare
    from .world.knobs import parse_world_sets

    knobs = parse_world_sets({**world_sets, knob: value}, where="world sweep")
    d = data_root / value_name(knob, value)
    t0 = time.time()
    ensure_dataset(d, preset=preset, seed=seed, knobs=knobs)
    tf = d / "text_features.h5"
    if text_from is not None and not tf.exists() and (text_from / "text_features.h5").is_file():
        shutil.copyfile(text_from / "text_features.h5", tf)    # same sentences: reused if its inputs hash matches
    prepare(d, preset=preset, seed=seed)
    log(f"world {d.name}: ready ({time.time() - t0:.0f} s)")
    return d


def _units_of_truth(gt: dict, truth: dict):
    """Tags (mention, twin, phase) of every unit of evaluate.gt_units order."""
    tags = []
    for key, seg in gt.items():
        rows = truth.get(key)
        if rows is None or len(rows) != len(seg.objects):
            raise DataError(f"world_truth.json: segment {key} has no truth for its {len(seg.objects)} objects")
        for o, r in zip(seg.objects, rows):
            twin = set(r["twin_frames"])
            for t in range(len(o.boxes)):
                phase = "no_change" if r["switch"] < 0 else ("before_change" if t < r["switch"] else "after_change")
                tags.append((r["mention"], t in twin, phase))
    return tags


def run_breakdown(run_dir: Path, data: Path) -> dict:
    """Validation box accuracy of a trained run by mention type, twin / no-twin frames and state phase
    (STVG rule; needs the world's world_truth.json). Written to run_dir/breakdown.json once."""
    from .evaluate import RULES, _flatten_predictions, gt_units, iou
    from .predict import load_run, predict_boxes

    out = run_dir / BREAKDOWN
    if out.is_file():
        return read_json(out)
    truth = read_json(data / "world_truth.json")
    r = load_run(run_dir)
    gt = r.ws.gt["validation"]
    boxes = predict_boxes(r, "validation")
    units = gt_units(gt, r.ws.vocab)
    pred = _flatten_predictions(units, boxes)
    rule = RULES["stvg"]
    have = ~np.isnan(pred).any(1)
    scored = units.counted & have
    ious = np.zeros(len(units.gt))
    ious[scored] = iou(units.gt[scored], pred[scored], plus_one=rule.plus_one)
    hit = scored & (ious > 0.5)
    tags = _units_of_truth(gt, truth)
    mention = np.array([t[0] for t in tags])
    twin = np.array([t[1] for t in tags])
    phase = np.array([t[2] for t in tags])

    def acc(mask):
        m = mask & units.counted
        return {"box_micro": round(100 * float(hit[m].mean()), 2) if m.any() else None, "boxes": int(m.sum())}

    res = {"all": acc(np.ones(len(hit), bool)),
           "by_mention": {k: acc(mention == k) for k in ("cued", "carried", "uncued", "pronoun")},
           "by_twin": {"with_twin": acc(twin), "without_twin": acc(~twin)},
           "by_phase": {k: acc(phase == k) for k in ("before_change", "after_change", "no_change")}}
    write_json(out, res, indent=1)
    return res


def _finished(d: Path, breakdown: bool) -> bool:
    """A <preset>/seed-<s> directory of a world sweep whose run (and breakdown) is complete."""
    run = d / "run"
    if (d / "error.txt").is_file() or not (run / "metrics.json").is_file():
        return False
    return not breakdown or d.parent.name in ("random", "upper-bound") or (run / BREAKDOWN).is_file()


def world_sweep(knob: str, values: tuple[float, ...], presets: list[str], data_root: str | Path, out: str | Path,
                seeds: int = DEFAULT_SEEDS, world_preset: str = "curve", world_seed: int = 0,
                world_sets: dict | None = None, overrides: dict[str, Any] | None = None, breakdown: bool = True,
                log=print, run_presets=None) -> pd.DataFrame:
    """Train ``presets`` x ``seeds`` on one world per ``values`` of ``knob``; returns the results table.

    ``run_presets(presets, data, out, overrides, grid=..., log=...)`` trains presets on one dataset into
    one directory: ``sweep.sweep`` (passed in by the `sweep` command; this module does not import it)."""
    from .run import git_info

    if run_presets is None:
        raise DataError("world_sweep needs run_presets (sweep.sweep)")
    sweep = run_presets

    data_root, out = Path(data_root).resolve(), Path(out)
    world_sets, overrides = dict(world_sets or {}), dict(overrides or {})
    if seeds < 1:
        raise DataError(f"--seeds must be >= 1, got {seeds}")
    if "seed" in overrides:
        raise DataError("a world sweep sets the Config seed per run (--seeds); do not --set seed")
    out.mkdir(parents=True, exist_ok=True)
    meta_path = out / "sweep.json"
    meta = {"grid": "world", "axis": knob, "values": list(values), "presets": list(presets),
            "seeds": list(range(seeds)), "data_root": str(data_root), "world_preset": world_preset,
            "world_seed": world_seed, "world_sets": world_sets, "overrides": overrides, "git": git_info(),
            "seconds": {}}
    if meta_path.is_file():
        old = read_json(meta_path)
        for k in ("axis", "world_preset", "world_seed", "world_sets", "overrides"):
            if old.get(k) != meta[k]:
                raise DataError(f"{meta_path}: holds a sweep with {k}={old.get(k)!r}, not {meta[k]!r}; use another --out")
        meta["seconds"] = old.get("seconds", {})
    write_json(meta_path, meta, indent=2)
    first = None
    for v in values:
        t0 = time.time()
        d = ensure_world(data_root, knob, v, world_preset, world_seed, world_sets, text_from=first, log=log)
        first = first or d
        meta["seconds"][f"world {value_name(knob, v)}"] = meta["seconds"].get(f"world {value_name(knob, v)}",
                                                                            round(time.time() - t0, 1))
        t0 = time.time()
        vd = out / value_name(knob, v)
        if all(_finished(vd / p / f"seed-{s}", breakdown) for p in presets for s in range(seeds)):
            log(f"world sweep: {value_name(knob, v)}: finished, skipped")
            continue
        sweep(list(presets), d, vd, dict(overrides), grid=f"{knob}={v:g}", log=log, seeds=seeds)
        if breakdown:
            for p in presets:
                for s in range(seeds):
                    run = vd / p / f"seed-{s}" / "run"
                    if p not in ("random", "upper-bound") and (run / "metrics.json").is_file():
                        try:
                            run_breakdown(run, d)
                        except DataError as e:
                            log(f"breakdown {run}: {e}")
        meta["seconds"][value_name(knob, v)] = round(time.time() - t0, 1)
        write_json(meta_path, meta, indent=2)
        write_results(out)
    return write_results(out)


# --- results ---------------------------------------------------------------------------------

def results_frame(out: str | Path) -> pd.DataFrame:
    """One row per (value, preset, seed) with val/test box and query accuracy and the val breakdown,
    plus one row per (value, oracle) from the world's world_stats.json (preset = the oracle's name)."""
    out = Path(out)
    meta = read_json(out / "sweep.json")
    knob, rows = meta["axis"], []
    for v in meta["values"]:
        world = Path(meta["data_root"]) / value_name(knob, v)
        for s in meta["seeds"]:
            for p in meta["presets"]:
                ud = out / value_name(knob, v) / p / f"seed-{s}"
                run = ud / "run"
                row: dict[str, Any] = {"value": v, "preset": p, "seed": s, "kind": "run", "status": "missing"}
                if (ud / "error.txt").is_file():
                    row.update(status="failed", error=(ud / "error.txt").read_text().strip())
                elif (run / "metrics.json").is_file():
                    m = read_json(run / "metrics.json")
                    row["status"] = "ok"
                    for split, short in (("validation", "val"), ("testing", "test")):
                        for k in ("box_micro", "box_macro", "query_micro", "query_macro"):
                            row[f"{short}_{k}"] = (m.get(split) or {}).get(k)
                    if (run / BREAKDOWN).is_file():
                        b = read_json(run / BREAKDOWN)
                        for group in ("by_mention", "by_twin", "by_phase"):
                            for name, a in b[group].items():
                                row[f"val_{name}"] = a["box_micro"]
                rows.append(row)
        stats = world / "world_stats.json"
        if stats.is_file():
            st = read_json(stats)
            for o in ORACLES:
                row = {"value": v, "preset": o, "seed": None, "kind": "oracle", "status": "ok"}
                for split, short in (("validation", "val"), ("testing", "test")):
                    for k in ("box_micro", "box_macro"):
                        row[f"{short}_{k}"] = (st.get(split, {}).get(o) or {}).get(k)
                for group in ("by_mention", "by_twin", "by_phase"):
                    for name, a in st.get("validation", {}).get(group, {}).items():
                        row[f"val_{name}"] = a[o]["box_micro"]
                rows.append(row)
    return pd.DataFrame(rows)


def summary_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per (value, preset), and the gain over stvg (mean ± std of the per-seed
    paired difference of val box micro)."""
    runs = df[(df["kind"] == "run") & (df["status"] == "ok")]
    num = [c for c in runs.columns if c.startswith(("val_", "test_"))]
    g = runs.groupby(["value", "preset"], sort=False)
    mean, std = g[num].mean(), g[num].std(ddof=1)
    res = mean.add_suffix("_mean").join(std.add_suffix("_std"))
    res["seeds"] = g.size()
    stvg = runs[runs["preset"] == "stvg"].set_index(["value", "seed"])["val_box_micro"]
    gains = []
    for (v, p), grp in g:
        d = [r["val_box_micro"] - stvg.get((v, r["seed"]), np.nan) for _, r in grp.iterrows()]
        d = np.array([x for x in d if x == x], dtype=np.float64)
        gains.append(((v, p), d.mean() if len(d) else np.nan, d.std(ddof=1) if len(d) > 1 else np.nan))
    res["gain_vs_stvg_mean"] = pd.Series({k: m for k, m, _ in gains})
    res["gain_vs_stvg_std"] = pd.Series({k: s for k, _, s in gains})
    return res.reset_index()


def _pm(m, s) -> str:
    if m is None or (isinstance(m, float) and np.isnan(m)):
        return ""
    return f"{m:.2f}" if s is None or (isinstance(s, float) and np.isnan(s)) else f"{m:.2f} ± {s:.2f}"


def results_markdown(out: Path, df: pd.DataFrame) -> str:
    meta = read_json(out / "sweep.json")
    knob = meta["axis"]
    lines = [f"# World sweep: {knob} in {meta['values']}", "",
             f"World preset `{meta['world_preset']}` (seed {meta['world_seed']}, knobs {meta['world_sets'] or 'default'}),"
             f" seeds {meta['seeds']}, overrides {meta['overrides'] or 'none'}. Val/test box accuracy in %, mean ± std "
             "over seeds; gain = per-seed paired difference of val box micro to stvg. Oracles are training-free "
             "(`simulate --stats`).", ""]
    summ = summary_frame(df) if len(df[(df["kind"] == "run") & (df["status"] == "ok")]) else pd.DataFrame()
    oracles = df[df["kind"] == "oracle"]
    mention_cols = ["val_cued", "val_carried", "val_uncued", "val_pronoun", "val_with_twin", "val_without_twin",
                    "val_before_change", "val_after_change"]
    head = ["row", "seeds", "val box micro", "val box macro", "test box micro", "gain vs stvg (val micro)"] + \
        [c[4:].replace("_", " ") for c in mention_cols]
    for v in meta["values"]:
        lines += [f"## {knob} = {v:g}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        if len(summ):
            for _, r in summ[summ["value"] == v].iterrows():
                cells = [r["preset"], str(int(r["seeds"]))]
                for c in ("val_box_micro", "val_box_macro", "test_box_micro"):
                    cells.append(_pm(r.get(f"{c}_mean"), r.get(f"{c}_std")))
                cells.append(_pm(r["gain_vs_stvg_mean"], r["gain_vs_stvg_std"]) if r["preset"] != "stvg" else "")
                cells += [_pm(r.get(f"{c}_mean"), r.get(f"{c}_std")) for c in mention_cols]
                lines.append("| " + " | ".join(cells) + " |")
        for _, r in oracles[oracles["value"] == v].iterrows():
            cells = [f"*{r['preset']}*", "-"] + [_pm(r.get(c), None) for c in ("val_box_micro", "val_box_macro",
                                                                                 "test_box_micro")] + [""]
            cells += [_pm(r.get(c), None) for c in mention_cols]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    failed = df[df["status"] == "failed"]
    if len(failed):
        lines += ["Failed runs:", ""] + [f"- {r['value']:g} {r['preset']} seed {r['seed']}: {r['error']}"
                                         for _, r in failed.iterrows()]
    secs = meta.get("seconds", {})
    if secs:
        lines += ["", f"Wall time: {sum(v for v in secs.values() if v):.0f} s over {len(secs)} steps."]
    return "\n".join(lines) + "\n"


def load_frame(out: str | Path) -> pd.DataFrame:
    """The results of a world sweep: from its run directories, or from results.csv in a committed copy
    that holds only sweep.json and the tables."""
    out = Path(out)
    meta = read_json(out / "sweep.json")
    if any((out / value_name(meta["axis"], v)).is_dir() for v in meta["values"]):
        return results_frame(out)
    if not (out / "results.csv").is_file():
        raise DataError(f"{out}: neither run directories nor results.csv")
    return pd.read_csv(out / "results.csv")


def write_results(out: str | Path) -> pd.DataFrame:
    out = Path(out)
    df = results_frame(out)
    with atomic_path(out / "results.csv") as tmp:
        df.to_csv(tmp, index=False, float_format="%.4f")
    write_text(out / "results.md", results_markdown(out, df))
    return df


# --- figure ----------------------------------------------------------------------------------

def curve_figure(out: str | Path, presets: tuple[str, ...] | None = None):
    """Accuracy (left) and gain over stvg (right) vs the axis value, mean ± std over seeds; the oracle
    headroom (oracle_class .. oracle_language, and .. oracle_state) as bands."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    out = Path(out)
    meta = read_json(out / "sweep.json")
    df = load_frame(out)
    summ = summary_frame(df)
    orc = df[df["kind"] == "oracle"].pivot(index="value", columns="preset", values="val_box_micro").sort_index()
    fig = make_subplots(rows=1, cols=2, subplot_titles=("val box micro accuracy (%)", "gain over stvg (points)"))
    if len(orc):
        x = list(orc.index)
        for hi, name, color in (("oracle_state", "headroom to oracle_state", "rgba(150,150,150,0.18)"),
                                ("oracle_language", "headroom to oracle_language", "rgba(60,160,60,0.25)")):
            if hi in orc and "oracle_class" in orc:
                fig.add_trace(go.Scatter(x=x + x[::-1], y=list(orc[hi]) + list(orc["oracle_class"])[::-1],
                                         fill="toself", fillcolor=color, mode="lines", line=dict(width=0),
                                         name=name, legendgroup=hi), 1, 1)
                fig.add_trace(go.Scatter(x=x + x[::-1], y=list(orc[hi] - orc["oracle_class"]) + [0] * len(x),
                                         fill="toself", fillcolor=color, mode="lines", line=dict(width=0), name=name,
                                         legendgroup=hi, showlegend=False), 1, 2)
    palette = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
    for i, p in enumerate(presets or meta["presets"]):
        r = summ[summ["preset"] == p].sort_values("value")
        if not len(r):
            continue
        c = palette[i % len(palette)]
        fig.add_trace(go.Scatter(x=r["value"], y=r["val_box_micro_mean"], name=p, mode="lines+markers",
                                 line=dict(color=c), legendgroup=p,
                                 error_y=dict(type="data", array=r["val_box_micro_std"].fillna(0))), 1, 1)
        if p != "stvg":
            fig.add_trace(go.Scatter(x=r["value"], y=r["gain_vs_stvg_mean"], name=p, mode="lines+markers",
                                     line=dict(color=c), legendgroup=p, showlegend=False,
                                     error_y=dict(type="data", array=r["gain_vs_stvg_std"].fillna(0))), 1, 2)
    fig.add_hline(y=0, line=dict(color="black", width=1), row=1, col=2)
    fig.update_xaxes(title_text=meta["axis"] + (" (ρ)" if meta["axis"] == "context" else ""))
    fig.update_layout(width=1200, height=500, title=f"{meta['axis']} curve · world {meta['world_preset']} · "
                      f"{len(meta['seeds'])} seed(s)")
    return fig
