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

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .executor import recorded_error
from ..io import DataError, atomic_path, read_json, write_json, write_text
from .identity import check_run_identity, claimed_config, folder_lock, store_digests, wanted_config

AXES = {"context": ("context", (0.0, 0.25, 0.5, 0.75, 0.9))}
CURVE_PRESETS = ("dvsa", "stvg", "stvg-bert", "fusion-ensemble", "scl", "scl-infer-u", "scl-infer-both")
DEFAULT_SEEDS = 3
ORACLES = ("random", "upper_bound", "oracle_class", "oracle_language", "oracle_state",
           "oracle_class_em", "oracle_teacher_em", "oracle_class_box")
# The training-time oracles (issue 21; SIMULATOR.md "Which oracle bounds which method"): a world simulated
# before them has none in its world_stats.json; the table shows them as absent, the figure leaves them out.
TRAINING_ORACLES = ("oracle_class_em", "oracle_teacher_em", "oracle_class_box")
BREAKDOWN = "breakdown.json"


def value_name(knob: str, value: float) -> str:
    return f"{knob}-{value:g}"


def parse_axis(text: str) -> tuple[str, tuple[float, ...]]:
    """``KNOB=V1,V2,...`` -> (knob, values); the knob and every value are checked by world v2's parser."""
    from ..sim.knobs import parse_world_sets

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


def check_axis_values(knob: str, values) -> None:
    """Refuse an axis with no value or with two values that name one world folder (``0.5,0.5`` or
    ``0.1,0.1000001``: both ``KNOB-0.1``), before any world is made or any run starts."""
    if not values:
        raise DataError(f"--axis {knob}: no values")
    names: dict[str, float] = {}
    for v in values:
        n = value_name(knob, v)
        if n in names:
            raise DataError(f"--axis {knob}: values {names[n]!r} and {v!r} both name the world folder {n!r}; "
                            "give each value once (values that differ within 6 significant digits are one value)")
        names[n] = v


def ensure_world(data_root: Path, knob: str, value: float, preset: str, seed: int, world_sets: dict,
                 text_from: Path | None = None, log=print) -> Path:
    """The prepared world (simulated, stores, text features) of one axis value under ``data_root``."""
    from ..sim.simulate import ensure_dataset
    from ..prepare import prepare
    from ..sim.knobs import parse_world_sets

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


def run_breakdown(run_dir: Path, data: Path, infer: str = "") -> dict:
    """Validation box accuracy of a trained run by mention type, twin / no-twin frames and state phase
    (STVG rule; needs the world's world_truth.json). Written to run_dir/breakdown.json once.

    ``infer`` ("f", "u" or "both"; cfg.infer) grounds with that branch of the trained model instead of the
    run's own: ``infer="u"`` is the contextual branch U alone (issue 21 item 3: the teacher's own accuracy),
    written to run_dir/breakdown-infer-u.json. Same checkpoint, no retraining."""
    from ..evaluate import RULES, _flatten_predictions, gt_units, iou
    from ..predict import load_run, predict_boxes

    out = run_dir / (f"breakdown-infer-{infer}.json" if infer else BREAKDOWN)
    if out.is_file():
        return read_json(out)
    truth = read_json(data / "world_truth.json")
    r = load_run(run_dir)
    if infer:
        if infer not in ("f", "u", "both"):
            raise DataError(f"infer={infer!r}: expected 'f', 'u' or 'both'")
        if infer != "f" and not getattr(r.model, "uses_u", False):
            raise DataError(f"{run_dir}: preset {r.preset!r} has no contextual branch U to ground with (infer={infer!r})")
        r.model.cfg = r.model.cfg.replace(infer=infer)   # the inference branch only; parameters unchanged
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
    if recorded_error(d) is not None or not (run / "metrics.json").is_file():
        return False
    return not breakdown or d.parent.name in ("random", "upper-bound") or (run / BREAKDOWN).is_file()


