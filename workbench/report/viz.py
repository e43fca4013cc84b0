"""Plotly figure builders shared by the notebooks and ``figures``: loss curves, similarity maps,
concept t-SNE and results tables / bars."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from ..evaluate import METRICS
from ..io import DataError
from .paper import SPLITS
from .results import pm, summarize

COLORSCALE = "Viridis"
OURS, PAPER = "#1f77b4", "#bbbbbb"


def setup_notebook() -> None:
    """Plotly output that is small in stored notebooks and renders in JupyterLab and classic Notebook."""
    import plotly.io as pio  # plotly's renderer settings: only a notebook needs them

    pio.renderers.default = "plotly_mimetype+notebook_connected"


# --- training ---------------------------------------------------------------------------------

def loss_curves(log: list[dict], steps: list[tuple[int, dict]] | None = None, title: str = "") -> go.Figure:
    """Loss components per step (``steps`` = [(global step, losses)]) and per epoch, and the
    validation metrics of each epoch. Epoch points sit at the step that ends the epoch."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training losses", "validation accuracy (%)"))
    steps = steps or []
    ends = [r.get("_end_step") for r in log]
    xs_epoch = [e if e is not None else r["epoch"] + 1 for r, e in zip(log, ends)]
    names = sorted({k for r in log for k in r.get("losses", {})} | {k for _, v in steps for k in v})
    for i, name in enumerate(names):
        color = f"hsl({(i * 67) % 360},60%,45%)"
        if steps:
            fig.add_trace(go.Scatter(x=[x for x, v in steps if name in v], y=[v[name] for _, v in steps if name in v],
                                     mode="lines", name=name, line=dict(color=color, width=1), opacity=0.5,
                                     legendgroup=name), 1, 1)
        rows = [(x, r) for x, r in zip(xs_epoch, log) if name in r.get("losses", {})]
        fig.add_trace(go.Scatter(x=[x for x, _ in rows], y=[r["losses"][name] for _, r in rows],
                                 mode="lines+markers", name=f"{name} (epoch mean)", line=dict(color=color),
                                 legendgroup=name), 1, 1)
    for m in METRICS:
        rows = [r for r in log if r.get("val", {}).get(m) is not None]
        if rows:
            fig.add_trace(go.Scatter(x=[r["epoch"] + 1 for r in rows], y=[r["val"][m] for r in rows],
                                     mode="lines+markers", name=f"val {m}"), 1, 2)
    fig.update_xaxes(title_text="step" if steps else "epoch", col=1)
    fig.update_xaxes(title_text="epoch", col=2)
    fig.update_layout(title=title, height=380, width=1000, template="plotly_white")
    return fig


class LiveLoss:
    """Callbacks for ``train.train`` that keep a loss-curve figure up to date.

    With ``live`` (a frontend is attached) the figure is a ``FigureWidget`` redrawn every ``every``
    steps; otherwise nothing is drawn during training and ``figure()`` gives the final figure.
    """

    def __init__(self, title: str = "", live: bool = False, every: int = 1):
        self.title, self.every = title, every
        self.log: list[dict] = []
        self.steps: list[tuple[int, dict]] = []
        self.widget = None
        if live:
            from IPython.display import display  # IPython: only a live notebook has it

            self.widget = go.FigureWidget(loss_curves([], title=title))
            display(self.widget)

    def on_step(self, epoch: int, step: int, losses: dict) -> None:
        self.steps.append((len(self.steps) + 1, {k: float(v) for k, v in losses.items()}))
        if self.widget is not None and len(self.steps) % self.every == 0:
            self._redraw()

    def on_epoch(self, row: dict) -> None:
        self.log.append({**row, "_end_step": len(self.steps) or None})
        if self.widget is not None:
            self._redraw()

    def _redraw(self) -> None:
        fig = self.figure()
        with self.widget.batch_update():
            self.widget.data = []
            self.widget.add_traces(list(fig.data))
            self.widget.layout = fig.layout

    def figure(self) -> go.Figure:
        return loss_curves(self.log, self.steps, self.title)

    def callbacks(self) -> dict[str, Callable]:
        """``train.train`` keyword callbacks."""
        return {"on_epoch": self.on_epoch, "on_step": self.on_step}


# --- results ----------------------------------------------------------------------------------

def _fmt(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.2f}"


