"""The training and evaluation loop: ``train_one_epoch``, ``evaluate_split`` (``predict_split`` +
the evaluation rule) and ``fit_on_validation`` (the model's own post-training choice on
validation), plus the autocast and device helpers they share. Nothing model-specific lives here."""
from __future__ import annotations

import time
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from .config import Config
from .features.batches import TrainBatches, eval_groups
from .features.store import FeatureStore
from .device import resolve_device  # noqa: F401  (re-exported for callers of the engine)
from .io import DataError
from .evaluate import HELDOUT, evaluate_boxes, gt_units, heldout_metrics, per_object
from .model.negatives import sample_negatives
from .precision import autocast as _autocast, resolve


def autocast(cfg: Config, device: torch.device):
    """bf16 autocast for the matmuls (fp32 master weights) when cfg.dtype resolves to bf16
    (``dtype=auto``: see workbench/precision.py); a no-op context for fp32."""
    return _autocast(resolve(cfg.dtype, device), device)


def read_ahead(cfg: Config, device: torch.device) -> int:
    """Training batches a background thread reads ahead (``cfg.prefetch``; -1 auto: 2 on CUDA, where reading
    overlaps the device's compute, 0 on CPU, where a research-size run spent ~7 % more CPU time with the thread
    than without it: GIL hand-offs around every op; docs/PERFORMANCE.md section 5). Batches are the same either way."""
    if cfg.prefetch >= 0:
        return cfg.prefetch
    return 2 if device.type == "cuda" else 0


def make_optimizer(model: torch.nn.Module, cfg: Config) -> torch.optim.Optimizer:
    """Adam (lr, weight_decay of cfg), fused: one kernel over all parameters instead of ~10 ops
    per parameter tensor (same update; tests/test_speed.py compares it with the plain loop)."""
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Move a batch to ``device``. Region features stay float16 as the store serves them: the
    model casts them once, to bf16 under autocast or to its weight dtype otherwise."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def train_step(model, weights: dict[str, float], batch: dict[str, torch.Tensor], optimizer, cfg: Config,
               device: torch.device, gen: torch.Generator, where: str = "") -> dict[str, float]:
    """One optimizer step on a device batch: negatives, forward under autocast, weighted sum of the
    loss dict, backward, Adam. Returns each loss term and "total"; a non-finite loss stops the run."""
    neg = sample_negatives(batch["obj_class"].cpu(), batch["obj_mask"].cpu(), gen).to(device)
    with autocast(cfg, device):
        losses = model.losses(batch, neg)
    total = sum(weights.get(k, 0.0) * v.float() for k, v in losses.items())
    if not torch.isfinite(total):
        raise FloatingPointError(f"{where}: non-finite loss {({k: float(v.detach()) for k, v in losses.items()})}; "
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
    for step, batch in enumerate(data.epoch(epoch, prefetch=read_ahead(cfg, device))):
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


Groups = Iterable[tuple[list[str], dict[str, torch.Tensor]]]   # (segment keys, batch) of eval_groups


@torch.no_grad()
def score_split(model, store: FeatureStore, text, keys: Sequence[str], cfg: Config, device: torch.device,
                fn: Callable[[dict], dict[str, torch.Tensor]], batches: Groups | None = None
                ) -> dict[str, dict[str, np.ndarray]]:
    """Run ``fn(batch) -> {name: scores (B, K, T, N)}`` over every segment of ``keys`` (all frames)
    -> {key: {name: (K, T, N)}} trimmed to the segment's objects and frames. ``batches``: the groups of
    ``keys`` already read (``Workspace.eval_batches``); default: read from the store."""
    model.eval()
    out: dict = {}
    for group, batch in (eval_groups(store, text, keys) if batches is None else batches):
        batch = to_device(batch, device)
        with autocast(cfg, device):
            sc = {n: s.float().cpu().numpy() for n, s in fn(batch).items()}              # (B, K, T, N)
        for b, key in enumerate(group):
            T, K = int(store.frame_count[store.index(key)]), len(text[key].obj_class)
            out[key] = {n: s[b, :K, :T] for n, s in sc.items()}
    return out


@torch.no_grad()
def predict_split(model, store: FeatureStore, text, keys: Sequence[str], cfg: Config, device: torch.device,
                  batches: Groups | None = None) -> dict[str, np.ndarray]:
    """Top-1 proposal boxes {key: (K, T, 4)} (annotation pixel space) of ``model.ground``; ``batches`` as
    in ``score_split``."""
    model.eval()
    out: dict = {}
    for group, batch in (eval_groups(store, text, keys) if batches is None else batches):
        batch = to_device(batch, device)
        with autocast(cfg, device):
            top = model.ground(batch).float().argmax(-1).cpu().numpy()                     # (B, K, T)
        for b, key in enumerate(group):
            i = store.index(key)
            T, K = int(store.frame_count[i]), len(text[key].obj_class)
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


def evaluate_split(model, store: FeatureStore, text, gt: dict, vocab, cfg: Config, device: torch.device,
                   keys: Sequence[str] | None = None, rule: str = "stvg",
                   heldout: Sequence[int] | None = None, batches: Groups | None = None, units=None,
                   pred: dict[str, np.ndarray] | None = None, keep: dict | None = None) -> dict:
    """The four metrics of ``model`` under ``rule`` on the segments ``keys`` (default: all of ``gt``);
    with ``heldout`` class ids also the same metrics on their objects only, under key ``HELDOUT``.

    Inputs built once and kept across calls (``Workspace``): ``batches`` the groups of ``keys``, ``units`` their
    ``gt_units``. ``pred``: the per-object boxes this same model state already predicted on ``keys`` (scored,
    not recomputed: ``seconds`` is then the scoring's only). ``keep``, a dict, receives the boxes as ``"pred"``."""
    keys = list(gt) if keys is None else list(keys)
    t0 = time.time()
    sub = {k: gt[k] for k in keys}
    if pred is None:
        pred = per_object(sub, predict_split(model, store, text, keys, cfg, device, batches))
    if keep is not None:
        keep["pred"] = pred
    units = gt_units(sub, vocab) if units is None else units
    metrics = evaluate_boxes(units, pred, vocab, rule=rule)
    if heldout:
        metrics[HELDOUT] = heldout_metrics(units, pred, vocab, heldout, rule=rule)
    metrics["seconds"] = round(time.time() - t0, 2)
    return metrics


def fit_on_validation(model, store: FeatureStore, text, gt: dict, vocab, cfg: Config, device: torch.device,
                      keys: Sequence[str], rule: str = "stvg", batches: Groups | None = None, units=None) -> dict:
    """Let the model pick its inference parameters on validation (``GroundingModel.fit_on_validation``);
    ``batches``, ``units`` as in ``evaluate_split``."""
    sub = {k: gt[k] for k in keys}
    units = gt_units(sub, vocab) if units is None else units
    return model.fit_on_validation(
        lambda fn: score_split(model, store, text, keys, cfg, device, fn, batches),
        lambda scores: evaluate_boxes(units, per_object(sub, choose_boxes(store, scores)), vocab, rule=rule))