def world_sweep(knob: str, values: tuple[float, ...], presets: list[str], data_root: str | Path, out: str | Path,
                seeds: int = DEFAULT_SEEDS, world_preset: str = "curve", world_seed: int = 0,
                world_sets: dict | None = None, overrides: dict[str, Any] | None = None, breakdown: bool = True,
                log=print, run_presets=None) -> pd.DataFrame:
    """Train ``presets`` x ``seeds`` on one world per ``values`` of ``knob``; returns the results table.

    ``run_presets(presets, data, out, overrides, grid=..., log=...)`` trains presets on one dataset into
    one directory: ``sweep.sweep`` (passed in by the `sweep` command; this module does not import it)."""
    from ..run import git_info

    if run_presets is None:
        raise DataError("world_sweep needs run_presets (sweep.sweep)")
    sweep = run_presets

    data_root, out = Path(data_root).resolve(), Path(out)
    world_sets, overrides = dict(world_sets or {}), dict(overrides or {})
    if seeds < 1:
        raise DataError(f"--seeds must be >= 1, got {seeds}")
    if "seed" in overrides:
        raise DataError("a world sweep sets the Config seed per run (--seeds); do not --set seed")
    check_axis_values(knob, values)
    if knob in world_sets:                              # the axis sets the knob per world: one of them would lose
        raise DataError(f"--world-set {knob}={world_sets[knob]} and --axis {knob}=...: the axis sets {knob} for each "
                        f"world; drop {knob} from --world-set (a knob is either held fixed or varied)")
    if "data" in overrides:
        raise DataError(f"--set data={overrides['data']}: a world sweep trains on each world of --data-root; "
                        "do not --set data")
    if len(set(presets)) != len(presets):
        raise DataError(f"presets {list(presets)}: {sorted({p for p in presets if list(presets).count(p) > 1})} "
                        "named twice; name each preset once")

    with folder_lock(out):                              # one writer per sweep folder, for the whole sweep
        return _world_sweep_locked(knob, values, presets, data_root, out, seeds, world_preset, world_seed,
                                   world_sets, overrides, breakdown, log, sweep, git_info)


def _world_sweep_locked(knob, values, presets, data_root, out, seeds, world_preset, world_seed, world_sets,
                        overrides, breakdown, log, sweep, git_info) -> pd.DataFrame:
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

            stores = store_digests(d)                   # skipped only when each run is its row's, on this world
            for p in presets:
                for s in range(seeds):
                    check_run_identity(vd / p / f"seed-{s}", p, wanted_config(p, d, overrides, s), stores, None, d)
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
    from ..run import read_metrics

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
                error = recorded_error(ud)
                if error is not None:
                    row.update(status="failed", error=error)
                elif (run / "metrics.json").is_file():
                    check_run_identity(ud, p, claimed_config(meta.get("overrides") or {}, s))   # the row's run?
                    m = read_metrics(run / "metrics.json")      # the one validating reader of metrics files
                    row["status"] = "ok"
                    row["row"] = _row_name(p, run)
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
                if o in TRAINING_ORACLES and not any(o in (st.get(sp) or {}) for sp in ("validation", "testing")):
                    continue                                     # a world simulated before the oracle existed
                row = {"value": v, "preset": o, "seed": None, "kind": "oracle", "status": "ok"}
                for split, short in (("validation", "val"), ("testing", "test")):
                    for k in ("box_micro", "box_macro"):
                        row[f"{short}_{k}"] = (st.get(split, {}).get(o) or {}).get(k)
                for group in ("by_mention", "by_twin", "by_phase"):
                    for name, a in st.get("validation", {}).get(group, {}).items():
                        row[f"val_{name}"] = (a.get(o) or {}).get("box_micro")
                rows.append(row)
    return pd.DataFrame(rows)


def _row_name(preset: str, run: Path) -> str:
    """``stvg-bert [MiniLM-L6]`` for a run on cached contextual features (the encoder its config.json
    records), else the preset."""
    from ..report.results import display_name

    try:
        d = read_json(run / "config.json")
        return display_name(preset, d.get("config"), d.get("text_encoder"))
    except (OSError, DataError, AttributeError):
        return preset