def _summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per-seed sweep rows -> one row per preset (mean, ``_std``, ``n_seeds``, ``label``); a frame that is
    already one row per preset passes through with ``n_seeds`` = 1."""
    if "seed" in df.columns and "n_seeds" not in df.columns:
        return summarize(df)
    out = df.copy()
    out["n_seeds"] = out.get("n_seeds", 1)
    out["label"] = out["label"] if "label" in out else out["preset"]
    return out


def results_table(df: pd.DataFrame, title: str = "results (ours | paper)") -> go.Figure:
    """A table figure of sweep results (per-seed rows are summarised): each metric as "mean ± std | paper",
    with the number of seeds behind each row."""
    summ = _summary(df)
    cols = [(s, m) for s in SPLITS for m in METRICS]
    header = ["row", "seeds", "status"] + [f"{'val' if s == 'validation' else 'test'} {m.replace('_', ' ')}"
                                           for s, m in cols]
    cells = [summ["label"].tolist(), [str(n) for n in summ["n_seeds"]], summ["status"].tolist()]
    for s, m in cols:
        ours, std, paper = summ.get(f"{s}_{m}"), summ.get(f"{s}_{m}_std"), summ.get(f"paper_{s}_{m}")
        none = [None] * len(summ)
        cells.append([f"{pm(o, d)} | {_fmt(p)}" if _fmt(p) else pm(o, d)
                      for o, d, p in zip(ours if ours is not None else none, std if std is not None else none,
                                         paper if paper is not None else none)])
    fig = go.Figure(go.Table(columnwidth=[1.8, 0.5, 0.7] + [1.5] * len(cols),
                             header=dict(values=header, fill_color="#dde4ee", font=dict(size=12)),
                             cells=dict(values=cells, font=dict(size=12), height=26)))
    fig.update_layout(title=title, width=1800, height=90 + 28 * (len(summ) + 1),
                      margin=dict(l=10, r=10, t=50, b=10))
    return fig


def results_bars(df: pd.DataFrame, metrics: tuple[str, ...] = ("query_micro", "box_micro"), split: str = "testing",
                 title: str = "") -> go.Figure:
    """Grouped bars per row: our mean with the sample std over seeds as error bar (n seeds in the label)
    beside the paper's number (grey, where reported)."""
    summ = _summary(df)
    ok = summ[summ["status"].isin(["ok", "partial"])]
    names = [f"{lab} (n={n})" for lab, n in zip(ok["label"], ok["n_seeds"])]
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=[f"{split} {m}" for m in metrics],
                        shared_yaxes=True)
    for i, m in enumerate(metrics, 1):
        std = ok.get(f"{split}_{m}_std")
        err = None if std is None or std.isna().all() else dict(type="data", array=std.fillna(0).tolist(),
                                                                  visible=True)
        fig.add_trace(go.Bar(x=names, y=ok[f"{split}_{m}"], name="ours (mean ± std over seeds)", marker_color=OURS,
                             error_y=err, text=[_fmt(v) for v in ok[f"{split}_{m}"]], textposition="outside",
                             showlegend=i == 1, legendgroup="ours"), 1, i)
        paper = ok.get(f"paper_{split}_{m}")
        if paper is not None and paper.notna().any():
            fig.add_trace(go.Bar(x=names, y=paper, name="paper", marker_color=PAPER,
                                 text=[_fmt(v) for v in paper], textposition="outside",
                                 showlegend=i == 1, legendgroup="paper"), 1, i)
    fig.update_yaxes(title_text="accuracy (%)", col=1)
    fig.update_layout(barmode="group", title=title, template="plotly_white", height=450,
                      width=max(700, 110 * len(ok) * len(metrics)))
    return fig


def learning_curves(curves: pd.DataFrame, metric: str = "box_micro", title: str = "") -> go.Figure:
    """Validation ``metric`` per epoch of each row (``results.learning_curves`` frame): the mean over seeds
    with the sample std as error bars, and each seed as a faint line."""
    col = f"val_{metric}"
    fig = go.Figure()
    for i, (label, g) in enumerate(curves.groupby("label", sort=False)):
        color = f"hsl({(i * 67) % 360},60%,45%)"
        for seed, s in g.groupby("seed"):
            s = s.sort_values("epoch")
            fig.add_trace(go.Scatter(x=s["epoch"] + 1, y=s[col], mode="lines", line=dict(color=color, width=1),
                                     opacity=0.3, legendgroup=label, showlegend=False,
                                     hovertext=f"{label} seed {seed}"))
        agg = g.groupby("epoch")[col].agg(["mean", "std", "count"]).reset_index()
        fig.add_trace(go.Scatter(x=agg["epoch"] + 1, y=agg["mean"], mode="lines+markers", line=dict(color=color),
                                 name=f"{label} (n={int(agg['count'].max())})", legendgroup=label,
                                 error_y=dict(type="data", array=agg["std"].fillna(0).tolist(), visible=True)))
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text=f"val {metric.replace('_', ' ')} (%)")
    fig.update_layout(title=title or f"learning curves: val {metric.replace('_', ' ')} per epoch",
                      template="plotly_white", height=450, width=900)
    return fig


