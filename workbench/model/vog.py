"""VOG (registry name "vog"): Extended DVSA with frame-wise loss weighting and object interaction,
Zhou et al., BMVC 2018 ("Weakly-supervised video object grounding from text by loss weighting and
object interaction"), as in the public code's ``--loss_weighting --obj_interact`` configuration
(MichiganCOG/Video-Grounding-from-Text, read for its equations; this is our own code).

Same regions, label embeddings and scores s(o, r) as ``dvsa.ExtendedDVSA``. Per frame t:

    f_t(S, V) = mean over objects o of max over proposals r of frame t of s(o, r)          (B, T)
    rank_t    = max(0, m - f_t(S, V) + f_t(S, V')) and likewise with S'                 (2, B, T)

Object interaction: the positive sentence's label embeddings go through one self-attention
encoder layer (sinusoidal positions over the object order; heads ``attn_heads``, feed-forward
2d, dropout 0.2); g(o) = sigmoid(MLP([enc(o) ; e(o)])) holds one guidance value per snippet
(``num_frames`` snippets), snippet i covering frames [i c, (i + 1) c), c = ceil(T / snippets).
Frame weights w_t = (f_t(S, V) + mean_o g_t(o)) / 2, and with factor a = ``cfg.loss_factor`` (0.9):

    L = a * mean_t(rank_t * w_t) + (1 - a) * mean_t(-log(2 w_t))

Inference is DVSA's (top-1 of s(o, .) per frame); ``temporal_weights`` shows each object's
guidance g(o) over the frames, normalised to sum 1.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..config import Config
from ..io import DataError
from .dvsa import ExtendedDVSA, margin_rank, masked_mean
from .negatives import Negatives

INTERACTION_DROPOUT = 0.2   # the public code's attention dropout of the interaction layer


def sinusoid_positions(K: int, d: int, device=None) -> torch.Tensor:
    """Transformer positional encodings (K, d): sin on even channels, cos on odd ones."""
    pos = torch.arange(K, dtype=torch.float32, device=device)[:, None]
    ch = torch.arange(d, device=device)
    rate = 10000.0 ** ((ch - ch % 2).float() / d)
    ang = pos / rate                                                       # (K, d)
    return torch.where(ch % 2 == 0, torch.sin(ang), torch.cos(ang))


def snippet_index(T: int, snippets: int) -> torch.Tensor:
    """Snippet of each of T frames: frame t -> t // ceil(T / snippets) (T,)."""
    return torch.arange(T) // math.ceil(T / snippets)


class VOG(ExtendedDVSA):
    def __init__(self, cfg: Config, dims: dict[str, int]):
        super().__init__(cfg, dims)
        d = cfg.embed_dim
        if d % cfg.attn_heads or d < 2:
            raise DataError(f"config: embed_dim {d} must be divisible by attn_heads {cfg.attn_heads} (model 'vog')")
        self.snippets = cfg.num_frames
        self.interact = nn.TransformerEncoderLayer(d, cfg.attn_heads, dim_feedforward=2 * d,
                                                   dropout=INTERACTION_DROPOUT, batch_first=True)
        self.guide = nn.Sequential(nn.Linear(2 * d, d // 2), nn.ReLU(), nn.Linear(d // 2, self.snippets), nn.Sigmoid())

    @staticmethod
    def loss_weights(cfg: Config) -> dict[str, float]:
        """rank: the guided, frame-weighted ranking loss (both parts of L above)."""
        return {"rank": 1.0}

    def guidance(self, e: torch.Tensor, obj_mask: torch.Tensor, T: int) -> torch.Tensor:
        """g(o) per frame (B, K, T) from label embeddings (B, K, d) of one sentence's objects."""
        K, d = e.shape[1], e.shape[2]
        pad = ~obj_mask
        h = e + sinusoid_positions(K, d, e.device)[None]
        # rows with no real object would make attention undefined: let them attend to themselves
        pad = pad & obj_mask.any(1, keepdim=True)
        enc = self.interact(h, src_key_padding_mask=pad)                   # (B, K, d)
        g = self.guide(torch.cat([enc, e], -1)).float()                    # (B, K, snippets)
        return g[:, :, snippet_index(T, self.snippets).clamp_max(self.snippets - 1).to(g.device)]

    def losses(self, batch: dict, neg: Negatives) -> dict[str, torch.Tensor]:
        om, fm = batch["obj_mask"], batch["frame_mask"]
        x, e = self.embed_regions(batch["regions"]), self.embed_objects(batch)
        s_pos, s_negv, s_negs = self.pair_scores(e, x, neg)

        def frame_score(s, obj_mask):                                      # (B, K, T, N) -> (B, T)
            return masked_mean(s.amax(-1), obj_mask[:, :, None], 1)

        pos = frame_score(s_pos, om)
        negv = frame_score(s_negv, om)
        negs = frame_score(s_negs, om[neg.sentence])
        valid = fm & fm[neg.video]                                          # frames scored in both pairs
        m, a = self.cfg.margin, self.cfg.loss_factor
        rank = torch.stack([margin_rank(pos, negv, m), margin_rank(pos, negs, m)])            # (2, B, T)
        g = masked_mean(self.guidance(e, om, x.shape[1]), om[:, :, None], 1)                 # (B, T)
        w = (pos + g) / 2                                                                     # (B, T)
        both = torch.stack([valid, fm])
        weighted = (rank * w[None]).masked_select(both).mean()
        prior = -torch.log(2 * w).masked_select(fm).mean()
        return {"rank": a * weighted + (1 - a) * prior}

    def temporal_weights(self, batch: dict, chunk_frames: int = 64) -> torch.Tensor:
        """Each object's guidance over the valid frames, normalised to sum 1 (B, K, T)."""
        om, fm = batch["obj_mask"], batch["frame_mask"]
        g = self.guidance(self.embed_objects(batch), om, fm.shape[1]) * fm[:, None, :]
        return g / g.sum(-1, keepdim=True).clamp_min(1e-12)
