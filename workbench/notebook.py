"""Notebook support: strict papermill parameters, smoke-sized default runs, and the interactive
explorer that falls back to static output when no frontend is attached (papermill, nbval)."""
from __future__ import annotations

import ast
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .evaluate import METRICS
from .io import DataError, loads_json
from .paths import METRICS_FILE, REPO
from .report import viz
from .train import config_for, run_preset

# Config keys of every smoke-sized run a notebook trains by itself (seconds on 2 CPU cores).
SMOKE = dict(epochs=2, embed_dim=64, attn_heads=4, lstm_hidden=32, batch_size=16, max_train_segments=48,
             max_eval_segments=12, threads=2)


@dataclass
class Parameters:
    """The parameters of one notebook execution: values, declared types, and which were injected."""

    values: dict[str, Any]
    declared: dict[str, Any]
    injected: list[str] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        rows = [f"  {k} = {v!r}{'  (injected)' if k in self.injected else ''}" for k, v in self.values.items()]
        return "Parameters(\n" + "\n".join(rows) + "\n)"


def _type_ok(value: Any, typ: Any) -> bool:
    if not isinstance(typ, type):
        return True                                  # e.g. "str | None": not checked
    if typ is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if typ is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, typ)


def check_parameters(given: dict[str, Any], declared: dict[str, Any]) -> dict[str, Any]:
    """Raise ``DataError`` on a given parameter the notebook does not declare, or of the wrong type.

    Parameters
    ----------
    given : the parameters injected by papermill (name -> value).
    declared : the notebook's parameters (name -> annotated type).

    Returns
    -------
    ``given`` with ints passed for float parameters converted to float and JSON strings passed for
    dict / list parameters parsed.
    """
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise DataError(f"notebook parameters: unknown name(s) {unknown}; declared: {sorted(declared)}")
    out = {}
    for k, v in given.items():
        if declared[k] in (dict, list) and isinstance(v, str):     # papermill -p passes JSON as a string
            try:
                v = loads_json(v, f"notebook parameters: {k}")
            except DataError as e:
                if "duplicate key" in str(e):
                    raise
                raise DataError(f"notebook parameters: {k} expects {declared[k].__name__} (JSON), got {v!r}") from None
        if not _type_ok(v, declared[k]):
            raise DataError(f"notebook parameters: {k} expects {getattr(declared[k], '__name__', declared[k])}, "
                            f"got {v!r}")
        out[k] = float(v) if declared[k] is float else v
    return out


def _at_least(lo: int):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= lo


def _positive_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def _metric_list(v) -> bool:
    return isinstance(v, list) and len(v) > 0 and all(m in METRICS for m in v)


# Ranges of notebook parameters by name (a name means the same in every notebook), checked by ``parameters``
# for every declared value, injected or default, before the notebook does any work. Add a row with a new name.
PARAMETER_RANGES: dict[str, tuple[Any, str]] = {
    "segments": (_at_least(1), "an integer >= 1 (segments drawn)"),
    "n_segments": (_at_least(1), "an integer >= 1 (segments sampled)"),
    "max_segments": (_at_least(1), "an integer >= 1 (segments whose objects are drawn)"),
    "max_frames": (_at_least(1), "an integer >= 1 (frames drawn per figure)"),
    "neighbours": (_at_least(1), "an integer >= 1"),
    "query_index": (_at_least(0), "an integer >= 0"),
    "min_count": (_at_least(0), "an integer >= 0"),
    "seed": (_at_least(0), "an integer >= 0"),
    "perplexity": (_positive_number, "a finite number > 0 (t-SNE perplexity)"),
    "split": (lambda v: v in ("training", "validation", "testing"), "one of training, validation, testing"),
    "metrics": (_metric_list, "a non-empty list of query_macro, query_micro, box_macro, box_micro"),
}


def check_ranges(values: dict[str, Any]) -> None:
    """Raise ``DataError`` naming the first parameter whose value is outside ``PARAMETER_RANGES``."""
    for k, v in values.items():
        check = PARAMETER_RANGES.get(k)
        if check is not None and not check[0](v):
            raise DataError(f"notebook parameters: {k} must be {check[1]}, got {v!r}")


def _annotated(tree: ast.Module) -> list[str]:
    return [n.target.id for n in tree.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)]