# --- similarity maps (Figure 3) ---------------------------------------------------------------

def gt_boxes(segment: Any) -> np.ndarray:
    """(K, T, 4) GT boxes x1,y1,x2,y2 of an official-annotation segment; NaN where a frame has none."""
    out = np.full((len(segment.objects), segment.num_frames, 4), np.nan)
    for k, o in enumerate(segment.objects):
        for t, b in enumerate(o.boxes):
            if b is not None:
                out[k, t] = (b.xtl, b.ytl, b.xbr, b.ybr)
    return out


def _rect(fig, box, row, col, **line):
    x1, y1, x2, y2 = (float(v) for v in box)
    fig.add_shape(type="rect", x0=x1, y0=y1, x1=x2, y1=y2, line=line, row=row, col=col)


def similarity_maps(maps: dict[str, dict], query: int, class_names: dict[int, str] | None = None,
                    frames: int | list[int] | None = None, max_frames: int = 5, title: str = "") -> go.Figure:
    """Figure 3: for each run (a row), the frames with every proposal colored by its similarity to
    the query object, the GT box (dashed green) and the chosen box (red); under each row the
    temporal weights over frames.

    ``maps[label]`` is ``predict.ground_segment`` output (scores (K, T, N), temporal (K, T),
    boxes (T, N, 4), chosen (K, T), obj_class, sentence) with an optional ``gt`` (K, T, 4).
    """
    labels = list(maps)
    first = maps[labels[0]]
    K, T, N = first["scores"].shape
    if not 0 <= query < K:
        raise DataError(f"similarity_maps: query {query} out of range (segment has {K} objects)")
    if frames is None:
        frames = list(np.linspace(0, T - 1, min(T, max_frames)).round().astype(int)) if T else []
    frames = [frames] if isinstance(frames, (int, np.integer)) else list(frames)
    name = (class_names or {}).get(int(first["obj_class"][query]), str(first["obj_class"][query]))
    R, C = 2 * len(labels), len(frames)
    specs = []
    for _ in labels:
        specs.append([{} for _ in frames])
        specs.append([{"colspan": C}] + [None] * (C - 1))
    titles = []
    for lab in labels:
        titles += [f"{lab} · frame {t}" for t in frames] + [f"{lab} · temporal weights"]
    fig = make_subplots(rows=R, cols=C, specs=specs, subplot_titles=titles, vertical_spacing=0.12 / len(labels),
                        horizontal_spacing=0.02, row_heights=[0.34, 0.16] * len(labels))
    for r, lab in enumerate(labels):
        m = maps[lab]
        s = m["scores"][query]                                                      # (T, N)
        lo, hi = float(s.min()), float(s.max())
        norm = (s - lo) / (hi - lo + 1e-12)
        gt = m.get("gt")
        extent = np.nanmax(np.concatenate([m["boxes"].reshape(-1, 4)] +
                                          ([gt[query].reshape(-1, 4)] if gt is not None else [])), 0)
        W, H = 1.02 * float(max(extent[0], extent[2])), 1.02 * float(max(extent[1], extent[3]))
        row = 2 * r + 1
        for c, t in enumerate(frames, 1):
            for n in np.argsort(norm[t]):                    # most similar drawn last (on top)
                color = sample_colorscale(COLORSCALE, [float(norm[t, n])])[0]
                _rect(fig, m["boxes"][t, n], row, c, color=color, width=1 + 2 * float(norm[t, n]))
            centers = m["boxes"][t][:, :2] / 2 + m["boxes"][t][:, 2:] / 2
            fig.add_trace(go.Scatter(x=centers[:, 0], y=centers[:, 1], mode="markers",
                                     marker=dict(size=5, color=s[t], colorscale=COLORSCALE, cmin=lo, cmax=hi,
                                                 showscale=(r == 0 and c == 1),
                                                 colorbar=dict(title="similarity", len=0.4, y=0.8)),
                                     text=[f"proposal {n}: {s[t, n]:.3f}" for n in range(N)],
                                     hoverinfo="text", showlegend=False), row, c)
            if gt is not None and not np.isnan(gt[query, t]).any():
                _rect(fig, gt[query, t], row, c, color="#2ca02c", width=3, dash="dash")
            _rect(fig, m["boxes"][t, m["chosen"][query, t]], row, c, color="#d62728", width=3)
            fig.update_xaxes(range=[0, W], showticklabels=False, row=row, col=c)
            fig.update_yaxes(range=[H, 0], showticklabels=False, scaleanchor=None, row=row, col=c)
        q = m["temporal"][query]
        fig.add_trace(go.Bar(x=list(range(len(q))), y=q, showlegend=False,
                             marker_color=["#d62728" if t in frames else OURS for t in range(len(q))],
                             hovertemplate="frame %{x}: %{y:.3f}<extra></extra>"), row + 1, 1)
        fig.update_xaxes(tickmode="linear", dtick=1, range=[-0.5, len(q) - 0.5], row=row + 1, col=1)
    fig.update_layout(title=title or f"“{first['sentence']}” · query: {name}<br><sup>box color: similarity to the "
                                     "query · green dashed: GT box · red: chosen box · red bars: frames drawn</sup>",
                      height=400 * len(labels), width=max(700, 230 * C + 120), template="plotly_white",
                      margin=dict(l=40, r=30, t=110, b=30), font=dict(size=11))
    return fig


