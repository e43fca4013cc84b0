"""The one device picker of the workbench (training, inference, the text encoder)."""
from __future__ import annotations

import torch

from .io import DataError


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"``: cuda when present, else cpu; otherwise the named device (cpu, cuda, cuda:N).

    A device that is not on this machine (``cuda:7`` on a 1-GPU host, cuda without a GPU) is a
    DataError naming it, raised before anything is written."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise DataError(f"device {name!r}: expected auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (dev.index or 0) >= n:
            raise DataError(f"device={name!r}: this machine has {n} CUDA device(s); use device=auto, cpu"
                            f"{' or cuda:0..' + str(n - 1) if n else ''}")
    elif dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise DataError(f"device={name!r}: MPS is not available here; use device=auto or cpu")
    return dev