def _plain_assignments(tree: ast.Module) -> list[str] | None:
    """Names of a cell made only of ``name = value`` lines (what papermill injects), else None."""
    names = []
    for n in tree.body:
        if not (isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)):
            return None
        names.append(n.targets[0].id)
    return names


def injected_names(history: list[str]) -> tuple[list[str], list[str]]:
    """(declared, injected) names from the kernel's input history (IPython's ``_ih``).

    The parameters cell is the last executed cell with annotated assignments; the injected
    cell(s) are the cells right after it made only of plain ``name = value`` assignments.
    """
    trees = []
    for src in history:
        try:
            trees.append(ast.parse(src))
        except SyntaxError:
            trees.append(ast.Module(body=[ast.Pass()], type_ignores=[]))
    params = [i for i, t in enumerate(trees) if _annotated(t)]
    if not params:
        return [], []
    declared = _annotated(trees[params[-1]])
    injected: list[str] = []
    for t in trees[params[-1] + 1:]:
        names = _plain_assignments(t)
        if not names:
            break
        injected += [n for n in names if n not in injected]
    return declared, injected


def parameters(ns: dict[str, Any]) -> Parameters:
    """Check the parameters of the running notebook; call it from the cell after ``parameters``.

    ``ns`` is the notebook's ``globals()``. Declared parameters are the annotated names of the
    parameters cell; names papermill injected (plain assignments in the cell after it) must be
    declared and of the declared type, else ``DataError``; converted values are written back to ``ns``.
    """
    annotations = dict(ns.get("__annotations__", {}))
    history = list(ns.get("_ih", []))[:-1]           # IPython's input history, without this cell
    declared_names, injected = injected_names(history) if history else (list(annotations), [])
    declared = {k: annotations.get(k, object) for k in declared_names}
    given = {k: ns[k] for k in injected if k in ns}
    ns.update(check_parameters(given, declared))     # the notebook sees the converted values
    values = {k: ns[k] for k in declared if k in ns}
    check_ranges(values)
    return Parameters(values, declared, [k for k in injected if k in declared])


# --- runs a notebook trains by itself ---------------------------------------------------------

def smoke_run(preset: str, data: str | Path, root: str | Path | None = None, **overrides: Any) -> Path:
    """Train (or reuse) a smoke-sized run of ``preset`` on ``data``; returns its run directory."""
    out = Path(root or REPO / "work" / "nb_runs") / f"{Path(data).name}-{preset}"
    if not (out / METRICS_FILE).is_file():
        run_preset(preset, config_for(preset, **{**SMOKE, **overrides, "data": str(data)}), out)
    return out


# --- frontend detection and the explorer ------------------------------------------------------

def has_frontend() -> bool:
    """True when a Jupyter frontend renders widgets (JupyterLab / Notebook / VS Code), False under
    papermill, nbval or plain Python. ``WORKBENCH_INTERACTIVE=0/1`` forces the answer."""
    forced = os.environ.get("WORKBENCH_INTERACTIVE")
    if forced is not None:
        return forced.lower() in ("1", "true", "yes")
    try:
        # IPython is an optional heavy dependency: imported only when this runs
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    if ip is None or type(ip).__name__ != "ZMQInteractiveShell":
        return False
    return any(k in os.environ for k in ("JPY_SESSION_NAME", "VSCODE_PID", "VSCODE_CWD"))


def show(obj: Any) -> None:
    """Display a figure or DataFrame in a notebook, print it elsewhere. A plotly figure is shown at the
    width of the notebook (its fixed width is kept for exported files) so that nothing is cut off."""
    try:
        # IPython is an optional heavy dependency: imported only when this runs
        from IPython.display import display
    except ImportError:
        print(obj)
        return
    if type(obj).__module__.startswith("plotly") and getattr(getattr(obj, "layout", None), "width", None):
        # plotly is an optional heavy dependency: imported only when this runs
        import plotly.graph_objects as go

        obj = go.Figure(obj)                            # a copy: the caller's figure keeps its export width
        obj.update_layout(width=None, autosize=True)
    elif type(obj).__name__ == "DataFrame":              # text columns left-aligned (sentences read left to right)
        # pandas is heavy: loaded only by the commands that tabulate
        from pandas.api.types import is_numeric_dtype

        text = [c for c in obj.columns if not is_numeric_dtype(obj[c])]
        if text:
            obj = obj.style.set_properties(subset=text, **{"text-align": "left"}).set_table_styles(
                [{"selector": "th", "props": [("text-align", "left")]}]).format(precision=3)
    display(obj)