# --- concept t-SNE ----------------------------------------------------------------------------

def concept_tsne_points(conc: dict[str, np.ndarray], class_names: dict[int, str], seed: int = 0,
                        perplexity: float = 30.0) -> dict:
    """t-SNE (sklearn) of the stable concept E_f of every class (mean over its objects) together
    with the extracted concepts D(E_c(o), E_c(S)) of every object; the silhouette score of D by
    class (cosine, in the embedding space) measures how well the contexts cluster by concept.

    ``conc`` is ``predict.concepts`` output.
    """
    from sklearn.manifold import TSNE  # scikit-learn: heavy, loaded only for a t-SNE
    from sklearn.metrics import silhouette_score  # scikit-learn: as above

    cls = np.asarray(conc["obj_class"])
    if len(cls) < 4:
        raise DataError(f"concept t-SNE: need at least 4 objects, got {len(cls)}")
    classes = np.unique(cls)
    ef = np.stack([conc["ef"][cls == c].mean(0) for c in classes])                 # (C, d)
    d = np.asarray(conc["d"])                                                       # (O, d)
    x = np.concatenate([ef, d])
    x = x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)
    perp = float(min(perplexity, max(2.0, (len(x) - 1) / 3)))
    xy = TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed, metric="cosine").fit_transform(x)
    sil = None
    if 2 <= len(classes) < len(d):
        sil = float(silhouette_score(d, cls, metric="cosine"))
    return {"class_xy": xy[:len(classes)], "classes": classes, "obj_xy": xy[len(classes):], "obj_class": cls,
            "sentence": np.asarray(conc["sentence"]), "seg_id": np.asarray(conc["seg_id"]),
            "ef": ef, "d": d, "silhouette": sil, "perplexity": perp, "seed": seed,
            "class_names": {int(c): class_names.get(int(c), str(c)) for c in classes}}


def class_counts(p: dict) -> dict[int, int]:
    """Objects per class in ``concept_tsne_points`` output, most frequent first (ties by name)."""
    cls, n = np.unique(p["obj_class"], return_counts=True)
    order = sorted(zip(cls.tolist(), n.tolist()), key=lambda cn: (-cn[1], p["class_names"].get(cn[0], "")))
    return dict(order)


PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#393b79", "#ad494a", "#637939")       # distinguishable on white; more highlighted classes cycle
GREY = "rgba(150,150,150,0.35)"


