"""Grounding models behind one registry.

``MODELS`` maps ``Config.model`` to a ``GroundingModel`` subclass (protocol: model/base.py).
Adding a model = its own module + one line here (docs/ARCHITECTURE.md, "Add a model").
"""
from __future__ import annotations

from ..config import Config
from ..io import DataError
from .base import GroundingModel
from .dvsa import ExtendedDVSA
from .ensemble import FusionEnsemble
from .nafae import NAFAE
from .negatives import Negatives, sample_negatives
from .scl import SCL
from .vog import VOG

MODELS: dict[str, type[GroundingModel]] = {
    "scl": SCL,                          # STVG baseline, Table 3 variants, SCL (model/scl.py)
    "fusion-ensemble": FusionEnsemble,   # Table 3 fusion-ensemble row (model/ensemble.py)
    "dvsa": ExtendedDVSA,                # Table 1 Extended DVSA (model/dvsa.py)
    "vog": VOG,                          # Table 1 VOG (model/vog.py)
    "nafae": NAFAE,                      # Table 1 NAFAE (model/nafae.py)
}


def model_class(cfg: Config) -> type[GroundingModel]:
    if cfg.model not in MODELS:
        raise DataError(f"config: model {cfg.model!r} is not registered; models: {sorted(MODELS)}")
    return MODELS[cfg.model]


def build_model(cfg: Config, dims: dict[str, int]) -> GroundingModel:
    """The registered model of ``cfg.model``; ``dims = dict(visual=Dv, glove=Dw, ctx=Dc[, classes=C])``."""
    missing = {"visual", "glove", "ctx"} - set(dims)
    if missing:
        raise DataError(f"build_model: dims lacks {sorted(missing)}; got {dims}")
    return model_class(cfg)(cfg, dims)


def loss_weights(cfg: Config) -> dict[str, float]:
    """Weight of each loss term of ``cfg``'s model (a term switched off is absent)."""
    return model_class(cfg).loss_weights(cfg)


__all__ = ["MODELS", "GroundingModel", "SCL", "FusionEnsemble", "ExtendedDVSA", "VOG", "NAFAE", "build_model", "loss_weights", "model_class",
           "Negatives", "sample_negatives"]
