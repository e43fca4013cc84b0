"""``python -m workbench figures``: the paper figures of a sweep (results table, bars, Figure 3
similarity maps, concept t-SNE), each as PNG + PDF (kaleido + Chromium) + interactive HTML with a
provenance JSON beside it."""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from . import viz
from ..boxes import iou
from .curve import curve_figure, refresh_oracles
from .grid import results_frame
from ..io import DataError, atomic_path, read_json, write_json
from ..predict import concepts, ground_segment, load_run
from .results import learning_curves
from ..run import git_info
from .runs import run_label

PACKAGES = ("workbench", "scl-workbench", "torch", "numpy", "pandas", "plotly", "kaleido", "scikit-learn", "h5py",
            "transformers")


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            continue
    return out


def run_info(run_dir: str | Path) -> dict[str, Any]:
    """The identity of a run for provenance: its path, preset, seed, creation time and commit."""
    p = Path(run_dir)
    raw = read_json(p / "config.json") if (p / "config.json").is_file() else {}
    prov = raw.get("provenance", {})
    return {"run": str(p.resolve()), "preset": raw.get("preset"), "seed": raw.get("config", {}).get("seed"),
            "created": prov.get("time"), "git": prov.get("git")}


def provenance(name: str, parameters: dict[str, Any], runs: list[str | Path], seed: int | None) -> dict[str, Any]:
    return {"figure": name, "git": git_info(), "parameters": parameters, "runs": [run_info(r) for r in runs],
            "seed": seed, "packages": package_versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%S")}


def _browser() -> None:
    """Point kaleido (choreographer) at Debian's Chromium unless BROWSER_PATH already names one."""
    if not os.environ.get("BROWSER_PATH"):
        for name in ("chromium", "chromium-browser", "google-chrome"):
            path = shutil.which(name)
            if path:
                os.environ["BROWSER_PATH"] = path
                return


def save_figures(items: list[tuple[Any, str, dict]], out: str | Path, static: bool = True) -> list[Path]:
    """Write each (figure, name, provenance) as name.html, name.png, name.pdf and name.provenance.json.

    Static images go through one kaleido session (Chromium starts once). Returns the written paths.
    """
    import plotly.io as pio  # plotly's image export: loaded only when figures are written

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for fig, name, prov in items:
        with atomic_path(out / f"{name}.html", suffix=".html") as tmp:
            fig.write_html(tmp, include_plotlyjs="cdn")
        write_json(out / f"{name}.provenance.json", {**prov, "files": [f"{name}.{e}" for e in ("png", "pdf", "html")]},
                   indent=2)
        written += [out / f"{name}.html", out / f"{name}.provenance.json"]
    if static and items:
        _browser()
        figs, paths, finals = [], [], []
        for fig, name, _ in items:
            for ext in ("png", "pdf"):
                tmp = out / f".{name}.tmp.{ext}"
                figs.append(fig)
                paths.append(tmp)
                finals.append(out / f"{name}.{ext}")
        try:                                            # layout sizes are not kaleido's defaults: pass them
            pio.write_images(figs, paths, scale=2, width=[f.layout.width or 900 for f in figs],
                             height=[f.layout.height or 600 for f in figs])
        except Exception as e:                          # noqa: BLE001 - kaleido / browser failures
            for t in paths:
                t.unlink(missing_ok=True)
            raise DataError(f"static figure export failed ({type(e).__name__}: {e}); kaleido>=1 needs a Chromium: "
                            "install Debian's `chromium` or set BROWSER_PATH") from e
        for tmp, final in zip(paths, finals):
            os.replace(tmp, final)
            written.append(final)
    return written


# --- the figures of a sweep -------------------------------------------------------------------

def _hits(m: dict, gt: np.ndarray) -> np.ndarray:
    """(K,) number of frames whose chosen box has IoU >= 0.5 with the GT box."""
    T = min(m["chosen"].shape[1], gt.shape[1])
    chosen = m["boxes"][np.arange(T)[None], m["chosen"][:, :T]]                  # (K, T, 4)
    g = gt[:, :T]
    valid = ~np.isnan(g).any(-1)
    return ((iou(chosen, np.nan_to_num(g)) >= 0.5) & valid).sum(1).astype(float)


def _label(r) -> str:
    """A loaded run's row name: its preset, with the text encoder that ran (``scl [MiniLM-L6]``)."""
    return run_label(r.preset or r.path.name, r.path)


def similarity_figure(run_a: str | Path, run_b: str | Path, split: str = "validation", candidates: int = 20,
                      max_frames: int = 5, data: str | None = None):
    """Figure 3: the similarity maps of two runs on the (segment, query) among the first ``candidates``
    annotated segments where run B's chosen boxes hit the GT in the most more frames than run A's.

    Returns (figure, parameters).
    """
    ra, rb = load_run(run_a, data=data), load_run(run_b, data=data)
    if split not in ra.ws.gt:
        raise DataError(f"{ra.cfg.data}: no annotated {split} split for the similarity maps")
    keys = ra.ws.eval_keys(split, ra.cfg)[:candidates]
    if not keys:
        raise DataError(f"{ra.cfg.data}: no annotated {split} segment with boxes")
    best, pick = None, None
    for key in keys:
        gt = viz.gt_boxes(ra.ws.gt[split][key])
        ma, mb = ground_segment(ra, split, key), ground_segment(rb, split, key)
        gain = _hits(mb, gt) - _hits(ma, gt)
        q = int(np.argmax(gain))
        if best is None or gain[q] > best:
            best, pick = gain[q], (key, q, {**ma, "gt": gt}, {**mb, "gt": gt})
    key, q, ma, mb = pick
    la, lb = _label(ra), _label(rb)
    if la == lb:
        la, lb = f"{la} ({ra.path.parent.name})", f"{lb} ({rb.path.parent.name})"
    names = dict(enumerate(ra.ws.vocab.names))
    fig = viz.similarity_maps({la: ma, lb: mb}, q, names, max_frames=max_frames)
    fig.update_layout(title=f"{fig.layout.title.text}<br><sup>segment {key}; picked among the first {len(keys)} "
                            f"{split} segments where {lb} hits the GT in the most frames more than {la} "
                            f"({best:+.0f})</sup>")
    return fig, {"split": split, "segment": key, "query": q, "candidates": len(keys), "frame_gain": float(best),
                 "max_frames": max_frames}


def check_tsne_args(max_segments: int, seed: int) -> None:
    """``--tsne-segments`` >= 1 (a negative count would slice "all but the last N") and ``--seed`` >= 0."""
    if isinstance(max_segments, bool) or not isinstance(max_segments, int) or max_segments < 1:
        raise DataError(f"--tsne-segments must be an integer >= 1 (training segments in the concept t-SNE), "
                        f"got {max_segments!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 32:
        raise DataError(f"--seed must be an integer in [0, 2**32) (the t-SNE seed), got {seed!r}")


def tsne_figure(run: str | Path, split: str = "training", max_segments: int = 300, seed: int = 0,
                data: str | None = None):
    """The concept t-SNE of a run; returns (figure, parameters incl. the silhouette score)."""
    check_tsne_args(max_segments, seed)

    r = load_run(run, data=data)
    pts = viz.concept_tsne_points(concepts(r, split, max_segments), dict(enumerate(r.ws.vocab.names)), seed=seed)
    fig = viz.concept_tsne_figure(pts)
    fig.update_layout(title=f"{_label(r)} · {fig.layout.title.text}")
    return fig, {"split": split, "max_segments": max_segments, "objects": int(len(pts["obj_class"])),
                 "classes": int(len(pts["classes"])), "silhouette": pts["silhouette"],
                 "perplexity": pts["perplexity"]}


def sweep_figures(sweep_dir: str | Path, out: str | Path, split: str = "validation", seed: int = 0,
                  tsne_segments: int = 300, static: bool = True, log=print, worlds: str | Path | None = None
                  ) -> list[Path]:
    """Every figure a sweep supports: results table, bars, similarity maps (stvg vs scl), concept t-SNE; a world
    sweep's: its curve (``curve.curve_figure``), its oracle rows first refreshed from ``worlds`` when given
    (``curve.refresh_oracles``)."""
    check_tsne_args(tsne_segments, seed)              # before anything is read or drawn
    sweep_dir = Path(sweep_dir)
    if not (sweep_dir / "sweep.json").is_file():
        raise DataError(f"{sweep_dir}: not a sweep directory (no sweep.json)")
    meta = read_json(sweep_dir / "sweep.json")
    if worlds is not None:
        if meta.get("grid") != "world":
            raise DataError(f"--worlds: {sweep_dir} is not a world sweep (sweep.json grid {meta.get('grid')!r})")
        refresh_oracles(sweep_dir, worlds)
    if meta.get("grid") == "world":                     # a world sweep (`sweep --grid context`): its curve
        name = "context_curve" if meta["axis"] == "context" else f"{meta['axis']}_curve"
        runs = sorted(sweep_dir.glob("*/*/seed-*/run"))
        prov = provenance(name, {"sweep": str(sweep_dir.resolve()), "axis": meta["axis"], "values": meta["values"],
                                 "world_preset": meta["world_preset"], "world_sets": meta["world_sets"],
                                 "overrides": meta["overrides"], "seeds": meta["seeds"]}, runs, None)
        return save_figures([(curve_figure(sweep_dir), name, prov)], out, static=static)
    df = results_frame(sweep_dir)
    done = df[df["status"] == "ok"]
    ok = list(dict.fromkeys(done["preset"]))
    runs = [Path(r) for r in done["run"]]
    first = {p: Path(done.loc[done["preset"] == p, "run"].iloc[0]) for p in ok}   # lowest seed of each preset
    base = {"sweep": str(sweep_dir.resolve()), "grid": meta.get("grid"), "data": meta.get("data"),
            "overrides": meta.get("overrides")}
    items = [(viz.results_table(df, title=f"results on {Path(meta.get('data', '')).name} · ours | paper"),
              "results_table", provenance("results_table", base, runs, None))]
    grid = meta.get("grid") or "sweep"
    items.append((viz.results_bars(df, title=f"{grid} grid: ours (blue) vs the paper (grey)"), f"{grid}_bars",
                  provenance(f"{grid}_bars", {**base, "split": "testing"}, runs, None)))
    trained = [p for p in ok if p not in ("random", "upper-bound")]
    curves = learning_curves(done)
    if not curves.empty:
        items.append((viz.learning_curves(curves, title=f"{grid} grid: val box micro per epoch (mean ± std over "
                                                        "seeds; faint: each seed)"), "learning_curves",
                      provenance("learning_curves", base, [first[p] for p in trained], None)))
    pair = ("stvg", "scl") if {"stvg", "scl"} <= set(trained) else tuple(trained[:2])
    if len(pair) == 2:
        a, b = (first[p] for p in pair)
        fig, params = similarity_figure(a, b, split)
        items.append((fig, "similarity_maps", provenance("similarity_maps", {**base, **params}, [a, b], None)))
    else:
        log("figures: similarity maps need two trained runs; skipped")
    with_concepts = [p for p in trained if p.startswith("scl")]
    if with_concepts:
        r = first[with_concepts[0]]
        fig, params = tsne_figure(r, max_segments=tsne_segments, seed=seed)
        items.append((fig, "concept_tsne", provenance("concept_tsne", {**base, **params}, [r], seed)))
    else:
        log("figures: concept t-SNE needs a trained scl run; skipped")
    return save_figures(items, out, static=static)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sweep", required=True, help="sweep directory written by `sweep`")
    p.add_argument("--out", required=True, help="figure directory")
    p.add_argument("--split", default="validation", choices=("validation", "testing"),
                   help="split of the similarity maps")
    p.add_argument("--seed", type=int, default=0, help="t-SNE seed")
    p.add_argument("--tsne-segments", type=int, default=300, help="training segments in the concept t-SNE")
    p.add_argument("--no-static", action="store_true", help="HTML + provenance only (no PNG / PDF)")
    p.add_argument("--worlds", metavar="ROOT", help="a world sweep's committed copy: first replace its oracle rows by "
                   "those of its worlds simulated again with --stats under ROOT/<knob>-<value>/ (checked to be the same "
                   "worlds), e.g. to add the training-time oracles")


def run(args: argparse.Namespace) -> int:
    t0 = time.time()
    paths = sweep_figures(args.sweep, args.out, args.split, args.seed, args.tsne_segments, not args.no_static,
                          worlds=args.worlds)
    print(json.dumps({"figures": sorted(str(p) for p in paths), "seconds": round(time.time() - t0, 1)}, indent=1))
    return 0
