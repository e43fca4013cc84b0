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

Every step is skipped when its output is there (worlds, runs, breakdowns): a sweep resumes. The tables and the
figure: ``report.curve``.
"""
from __future__ import annotations

import functools
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..evaluate import RULES, _flatten_predictions, gt_units, iou
from .identity import folder_lock, store_digests, wanted_config
from ..io import DataError, read_json, write_json
from ..predict import load_run, predict_boxes
from ..prepare import prepare
from ..report.curve import BREAKDOWN, value_name, write_results
from ..report.runs import RUN, check_run_identity, recorded_error
from ..run import git_info
from ..sim.knobs import parse_world_sets
from ..sim.simulate import DEFAULT_WORLD, WORLDS, ensure_dataset
from .sweep import sweep as grid_sweep

AXES = {"context": ("context", (0.0, 0.25, 0.5, 0.75, 0.9))}
CURVE_PRESETS = ("dvsa", "stvg", "stvg-bert", "fusion-ensemble", "scl", "scl-infer-u", "scl-infer-both")
DEFAULT_SEEDS = 3


def parse_axis(text: str) -> tuple[str, tuple[float, ...]]:
    """``KNOB=V1,V2,...`` -> (knob, values); the knob and every value are checked by world v2's parser."""
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
                 text_from: Path | None = None, log=print, world: str = DEFAULT_WORLD) -> Path:
    """The prepared world (simulated, stores, text features) of one axis value under ``data_root``; ``world``: a
    name of ``sim.simulate.WORLDS``."""
    knobs = WORLDS[world].parse_sets({**world_sets, knob: value}, where="world sweep")
    d = data_root / value_name(knob, value)
    t0 = time.time()
    ensure_dataset(d, preset=preset, seed=seed, knobs=knobs, world=world)
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
    run = d / RUN
    if recorded_error(d) is not None or not (run / "metrics.json").is_file():
        return False
    return not breakdown or d.parent.name in ("random", "upper-bound") or (run / BREAKDOWN).is_file()


def world_sweep(knob: str, values: tuple[float, ...], presets: list[str], data_root: str | Path, out: str | Path,
                seeds: int = DEFAULT_SEEDS, world_preset: str = "curve", world_seed: int = 0,
                world_sets: dict | None = None, overrides: dict[str, Any] | None = None, breakdown: bool = True,
                log=print, sweep_options: dict[str, Any] | None = None, world: str = DEFAULT_WORLD) -> pd.DataFrame:
    """Train ``presets`` x ``seeds`` on one world (of generator ``world``) per ``values`` of ``knob``; returns the
    results table.

    Each world's runs are one grid sweep (``experiments.sweep.sweep``) with ``sweep_options`` (jobs, executor,
    cluster options, run mode)."""
    sweep = functools.partial(grid_sweep, **(sweep_options or {}))

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
                                   world_sets, overrides, breakdown, log, sweep, git_info, world)


def _world_sweep_locked(knob, values, presets, data_root, out, seeds, world_preset, world_seed, world_sets,
                        overrides, breakdown, log, sweep, git_info, world) -> pd.DataFrame:
    meta_path = out / "sweep.json"
    meta = {"grid": "world", "axis": knob, "values": list(values), "presets": list(presets),
            "seeds": list(range(seeds)), "data_root": str(data_root), "world": world, "world_preset": world_preset,
            "world_seed": world_seed, "world_sets": world_sets, "overrides": overrides, "git": git_info(),
            "seconds": {}}
    if meta_path.is_file():
        old = {"world": DEFAULT_WORLD, **read_json(meta_path)}     # a sweep.json from before --world: world v2
        for k in ("axis", "world", "world_preset", "world_seed", "world_sets", "overrides"):
            if old.get(k) != meta[k]:
                raise DataError(f"{meta_path}: holds a sweep with {k}={old.get(k)!r}, not {meta[k]!r}; use another --out")
        meta["seconds"] = old.get("seconds", {})
    write_json(meta_path, meta, indent=2)
    first = None
    for v in values:
        t0 = time.time()
        d = ensure_world(data_root, knob, v, world_preset, world_seed, world_sets, text_from=first, log=log,
                         world=world)
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
                    run = vd / p / f"seed-{s}" / RUN
                    if p not in ("random", "upper-bound") and (run / "metrics.json").is_file():
                        try:
                            run_breakdown(run, d)
                        except DataError as e:
                            log(f"breakdown {run}: {e}")
        meta["seconds"][value_name(knob, v)] = round(time.time() - t0, 1)
        write_json(meta_path, meta, indent=2)
        write_results(out)
    return write_results(out)
