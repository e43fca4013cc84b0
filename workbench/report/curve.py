"""The tables and the figure of a world sweep (``experiments.world_sweep``; ``sweep --grid context``): one row per
(axis value, preset, seed) and one per (value, oracle) in the schema of ``report.results``, mean ± std and the
paired gain over stvg per value, the issue-9 predictions computed from them, and the curve.

SWEEP_DIR/results.csv                        one row per (value, preset, seed), oracle rows per value
SWEEP_DIR/results.md                         mean ± std per (value, preset), gain over stvg, oracles, breakdowns
SWEEP_DIR/<knob>-<value>/<preset>/seed-<s>/run/breakdown.json   val box accuracy by mention type / twin / phase

A committed copy (figures/context_curve: sweep.json and the tables, no run folders) is read from its results.csv
(``load_frame``), also one written before the schema's names (``val_box_micro``, ``row``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..io import DataError, read_json, write_text
from .paper import TABLES
from .results import column, paired, paired_diffs, pm, read_results_csv, t_interval, write_table
from .runs import RUN, read_unit, run_label

ORACLES = ("random", "upper_bound", "oracle_class", "oracle_language", "oracle_state",
           "oracle_class_em", "oracle_teacher_em", "oracle_class_box")
# The training-time oracles (issue 21; SIMULATOR.md "Which oracle bounds which method"): a world simulated
# before them has none in its world_stats.json; the table shows them as absent, the figure leaves them out.
TRAINING_ORACLES = ("oracle_class_em", "oracle_teacher_em", "oracle_class_box")
BREAKDOWN = "breakdown.json"
BREAKDOWN_GROUPS = ("by_mention", "by_twin", "by_phase")
WORLD_METRICS = ("box_micro", "box_macro", "query_micro", "query_macro")     # a run's row, in this order
ORACLE_METRICS = ("box_micro", "box_macro")                                   # an oracle's row (world_stats.json)
# the breakdown columns of results.md (validation box micro on the units of each subset)
SUBSETS = ("cued", "carried", "uncued", "pronoun", "with_twin", "without_twin", "before_change", "after_change")


def value_name(knob: str, value: float) -> str:
    """The folder of one axis value (world and sweep): ``context-0.5``."""
    return f"{knob}-{value:g}"


def val(subset: str = "") -> str:
    """The schema's column of validation box micro (on ``subset``'s units only, when given)."""
    return column("validation", "box_micro", subset)


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
                run = ud / RUN
                row: dict[str, Any] = {"value": v, "preset": p, "seed": s, "kind": "run", "status": "missing"}
                status, error, m = read_unit(ud, p, s, meta.get("overrides"))     # the row's run? its metrics
                if status == "failed":
                    row.update(status="failed", error=error)
                elif status == "ok":
                    row["status"] = "ok"
                    row["label"] = run_label(p, run)
                    for split in ("validation", "testing"):
                        for k in WORLD_METRICS:
                            row[column(split, k)] = (m.get(split) or {}).get(k)
                    if (run / BREAKDOWN).is_file():
                        b = read_json(run / BREAKDOWN)
                        for group in BREAKDOWN_GROUPS:
                            for name, a in b[group].items():
                                row[val(name)] = a["box_micro"]
                rows.append(row)
        stats = world / "world_stats.json"
        if stats.is_file():
            rows += oracle_rows(v, read_json(stats))
    return pd.DataFrame(rows)


def oracle_rows(value: float, st: dict) -> list[dict]:
    """One row per oracle a world's world_stats.json holds (``value``: the world's axis value)."""
    rows = []
    for o in ORACLES:
        if o in TRAINING_ORACLES and not any(o in (st.get(sp) or {}) for sp in ("validation", "testing")):
            continue                                     # a world simulated before the oracle existed
        row = {"value": value, "preset": o, "seed": None, "kind": "oracle", "status": "ok"}
        for split in ("validation", "testing"):
            for k in ORACLE_METRICS:
                row[column(split, k)] = (st.get(split, {}).get(o) or {}).get(k)
        for group in BREAKDOWN_GROUPS:
            for name, a in st.get("validation", {}).get(group, {}).items():
                row[val(name)] = (a.get(o) or {}).get("box_micro")
        rows.append(row)
    return rows


def refresh_oracles(out: str | Path, worlds: str | Path, tol: float = 1e-4) -> pd.DataFrame:
    """Replace the oracle rows of a world sweep's committed copy (``out``: sweep.json + results.csv) by those of
    its worlds simulated again under ``worlds`` (``worlds/<knob>-<value>/world_stats.json``), e.g. to add oracles
    defined after the sweep ran. Each world must give the copy's existing oracle numbers again (the same world;
    results.csv keeps 4 decimals, ``tol``), else DataError naming the world, oracle and column. Rewrites
    results.csv and results.md; returns the new frame."""
    out, worlds = Path(out), Path(worlds)
    meta = read_json(out / "sweep.json")
    df = load_frame(out)
    parts = []
    for v in meta["values"]:
        stats = worlds / value_name(meta["axis"], v) / "world_stats.json"
        if not stats.is_file():
            raise DataError(f"{stats}: not found (simulate the world {meta['axis']}={v} with --stats first)")
        new = pd.DataFrame(oracle_rows(v, read_json(stats)))
        here = df["value"].astype(float) == float(v)
        old = df[here & (df["kind"] == "oracle")]
        for _, r in old.iterrows():
            match = new[new["preset"] == r["preset"]]
            if match.empty:
                raise DataError(f"{stats}: no {r['preset']} (results.csv of {out} has it)")
            for c in [c for c in old.columns if c.startswith(("validation_", "testing_")) and pd.notna(r[c])]:
                got = match.iloc[0].get(c)
                if got is None or pd.isna(got) or abs(float(got) - float(r[c])) > tol:
                    raise DataError(f"{stats}: {r['preset']} {c} = {got}, but results.csv of {out} has {r[c]}: "
                                    f"not the world the sweep ran on")
        parts += [df[here & (df["kind"] != "oracle")], new]
    fresh = pd.concat(parts, ignore_index=True)
    write_table(fresh, out / "results.csv")
    write_text(out / "results.md", results_markdown(out, fresh))
    return fresh


def summary_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per (value, preset), and the gain over stvg (mean ± std of the per-seed
    paired difference of val box micro, and its 95 % t-interval: ``results.paired``)."""
    runs = df[(df["kind"] == "run") & (df["status"] == "ok")]
    num = [c for c in runs.columns if c.startswith(("validation_", "testing_"))]
    g = runs.groupby(["value", "preset"], sort=False)
    mean, std = g[num].mean(), g[num].std(ddof=1)
    res = mean.add_suffix("_mean").join(std.add_suffix("_std"))
    res["seeds"] = g.size()
    if "label" in runs:
        res["label"] = g["label"].first()
    gains = {}
    for (v, p), _ in g:
        d = paired_diffs(runs[runs["value"] == v], p, "stvg", val())
        gains[(v, p)] = (np.mean(d) if d else np.nan, np.std(d, ddof=1) if len(d) > 1 else np.nan, t_interval(d))
    res["gain_vs_stvg_mean"] = pd.Series({k: m for k, (m, _, _) in gains.items()})
    res["gain_vs_stvg_std"] = pd.Series({k: sd for k, (_, sd, _) in gains.items()})
    res["gain_vs_stvg_lo"] = pd.Series({k: c[1] for k, (_, _, c) in gains.items()})
    res["gain_vs_stvg_hi"] = pd.Series({k: c[2] for k, (_, _, c) in gains.items()})
    return res.reset_index()


