"""Does the transfer act? Per-epoch diagnostics of CMAKT and CAOS on one probe batch.

SPEC warns that at tau = 1 a softmax over 20 cosines in [-1, 1] is nearly uniform, so the transfer
terms can sit at l(0)-like values and move nothing. These numbers show it directly:

- ``mf_top``/``mf_entropy`` (``mc_*``): the mean top probability and entropy (nats) of
  M~ = softmax_n(M / tau) of the E_f branch (the U branch) over real (object, frame) pairs;
  ``uniform_top`` = 1/N and ``uniform_entropy`` = log N are what a uniform softmax gives.
- ``qf_top``/``qf_entropy`` (``qc_*``): the same for Q~ = softmax_t(logits / tau) over valid frames.
- ``a_pos_s``/``a_neg_s``, ``a_pos_t``/``a_neg_t``: A+ and A- of the spatial and temporal transfer (with
  cfg.teacher = "oracle": against the world's relevance, over the cued objects, whose share of the batch's
  objects is ``teacher_objects``).
- ``d_pos``/``d_neg``: CAOS's mean d+ and d- over the batch's objects.
- ``caos_self_positive``: the fraction of the probe batch's objects whose d+ is the object itself (no other
  object of its class in the batch); ``caos_self_positive_epoch``: the same over every batch of the epoch
  (``epoch_self_positive``; written by train.py beside the probe's diagnostics). Issue 21 item 4: at batch
  16 CAOS has no positive but the object itself for a large share of the objects.
- ``grad_norm``/``grad_share``/``grad_cos``: for each weighted loss term w_k L_k, the L2 norm of its
  gradient on the parameters of E_f and of E_v, its share of the sum of the terms' norms, and the
  cosine of its gradient with the gradient of L^f_MIL (``mil_f``).

The probe runs in eval mode (no dropout, so it draws nothing from the global RNG) and changes no
parameter; its gradients are taken with ``torch.autograd.grad``, never accumulated.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
import torch

from .caos import caos_means, self_positive
from .cmakt import spatial_transfer_terms, temporal_transfer_terms
from .mil import masked_softmax


def _stats(p: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """Mean top probability and mean entropy (nats) of distributions p (..., X) over rows where mask (...)."""
    p = p.float()
    top = p.amax(-1)
    ent = -torch.special.xlogy(p, p).sum(-1)
    m = mask.float()
    n = m.sum().clamp_min(1)
    return float((top * m).sum() / n), float((ent * m).sum() / n)


def _groups(model) -> dict[str, list[torch.nn.Parameter]]:
    out = {"E_v": list(model.visual.parameters())}
    if getattr(model, "ef", None) is not None:
        out["E_f"] = list(model.ef.parameters())
    return out


def transfer_diagnostics(model, batch: dict, neg, weights: dict[str, float], autocast_ctx) -> dict:
    """The diagnostics of one batch (see the module docstring); every value is a finite float or a dict of them."""
    was_training = model.training
    model.eval()
    try:
        internals: dict = {}
        with autocast_ctx:
            losses = model.losses(batch, neg, internals)
        om, fm = batch["obj_mask"], batch["frame_mask"]
        tau = model.transfer_tau()
        tau_f = float(tau.detach()) if torch.is_tensor(tau) else float(tau)
        out: dict = {"tau": tau_f}
        tau_t = tau_f                  # the temporal transfer's temperature (cfg.tau_temporal where set)
        if hasattr(model, "transfer_taus"):
            ts, tt = model.transfer_taus()
            tau_f = float(ts.detach()) if torch.is_tensor(ts) else float(ts)
            tau_t = float(tt.detach()) if torch.is_tensor(tt) else float(tt)
            if tau_t != out["tau"] or tau_f != out["tau"]:
                out["tau_spatial"], out["tau_temporal"] = tau_f, tau_t
        N = internals["m_f"].shape[-1]
        pair = om[:, :, None] & fm[:, None, :]                                   # (B, K, T)
        with torch.no_grad():
            n_all = torch.ones_like(internals["m_f"], dtype=torch.bool)
            out["uniform_top"], out["uniform_entropy"] = 1.0 / N, math.log(N)
            out["mf_top"], out["mf_entropy"] = _stats(masked_softmax(internals["m_f"], n_all, tau_f), pair)
            valid = om.any(1)
            if model.temporal is not None:
                q = masked_softmax(internals["lg_f"], fm[:, None, :].expand_as(internals["lg_f"]), tau_t)
                out["qf_top"], out["qf_entropy"] = _stats(q, om)
            if "m_c" in internals:
                out["mc_top"], out["mc_entropy"] = _stats(masked_softmax(internals["m_c"], n_all, tau_f), pair)
                if model.temporal is not None:
                    q = masked_softmax(internals["lg_c"], fm[:, None, :].expand_as(internals["lg_c"]), tau_t)
                    out["qc_top"], out["qc_entropy"] = _stats(q, om)
            if "teacher" in internals:   # cfg.teacher = "oracle": A+ / A- against the world's relevance, cued objects
                th = internals["teacher"]
                tv = th["mask"].any(1)
                out["teacher_objects"] = float(th["mask"].sum() / om.sum().clamp_min(1))
                if bool(tv.any()):
                    s = spatial_transfer_terms(internals["m_f"], th["m_c"], th["m_cneg"], th["mask"], fm, tau_f)
                    out["a_pos_s"], out["a_neg_s"] = float(s["a_pos"][tv].mean()), float(s["a_neg"][tv].mean())
                    if model.temporal is not None:
                        t = temporal_transfer_terms(internals["lg_f"], th["lg_c"], th["lg_cneg"], th["mask"], fm, tau_t)
                        out["a_pos_t"], out["a_neg_t"] = float(t["a_pos"][tv].mean()), float(t["a_neg"][tv].mean())
            elif "m_cneg" in internals:
                s = spatial_transfer_terms(internals["m_f"], internals["m_c"], internals["m_cneg"], om, fm, tau_f)
                out["a_pos_s"], out["a_neg_s"] = float(s["a_pos"][valid].mean()), float(s["a_neg"][valid].mean())
                if model.temporal is not None:
                    t = temporal_transfer_terms(internals["lg_f"], internals["lg_c"], internals["lg_cneg"], om, fm,
                                                tau_t)
                    out["a_pos_t"], out["a_neg_t"] = (float(t["a_pos"][valid].mean()),
                                                      float(t["a_neg"][valid].mean()))
            if "concept" in internals and "ef" in internals["texts"]:
                d_pos, d_neg, has_neg = caos_means(internals["texts"]["ef"], internals["concept"],
                                                   batch["obj_class"], om)
                if bool(has_neg.any()):
                    out["d_pos"], out["d_neg"] = float(d_pos[has_neg].mean()), float(d_neg[has_neg].mean())
                out["caos_self_positive"] = float(self_positive(batch["obj_class"], om).float().mean())
        grads: dict[str, dict[str, torch.Tensor]] = {}
        for g, params in _groups(model).items():
            grads[g] = {}
            for k, v in losses.items():
                w = weights.get(k, 0.0)
                if w == 0.0:
                    continue
                gs = torch.autograd.grad(w * v.float(), params, retain_graph=True, allow_unused=True)
                grads[g][k] = torch.cat([(x if x is not None else torch.zeros_like(p)).reshape(-1).float()
                                         for x, p in zip(gs, params)])
        out["grad_norm"], out["grad_share"], out["grad_cos"] = {}, {}, {}
        for g, per in grads.items():
            norms = {k: float(x.norm()) for k, x in per.items()}
            total = sum(norms.values())
            out["grad_norm"][g] = norms
            out["grad_share"][g] = {k: (n / total if total > 0 else 0.0) for k, n in norms.items()}
            ref = per.get("mil_f")
            if ref is not None:
                out["grad_cos"][g] = {k: float(torch.nn.functional.cosine_similarity(x, ref, dim=0, eps=1e-12))
                                      for k, x in per.items() if k != "mil_f"}
        return out
    finally:
        model.train(was_training)


def self_positive_fraction(classes: Sequence[Sequence[int]], batches: Iterable[Sequence[int]],
                           other_sentence: bool = False) -> float:
    """The fraction of all objects of ``batches`` whose CAOS d+ is themselves (``caos.self_positive``).

    ``classes``: one class list per sentence (its objects); ``batches``: lists of indices into it.
    Needs no model: the fraction depends only on which sentences share a batch."""
    hits = total = 0
    for segs in batches:
        rows = [list(classes[int(i)]) for i in segs]
        K = max((len(r) for r in rows), default=0)
        if K == 0:
            continue
        cls = torch.full((len(rows), K), -1, dtype=torch.long)                   # (B, K)
        for b, r in enumerate(rows):
            cls[b, :len(r)] = torch.tensor(r, dtype=torch.long)
        sp = self_positive(cls, cls >= 0, other_sentence)
        hits, total = hits + int(sp.sum()), total + len(sp)
    return hits / total if total else 0.0


def epoch_batches(data, epoch: int) -> list[np.ndarray]:
    """The training-store indices of each batch of ``TrainBatches.epoch(epoch)`` (its plan, no features read)."""
    return data.plan(epoch)[0]


def epoch_self_positive(data, epoch: int) -> float:
    """``self_positive_fraction`` over the batches that epoch ``epoch`` of ``data`` (TrainBatches) trains on."""
    classes = {int(i): data.text[data.store.seg_ids[int(i)]].obj_class for i in data.indices}
    return self_positive_fraction(classes, epoch_batches(data, epoch))
