"""CAOS (Eq. 5-6): pull the extracted object concepts D(E_c(o), E_c(S)) of a class towards its stable concept E_f(o)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .mil import fp32, normalize


def extract_concept(ec_obj: torch.Tensor, ec_sent: torch.Tensor, extract: bool = True) -> torch.Tensor:
    """D(E_c(o), E_c(S)) = E_c(o) - E_c(S) (Eq. 5); ``extract=False`` gives E_c(o). (B, K, d), (B, d) -> (B, K, d)."""
    return ec_obj - ec_sent[:, None, :] if extract else ec_obj


def caos_means(ef: torch.Tensor, concept: torch.Tensor, obj_class: torch.Tensor, obj_mask: torch.Tensor):
    """d+ and d- of every real object of the batch.

    d+(o) = mean of cos(D_b, E_f(o)) over the batch objects b of o's class (o itself included),
    d-(o) = the same mean over the objects of other classes. Returns d+ (O,), d- (O,), and
    ``has_neg`` (O,) bool: whether the batch holds any object of another class.
    """
    with fp32(ef):
        a = normalize(ef[obj_mask])  # (O, d) anchors E_f(o)
        b = normalize(concept[obj_mask])  # (O, d) concepts D
        c = a @ b.T  # (O, O)  c[i, j] = cos(D_j, E_f(o_i))
        cls = obj_class[obj_mask]
        same = (cls[:, None] == cls[None, :]).float()
        diff = 1.0 - same
        d_pos = (c * same).sum(1) / same.sum(1)
        d_neg = (c * diff).sum(1) / diff.sum(1).clamp_min(1)
    return d_pos, d_neg, diff.sum(1) > 0


def self_positive(obj_class: torch.Tensor, obj_mask: torch.Tensor, other_sentence: bool = False) -> torch.Tensor:
    """(O,) bool over the batch's real objects: True where d+ of ``caos_means`` is the object's own term
    alone, i.e. no other object of its class is in the batch (issue 21 item 4: CAOS then only pulls
    D(o) towards E_f(o)). ``other_sentence=True`` asks instead whether no object of its class is in
    another sentence of the batch (a repeat of the class in its own sentence does not count).
    obj_class, obj_mask: (B, K)."""
    cls = obj_class[obj_mask]                                             # (O,)
    sent = torch.arange(obj_mask.shape[0], device=obj_mask.device)[:, None].expand_as(obj_mask)[obj_mask]  # (O,)
    same = cls[:, None] == cls[None, :]                                   # (O, O)
    if other_sentence:
        same &= sent[:, None] != sent[None, :]
    else:
        same &= ~torch.eye(len(cls), dtype=torch.bool, device=cls.device)
    return ~same.any(1)


def caos_loss(ef, concept, obj_class, obj_mask, form: str = "ratio", temperature: float = 0.1) -> torch.Tensor:
    """L_clust (Eq. 6) averaged over the batch's real objects that have a different-class object.

    ``form="ratio"`` is the paper's literal -d+/d- (unbounded when d- nears 0 or changes sign);
    ``form="contrast"`` is -log(e^{d+/T} / (e^{d+/T} + e^{d-/T})) = softplus((d- - d+)/T): a
    two-way InfoNCE of d+ against d-, bounded below by 0 and smooth everywhere.
    ``form="bounded"`` keeps the paper's ratio on similarities shifted to be non-negative,
    r = (1 + d+) / (1 + d-), and maps it through r / (1 + r): L = -(1 + d+) / (2 + d+ + d-), in
    [-1, 0]; -1/2 when d+ = d-; monotone like the paper's -d+/d- where d+ > d- > 0. Its gradient
    is bounded except at d+ = d- = -1 (the denominator is clamped at 1e-6 there).
    A batch with a single class has no d-: the loss is 0 (kept in the graph).
    """
    d_pos, d_neg, has_neg = caos_means(ef, concept, obj_class, obj_mask)
    if not bool(has_neg.any()):
        return (ef.sum() + concept.sum()).float() * 0.0
    d_pos, d_neg = d_pos[has_neg], d_neg[has_neg]
    if form == "ratio":
        return -(d_pos / d_neg).mean()
    if form == "contrast":
        return F.softplus((d_neg - d_pos) / temperature).mean()
    if form == "bounded":
        return -((1.0 + d_pos) / (2.0 + d_pos + d_neg).clamp_min(1e-6)).mean()
    raise ValueError(f"caos_form must be 'ratio', 'contrast' or 'bounded', got {form!r}")
