"""Extended DVSA (registry name "dvsa"): the weakly-supervised video object grounding baseline of
Zhou et al. (BMVC 2018), as in their public code (MichiganCOG/Video-Grounding-from-Text, read for
its equations; this is our own code).

Regions: x = ReLU(Dropout(W r + b)) (B, T, N, d). Queries: a lookup table of object *class labels*
e(o) (d), the padding / open-vocabulary slot (class -1) maps to an extra row (``object_query="label"``,
the public code); or e(o) = W' w(o) + b' from the GloVe vector (``object_query="glove"``, the
GloVe-based variant of the paper's Table 4, which also grounds classes never seen). Region-object score
(no attention, no cosine):

    s(o, r) = sigmoid(<e(o), x(r)> / sqrt(d))                                     (B, K, T, N)

Video-sentence score: S(S, V) = mean over the sentence's objects o of max over every proposal r of
every frame of V of s(o, r). Loss: the margin ranking loss of the positive pair against a negative
video and a negative sentence (in-batch, sharing no class), margin ``cfg.margin`` (0.1):

    L = 1/2 [max(0, m - S(S, V) + S(S, V')) + max(0, m - S(S, V) + S(S', V))]

Inference: the top-1 proposal of s(o, .) in each frame.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..config import Config
from ..io import DataError
from .base import GroundingModel
from .mil import fp32
from .negatives import Negatives


def uniform_frames(frame_mask: torch.Tensor, K: int) -> torch.Tensor:
    """Uniform weights over each segment's valid frames, (B, T) mask -> (B, K, T)."""
    m = frame_mask.float()[:, None, :].expand(-1, K, -1)
    return m / m.sum(-1, keepdim=True).clamp_min(1.0)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean of ``x`` over ``dim`` restricted to ``mask`` (0 where the mask is empty)."""
    m = mask.to(x.dtype)
    return (x * m).sum(dim) / m.sum(dim).clamp_min(1.0)


def margin_rank(pos: torch.Tensor, neg: torch.Tensor, margin: float) -> torch.Tensor:
    """max(0, margin - (pos - neg)), elementwise (torch's margin_ranking_loss with y = 1, unreduced)."""
    return torch.relu(margin - (pos - neg))


class ExtendedDVSA(GroundingModel):
    """Region encoder + class-label embeddings scored by a scaled, squashed dot product."""

    def __init__(self, cfg: Config, dims: dict[str, int]):
        super().__init__()
        self.cfg = cfg
        d = cfg.embed_dim
        self.region = nn.Sequential(nn.Linear(dims["visual"], d), nn.Dropout(cfg.dropout), nn.ReLU())
        if cfg.object_query == "label":
            if "classes" not in dims:
                raise DataError(f"model {cfg.model!r}: dims lacks 'classes' (the class vocabulary size of its "
                                f"label embeddings); got {sorted(dims)}")
            self.num_classes = int(dims["classes"])
            self.label = nn.Embedding(self.num_classes + 1, d)      # last row: padding / open vocabulary
        else:
            self.glove = nn.Linear(dims["glove"], d)

    @staticmethod
    def loss_weights(cfg: Config) -> dict[str, float]:
        """rank: the margin ranking loss over (negative video, negative sentence)."""
        return {"rank": 1.0}

    # --- shared pieces --------------------------------------------------------------------------
    def embed_regions(self, regions: torch.Tensor) -> torch.Tensor:
        """x (B, T, N, d) float32 from raw region features (B, T, N, Dv)."""
        if not torch.is_autocast_enabled(regions.device.type):
            regions = regions.to(self.region[0].weight.dtype)
        return self.region(regions).float()

    def embed_objects(self, batch: dict) -> torch.Tensor:
        """e(o) (B, K, d): label rows of the class ids (-1, padding / open vocabulary: the extra row),
        or the linear map of w(o)."""
        if self.cfg.object_query == "glove":
            return self.glove(batch["obj_glove"].float()).float()
        obj_class = batch["obj_class"]
        idx = torch.where(obj_class >= 0, obj_class, torch.full_like(obj_class, self.num_classes))
        if int(idx.max()) > self.num_classes:
            raise DataError(f"model {self.cfg.model!r}: class id {int(idx.max())} outside the "
                            f"{self.num_classes}-class vocabulary")
        return self.label(idx).float()

    @staticmethod
    def scores(objects: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        """s = sigmoid(<e(o), x(r)> / sqrt(d)): (B, K, d), (B, T, N, d) -> (B, K, T, N)."""
        with fp32(regions):
            dot = torch.einsum("bkd,btnd->bktn", objects.float(), regions.float())
            return torch.sigmoid(dot / math.sqrt(objects.shape[-1]))

    def pair_scores(self, objects: torch.Tensor, regions: torch.Tensor, neg: Negatives):
        """Region-object scores of the positive pair, the negative-video pair and the negative-sentence
        pair: each (B, K, T, N) with the object mask and frame mask that go with it."""
        return (self.scores(objects, regions),
                self.scores(objects, regions[neg.video]),
                self.scores(objects[neg.sentence], regions))

    # --- protocol ---------------------------------------------------------------------------------
    def losses(self, batch: dict, neg: Negatives) -> dict[str, torch.Tensor]:
        om, fm = batch["obj_mask"], batch["frame_mask"]
        x, e = self.embed_regions(batch["regions"]), self.embed_objects(batch)
        s_pos, s_negv, s_negs = self.pair_scores(e, x, neg)

        def video_score(s, obj_mask, frame_mask):                      # (B, K, T, N) -> (B,)
            best = s.masked_fill(~frame_mask[:, None, :, None], 0.0).flatten(2).amax(-1)   # (B, K)
            return masked_mean(best, obj_mask, 1)

        pos = video_score(s_pos, om, fm)
        negv = video_score(s_negv, om, fm[neg.video])
        negs = video_score(s_negs, om[neg.sentence], fm)
        m = self.cfg.margin
        return {"rank": 0.5 * (margin_rank(pos, negv, m) + margin_rank(pos, negs, m)).mean()}

    def ground(self, batch: dict, chunk_frames: int = 64) -> torch.Tensor:
        e = self.embed_objects(batch)
        regions = batch["regions"]
        return torch.cat([self.scores(e, self.embed_regions(regions[:, t0:t0 + chunk_frames]))
                          for t0 in range(0, regions.shape[1], chunk_frames)], 2)

    def temporal_weights(self, batch: dict, chunk_frames: int = 64) -> torch.Tensor:
        """DVSA has no temporal model: uniform over the valid frames (B, K, T)."""
        return uniform_frames(batch["frame_mask"], batch["obj_class"].shape[1])
