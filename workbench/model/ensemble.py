"""Fusion-ensemble (Table 3, registry name "fusion-ensemble"): two independent baselines, one
grounding with E_f(o) and one with E_c(o), each with its own E_v and temporal MLP, trained
together; inference scores are w * M^f + (1 - w) * M^c with the E_f weight w picked on validation
(``fit_on_validation``) unless ``Config.ensemble_weight`` fixes it."""
from __future__ import annotations

import contextlib
from typing import Sequence

import numpy as np
import torch

from ..config import Config
from ..io import DataError
from .base import EvaluateFn, GroundingModel, ScoresFn
from .negatives import Negatives
from .scl import SCL

GRID = tuple(float(w) for w in np.round(np.linspace(0, 1, 11), 2))   # candidate E_f weights
INTERIM_WEIGHT = 0.5                                                 # epoch selection before the search


class FusionEnsemble(GroundingModel):
    """Wraps two ``SCL`` members: ``f`` (query E_f(o)) and ``c`` (query E_c(o))."""

    def __init__(self, cfg: Config, dims: dict[str, int]):
        super().__init__()
        if cfg.fusion != "ensemble" or cfg.query != "fusion" or cfg.infer != "f" or cfg.context_branch:
            raise DataError("config: model='fusion-ensemble' expects query='fusion', fusion='ensemble', infer='f' "
                            f"and context_branch=false; got query={cfg.query!r} fusion={cfg.fusion!r} "
                            f"infer={cfg.infer!r} context_branch={cfg.context_branch}")
        self.cfg = cfg
        member = dict(model="scl", fusion="none")
        self.f = SCL(cfg.replace(query="glove", **member), dims)
        self.c = SCL(cfg.replace(query="context", **member), dims)
        self.weight: float | None = cfg.ensemble_weight if cfg.ensemble_weight >= 0 else None

    @staticmethod
    def loss_weights(cfg: Config) -> dict[str, float]:
        """mil_f: MIL of the E_f baseline; mil_c: MIL of the E_c baseline."""
        return {"mil_f": 1.0, "mil_c": 1.0}

    def losses(self, batch: dict, neg: Negatives) -> dict[str, torch.Tensor]:
        return {"mil_f": self.f.losses(batch, neg)["mil_f"], "mil_c": self.c.losses(batch, neg)["mil_f"]}

    def ground_parts(self, batch: dict, chunk_frames: int = 64) -> dict[str, torch.Tensor]:
        """{"f": M^f, "c": M^c} proposal scores (B, K, T, N) of the two members."""
        return {"f": self.f.ground(batch, chunk_frames), "c": self.c.ground(batch, chunk_frames)}

    def ground(self, batch: dict, chunk_frames: int = 64, ensemble_weight: float | None = None) -> torch.Tensor:
        """w * M^f + (1 - w) * M^c (B, K, T, N), w = ``ensemble_weight`` or the chosen weight; raises
        while no weight is chosen (outside ``selection_mode``)."""
        w = self.weight if ensemble_weight is None else ensemble_weight
        if w is None or not 0.0 <= w <= 1.0:
            raise DataError(f"fusion-ensemble: ensemble_weight must be in [0, 1], got {w}; "
                            "pick it on validation (fit_on_validation) or pass ensemble_weight")
        parts = self.ground_parts(batch, chunk_frames)
        return w * parts["f"] + (1.0 - w) * parts["c"]

    def temporal_weights(self, batch: dict, chunk_frames: int = 64) -> torch.Tensor:
        """Q (B, K, T) of the E_f member."""
        return self.f.temporal_weights(batch, chunk_frames)

    @contextlib.contextmanager
    def selection_mode(self):
        """Epoch selection before the search scores with the interim weight 0.5."""
        chosen = self.weight
        if chosen is None:
            self.weight = INTERIM_WEIGHT
        try:
            yield
        finally:
            self.weight = chosen

    def fit_on_validation(self, scores: ScoresFn, evaluate: EvaluateFn, grid: Sequence[float] = GRID) -> dict:
        """The E_f weight w best on validation under ``cfg.select_metric`` (ties: closest to 0.5)."""
        if self.cfg.ensemble_weight >= 0:
            return {}
        parts = scores(self.ground_parts)                                  # {key: {"f", "c": (K, T, N)}}
        table = {float(w): evaluate({k: w * p["f"] + (1 - w) * p["c"] for k, p in parts.items()}) for w in grid}
        metric = self.cfg.select_metric
        best = max(table, key=lambda w: (table[w][metric], -abs(w - 0.5)))
        self.weight = best
        return {"ensemble_weight": best, "ensemble_search": {str(w): r[metric] for w, r in table.items()}}

    def restore_fitted(self, metrics: dict) -> None:
        if self.cfg.ensemble_weight < 0:
            self.weight = float(metrics.get("ensemble_weight", INTERIM_WEIGHT))
