"""The training engine: exactly ``train_one_epoch`` and ``evaluate_split`` (plus the autocast
and device helpers they share)."""
from __future__ import annotations

import contextlib
import time
from typing import Callable, Sequence

import numpy as np
import torch

from .config import Config
from .data.batches import TrainBatches, eval_groups
from .data.store import FeatureStore
from .io import DataError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast(cfg: Config, device: torch.device):
    """bf16 autocast for the matmuls (fp32 master weights); a no-op for dtype fp32."""
    if cfg.dtype == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Move a batch to ``device``. Region features stay float16 as the store serves them: the
    model casts them once, to bf16 under autocast or to its weight dtype otherwise."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def train_step(model, weights: dict[str, float], batch: dict[str, torch.Tensor], optimizer, cfg: Config,
               device: torch.device, gen: torch.Generator, where: str = "") -> dict[str, float]:
    """One optimizer step on a device batch: negatives, forward under autocast, weighted sum of the
    loss dict, backward, Adam. Returns each loss term and "total"; a non-finite loss stops the run."""
    from .model.negatives import sample_negatives

    neg = sample_negatives(batch["obj_class"].cpu(), batch["obj_mask"].cpu(), gen).to(device)
    with autocast(cfg, device):
        losses = model.losses(batch, neg)
    total = sum(weights.get(k, 0.0) * v.float() for k, v in losses.items())
    if not torch.isfinite(total):
        raise FloatingPointError(f"{where}: non-finite loss {({k: float(v) for k, v in losses.items()})}; "
                                 "stopping the run")
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    optimizer.step()
    return {k: float(v.detach()) for k, v in losses.items()} | {"total": float(total.detach())}


def train_one_epoch(model, criterion_weights: dict[str, float], data: TrainBatches, optimizer, cfg: Config,
                    epoch: int, device: torch.device, on_step: Callable[[int, dict], None] | None = None
                    ) -> dict[str, float]:
    """One pass over the training batches of ``epoch``; returns the mean of each loss term."""
    model.train()
    sums: dict[str, float] = {}
    steps = 0
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
    for step, batch in enumerate(data.epoch(epoch)):
        vals = train_step(model, criterion_weights, to_device(batch, device), optimizer, cfg, device, gen,
                          where=f"epoch {epoch} step {step}")
        for k, v in vals.items():
            sums[k] = sums.get(k, 0.0) + v
        steps += 1
        if on_step is not None:
            on_step(step, vals)
    if steps == 0:
        raise DataError(f"no training batch: fewer training segments than batch_size={cfg.batch_size}")
    return {k: v / steps for k, v in sums.items()}


@torch.no_grad()
def ground_split(model, store: FeatureStore, text, keys: Sequence[str], cfg: Config, device: torch.device,
                 parts: bool = False) -> dict[str, np.ndarray | dict[str, np.ndarray]]:
    """Top-1 proposal boxes per (object, frame) of every segment in ``keys``.

    Returns {key: boxes (K, T, 4)} in annotation pixel space; with ``parts`` (fusion-ensemble),
    {key: {"f": scores (K, T, N), "c": scores (K, T, N)}} instead, for the weight search.
    """
    model.eval()
    out: dict = {}
    for group, batch in eval_groups(store, text, keys):
        batch = to_device(batch, device)
        with autocast(cfg, device):
            if parts:
                sc = {n: s.float().cpu().numpy() for n, s in model.ground_parts(batch).items()}  # (B, K, T, N)
            else:
                top = model.ground(batch).float().argmax(-1).cpu().numpy()                     # (B, K, T)
        for b, key in enumerate(group):
            i = store.index(key)
            T, K = int(store.frame_count[i]), len(text[key].obj_class)
            if parts:
                out[key] = {n: s[b, :K, :T] for n, s in sc.items()}
            else:
                boxes = store.boxes(i)                                                          # (T, N, 4)
                out[key] = boxes[np.arange(T)[None, :], top[b, :K, :T]]                         # (K, T, 4)
    return out


def choose_boxes(store: FeatureStore, scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Top-1 boxes from per-proposal scores {key: (K, T, N)} -> {key: (K, T, 4)}."""
    out = {}
    for key, s in scores.items():
        boxes = store.boxes(store.index(key))
        out[key] = boxes[np.arange(s.shape[1])[None, :], s.argmax(-1)]
    return out


def ensemble_boxes(store: FeatureStore, parts: dict[str, dict[str, np.ndarray]], w: float) -> dict[str, np.ndarray]:
    """fusion-ensemble: top-1 boxes of w * M^f + (1 - w) * M^c from ``ground_split(parts=True)``."""
    return choose_boxes(store, {k: w * p["f"] + (1 - w) * p["c"] for k, p in parts.items()})


def predict_split(model, store: FeatureStore, text, keys: Sequence[str], cfg: Config, device: torch.device,
                  ensemble_weight: float | None = None) -> dict[str, np.ndarray]:
    """Top-1 boxes {key: (K, T, 4)} under the preset's inference mode (fusion-ensemble: weight
    ``ensemble_weight``, else cfg.ensemble_weight, which must have been chosen)."""
    if cfg.fusion != "ensemble":
        return ground_split(model, store, text, keys, cfg, device)
    w = cfg.ensemble_weight if ensemble_weight is None else ensemble_weight
    if w < 0:
        raise ValueError("ensemble weight not chosen yet")
    return ensemble_boxes(store, ground_split(model, store, text, keys, cfg, device, parts=True), w)


def evaluate_split(model, store: FeatureStore, text, gt: dict, vocab, cfg: Config, device: torch.device,
                   keys: Sequence[str] | None = None, ensemble_weight: float | None = None) -> dict:
    """The four metrics (stvg rule) of ``model`` on the segments ``keys`` (default: all of ``gt``)."""
    from .evaluate import evaluate_boxes

    keys = list(gt) if keys is None else list(keys)
    t0 = time.time()
    pred = predict_split(model, store, text, keys, cfg, device, ensemble_weight)
    metrics = evaluate_boxes({k: gt[k] for k in keys}, pred, vocab, rule="stvg")
    metrics["seconds"] = round(time.time() - t0, 2)
    return metrics


def search_ensemble_weight(model, store, text, gt, vocab, cfg, device, keys=None,
                           grid: Sequence[float] = tuple(np.round(np.linspace(0, 1, 11), 2))) -> tuple[float, dict]:
    """Fusion-ensemble: the E_f weight w of w*M^f + (1-w)*M^c that is best on validation."""
    from .evaluate import evaluate_boxes

    keys = list(gt) if keys is None else list(keys)
    parts = ground_split(model, store, text, keys, cfg, device, parts=True)
    results = {}
    for w in grid:
        pred = ensemble_boxes(store, parts, w)
        results[float(w)] = evaluate_boxes({k: gt[k] for k in keys}, pred, vocab, rule="stvg")
    best = max(results, key=lambda w: (results[w][cfg.select_metric], -abs(w - 0.5)))
    return best, results
