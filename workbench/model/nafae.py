"""NAFAE (registry name "nafae"): "Not All Frames Are Equal" (Shi et al., CVPR 2019), as in its
public code (jshi31/NAFAE, read for its equations; this is our own code).

Regions: v(r) = tanh(Dropout(W (r / 100) + b)) (B, T, N, d) (``region_input="div100"``, the public
code's scaling of its detector's fc features; ``"l2"``: r / |r| instead, for features of another scale). Objects: the GloVe vector of the
class word, w(o) = tanh(Dropout(BN(W' glove(o) + b'))) (B, K, d). Scores are plain dot products
S(o, r) = <w(o), v(r)>. With every segment V_a and every sentence S_b of the batch (all pairs):

    P_{a,t,b,k} = max_r in frame t of V_a  S(o_{b,k}, r)                  frame-level max (B, T, B, K)
    A_{a,t,b,k} = (P - min_t P) / (max_t P - min_t P + eps)              frame attention (over t)
    F_{a,t,b}   = sum_k A P / |S_b|                                       frame score of (V_a, S_b)
    L_rank      = mean_{a,t} [ mean_b relu(F_{b,t,a} - F_{a,t,a} + D) ] + mean_{a,t} [ mean_b relu(F_{a,t,b} - F_{a,t,a} + D) ]

(the first term: sentence a against every video, the second: video a against every sentence;
margin D = ``cfg.margin``, 1 in the public code). Visual consistency: for each object of each
segment, the top proposal of every frame, L2-normalised and scaled by its min-max-normalised
score over the frames (no gradient through the choice or the scale); L_vis is the mean over
object and frame pairs t != t' of 1 - <u_t, u_t'>. Loss = 10 L_rank + 10 ``vis_lambda`` L_vis.
Inference: the top-1 proposal of S(o, .) per frame; ``temporal_weights`` is A normalised to sum 1.
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import Config
from .base import GroundingModel
from .dvsa import masked_mean
from .mil import fp32
from .negatives import Negatives

EPS = 1e-5
FEATURE_SCALE = 100.0   # the public code divides the detector's fc features by 100
LOSS_SCALE = 10.0       # the public code's factor on (L_rank + lambda L_vis)


def minmax(x: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """(x - min) / (max - min + eps) over ``dim`` restricted to ``mask`` (0 outside it)."""
    big = torch.finfo(x.dtype).max
    lo = x.masked_fill(~mask, big).amin(dim, keepdim=True)
    hi = x.masked_fill(~mask, -big).amax(dim, keepdim=True)
    return ((x - lo) / (hi - lo + EPS)).masked_fill(~mask, 0.0)


class NAFAE(GroundingModel):
    def __init__(self, cfg: Config, dims: dict[str, int]):
        super().__init__()
        self.cfg = cfg
        d = cfg.embed_dim
        self.region = nn.Sequential(nn.Linear(dims["visual"], d), nn.Dropout(cfg.dropout))
        self.word = nn.Linear(dims["glove"], d)
        self.word_bn = nn.BatchNorm1d(d)
        self.word_drop = nn.Dropout(cfg.dropout)

    @staticmethod
    def loss_weights(cfg: Config) -> dict[str, float]:
        """rank: L_rank; vis: L_vis (the public code's x10 on both)."""
        return {"rank": LOSS_SCALE, "vis": LOSS_SCALE * cfg.vis_lambda}

    def embed_regions(self, regions: torch.Tensor) -> torch.Tensor:
        if not torch.is_autocast_enabled(regions.device.type):
            regions = regions.to(self.region[0].weight.dtype)
        if self.cfg.region_input == "l2":
            norm = torch.linalg.vector_norm(regions, dim=-1, keepdim=True, dtype=torch.float32).clamp_min(1e-6)
            regions = regions / norm.to(regions.dtype)
        else:
            regions = regions / FEATURE_SCALE
        return torch.tanh(self.region(regions).float())

    def embed_objects(self, glove: torch.Tensor, obj_mask: torch.Tensor) -> torch.Tensor:
        """w(o) (B, K, d); batch normalisation over the real objects of the batch only."""
        h = self.word(glove.float()).float()                                   # (B, K, d)
        real = h[obj_mask]                                                      # (O, d)
        if self.training and real.shape[0] < 2:
            normed = (real - self.word_bn.running_mean) / torch.sqrt(self.word_bn.running_var + self.word_bn.eps)
            normed = normed * self.word_bn.weight + self.word_bn.bias
        else:
            normed = self.word_bn(real)
        out = torch.zeros_like(h).masked_scatter(obj_mask[..., None], normed)
        return torch.tanh(self.word_drop(out)) * obj_mask[..., None]

    @staticmethod
    def dot(words: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        """S = <w(o), v(r)>: (B, K, d), (B, T, N, d) -> (B, K, T, N)."""
        with fp32(regions):
            return torch.einsum("bkd,btnd->bktn", words.float(), regions.float())

    def losses(self, batch: dict, neg: Negatives) -> dict[str, torch.Tensor]:
        om, fm = batch["obj_mask"], batch["frame_mask"]
        v, w = self.embed_regions(batch["regions"]), self.embed_objects(batch["obj_glove"], om)
        B, T = fm.shape
        with fp32(v):
            full = torch.einsum("bkd,atnd->atnbk", w.float(), v.float())         # (B_v, T, N, B_s, K)
            P, top = full.amax(2), full.argmax(2)                                 # (B_v, T, B_s, K)
            frames = fm[:, :, None, None]
            A = minmax(P, frames.expand_as(P) & om[None, None], 1)                # over t
            F = (A * P * om[None, None]).sum(-1) / om.sum(-1).clamp_min(1)[None, None]  # (B_v, T, B_s)
            idx = torch.arange(B, device=F.device)
            pos = F[idx, :, idx]                                                  # (B, T): F_{a,t,a}
            pair_ok = fm[:, None, :] & fm[None, :, :]                             # (B_v, B_s, T) both frames real
            per_sentence = torch.relu(F - pos.T[None] + self.cfg.margin)         # [v, t, s]: vs F_{s,t,s}
            per_video = torch.relu(F - pos[:, :, None] + self.cfg.margin)         # [v, t, s]: vs F_{v,t,v}
            ok = pair_ok.permute(0, 2, 1)                                         # (B_v, T, B_s)
            term_s = masked_mean(per_sentence, ok, 0).T                           # (B_s, T)
            term_v = masked_mean(per_video, ok, 2)                                # (B_v, T)
            l_rank = ((term_s + term_v) * fm).sum() / fm.sum().clamp_min(1)
            # visual consistency of each segment's own objects across its frames
            own = top[idx, :, idx]                                                # (B, T, K) proposal per frame
            score = P[idx, :, idx]                                                # (B, T, K)
            with torch.no_grad():
                scale = minmax(score, fm[:, :, None].expand_as(score), 1)        # (B, T, K)
            feats = v[idx[:, None, None], torch.arange(T, device=v.device)[None, :, None], own]   # (B, T, K, d)
            u = torch.nn.functional.normalize(feats, dim=-1, eps=EPS) * scale[..., None]
            sim = 1 - torch.einsum("btkd,bskd->bkts", u, u)                       # (B, K, T, T)
            keep = (om[:, :, None, None] & fm[:, None, :, None] & fm[:, None, None, :]
                    & ~torch.eye(T, dtype=torch.bool, device=fm.device))
            l_vis = sim.masked_select(keep).mean() if keep.any() else sim.sum() * 0
        return {"rank": l_rank, "vis": l_vis}

    def ground(self, batch: dict, chunk_frames: int = 64) -> torch.Tensor:
        w = self.embed_objects(batch["obj_glove"], batch["obj_mask"])
        regions = batch["regions"]
        return torch.cat([self.dot(w, self.embed_regions(regions[:, t0:t0 + chunk_frames]))
                          for t0 in range(0, regions.shape[1], chunk_frames)], 2)

    def temporal_weights(self, batch: dict, chunk_frames: int = 64) -> torch.Tensor:
        """The frame attention A of each object with its own segment, normalised to sum 1 (B, K, T)."""
        fm = batch["frame_mask"]
        P = self.ground(batch, chunk_frames).amax(-1)                              # (B, K, T)
        A = minmax(P, fm[:, None, :].expand_as(P), 2)
        s = A.sum(-1, keepdim=True)
        uniform = fm[:, None, :].float().expand_as(A) / fm.sum(-1).clamp_min(1)[:, None, None]
        return torch.where(s > 0, A / s.clamp_min(1e-12), uniform)
