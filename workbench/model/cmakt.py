"""CMAKT (Eq. 7-15): the context selector U(o) and the spatial / temporal alignment-transfer losses."""
from __future__ import annotations

import torch
from torch import nn

from .mil import fp32, log_loss, masked_softmax, normalize


class ContextSelector(nn.Module):
    """U(o) = (E_c(o) + E_c(S)) * (g(E_f(o)) + 1), g = Linear(d, d) (Eq. 8)."""

    def __init__(self, dim: int):
        super().__init__()
        self.g = nn.Linear(dim, dim)

    def forward(self, context: torch.Tensor, ef: torch.Tensor) -> torch.Tensor:
        """``context`` = E_c(o) + E_c(S) (or a negative pair's sum) (B, K, d); ``ef`` = E_f(o) (B, K, d)."""
        return context * (self.g(ef).float() + 1.0)


def negative_context(ec_obj: torch.Tensor, ec_sent: torch.Tensor | None, obj_mask: torch.Tensor,
                     neg_sentence: torch.Tensor) -> torch.Tensor:
    """The pair (E_c(o_k'), E_c(S_k')) from the unmatched sentence S_k' = neg_sentence[i], summed.

    Design choice (SPEC does not say which o_k'): slot k of segment i takes object k mod K_j of
    the unmatched sentence j, a deterministic cycle over j's real objects. ``ec_sent=None``
    (selector off) gives E_c(o_k') alone. (B, K, d) -> (B, K, d).
    """
    out = ec_obj[neg_sentence[:, None], negative_slots(obj_mask, neg_sentence)]  # (B, K, d)
    if ec_sent is not None:
        out = out + ec_sent[neg_sentence][:, None, :]
    return out


def negative_slots(obj_mask: torch.Tensor, neg_sentence: torch.Tensor) -> torch.Tensor:
    """(B, K): the object o_k' of the unmatched sentence j = neg_sentence[i] that slot k of segment i
    takes, k mod K_j (K_j: j's real objects)."""
    count = obj_mask.sum(1).clamp_min(1)[neg_sentence]  # (B,) objects in sentence j
    return torch.arange(obj_mask.shape[1], device=obj_mask.device)[None, :] % count[:, None]


def oracle_teacher(regions: torch.Tensor, look: torch.Tensor, cued: torch.Tensor, obj_mask: torch.Tensor,
                   neg_sentence: torch.Tensor) -> dict[str, torch.Tensor]:
    """The positive control's teacher (cfg.teacher = "oracle"): the world's stated-state relevance in
    place of U's alignments, frozen (computed without gradient from the inputs).

    ``regions`` (B, T, N, Dv) raw region features; ``look`` (B, K, Dv) the world's look of each object in the
    state its sentence states (world v2 truth, ``world.oracles.teacher_looks``); ``cued`` (B, K) the objects
    whose sentence states one. M^c = cos(r_tn, look_k) (B, K, T, N); the Q^c logits = max_n M^c (B, K, T) (how
    well frame t shows the stated look); the negative (U-'s place): the look of the unmatched sentence's
    object in slot k (``negative_slots``). ``mask`` (B, K): the transfer runs on cued real objects only."""
    with torch.no_grad(), fp32(regions):
        r = normalize(regions)                                                     # (B, T, N, Dv)
        lk = normalize(look)                                                       # (B, K, Dv); 0 stays 0
        m = torch.einsum("bkd,btnd->bktn", lk, r)                                  # (B, K, T, N)
        ln = lk[neg_sentence[:, None], negative_slots(obj_mask, neg_sentence)]     # (B, K, Dv)
        mn = torch.einsum("bkd,btnd->bktn", ln, r)
        return {"m_c": m, "lg_c": m.amax(-1), "m_cneg": mn, "lg_cneg": mn.amax(-1), "mask": cued & obj_mask}


def alignment_gap(pf: torch.Tensor, pc: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A = mean of |pf - pc| over the entries selected by ``mask`` (broadcast to pf's shape); per segment (B,)."""
    with fp32(pf):
        mask = mask.expand_as(pf).float()
        dims = tuple(range(1, pf.dim()))
        return ((pf.float() - pc.float()).abs() * mask).sum(dims) / mask.sum(dims).clamp_min(1)


def transfer_loss(a_pos: torch.Tensor, a_neg: torch.Tensor, eta: float) -> torch.Tensor:
    """L = l(A+ - A-) averaged over the batch (Eq. 13, 15)."""
    return log_loss(a_pos - a_neg, eta).mean()


def spatial_transfer_terms(m_f, m_c, m_cneg, obj_mask, frame_mask, tau) -> dict[str, torch.Tensor]:
    """M~ = softmax_n(M / tau) of the E_f branch, U and U- (B, K, T, N), the mask of real (object,
    frame) pairs (B, K, T, 1) and A+_S, A-_S per segment (B,). ``tau`` is a float or a 0-d tensor."""
    n_all = torch.ones(m_f.shape[-1], dtype=torch.bool, device=m_f.device)
    soft = lambda m: masked_softmax(m, n_all.expand_as(m), tau)  # noqa: E731
    mask = (obj_mask[:, :, None] & frame_mask[:, None, :])[..., None]  # (B, K, T, 1)
    sf, sc, sn = soft(m_f), soft(m_c), soft(m_cneg)
    return {"f": sf, "c": sc, "cneg": sn, "mask": mask,
            "a_pos": alignment_gap(sf, sc, mask), "a_neg": alignment_gap(sf, sn, mask)}


def temporal_transfer_terms(lg_f, lg_c, lg_cneg, obj_mask, frame_mask, tau) -> dict[str, torch.Tensor]:
    """Q~ = softmax_t(logits / tau) over the valid frames for the E_f branch, U and U- (B, K, T), the
    mask of real (object, frame) pairs (B, K, T) and A+_T, A-_T per segment (B,)."""
    fm = frame_mask[:, None, :].expand_as(lg_f)
    mask = obj_mask[:, :, None] & frame_mask[:, None, :]  # (B, K, T)
    qf, qc, qn = (masked_softmax(x, fm, tau) for x in (lg_f, lg_c, lg_cneg))
    return {"f": qf, "c": qc, "cneg": qn, "mask": mask,
            "a_pos": alignment_gap(qf, qc, mask), "a_neg": alignment_gap(qf, qn, mask)}


def spatial_transfer_loss(m_f, m_c, m_cneg, obj_mask, frame_mask, tau, eta: float) -> torch.Tensor:
    """L_STran: softmax_n(M/tau) of the E_f branch against U (A+) and against U- (A-). M: (B, K, T, N)."""
    terms = spatial_transfer_terms(m_f, m_c, m_cneg, obj_mask, frame_mask, tau)
    return transfer_loss(terms["a_pos"], terms["a_neg"], eta)


def temporal_transfer_loss(lg_f, lg_c, lg_cneg, obj_mask, frame_mask, tau, eta: float) -> torch.Tensor:
    """L_TTran: Q softened over the valid frames, softmax_t(logits/tau), as A+ / A- on (B, K, T) frame logits."""
    terms = temporal_transfer_terms(lg_f, lg_c, lg_cneg, obj_mask, frame_mask, tau)
    return transfer_loss(terms["a_pos"], terms["a_neg"], eta)