def summary_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per (value, preset), and the gain over stvg (mean ± std of the per-seed
    paired difference of val box micro)."""
    runs = df[(df["kind"] == "run") & (df["status"] == "ok")]
    num = [c for c in runs.columns if c.startswith(("val_", "test_"))]
    g = runs.groupby(["value", "preset"], sort=False)
    mean, std = g[num].mean(), g[num].std(ddof=1)
    res = mean.add_suffix("_mean").join(std.add_suffix("_std"))
    res["seeds"] = g.size()
    if "row" in runs:
        res["row"] = g["row"].first()
    stvg = runs[runs["preset"] == "stvg"].set_index(["value", "seed"])["val_box_micro"]
    gains = []
    for (v, p), grp in g:
        d = [r["val_box_micro"] - stvg.get((v, r["seed"]), np.nan) for _, r in grp.iterrows()]
        d = np.array([x for x in d if x == x], dtype=np.float64)
        gains.append(((v, p), d.mean() if len(d) else np.nan, d.std(ddof=1) if len(d) > 1 else np.nan))
    res["gain_vs_stvg_mean"] = pd.Series({k: m for k, m, _ in gains})
    res["gain_vs_stvg_std"] = pd.Series({k: s for k, _, s in gains})
    ci = {(v, p): paired(runs, v, p, "stvg") for (v, p), _ in g}
    res["gain_vs_stvg_lo"] = pd.Series({k: c[1] for k, c in ci.items()})
    res["gain_vs_stvg_hi"] = pd.Series({k: c[2] for k, c in ci.items()})
    return res.reset_index()


def paired(runs: pd.DataFrame, value: float, preset: str, baseline: str, col: str = "val_box_micro",
           base_col: str | None = None) -> tuple[float, float, float, int]:
    """(mean, low, high, n): the 95 % Student-t interval over seeds of ``preset[col] - baseline[base_col]``
    at one axis value, paired by seed (NaN bounds with fewer than two seeds)."""
    from ..report.results import t_interval

    r = runs[(runs["kind"] == "run") & (runs["status"] == "ok") & (runs["value"] == value)]
    a = r[r["preset"] == preset].set_index("seed")
    b = r[r["preset"] == baseline].set_index("seed")
    if col not in a or (base_col or col) not in b:
        return np.nan, np.nan, np.nan, 0
    d = (a[col] - b[base_col or col]).dropna()
    return t_interval(list(d))


def _pm(m, s) -> str:
    if m is None or (isinstance(m, float) and np.isnan(m)):
        return ""
    return f"{m:.2f}" if s is None or (isinstance(s, float) and np.isnan(s)) else f"{m:.2f} ± {s:.2f}"


def _gain(r) -> str:
    """Paired gain over stvg: mean ± std [95 % t-interval over seeds]."""
    txt = _pm(r["gain_vs_stvg_mean"], r["gain_vs_stvg_std"])
    lo, hi = r.get("gain_vs_stvg_lo"), r.get("gain_vs_stvg_hi")
    if txt and lo is not None and not pd.isna(lo):
        txt += f" [{lo:+.2f}, {hi:+.2f}]"
    return txt


def results_markdown(out: Path, df: pd.DataFrame) -> str:
    meta = read_json(out / "sweep.json")
    knob = meta["axis"]
    lines = [f"# World sweep: {knob} in {meta['values']}", "",
             f"World preset `{meta['world_preset']}` (seed {meta['world_seed']}, knobs {meta['world_sets'] or 'default'}),"
             f" seeds {meta['seeds']}, overrides {meta['overrides'] or 'none'}. Val/test box accuracy in %, mean ± std "
             "over seeds; gain = per-seed paired difference of val box micro to stvg: mean ± std [95 % Student-t "
             "interval over seeds]. Oracles are training-free (`simulate --stats`)."
             " A row named `preset [encoder]` ran on the cached contextual features of that encoder.", ""]
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
                name = r.get("row")
                cells = [name if isinstance(name, str) and name else r["preset"], str(int(r["seeds"]))]
                for c in ("val_box_micro", "val_box_macro", "test_box_micro"):
                    cells.append(_pm(r.get(f"{c}_mean"), r.get(f"{c}_std")))
                cells.append(_gain(r) if r["preset"] != "stvg" else "")
                cells += [_pm(r.get(f"{c}_mean"), r.get(f"{c}_std")) for c in mention_cols]
                lines.append("| " + " | ".join(cells) + " |")
        here = oracles[oracles["value"] == v]
        for _, r in here.iterrows():
            cells = [f"*{r['preset']}*", "-"] + [_pm(r.get(c), None) for c in ("val_box_micro", "val_box_macro",
                                                                                 "test_box_micro")] + [""]
            cells += [_pm(r.get(c), None) for c in mention_cols]
            lines.append("| " + " | ".join(cells) + " |")
        if len(here):                                            # the world has stats, but from before these oracles
            for o in TRAINING_ORACLES:
                if o not in set(here["preset"]):
                    lines.append("| " + " | ".join([f"*{o}*", "-", "absent (world simulated before this oracle; "
                                                    "re-run `simulate --stats`)"] + [""] * (len(head) - 3)) + " |")
        lines.append("")
    failed = df[df["status"] == "failed"]
    if len(failed):
        lines += ["Failed runs:", ""] + [f"- {r['value']:g} {r['preset']} seed {r['seed']}: {r['error']}"
                                         for _, r in failed.iterrows()]
    if knob == "context" and len(summ):
        lines += ["## Predictions (issue 9), computed from the table above", ""] + predictions(df, meta["values"]) + [""]
    secs = meta.get("seconds", {})
    if secs:
        lines += ["", f"Wall time: {sum(v for v in secs.values() if v):.0f} s over {len(secs)} steps."]
    return "\n".join(lines) + "\n"


# --- the predictions, tested on a context curve ----------------------------------------

CONTEXT_ROWS = ("stvg-bert", "fusion-ensemble", "scl", "scl-infer-u", "scl-infer-both")  # context at inference
PAPER_PATTERN = ("stvg-bert", "fusion-ensemble", "scl")                                # Table 3's deltas to stvg


def _fmt(c) -> str:
    m, lo, hi, n = c
    if n == 0 or pd.isna(m):
        return "n/a"
    return f"{m:+.2f} [{lo:+.2f}, {hi:+.2f}]" if n > 1 else f"{m:+.2f} (1 seed)"


def _verdict(c, want: str) -> str:
    """``want`` '>=0' / '<=0' / '>0': holds | fails | within noise (the interval crosses 0 against the sign)."""
    m, lo, hi, n = c
    if n == 0 or pd.isna(m):
        return "not run"
    ok = m >= 0 if want == ">=0" else m <= 0 if want == "<=0" else m > 0
    if ok:
        return "holds"
    crosses = n > 1 and not pd.isna(lo) and lo <= 0 <= hi
    return "within noise" if crosses else "fails"


def predictions(df: pd.DataFrame, values: list[float]) -> list[str]:
    """P0-P4 of issue 9 and the paper-pattern check, as markdown bullets computed from a context curve's
    per-seed rows (paired by seed, 95 % t-intervals over seeds: ``mean [low, high]``)."""
    from ..report.paper import TABLES

    runs = df[(df["kind"] == "run") & (df["status"] == "ok")]
    orc = df[df["kind"] == "oracle"].set_index(["value", "preset"])
    have = set(runs["preset"])
    vals = sorted(float(v) for v in values)
    out: list[str] = []

    def ci(v, p, base="stvg", col="val_box_micro"):
        return paired(runs, v, p, base, col) if {p, base} <= have else (np.nan, np.nan, np.nan, 0)

    # P0: no gain without context
    if 0.0 in vals:
        a, b = ci(0.0, "scl"), ci(0.0, "stvg-bert")
        noise = a[3] > 1 and a[1] <= 0 <= a[2]
        out.append(f"- **P0** (ρ = 0: scl − stvg within seed noise; stvg-bert ≤ stvg): scl − stvg {_fmt(a)} "
                   f"({'within noise' if noise else 'outside noise' if a[3] > 1 else 'one seed'}); stvg-bert − stvg "
                   f"{_fmt(b)} ({_verdict(b, '<=0')}).")
    else:
        out.append("- **P0**: not testable (no ρ = 0 world in this sweep).")

    # P1: oracle headroom grows with ρ, only in cued mentions
    def head(v, col):
        try:
            return float(orc.loc[(v, "oracle_language"), col] - orc.loc[(v, "oracle_class"), col])
        except KeyError:
            return np.nan
    h = [head(v, "val_box_micro") for v in vals]
    hc, hu = [head(v, "val_cued") for v in vals], [head(v, "val_uncued") for v in vals]
    if not all(np.isnan(h)):
        mono = all(b >= a - 1e-9 for a, b in zip(h, h[1:]))
        leak = max(abs(x) for x in hu if not np.isnan(x)) if not all(np.isnan(hu)) else np.nan
        out.append(f"- **P1** (oracle_language − oracle_class grows with ρ, only in cued mentions): all "
                   f"{' / '.join(f'{x:+.2f}' for x in h)}; cued {' / '.join(f'{x:+.2f}' for x in hc)}; uncued "
                   f"{' / '.join(f'{x:+.2f}' for x in hu)} (ρ = {' / '.join(f'{v:g}' for v in vals)}): "
                   f"{'monotone' if mono else 'not monotone'}, largest uncued |headroom| {leak:.2f} "
                   f"({'holds' if mono and leak < 0.5 else 'fails'}; the language oracle uses the class query on "
                   "uncued mentions, so this part is true by construction).")
        top = vals[-1]
        leaks = [f"{p} {_fmt(ci(top, p, col='val_uncued'))}" for p in CONTEXT_ROWS if p in have]
        if leaks and "val_uncued" in runs:
            out[-1] += (f" The trained rows' leak test, gain over stvg on uncued mentions at ρ = {top:g} (a gain "
                        "there is not the stated-state mechanism): " + "; ".join(leaks) + ".")

    # the training-time headroom (issue 21): SCL infers with E_f alone, so this, not P1's, is its yardstick
    def em_head(v):
        try:
            return float(orc.loc[(v, "oracle_teacher_em"), "val_box_micro"]
                         - orc.loc[(v, "oracle_class_em"), "val_box_micro"])
        except KeyError:
            return np.nan
    he = [em_head(v) for v in vals]
    if not all(np.isnan(he)):
        out.append("- **Training-time headroom** (oracle_teacher_em − oracle_class_em, val box micro; SCL's yardstick, "
                   "it infers with E_f alone): " + " / ".join("absent" if np.isnan(x) else f"{x:+.2f}" for x in he)
                   + f" (ρ = {' / '.join(f'{v:g}' for v in vals)}).")

    # P2: context-using rows gain more as ρ grows; where stvg-bert overtakes stvg
    parts = []
    for p in CONTEXT_ROWS:
        if p not in have:
            continue
        g = [ci(v, p)[0] for v in vals]
        ok = [(v, x) for v, x in zip(vals, g) if not np.isnan(x)]
        if len(ok) < 2:
            continue
        slope = float(np.polyfit([v for v, _ in ok], [x for _, x in ok], 1)[0])
        parts.append(f"{p} {' / '.join(f'{x:+.2f}' for _, x in ok)} (slope {slope:+.2f} per unit ρ)")
    over_mean = [v for v in vals if ci(v, "stvg-bert")[0] > 0]
    over_sig = [v for v in vals if ci(v, "stvg-bert")[1] > 0]
    p2 = "- **P2** (context-using rows gain more as ρ grows): gain over stvg by ρ: " + "; ".join(parts)
    p2 += (f". stvg-bert's mean is above stvg from ρ = {over_mean[0]:g}" if over_mean else
           ". stvg-bert's mean is never above stvg")
    p2 += (f"; its interval is above 0 from ρ = {over_sig[0]:g}." if over_sig else "; its interval never clears 0.")
    out.append(p2)

    # P3: scl's gains come from twin-free frames
    if {"scl", "stvg"} <= have and "val_with_twin" in runs:
        cells = [f"ρ = {v:g}: twin {_fmt(ci(v, 'scl', col='val_with_twin'))}, twin-free "
                 f"{_fmt(ci(v, 'scl', col='val_without_twin'))}" for v in vals]
        out.append("- **P3** (scl − stvg; scored with E_f alone, scl cannot separate same-class twins): "
                   + "; ".join(cells) + ".")

    # P4: stvg >= dvsa once nesting, hands and mid-segment entry exist
    if {"dvsa", "stvg"} <= have:
        cells = []
        for v in vals:
            c = ci(v, "stvg", base="dvsa")
            cells.append(f"ρ = {v:g}: {_fmt(c)} ({_verdict(c, '>=0')})")
        out.append("- **P4** (stvg − dvsa ≥ 0): " + "; ".join(cells) + ".")

    # the paper's pattern: stvg-bert below stvg, the ensemble slightly above, scl about +1.7
    rows = {r.preset: r for r in TABLES["table3"].rows}
    if "stvg" in rows and set(PAPER_PATTERN) <= have:
        base = rows["stvg"].numbers["validation"]["box_micro"]
        want = {p: rows[p].numbers["validation"]["box_micro"] - base for p in PAPER_PATTERN}
        match = []
        for v in vals:
            c = {p: ci(v, p) for p in PAPER_PATTERN}
            signs = all(np.sign(c[p][0]) == np.sign(want[p]) for p in PAPER_PATTERN)
            scl = c["scl"]
            covers = scl[3] > 1 and scl[1] <= want["scl"] <= scl[2]
            if signs and covers:
                match.append(v)
        out.append("- **Paper pattern** (val box micro − stvg: " + ", ".join(f"{p} {want[p]:+.2f}" for p in PAPER_PATTERN)
                   + "; a ρ matches when every sign agrees and scl's interval covers the paper's gain): "
                   + (f"reproduced at ρ = {', '.join(f'{v:g}' for v in match)}." if match else
                      "reproduced at no ρ: on this evidence the simulated mechanism does not explain the paper's results."))
    return out


def load_frame(out: str | Path) -> pd.DataFrame:
    """The results of a world sweep: from its run directories, or from results.csv in a committed copy
    that holds only sweep.json and the tables."""
    out = Path(out)
    meta = read_json(out / "sweep.json")
    if any((out / value_name(meta["axis"], v)).is_dir() for v in meta["values"]):
        return results_frame(out)
    if not (out / "results.csv").is_file():
        raise DataError(f"{out}: neither run directories nor results.csv")
    from ..report.results import read_results_csv

    path = out / "results.csv"
    df = read_results_csv(path, required=("value", "preset", "kind", "status", "val_box_micro"))
    values = {float(v) for v in meta["values"]}
    names = set(meta["presets"]) | set(ORACLES)
    for n, (v, p) in enumerate(zip(df["value"], df["preset"]), 2):
        if float(v) not in values or p not in names:
            raise DataError(f"{path}:{n}: row ({meta['axis']}={v}, {p!r}) is not one of the sweep's (sweep.json: values "
                            f"{meta['values']}, presets {meta['presets']} and the oracles)")
    return df


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
    headroom (oracle_class .. oracle_language, and .. oracle_state) as bands, the training-time headroom
    (oracle_class_em .. oracle_teacher_em) as a band and oracle_class_box as a line where the worlds have them."""
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
        # the training-time headroom (issue 21), at the values whose world has the EM oracles
        if {"oracle_class_em", "oracle_teacher_em"} <= set(orc.columns):
            em = orc[["oracle_class_em", "oracle_teacher_em"]].dropna()
            xe, lo, hi_ = list(em.index), list(em["oracle_class_em"]), list(em["oracle_teacher_em"])
            if xe:
                name, color = "training-time headroom (oracle_class_em .. oracle_teacher_em)", "rgba(200,120,30,0.25)"
                fig.add_trace(go.Scatter(x=xe + xe[::-1], y=hi_ + lo[::-1], fill="toself", fillcolor=color,
                                         mode="lines", line=dict(width=0), name=name, legendgroup="em"), 1, 1)
                fig.add_trace(go.Scatter(x=xe + xe[::-1], y=[h - l for h, l in zip(hi_, lo)] + [0] * len(xe),
                                         fill="toself", fillcolor=color, mode="lines", line=dict(width=0), name=name,
                                         legendgroup="em", showlegend=False), 1, 2)
        if "oracle_class_box" in orc.columns:
            box = orc["oracle_class_box"].dropna()
            if len(box):
                fig.add_trace(go.Scatter(x=list(box.index), y=list(box), mode="lines", name="oracle_class_box "
                                         "(box-supervised class ceiling)", line=dict(color="gray", dash="dot")), 1, 1)
    palette = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
    for i, p in enumerate(presets or meta["presets"]):
        r = summ[summ["preset"] == p].sort_values("value")
        if not len(r):
            continue
        c = palette[i % len(palette)]
        rows = r["row"].dropna() if "row" in r else []                # "stvg-bert [MiniLM-L6]": the encoder that ran
        name = str(rows.iloc[0]) if len(rows) else p
        fig.add_trace(go.Scatter(x=r["value"], y=r["val_box_micro_mean"], name=name, mode="lines+markers",
                                 line=dict(color=c), legendgroup=p,
                                 error_y=dict(type="data", array=r["val_box_micro_std"].fillna(0))), 1, 1)
        if p != "stvg":
            fig.add_trace(go.Scatter(x=r["value"], y=r["gain_vs_stvg_mean"], name=name, mode="lines+markers",
                                     line=dict(color=c), legendgroup=p, showlegend=False,
                                     error_y=dict(type="data", array=r["gain_vs_stvg_std"].fillna(0))), 1, 2)
    fig.add_hline(y=0, line=dict(color="black", width=1), row=1, col=2)
    fig.update_xaxes(title_text=meta["axis"] + (" (ρ)" if meta["axis"] == "context" else ""))
    fig.update_layout(width=1200, height=500, title=f"{meta['axis']} curve · world {meta['world_preset']} · "
                      f"{len(meta['seeds'])} seed(s)")
    return fig
