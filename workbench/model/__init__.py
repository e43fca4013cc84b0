"""The SCL model: STVG visual/text embeddings, frame-level MIL, CAOS, CMAKT and in-batch negatives."""
from .negatives import Negatives, sample_negatives
from .scl import SCL, build_model, loss_weights

__all__ = ["SCL", "build_model", "loss_weights", "Negatives", "sample_negatives"]