def explore_concepts(tsne: dict, default_class: int | None = None, k: int = 8, top: int = 10) -> None:
    """Pick a class: its concept neighbourhood in the t-SNE map and the sentences nearest to it; pick
    which classes are colored (default: the ``top`` most frequent; the picked class always is).

    ``tsne`` is what ``viz.concept_tsne_points`` returns. Static output without a frontend.
    """
    names = tsne["class_names"]
    counts = viz.class_counts(tsne)
    classes = sorted(counts, key=lambda c: names.get(c, str(c)))
    if not classes:
        raise DataError("explore_concepts: no concepts to explore")
    default = default_class if default_class in classes else list(counts)[0]
    shown0 = list(counts)[:top]

    def render(c: int, shown: list[int]) -> None:
        show(viz.concept_tsne_figure(tsne, highlight=shown, focus=c,
                                     title=f"{names.get(c, c)}: its concept E_f (large star) and the contexts of "
                                           f"its objects among {len(classes)} classes"))
        show(viz.nearest_sentences(tsne, c, k))

    if not has_frontend():
        print(f"static explorer (no frontend): class {names.get(default, default)}")
        render(default, shown0)
        return
    # ipywidgets is an optional heavy dependency: imported only when this runs
    import ipywidgets as w

    label = lambda c: f"{names.get(c, c)} ({counts[c]})"  # noqa: E731
    pick = w.Dropdown(options=[(label(c), c) for c in classes], value=default, description="class",
                      layout=w.Layout(width="280px"))
    colored = w.SelectMultiple(options=[(label(c), c) for c in counts], value=shown0, rows=8,
                               description="colored", layout=w.Layout(width="280px"))
    hint = w.HTML("<small>ctrl/shift-click to color several classes<br>(listed by number of objects)</small>")
    out = w.Output()

    def update(_=None):
        out.clear_output(wait=True)
        with out:
            render(pick.value, list(colored.value))

    pick.observe(update, names="value")
    colored.observe(update, names="value")
    show(w.VBox([w.HBox([pick, colored, hint]), out]))
    update()


def explore_similarity(maps: dict[str, dict[str, dict]], vocab_names: dict[int, str],
                       default_key: str | None = None) -> None:
    """Pick a segment, a query and a frame: the similarity maps of every run side by side.

    ``maps[run_label][segment_key]`` is ``predict.ground_segment`` output with ``gt`` (K, T, 4) added.
    Static output (every frame of the default segment and its first query) without a frontend.
    """
    labels = list(maps)
    keys = list(maps[labels[0]])
    if not keys:
        raise DataError("explore_similarity: no segments")
    key0 = default_key if default_key in keys else keys[0]

    def render(key: str, q: int, frame: int | None) -> None:
        show(viz.similarity_maps({lab: maps[lab][key] for lab in labels}, q, vocab_names, frames=frame))

    if not has_frontend():
        print(f"static explorer (no frontend): segment {key0}, query 0")
        render(key0, 0, None)
        return
    # ipywidgets is an optional heavy dependency: imported only when this runs
    import ipywidgets as w

    seg = w.Dropdown(options=keys, value=key0, description="segment")
    query = w.Dropdown(description="query")
    frame = w.IntSlider(description="frame", min=0)
    out = w.Output()

    def sync(_=None):
        m = maps[labels[0]][seg.value]
        query.options = [(f"{k}: {vocab_names.get(int(c), c)}", k) for k, c in enumerate(m["obj_class"])]
        query.value = 0
        frame.max = m["scores"].shape[1] - 1
        frame.value = 0

    def update(_=None):
        out.clear_output(wait=True)
        with out:
            render(seg.value, query.value or 0, frame.value)

    seg.observe(sync, names="value")
    for wd in (seg, query, frame):
        wd.observe(update, names="value")
    sync()
    show(w.VBox([w.HBox([seg, query, frame]), out]))
    update()
