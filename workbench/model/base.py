"""The grounding-model protocol: what training, prediction, the similarity maps (notebook 03,
``viz.similarity_maps``) and the concept explorer (notebook 04) call on a model.

A model is an ``nn.Module`` subclass of ``GroundingModel`` registered in ``workbench.model.MODELS``
under the name ``Config.model`` selects. Batches are the dicts of docs/ARCHITECTURE.md ("Batches").

required
    ``__init__(cfg, dims)``                      dims = dict(visual=Dv, glove=Dw, ctx=Dc, classes=C); raise DataError on a
                                                 config the model cannot honour (name the key)
    ``loss_weights(cfg) -> {term: weight}``      static: the loss terms of this config and their weights
    ``losses(batch, neg) -> {term: Tensor}``     unweighted scalar terms, exactly the keys of loss_weights(cfg);
                                                 ``neg``: ``Negatives`` (in-batch negative sentence / video)
    ``ground(batch, chunk_frames=64)``           proposal scores (B, K, T, N); the top-1 proposal is the answer
    ``temporal_weights(batch, chunk_frames=64)`` (B, K, T), each row sums to 1 over valid frames (notebook 03)
optional (defaults below)
    ``concepts(batch) -> {"ef", "d"}``           (B, K, d) learned / extracted concepts (notebook 04)
    ``selection_mode()``                         context manager active while validation selects the epoch
    ``fit_on_validation(scores, evaluate)``      after training: pick inference parameters on validation;
                                                 returns entries recorded in metrics.json
    ``restore_fitted(metrics)``                  re-apply those parameters from metrics.json (predict)
"""
from __future__ import annotations

import contextlib
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..config import Config
from ..io import DataError

# scores(fn) runs fn(batch) -> {name: (B, K, T, N)} over the validation split and returns
# {segment key: {name: (K, T, N)}}; evaluate({key: (K, T, N)}) -> metrics of the top-1 proposals.
ScoresFn = Callable[[Callable[[dict], dict[str, torch.Tensor]]], dict[str, dict[str, np.ndarray]]]
EvaluateFn = Callable[[dict[str, np.ndarray]], dict]


class GroundingModel(nn.Module):
    """Base class of every registered model; see the module docstring for the protocol."""

    cfg: Config

    @staticmethod
    def loss_weights(cfg: Config) -> dict[str, float]:
        raise NotImplementedError

    def losses(self, batch: dict, neg) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def ground(self, batch: dict, chunk_frames: int = 64) -> torch.Tensor:
        raise NotImplementedError

    def temporal_weights(self, batch: dict, chunk_frames: int = 64) -> torch.Tensor:
        raise NotImplementedError

    def concepts(self, batch: dict) -> dict[str, torch.Tensor]:
        raise DataError(f"model {self.cfg.model!r} has no learned/extracted concept pair (concept explorer)")

    def selection_mode(self):
        return contextlib.nullcontext()

    def fit_on_validation(self, scores: ScoresFn, evaluate: EvaluateFn) -> dict:
        return {}

    def restore_fitted(self, metrics: dict) -> None:
        return None
