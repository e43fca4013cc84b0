"""The results of sweeps as tables: the one column schema, the one reader of results.csv files, per-seed
rows summarised (mean ± std), paired differences with a 95 % interval, learning curves, the names that
tell which text encoder a row ran, and the markdown of a grid's table.

Reusable by any grid of runs (grid sweeps ``report.grid``, world sweeps ``report.curve``, studies):
everything works on a per-seed frame with a ``preset`` (the row key), a ``seed`` and metric columns named
by the schema below.

Intervals: the difference of a row and the baseline row is taken per seed (both trained with the
same seed, hence the same data order, frames and negatives), and the 95 % interval is Student's t
over those per-seed differences: mean ± t_{0.975, n-1} · sd / sqrt(n). With one seed there is no
interval (NaN).
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats  # installed with scikit-learn

from ..io import DataError, atomic_path, is_percentage
from ..run import read_log
from .paper import METRICS, SPLITS

# --- the one column schema ---------------------------------------------------------------------------
# Every results frame and results.csv (grid sweeps, world sweeps, studies, figures, notebooks) names a metric
# ``<split>_<metric>`` (validation_box_micro) and a metric on a subset of the units ``<split>_<subset>_<metric>``
# (testing_heldout_query_micro; a world sweep's validation_cued_box_micro); the name a row is shown under is
# ``label``. World sweeps written before one schema (figures/context_curve) said ``val_`` / ``test_`` (``val_cued``:
# val box micro on cued mentions) and ``row``: ``read_results_csv`` reads them under the names of today.

METRIC_COLS = [f"{s}_{m}" for s in SPLITS for m in METRICS]
# generalization protocol (dataset.json holdout_classes): the same metrics on held-out-class objects only
HELDOUT_METRICS = ("query_micro", "query_macro", "box_micro")
HELDOUT_COLS = [f"{s}_heldout_{m}" for s in SPLITS for m in HELDOUT_METRICS]
OLD_SPLITS = {"val": "validation", "test": "testing"}       # a world sweep's column prefixes before one schema
OLD_NAMES = {"row": "label"}


def column(split: str, metric: str, subset: str = "") -> str:
    """The schema's column of ``metric`` on ``split`` (on the units of ``subset`` only, when given)."""
    return f"{split}_{subset}_{metric}" if subset else f"{split}_{metric}"


def canonical_column(name: str) -> str:
    """The schema's name of a results.csv column, also of the old world-sweep names (``val_box_micro`` ->
    ``validation_box_micro``, ``val_cued`` -> ``validation_cued_box_micro``, ``row`` -> ``label``)."""
    if name in OLD_NAMES:
        return OLD_NAMES[name]
    short, _, rest = name.partition("_")
    if short in OLD_SPLITS and rest:
        return column(OLD_SPLITS[short], rest) if rest in METRICS else column(OLD_SPLITS[short], "box_micro", rest)
    return name


# --- reading and writing results.csv: the one validating reader ----------------------------------
# metrics.json of a run: ``run.read_metrics`` (train, predict, grid and world sweeps, figures); a results.csv
# (grid sweep or world sweep, or their committed copies): ``read_results_csv``. Both refuse a number that is
# not an accuracy in [0, 100] naming the file and the key / line and column.

STATUSES = ("ok", "failed", "missing", "not implemented", "not run")
ACCURACY_PREFIXES = ("validation_", "testing_", "paper_validation_", "paper_testing_", "val_", "test_")
_NUMBER_COLS = {"value": "a finite number", "seed": "an integer >= 0", "selected_epoch": "an integer >= 0",
                "seconds": "a number >= 0"}
_TEXT_CHOICES = {"status": STATUSES, "kind": ("run", "oracle")}


def _number_ok(col: str, x: float) -> bool:
    if not math.isfinite(x):
        return False
    if col in ("seed", "selected_epoch"):
        return x >= 0 and float(x).is_integer()
    return col != "seconds" or x >= 0


