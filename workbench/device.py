"""The one device picker of the workbench (training, inference, the text encoder)."""
from __future__ import annotations

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"``: cuda when present, else cpu; otherwise the named device (cpu, cuda, cuda:N)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