def _gain(r) -> str:
    """Paired gain over stvg: mean ± std [95 % t-interval over seeds]."""
    txt = pm(r["gain_vs_stvg_mean"], r["gain_vs_stvg_std"])
    lo, hi = r.get("gain_vs_stvg_lo"), r.get("gain_vs_stvg_hi")
    if txt and lo is not None and not pd.isna(lo):
        txt += f" [{lo:+.2f}, {hi:+.2f}]"
    return txt


def results_markdown(out: Path, df: pd.DataFrame) -> str:
    """results.md of a world sweep: per axis value, mean ± std of each preset, its gain over stvg, the oracles
    and the breakdowns; failed runs; the predictions of issue 9 (context axis); the wall time."""
    meta = read_json(Path(out) / "sweep.json")
    knob = meta["axis"]
    lines = [f"# World sweep: {knob} in {meta['values']}", "",
             f"World {meta.get('world', 'v2')}, preset `{meta['world_preset']}` (seed {meta['world_seed']}, knobs "
             f"{meta['world_sets'] or 'default'}),"
             f" seeds {meta['seeds']}, overrides {meta['overrides'] or 'none'}. Val/test box accuracy in %, mean ± std "
             "over seeds; gain = per-seed paired difference of val box micro to stvg: mean ± std [95 % Student-t "
             "interval over seeds]. Oracles are training-free (`simulate --stats`)."
             " A row named `preset [encoder]` ran on the cached contextual features of that encoder.", ""]
    summ = summary_frame(df) if len(df[(df["kind"] == "run") & (df["status"] == "ok")]) else pd.DataFrame()
    oracles = df[df["kind"] == "oracle"]
    mention_cols = [val(sub) for sub in SUBSETS]
    main_cols = [val(), column("validation", "box_macro"), column("testing", "box_micro")]
    head = ["row", "seeds", "val box micro", "val box macro", "test box micro", "gain vs stvg (val micro)"] + \
        [sub.replace("_", " ") for sub in SUBSETS]
    for v in meta["values"]:
        lines += [f"## {knob} = {v:g}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        if len(summ):
            for _, r in summ[summ["value"] == v].iterrows():
                name = r.get("label")
                cells = [name if isinstance(name, str) and name else r["preset"], str(int(r["seeds"]))]
                for c in main_cols:
                    cells.append(pm(r.get(f"{c}_mean"), r.get(f"{c}_std")))
                cells.append(_gain(r) if r["preset"] != "stvg" else "")
                cells += [pm(r.get(f"{c}_mean"), r.get(f"{c}_std")) for c in mention_cols]
                lines.append("| " + " | ".join(cells) + " |")
        here = oracles[oracles["value"] == v]
        for _, r in here.iterrows():
            cells = [f"*{r['preset']}*", "-"] + [pm(r.get(c), None) for c in main_cols] + [""]
            cells += [pm(r.get(c), None) for c in mention_cols]
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
    runs = df[(df["kind"] == "run") & (df["status"] == "ok")]
    orc = df[df["kind"] == "oracle"].set_index(["value", "preset"])
    have = set(runs["preset"])
    vals = sorted(float(v) for v in values)
    out: list[str] = []

    def ci(v, p, base="stvg", col=val()):
        return paired(runs[runs["value"] == v], p, base, col) if {p, base} <= have else (np.nan, np.nan, np.nan, 0)

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
    h = [head(v, val()) for v in vals]
    hc, hu = [head(v, val("cued")) for v in vals], [head(v, val("uncued")) for v in vals]
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
        leaks = [f"{p} {_fmt(ci(top, p, col=val('uncued')))}" for p in CONTEXT_ROWS if p in have]
        if leaks and val("uncued") in runs:
            out[-1] += (f" The trained rows' leak test, gain over stvg on uncued mentions at ρ = {top:g} (a gain "
                        "there is not the stated-state mechanism): " + "; ".join(leaks) + ".")

    # the training-time headroom (issue 21): SCL infers with E_f alone, so this, not P1's, is its yardstick
    def em_head(v):
        try:
            return float(orc.loc[(v, "oracle_teacher_em"), val()] - orc.loc[(v, "oracle_class_em"), val()])
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
    if {"scl", "stvg"} <= have and val("with_twin") in runs:
        cells = [f"ρ = {v:g}: twin {_fmt(ci(v, 'scl', col=val('with_twin')))}, twin-free "
                 f"{_fmt(ci(v, 'scl', col=val('without_twin')))}" for v in vals]
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
    path = out / "results.csv"
    df = read_results_csv(path, required=("value", "preset", "kind", "status", val()))   # also the old names
    values = {float(v) for v in meta["values"]}
    names = set(meta["presets"]) | set(ORACLES)
    for n, (v, p) in enumerate(zip(df["value"], df["preset"]), 2):
        if float(v) not in values or p not in names:
            raise DataError(f"{path}:{n}: row ({meta['axis']}={v}, {p!r}) is not one of the sweep's (sweep.json: values "
                            f"{meta['values']}, presets {meta['presets']} and the oracles)")
    return df


def write_results(out: str | Path) -> pd.DataFrame:
    """Write SWEEP_DIR/results.csv (per-seed and oracle rows) and results.md; returns the per-seed table."""
    out = Path(out)
    df = results_frame(out)
    write_table(df, out / "results.csv")
    write_text(out / "results.md", results_markdown(out, df))
    return df


# --- figure ----------------------------------------------------------------------------------

def curve_figure(out: str | Path, presets: tuple[str, ...] | None = None):
    """Accuracy (left) and gain over stvg (right) vs the axis value, mean ± std over seeds; the oracle
    headroom (oracle_class .. oracle_language, and .. oracle_state) as bands, the training-time headroom
    (oracle_class_em .. oracle_teacher_em) as a band and oracle_class_box as a line where the worlds have them."""
    import plotly.graph_objects as go  # plotly: loaded only to draw (the tables do not need it)
    from plotly.subplots import make_subplots  # plotly: as above

    out = Path(out)
    meta = read_json(out / "sweep.json")
    df = load_frame(out)
    summ = summary_frame(df)
    orc = df[df["kind"] == "oracle"].pivot(index="value", columns="preset", values=val()).sort_index()
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
        rows = r["label"].dropna() if "label" in r else []            # "stvg-bert [MiniLM-L6]": the encoder that ran
        name = str(rows.iloc[0]) if len(rows) else p
        fig.add_trace(go.Scatter(x=r["value"], y=r[f"{val()}_mean"], name=name, mode="lines+markers",
                                 line=dict(color=c), legendgroup=p,
                                 error_y=dict(type="data", array=r[f"{val()}_std"].fillna(0))), 1, 1)
        if p != "stvg":
            fig.add_trace(go.Scatter(x=r["value"], y=r["gain_vs_stvg_mean"], name=name, mode="lines+markers",
                                     line=dict(color=c), legendgroup=p, showlegend=False,
                                     error_y=dict(type="data", array=r["gain_vs_stvg_std"].fillna(0))), 1, 2)
    fig.add_hline(y=0, line=dict(color="black", width=1), row=1, col=2)
    fig.update_xaxes(title_text=meta["axis"] + (" (ρ)" if meta["axis"] == "context" else ""))
    fig.update_layout(width=1200, height=500, title=f"{meta['axis']} curve · world {meta.get('world', 'v2')} "
                      f"{meta['world_preset']} · "
                      f"{len(meta['seeds'])} seed(s)")
    return fig
