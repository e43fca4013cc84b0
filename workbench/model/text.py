"""E_f, E_c (one-layer ReLU embeddings of word and contextual features) and the GloVe+biLSTM contextual encoder."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class TextEmbedding(nn.Module):
    """ReLU(Linear(x)): E_f on w(o) (GloVe), E_c on c(o) and c(S) (one network for both)."""

    def __init__(self, in_dim: int, dim: int):
        super().__init__()
        self.fc = nn.Linear(in_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(x)).float()


class GloveBiLSTM(nn.Module):
    """Contextual features learned end to end: a bi-LSTM over the sentence's GloVe tokens.

    c(o) = mean of the outputs inside the object's token span [start, end) (end exclusive);
    c(S) = mean of the outputs over the sentence's tokens. An object whose span is empty or
    invalid (an annotated object the sentence does not mention) gets c(S) as its c(o).
    """

    def __init__(self, in_dim: int, hidden: int):
        super().__init__()
        self.out_dim = 2 * hidden
        self.lstm = nn.LSTM(in_dim, hidden, batch_first=True, bidirectional=True)

    def forward(self, tok_glove, tok_mask, obj_tok_span):
        """(B, L, Dw), (B, L) bool, (B, K, 2) -> c(o) (B, K, 2h), c(S) (B, 2h)."""
        B, L, _ = tok_glove.shape
        lengths = tok_mask.sum(1).clamp_min(1).cpu()
        packed = pack_padded_sequence(tok_glove.float(), lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=L)  # (B, L, 2h)
        out = out.float()
        valid = tok_mask.float()  # (B, L)
        sent = (out * valid[..., None]).sum(1) / valid.sum(1, keepdim=True).clamp_min(1)  # (B, 2h)
        pos = torch.arange(L, device=out.device)
        start, end = obj_tok_span[..., :1], obj_tok_span[..., 1:]  # (B, K, 1)
        inside = ((pos >= start) & (pos < end) & tok_mask[:, None, :]).float()  # (B, K, L)
        count = inside.sum(-1, keepdim=True)  # (B, K, 1)
        obj = torch.bmm(inside, out) / count.clamp_min(1)  # (B, K, 2h)
        obj = torch.where(count > 0, obj, sent[:, None, :])
        return obj, sent
