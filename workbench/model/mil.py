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


class AdditiveTemporal(nn.Module):
    """Temp(R, o_k), SPEC's additive form (``temporal="additive"``): ReLU(W_f R_t + W_t q_k), then a
    linear score, R_t the mean of frame t's region embeddings.

    The first layer on the concatenation [R_t ; q_k] is written as the sum of two linear maps,
    one per part, so the (B, K, T, 2d) concatenation is never materialised; same function.
    """

    def __init__(self, dim: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or dim
        self.frame = nn.Linear(dim, hidden)
        self.text = nn.Linear(dim, hidden, bias=False)
        self.score = nn.Linear(hidden, 1)

    @staticmethod
    def pool(raw: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
        """Frame feature R_t: mean over the N region embeddings E_v (not normalised). (B, T, N, d) -> (B, T, d)."""
        return raw.mean(2)

    def forward(self, frames: torch.Tensor, text: torch.Tensor, obj_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Frame logits: frames (B, T, d), text (B, K, d) -> (B, K, T). ``obj_mask`` is unused."""
        h = torch.relu(self.frame(frames)[:, None] + self.text(text)[:, :, None])  # (B, K, T, H)
        return self.score(h).squeeze(-1).float()


class STVGTemporal(nn.Module):
    """Temp(R, o_k), the public STVG code's form (``temporal="stvg"``, the default).

    score_{k,t} = w2 . dropout(tanh(W1 [R_t * q_k ; R_t ; max_k' q_k' ; q_k] + b1)) + b2, with
    R_t = max over frame t's unit region embeddings (then the product R_t * q_k is a per-dimension
    agreement of frame and object), q_k the unit object embedding, max_k' q_k' the element-wise
    max over the sentence's real objects (the sentence's pooled object embedding), dropout 0.1.

    Differences from that code, on purpose: R_t pools our E_v (linear + frame attention + tanh,
    then unit-normalised), where the code pools its tanh projection before adding its attention
    output; the padded object slots are excluded from the max by ``obj_mask``.
    W1 is applied as four (d -> d) blocks summed, so the (B, K, T, 4d) concatenation is never built.
    """

    def __init__(self, dim: int, hidden: int | None = None, dropout: float = 0.1):
        super().__init__()
        hidden = hidden or dim
        self.prod = nn.Linear(dim, hidden)            # W1 block of R_t * q_k (carries b1)
        self.frame = nn.Linear(dim, hidden, bias=False)  # block of R_t
        self.sent = nn.Linear(dim, hidden, bias=False)   # block of max_k' q_k'
        self.text = nn.Linear(dim, hidden, bias=False)   # block of q_k
        self.drop = nn.Dropout(dropout)
        self.score = nn.Linear(hidden, 1)

    @staticmethod
    def pool(raw: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
        """Frame feature R_t: element-wise max over the N unit region embeddings. (B, T, N, d) -> (B, T, d)."""
        return unit.amax(2)

    def forward(self, frames: torch.Tensor, text: torch.Tensor, obj_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Frame logits: frames (B, T, d), text (B, K, d) unit, obj_mask (B, K) bool -> (B, K, T)."""
        if obj_mask is None:
            obj_mask = torch.ones(text.shape[:2], dtype=torch.bool, device=text.device)
        lowest = torch.finfo(text.dtype).min
        sent = text.masked_fill(~obj_mask[..., None], lowest).amax(1)  # (B, d) max over real objects
        sent = torch.where(obj_mask.any(1, keepdim=True), sent, torch.zeros_like(sent))
        h = (self.prod(frames[:, None] * text[:, :, None])      # (B, K, T, H)
             + self.frame(frames)[:, None]                     # (B, 1, T, H)
             + (self.sent(sent)[:, None] + self.text(text))[:, :, None])  # (B, K, 1, H)
        return self.score(self.drop(torch.tanh(h))).squeeze(-1).float()


TEMPORAL = {"stvg": STVGTemporal, "additive": AdditiveTemporal}


def build_temporal(kind: str, dim: int) -> nn.Module | None:
    """The temporal module of ``cfg.temporal``: "stvg" | "additive" | "mean" (None: uniform weights)."""
    if kind == "mean":
        return None
    if kind not in TEMPORAL:
        raise ValueError(f"temporal must be one of {sorted([*TEMPORAL, 'mean'])}, got {kind!r}")
    return TEMPORAL[kind](dim)


def pool_frames(temporal: nn.Module | None, raw: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
    """The frame features (B, T, d) the temporal module reads from the region embeddings E_v (B, T, N, d)
    and their unit vectors; "mean" (no module) reads none and gets the additive form's mean."""
    return (temporal.pool if temporal is not None else AdditiveTemporal.pool)(raw, unit)


def temporal_logits(temporal: nn.Module | None, frames: torch.Tensor, text: torch.Tensor,
                    obj_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Frame logits (B, K, T); ``temporal=None`` ("mean") gives zeros, i.e. uniform weights over valid frames."""
    if temporal is None:
        return frames.new_zeros(text.shape[0], text.shape[1], frames.shape[1], dtype=torch.float32)
    return temporal(frames, text, obj_mask)


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