def concept_tsne_figure(p: dict, highlight: int | list[int] | None = None, top: int = 10, focus: int | None = None,
                        title: str = "") -> go.Figure:
    """Scatter of ``concept_tsne_points``: circles = extracted concepts D (hover: class and sentence),
    stars = stable concepts E_f. Only the ``highlight`` classes (default: the ``top`` most frequent)
    get a color, a legend entry "name (objects)" and a label; every other class is grey (names on
    hover), so that 67 classes stay legible. ``focus`` (e.g. the explorer's class) is drawn largest."""
    fig = go.Figure()
    names = p["class_names"]
    counts = class_counts(p)
    if highlight is None:
        shown = list(counts)[:top]
    else:
        shown = [int(highlight)] if isinstance(highlight, (int, np.integer)) else [int(c) for c in highlight]
    if focus is not None and int(focus) not in shown:
        shown.append(int(focus))
    shown = [c for c in shown if c in counts]
    classes = [int(c) for c in p["classes"]]
    others = [c for c in classes if c not in shown]
    if others:                                          # grey underneath, one legend entry
        sel = np.isin(p["obj_class"], others)
        fig.add_trace(go.Scatter(x=p["obj_xy"][sel, 0], y=p["obj_xy"][sel, 1], mode="markers",
                                 name=f"{len(others)} other classes", legendgroup="other",
                                 marker=dict(size=5, color=GREY),
                                 text=[f"{names[int(c)]}: {t}" for c, t in zip(p["obj_class"][sel], p["sentence"][sel])],
                                 hoverinfo="text"))
        idx = [classes.index(c) for c in others]
        fig.add_trace(go.Scatter(x=p["class_xy"][idx, 0], y=p["class_xy"][idx, 1], mode="markers",
                                 legendgroup="other", showlegend=False,
                                 marker=dict(size=9, symbol="star", color=GREY, line=dict(width=0.5, color="#888")),
                                 hovertext=[f"E_f({names[c]})" for c in others], hoverinfo="text"))
    colors = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(shown)}
    if focus is not None and int(focus) in shown:       # the focus class drawn last: on top
        shown = [c for c in shown if c != int(focus)] + [int(focus)]
    for c in shown:
        color = colors[c]
        big = focus is not None and c == int(focus)
        sel = p["obj_class"] == c
        label = names[c]
        fig.add_trace(go.Scatter(x=p["obj_xy"][sel, 0], y=p["obj_xy"][sel, 1], mode="markers",
                                 name=f"{label} ({counts[c]})", legendgroup=label,
                                 marker=dict(size=9 if big else 7, color=color, line=dict(width=0.5, color="white")),
                                 text=[f"{label}: {t}" for t in p["sentence"][sel]], hoverinfo="text"))
        j = classes.index(c)
        fig.add_trace(go.Scatter(x=p["class_xy"][j:j + 1, 0], y=p["class_xy"][j:j + 1, 1],
                                 mode="markers+text" if big else "markers",    # one label: stars crowd
                                 legendgroup=label, showlegend=False, text=[f"<b>{label}</b>"],
                                 textposition="top center", textfont=dict(color=color, size=13),
                                 marker=dict(size=20 if big else 15, symbol="star", color=color,
                                             line=dict(width=1, color="black")),
                                 hovertext=[f"E_f({label})"], hoverinfo="text"))
    sil = "n/a" if p["silhouette"] is None else f"{p['silhouette']:.3f}"
    which = (f"the {len(shown)} most frequent of {len(classes)} classes in color" if highlight is None
             else f"{len(shown)} of {len(classes)} classes in color")
    fig.update_layout(title=title or f"learned concepts (t-SNE) · silhouette of D by class: {sil}<br><sup>"
                                     f"★ stable concept E_f(o) per class, ● extracted concept D(E_c(o), E_c(S)) "
                                     f"per object; {which}, others grey (hover: class and sentence)</sup>",
                      template="plotly_white", height=650, width=950,
                      legend=dict(title="class (objects)", font=dict(size=11), itemsizing="constant"),
                      xaxis=dict(showticklabels=False, title="t-SNE 1"), yaxis=dict(showticklabels=False,
                                                                                   title="t-SNE 2"),
                      margin=dict(t=90))
    return fig


def nearest_sentences(p: dict, cls: int, k: int = 8) -> pd.DataFrame:
    """The ``k`` objects whose extracted concept D is nearest (cosine) to the stable concept E_f(cls)."""
    idx = np.flatnonzero(p["classes"] == cls)
    if not len(idx):
        raise DataError(f"nearest_sentences: class {cls} not among the t-SNE classes")
    e = p["ef"][idx[0]] / (np.linalg.norm(p["ef"][idx[0]]) + 1e-12)
    d = p["d"] / (np.linalg.norm(p["d"], axis=1, keepdims=True) + 1e-12)
    sim = d @ e
    top = np.argsort(-sim)[:k]
    names = [p["class_names"].get(int(c), c) for c in p["obj_class"][top]]
    return pd.DataFrame({"cosine": sim[top].round(3), "object": names, "segment": p["seg_id"][top],
                         "sentence": p["sentence"][top]}, index=pd.RangeIndex(1, len(top) + 1, name="rank"))
