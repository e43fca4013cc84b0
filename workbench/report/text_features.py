"""Feature inspection: how much an object's contextual feature moves with its sentence (the
instability SCL's CAOS targets), nearest-neighbour sentences, and GloVe coverage.

Spread is measured in cosine distance 1 - cos: "within" = mean over pairs of mentions of the same
class, "between" = mean over pairs of mentions of this class and any other class.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..datasets.yc2 import DatasetDir, load_class_file, load_sentences, load_split_dict
from ..io import DataError
from ..paths import YC2_DATA
from ..text.contextual import encode, load_encoder
from ..text.glove import GloVe
from ..text.objects import objects_for_segment, tokenize

YC2_DIR = YC2_DATA


@dataclass
class ObjectTable:
    """One row per object mention: its segment, class and features."""

    seg_ids: list[str]          # (O,)
    sentences: list[str]        # (O,) the object's sentence
    names: list[str]            # (O,)
    classes: np.ndarray         # (O,) int
    ctx: np.ndarray             # (O, Dc) c(o)
    sent_ctx: np.ndarray        # (O, Dc) c(S) of the object's sentence

    @property
    def concept(self) -> np.ndarray:
        """The concept-extraction view D = c(o) - c(S) on raw features (O, Dc)."""
        return self.ctx - self.sent_ctx


def object_table(data_dir: str | Path | None = None, split: str = "training", n_segments: int = 300,
                 encoder: str = "minilm", seed: int = 0, progress: bool = False) -> ObjectTable:
    """Contextual features of the objects of ``n_segments`` random segments of one split dict.

    ``data_dir`` None uses the vendored real YouCook2-BB files (sentences only, no region features).
    """
    if isinstance(n_segments, bool) or not isinstance(n_segments, int) or n_segments < 1:
        raise DataError(f"parameter n_segments must be an integer >= 1, got {n_segments!r}")
    d = DatasetDir(data_dir or YC2_DIR)
    vocab = load_class_file(d.class_file)
    sentences = load_sentences(d.sentences)
    entries = load_split_dict(d.split_dict(split), len(vocab))
    keys = sorted(entries)
    rng = np.random.default_rng(seed)
    keys = [keys[i] for i in sorted(rng.choice(len(keys), min(n_segments, len(keys)), replace=False))]
    objs = [objects_for_segment(sentences[k], entries[k].class_ids, vocab, where=k) for k in keys]
    enc = load_encoder(encoder)
    sent, ctx = encode(enc, [sentences[k] for k in keys], [[o.char_span for o in ob] for ob in objs],
                       [[o.name for o in ob] for ob in objs], progress=progress, where=keys)
    rows = [(k, i, o) for i, (k, ob) in enumerate(zip(keys, objs)) for o in ob]
    return ObjectTable([k for k, _, _ in rows], [sentences[k] for k, _, _ in rows], [o.name for _, _, o in rows],
                       np.array([o.class_id for _, _, o in rows]), np.concatenate(ctx),
                       sent[[i for _, i, _ in rows]])


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def class_spread(feats: np.ndarray, classes: np.ndarray, names: list[str] | None = None,
                 min_count: int = 5):
    """Per class: mean within-class and between-class cosine distance (a pandas DataFrame).

    Only classes with at least ``min_count`` mentions; ratio = within / between.
    """
    u = _unit(np.asarray(feats, np.float64))
    dist = 1.0 - u @ u.T                                        # (O, O)
    rows = []
    for c, n in sorted(Counter(classes.tolist()).items()):
        if n < min_count:
            continue
        m = classes == c
        w = dist[np.ix_(m, m)]
        within = (w.sum() - np.trace(w)) / (n * (n - 1))
        between = dist[np.ix_(m, ~m)].mean() if (~m).any() else np.nan
        name = names[int(np.flatnonzero(m)[0])] if names is not None else str(c)
        rows.append(dict(class_id=c, name=name, count=n, within=within, between=between, ratio=within / between))
    return pd.DataFrame(rows)


def spread_summary(df) -> dict:
    """Mention-weighted mean within / between distance over the classes of a class_spread table."""
    w = df["count"] / df["count"].sum()
    return dict(classes=len(df), within=float((w * df.within).sum()), between=float((w * df.between).sum()),
                ratio=float((w * df.ratio).sum()))


def spread_figure(spreads: dict, title: str = "Contextual object features: spread per class"):
    """Plotly figure: within vs between distance per class, one marker set per feature view."""
    import plotly.graph_objects as go  # plotly: loaded only to draw

    fig = go.Figure()
    for label, df in spreads.items():
        fig.add_trace(go.Scatter(x=df.between, y=df.within, mode="markers", name=label, text=df.name,
                                 marker=dict(size=np.sqrt(df["count"]) * 2 + 4),
                                 hovertemplate="%{text}: within %{y:.3f}, between %{x:.3f}<extra></extra>"))
    hi = max(float(max(df.between.max(), df.within.max())) for df in spreads.values())
    fig.add_trace(go.Scatter(x=[0, hi], y=[0, hi], mode="lines", name="within = between",
                             line=dict(dash="dot", color="grey")))
    fig.update_layout(title=title, xaxis_title="between-class cosine distance",
                      yaxis_title="within-class cosine distance", width=700, height=520)
    return fig


def nearest_sentences(table: ObjectTable, i: int, k: int = 5, view: str = "ctx"):
    """The k mentions nearest to mention i (cosine) in view "ctx" or "concept"; a DataFrame."""
    x = _unit(table.ctx if view == "ctx" else table.concept)
    sim = x @ x[i]
    sim[i] = -np.inf
    top = np.argsort(-sim)[:k]
    return pd.DataFrame(dict(cos=sim[top], object=[table.names[j] for j in top],
                             same_class=table.classes[top] == table.classes[i],
                             sentence=[table.sentences[j] for j in top]))


def glove_coverage(sentences: list[str], glove: GloVe, class_forms: list[str] | None = None, top: int = 15) -> dict:
    """Token / type coverage of a GloVe source on sentences (and on the class forms when given)."""
    counts = Counter(w for s in sentences for w, _, _ in tokenize(s))
    oov = {w: n for w, n in counts.items() if w not in glove}
    out = dict(tokens=sum(counts.values()), types=len(counts), oov_tokens=sum(oov.values()), oov_types=len(oov),
               token_coverage=1 - sum(oov.values()) / max(sum(counts.values()), 1),
               type_coverage=1 - len(oov) / max(len(counts), 1),
               top_oov=sorted(oov.items(), key=lambda kv: -kv[1])[:top])
    if class_forms is not None:
        out["oov_class_forms"] = [f for f in class_forms if glove.missing([w for w, _, _ in tokenize(f)])]
    return out
