"""In-batch negatives: for each positive segment, another segment of the batch that shares no object class."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Negatives:
    sentence: torch.Tensor  # (B,) long: S' of the pair (S', V_i), also CMAKT's unmatched sentence
    video: torch.Tensor  # (B,) long: V' of the pair (S_i, V')
    fallbacks: int  # draws that could not avoid a shared class (see sample_negatives)

    def to(self, device) -> "Negatives":
        return Negatives(self.sentence.to(device), self.video.to(device), self.fallbacks)


def _draw(ok: torch.Tensor, generator: torch.Generator | None) -> tuple[torch.Tensor, int]:
    B = ok.shape[0]
    eye = torch.eye(B, dtype=torch.bool, device=ok.device)
    none = ~ok.any(1)  # (B,) rows with no class-disjoint partner
    if B > 1:
        ok = torch.where(none[:, None], ~eye, ok)  # fallback: any other segment
    else:
        ok = torch.ones_like(ok)  # a batch of one: the segment itself (its MIL terms are l(0))
    r = torch.rand(B, B, generator=generator, device=generator.device if generator else "cpu").to(ok.device)
    return r.masked_fill(~ok, -1.0).argmax(1), int(none.sum())


def sample_negatives(obj_class: torch.Tensor, obj_mask: torch.Tensor,
                     generator: torch.Generator | None = None) -> Negatives:
    """Draw a negative sentence and a negative video for each positive of the batch.

    Parameters
    ----------
    obj_class : (B, K) long, class ids (-1 on padding).
    obj_mask : (B, K) bool, real object slots.
    generator : torch.Generator seeding the draws (CPU generator).

    Returns
    -------
    Negatives; each index j != i is uniform over the segments that share no class with i.
    That is the distribution of the reference's "redraw until no class overlaps". Where no
    such segment exists (the reference would loop forever) we draw uniformly among the other
    segments and count the case in ``fallbacks``.
    """
    cls = torch.where(obj_mask, obj_class, torch.full_like(obj_class, -1))
    same = (cls[:, None, :, None] == cls[None, :, None, :]) & (cls[:, None, :, None] >= 0)  # (B, B, K, K)
    B = cls.shape[0]
    ok = ~same.flatten(2).any(-1) & ~torch.eye(B, dtype=torch.bool, device=cls.device)  # (B, B)
    s, fs = _draw(ok, generator)
    v, fv = _draw(ok, generator)
    return Negatives(sentence=s, video=v, fallbacks=fs + fv)
