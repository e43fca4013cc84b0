"""Frame-level MIL (Eq. 1-4): region-phrase cosine M, max over proposals P, temporal weights Q, score h(S, V)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def fp32(x: torch.Tensor):
    """A context in which autocast is off: cosine, softmax and loss math run in float32."""
    return torch.autocast(x.device.type, enabled=False)


def log_loss(x: torch.Tensor, eta: float) -> torch.Tensor:
    """l(x) = log(1 + exp(x / eta)), computed stably (softplus)."""
    return F.softplus(x.float() / eta)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """Unit vectors along the last axis, float32."""
    with fp32(x):
        return F.normalize(x.float(), dim=-1)


def similarity(text: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
    """M = cos(text_k, E_v(r_{t,n})) (Eq. 1) from unit vectors: (B, K, d), (B, T, N, d) -> (B, K, T, N)."""
    B, T, N, d = vis.shape
    with fp32(vis):
        m = torch.bmm(text.float(), vis.float().reshape(B, T * N, d).transpose(1, 2))  # (B, K, TN)
    return m.view(B, -1, T, N)


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """softmax(logits / tau) over the last axis restricted to ``mask``; 0 outside it (and on all-masked rows)."""
    with fp32(logits):
        x = (logits.float() / tau).masked_fill(~mask, torch.finfo(torch.float32).min)
        return torch.softmax(x, dim=-1) * mask


class TemporalAttention(nn.Module):
    """Temp(R, o_k): an MLP over [frame-pooled regions ; text_k] scoring each frame (STVG).

    The first layer on the concatenation is written as the sum of two linear maps, one per
    part, so the (B, K, T, 2d) concatenation is never materialised; it is the same function.
    """

    def __init__(self, dim: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or dim
        self.frame = nn.Linear(dim, hidden)
        self.text = nn.Linear(dim, hidden, bias=False)
        self.score = nn.Linear(hidden, 1)

    def forward(self, frames: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Frame logits: frames (B, T, d), text (B, K, d) -> (B, K, T)."""
        h = torch.relu(self.frame(frames)[:, None] + self.text(text)[:, :, None])  # (B, K, T, H)
        return self.score(h).squeeze(-1).float()


def temporal_logits(temporal: TemporalAttention | None, frames: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """Frame logits (B, K, T); ``temporal=None`` ("mean") gives zeros, i.e. uniform weights over valid frames."""
    if temporal is None:
        return frames.new_zeros(text.shape[0], text.shape[1], frames.shape[1], dtype=torch.float32)
    return temporal(frames, text)


def temporal_weights(logits: torch.Tensor, frame_mask: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """Q (Eq. 3): softmax over the valid frames of each (segment, object). (B, K, T), (B, T) -> (B, K, T)."""
    return masked_softmax(logits, frame_mask[:, None, :].expand_as(logits), tau)


def video_sentence_score(m: torch.Tensor, q: torch.Tensor, obj_mask: torch.Tensor) -> torch.Tensor:
    """h(S, V) = (1/K) sum_k sum_t P_{k,t} Q_{k,t} (Eq. 2, 4) over real objects: (B,K,T,N), (B,K,T), (B,K) -> (B,)."""
    with fp32(m):
        p = m.float().amax(-1)  # (B, K, T)  spatial grounding P
        s = (p * q).sum(-1)  # (B, K)   Q is 0 on padded frames
        w = obj_mask.float()
        return (s * w).sum(-1) / w.sum(-1).clamp_min(1)


def pair_score(text, obj_mask, vis, frames, frame_mask, temporal, text_idx=None, video_idx=None):
    """h(S_a, V_b) for the pairs a = text_idx[i], b = video_idx[i] (identity when None).

    Reuses the batch's embeddings: sentence i against another video j gathers rows of the
    already embedded tensors, nothing is re-embedded. text (B, K, d) unit, vis (B, T, N, d) unit,
    frames (B, T, d) frame-pooled regions. Returns h (B,), M (B, K, T, N), frame logits (B, K, T).
    """
    if text_idx is not None:
        text, obj_mask = text[text_idx], obj_mask[text_idx]
    if video_idx is not None:
        vis, frames, frame_mask = vis[video_idx], frames[video_idx], frame_mask[video_idx]
    m = similarity(text, vis)
    logits = temporal_logits(temporal, frames, text)
    h = video_sentence_score(m, temporal_weights(logits, frame_mask), obj_mask)
    return h, m, logits


def mil_loss(h_pos: torch.Tensor, h_neg_sentence: torch.Tensor, h_neg_video: torch.Tensor, eta: float):
    """L_MIL = mean_i l(h(S', V) - h(S, V)) + l(h(S, V') - h(S, V)) (Eq. 16)."""
    return (log_loss(h_neg_sentence - h_pos, eta) + log_loss(h_neg_video - h_pos, eta)).mean()