def _check_header(path: Path, head: list[str], required: Sequence[str]) -> None:
    """No column twice (also not under its old and its new name), and the ``required`` columns (schema names) there."""
    names = [canonical_column(c) for c in head]
    dup = sorted({c for c in head if head.count(c) > 1})
    twice = sorted({c for c in names if names.count(c) > 1})
    missing = [c for c in required if c not in names]
    if dup:
        raise DataError(f"{path}: header names {dup} twice")
    if twice:
        raise DataError(f"{path}: header names {twice} twice (under its old and its new name)")
    if missing:
        raise DataError(f"{path}: header lacks the column(s) {missing}")


def read_results_csv(path: str | Path, required: Sequence[str] = ()) -> pd.DataFrame:
    """Read a results.csv strictly (a hand-edited or cut copy is refused, never drawn): every line has the
    header's fields, accuracy columns (``<split>_<metric>``, ``paper_*``, old ``val_*`` / ``test_*``) are empty or
    percentages in [0, 100], ``value`` / ``seed`` / ``seconds`` / ``selected_epoch`` numbers in range, ``status``
    and ``kind`` known words, and the ``required`` columns (schema names) present. DataError naming the file,
    line and column as the file names it. The frame's columns are the schema's (``canonical_column``)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        lines = list(csv.reader(io.StringIO(path.read_text()), strict=True))
    except (csv.Error, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a readable CSV file ({e})") from None
    if not lines or not lines[0]:
        raise DataError(f"{path}: empty; expected a header line and one line per row")
    head = lines[0]
    _check_header(path, head, required)
    for n, row in enumerate(lines[1:], 2):
        if not row:
            continue                                    # a blank line
        if len(row) != len(head):
            raise DataError(f"{path}:{n}: {len(row)} fields, the header has {len(head)} (a cut or edited line?)")
        for col, v in zip(head, row):
            if v == "":
                continue
            if col.startswith(ACCURACY_PREFIXES) or col in _NUMBER_COLS:
                try:
                    x = float(v)
                except ValueError:
                    x = math.nan
                ok = is_percentage(x) if col.startswith(ACCURACY_PREFIXES) else _number_ok(col, x)
                if not ok:
                    what = ("a percentage in [0, 100] or empty" if col.startswith(ACCURACY_PREFIXES)
                            else _NUMBER_COLS[col])
                    raise DataError(f"{path}:{n}: column {col!r} must be {what}, got {v!r}")
            elif col in _TEXT_CHOICES and v not in _TEXT_CHOICES[col]:
                raise DataError(f"{path}:{n}: column {col!r} must be one of {_TEXT_CHOICES[col]}, got {v!r}")
    return pd.read_csv(path).rename(columns=canonical_column)


def write_table(df: pd.DataFrame, path: str | Path) -> None:
    """A results frame as CSV (results.csv, learning_curves.csv): atomically, numbers with four decimals."""
    with atomic_path(Path(path)) as tmp:
        df.to_csv(tmp, index=False, float_format="%.4f")


# --- names ---------------------------------------------------------------------------------------

def uses_lm_encoder(cfg: dict[str, Any]) -> bool:
    """Whether a run's config reads the cached contextual LM features (c(o), c(S))."""
    ctx = cfg.get("context_branch") or cfg.get("query") in ("context", "fusion", "selector")
    return bool(ctx) and cfg.get("context_encoder", "lm") == "lm"


def display_name(preset: str, cfg: dict[str, Any] | None, encoder: str | None) -> str:
    """The row name of a run: the preset, plus ``[encoder]`` when it ran on cached contextual features
    (``stvg-bert [MiniLM-L6]``: the preset is named after the paper's BERT, the cache held MiniLM-L6)."""
    if cfg and encoder and uses_lm_encoder(cfg):
        return f"{preset} [{encoder}]"
    return preset


# --- statistics ----------------------------------------------------------------------------------

def t_interval(diffs: Sequence[float], level: float = 0.95) -> tuple[float, float, float, int]:
    """(mean, low, high, n) of the Student-t interval of the mean of ``diffs`` (NaN bounds for n < 2)."""
    x = np.asarray([d for d in diffs if d is not None and not pd.isna(d)], dtype=float)
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(x.mean())
    if n < 2:
        return mean, math.nan, math.nan, n
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half, n


def summarize(df: pd.DataFrame, by: str = "preset", metrics: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per ``by`` value (in first-seen order) from per-seed rows: ``<metric>`` the mean over the
    seeds whose status is ok, ``<metric>_std`` their sample std (NaN for one seed), ``n_seeds`` the
    number of ok seeds, ``seeds`` their list, ``status`` ok | partial (some seeds failed) | failed |
    missing, ``error`` the first failure, and the first row's ``label`` and ``paper_*`` columns."""
    metrics = list(metrics) if metrics is not None else [c for c in METRIC_COLS + HELDOUT_COLS if c in df.columns]
    rows = []
    for key in dict.fromkeys(df[by]):
        g = df[df[by] == key]
        ok = g[g["status"] == "ok"] if "status" in g else g
        first = g.iloc[0]
        row: dict[str, Any] = {by: key, "label": first.get("label", key)}
        statuses = set(g["status"]) if "status" in g else {"ok"}
        row["status"] = ("ok" if statuses == {"ok"} else "partial" if len(ok) else
                         "failed" if "failed" in statuses else
                         next(iter(statuses)) if len(statuses) == 1 else "missing")   # e.g. "not implemented"
        errs = [e for e in g.get("error", pd.Series(dtype=str)).tolist() if isinstance(e, str) and e]
        row["error"] = errs[0] if errs else ""
        row["n_seeds"] = int(len(ok))
        row["seeds"] = [int(s) for s in ok["seed"] if not pd.isna(s)] if "seed" in ok else []
        for m in metrics:
            vals = pd.to_numeric(ok[m], errors="coerce").dropna() if m in ok else pd.Series(dtype=float)
            row[m] = float(vals.mean()) if len(vals) else math.nan
            row[f"{m}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else math.nan
        for c in g.columns:
            if c.startswith("paper_"):
                row[c] = first[c]
        if "selected_epoch" in ok:
            se = pd.to_numeric(ok["selected_epoch"], errors="coerce").dropna()
            row["selected_epoch"] = float(se.mean()) if len(se) else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def paired_diffs(df: pd.DataFrame, row: str, baseline: str, col: str = "validation_box_micro",
                 by: str = "preset") -> list[float]:
    """``row`` minus ``baseline`` in column ``col``, one difference per seed both have a number for (in the
    row's seed order), over the ok rows of ``df`` (a per-seed frame of one grid: one world of a world sweep)."""
    ok = df[df["status"] == "ok"] if "status" in df else df
    a, base = ok[ok[by] == row], ok[ok[by] == baseline].set_index("seed")
    if col not in a or col not in base:
        return []
    return [float(x) - float(base.at[s, col]) for s, x in zip(a["seed"], a[col])
            if s in base.index and not pd.isna(x) and not pd.isna(base.at[s, col])]


def paired(df: pd.DataFrame, row: str, baseline: str = "stvg", col: str = "validation_box_micro", by: str = "preset",
           level: float = 0.95) -> tuple[float, float, float, int]:
    """(mean, low, high, n): ``row`` minus ``baseline`` paired by seed, with the Student-t interval at ``level``
    over the per-seed differences (NaN bounds with fewer than two pairs). The one paired interval of the tables."""
    return t_interval(paired_diffs(df, row, baseline, col, by), level)


def paired_differences(df: pd.DataFrame, baseline: str = "stvg", metrics: Iterable[str] = ("validation_box_micro",
                       "testing_box_micro"), by: str = "preset", level: float = 0.95) -> pd.DataFrame:
    """Each row minus ``baseline``, paired by seed (``paired``): ``<metric>_diff`` (mean of the per-seed
    differences), ``<metric>_lo``/``_hi`` (the t-interval at ``level``) and ``<metric>_pairs``. Empty without a baseline."""
    ok = df[df["status"] == "ok"] if "status" in df else df
    if not (ok[by] == baseline).any():
        return pd.DataFrame()
    rows = []
    for key in dict.fromkeys(ok[by]):
        if key == baseline:
            continue
        g = ok[ok[by] == key]
        row: dict[str, Any] = {by: key, "label": g["label"].iloc[0] if "label" in g else key}
        for m in metrics:
            mean, lo, hi, n = paired(ok, key, baseline, m, by, level)
            row.update({f"{m}_diff": mean, f"{m}_lo": lo, f"{m}_hi": hi, f"{m}_pairs": n})
        rows.append(row)
    return pd.DataFrame(rows)


# --- learning curves -----------------------------------------------------------------------------

def learning_curves(df: pd.DataFrame, metric: str = "box_micro", by: str = "preset") -> pd.DataFrame:
    """Long frame (preset, label, seed, epoch, val_<metric>) from the log.jsonl of each ok run of ``df``
    (``run.read_log``: a corrupt line is a DataError naming the file and line). ``val_<metric>`` is log.jsonl's
    ``val`` record of an epoch, not a column of the results schema."""
    rows = []
    for _, r in df.iterrows():
        if r.get("status", "ok") != "ok" or not isinstance(r.get("run"), str):
            continue
        for e in read_log(r["run"]):
            v = (e.get("val") or {}).get(metric)
            if v is not None:
                rows.append({by: r[by], "label": r.get("label", r[by]), "seed": r.get("seed", 0),
                             "epoch": int(e["epoch"]), f"val_{metric}": float(v)})
    return pd.DataFrame(rows, columns=[by, "label", "seed", "epoch", f"val_{metric}"])


def plateau(curves: pd.DataFrame, metric: str = "box_micro", by: str = "preset", tail: float = 0.25) -> pd.DataFrame:
    """Per row: epochs, the mean over seeds of the best val score, and ``tail_gain``: the mean over seeds of
    (best score in the last ``tail`` of the epochs) - (best score before them). A positive gain larger
    than the seed spread means the schedule had not plateaued."""
    col = f"val_{metric}"
    rows = []
    for key in dict.fromkeys(curves[by]):
        g = curves[curves[by] == key]
        gains, bests, epochs = [], [], 0
        for _, s in g.groupby("seed"):
            s = s.sort_values("epoch")
            n = len(s)
            epochs = max(epochs, n)
            bests.append(s[col].max())
            cut = n - max(1, int(round(n * tail)))
            if cut >= 1:
                gains.append(float(s[col].iloc[cut:].max() - s[col].iloc[:cut].max()))
        rows.append({by: key, "epochs": epochs, "best": float(np.mean(bests)) if bests else math.nan,
                     "tail_gain": float(np.mean(gains)) if gains else math.nan,
                     "tail_gain_std": float(np.std(gains, ddof=1)) if len(gains) > 1 else math.nan,
                     "seeds": len(gains)})
    return pd.DataFrame(rows)


# --- markdown ------------------------------------------------------------------------------------

def pm(mean: Any, std: Any) -> str:
    """``mean ± std`` with two decimals; the mean alone without a std (one seed), "" without a mean. The one
    mean ± std formatter of the tables (grid and world sweeps, the figures' table)."""
    if mean is None or pd.isna(mean):
        return ""
    return f"{mean:.2f}" if std is None or pd.isna(std) else f"{mean:.2f} ± {std:.2f}"


def _ci(r: pd.Series, m: str) -> str:
    d, lo, hi, n = r[f"{m}_diff"], r[f"{m}_lo"], r[f"{m}_hi"], r[f"{m}_pairs"]
    if pd.isna(d):
        return ""
    return f"{d:+.2f} (n={int(n)})" if pd.isna(lo) else f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}] (n={int(n)})"


def _heldout_markdown(summ: pd.DataFrame) -> list[str]:
    """The generalization protocol's table (runs on a world with held-out classes): testing query micro on
    all objects beside the same and the other metrics on held-out-class objects only, the paper's number
    (Table 4 reports testing query micro on RoboWatch) in parentheses; validation where it has any."""
    have = [c for c in HELDOUT_COLS if c in summ.columns and summ[c].notna().any()]
    if not have:
        return []
    cols = [("testing_query_micro", "test query micro, all objects")]
    for c in have:
        s, _, m = c.partition("_heldout_")
        cols.append((c, f"{'val' if s == 'validation' else 'test'} {m.replace('_', ' ')}, held-out classes"))
    lines = ["", "Held-out classes (generalization protocol: classes never seen in training; dataset.json "
             "`holdout_classes`): mean ± sample std over seeds; `paper`: the paper's testing query micro "
             "on RoboWatch (Table 4), where every class is new to a model trained on YouCook2-BB.", "",
             "| row | seeds | " + " | ".join(h for _, h in cols) + " | paper |", "|" + "---|" * (len(cols) + 3)]
    for _, r in summ.iterrows():
        if r["status"] in ("not implemented", "not run"):       # listed under the main table
            continue
        cells = [str(r["label"]), str(r["n_seeds"])] + [pm(r.get(c), r.get(f"{c}_std")) for c, _ in cols]
        p = r.get("paper_testing_query_micro")
        cells.append(f"{p:.2f}" if p is not None and not pd.isna(p) else "")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(df: pd.DataFrame, title: str = "", baseline: str = "stvg", by: str = "preset",
             curves: pd.DataFrame | None = None) -> str:
    """Markdown of per-seed rows: mean ± std (sample std over seeds) with the number of seeds per row and
    the paper's number in parentheses; the paired difference to ``baseline`` with its 95 % t-interval;
    the learning-curve tail gain when ``curves`` is given; failed runs with their error."""
    summ = summarize(df, by=by)
    cols = [(s, k) for s in SPLITS for k in METRICS]
    head = ["row", "seeds", "status"] + [f"{'val' if s == 'validation' else 'test'} {k.replace('_', ' ')}"
                                         for s, k in cols]
    lines = [f"# {title}", ""] if title else []
    lines += ["Accuracy in %: mean ± sample std over the seeds of each row (`seeds` = how many runs stand behind "
              "each number), the paper's number in parentheses where the paper reports that row.", "",
              "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in summ.iterrows():
        cells = [str(r["label"]), str(r["n_seeds"]), r["status"]]
        for s, k in cols:
            c = pm(r.get(f"{s}_{k}"), r.get(f"{s}_{k}_std"))
            p = r.get(f"paper_{s}_{k}")
            cells.append(f"{c} ({p:.2f})" if p is not None and not pd.isna(p) else c)
        lines.append("| " + " | ".join(cells) + " |")
    lines += _heldout_markdown(summ)
    diffs = paired_differences(df, baseline, by=by)
    if not diffs.empty:
        lines += ["", f"Difference to `{baseline}`, paired by seed (each row minus {baseline} trained with the same "
                  "seed): mean and 95 % t-interval over the per-seed differences (no interval with one seed).", "",
                  "| row | Δ val box micro | Δ test box micro |", "|---|---|---|"]
        for _, r in diffs.iterrows():
            lines.append(f"| {r['label']} | {_ci(r, 'validation_box_micro')} | {_ci(r, 'testing_box_micro')} |")
    if curves is not None and not curves.empty:
        pl = plateau(curves, by=by)
        lines += ["", "Learning curves (val box micro per epoch: learning_curves.csv). `tail gain` = best score of "
                  "the last quarter of the epochs minus the best before it, mean ± std over seeds; a gain larger "
                  "than its spread means the row was still rising when training stopped.", "",
                  "| row | epochs | best val box micro | tail gain |", "|---|---|---|---|"]
        labels = dict(zip(summ[by], summ["label"]))
        for _, r in pl.iterrows():
            lines.append(f"| {labels.get(r[by], r[by])} | {r['epochs']} | {r['best']:.2f} | "
                         f"{pm(r['tail_gain'], r['tail_gain_std'])} |")
    failed = df[df["status"] == "failed"] if "status" in df else df.iloc[0:0]
    if len(failed):
        lines += ["", "Failed runs:", ""] + [f"- {r[by]} (seed {r.get('seed', '?')}): {r['error']}"
                                             for _, r in failed.iterrows()]
    missing = df[df["status"] == "not implemented"] if "status" in df else df.iloc[0:0]
    if len(missing):
        lines += ["", "Rows of the paper's table that are not implemented:", ""]
        lines += [f"- {r[by]}: {r['error']}" for _, r in missing.iterrows()]
    return "\n".join(lines) + "\n"
