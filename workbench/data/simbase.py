"""Primitives shared by the simulated worlds (v1 in ``simulator.py``, v2 in ``workbench.world``):
deterministic randomness, segment plans and arrays, box jitter. No world logic lives here."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

PRONOUNS = (63, 64, 65, 66)                  # it, them, that, they
FRAME = 224.0                                # proposals live in the 224x224 resized frame


# --- deterministic randomness -----------------------------------------------------------------

def _hash_int(*parts) -> int:
    h = hashlib.blake2b("\x1f".join(str(p) for p in parts).encode(), digest_size=8)
    return int.from_bytes(h.digest(), "little")


def _rng(*parts) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(_hash_int(*parts)))


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


# --- segment plans and arrays -------------------------------------------------------------

@dataclass
class SegmentPlan:
    """What a segment holds before any random draw: its objects, their appearance sources, frames."""

    key: str
    split: str
    vid: str
    seg: int
    recipe: str
    num_frames: int
    rwidth: int
    rheight: int
    sentence: str
    class_ids: list[int]                 # named (training) / annotated (val, test) objects, in order
    labels: list[str]                    # label string of each annotated object
    looks_like: list[int]                # class whose appearance each object has (pronoun -> referent)
    distractor_pool: list[int] = field(default_factory=list)  # classes named elsewhere in the video


@dataclass
class SegmentSim:
    """One simulated segment: GT boxes in pixels, proposals in 224 space, region features."""

    gt_boxes: np.ndarray      # (O, T, 4) float, annotation pixels; first len(plan.class_ids) are named
    outside: np.ndarray       # (O, T) bool
    occluded: np.ndarray      # (O, T) bool
    appearance: np.ndarray    # (O, D) instance appearance of each object
    rpn: np.ndarray           # (T, P, 4) float32, x1,y1,x2,y2 in 224x224
    features: np.ndarray      # (T, P, D) float32
    num_named: int


# --- boxes ----------------------------------------------------------------------------------

def _jitter(rng: np.random.Generator, boxes: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Boxes (..., 4) moved and resized by noise of relative size ``scale`` (...)."""
    w = boxes[..., 2] - boxes[..., 0]
    h = boxes[..., 3] - boxes[..., 1]
    cx = (boxes[..., 0] + boxes[..., 2]) / 2 + w * scale * rng.standard_normal(scale.shape)
    cy = (boxes[..., 1] + boxes[..., 3]) / 2 + h * scale * rng.standard_normal(scale.shape)
    w = w * np.exp(scale * rng.standard_normal(scale.shape))
    h = h * np.exp(scale * rng.standard_normal(scale.shape))
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def _clip(boxes: np.ndarray, width: float, height: float, min_size: float = 2.0) -> np.ndarray:
    x1 = np.clip(boxes[..., 0], 0, width - min_size)
    y1 = np.clip(boxes[..., 1], 0, height - min_size)
    x2 = np.clip(boxes[..., 2], x1 + min_size, width)
    y2 = np.clip(boxes[..., 3], y1 + min_size, height)
    return np.stack([x1, y1, x2, y2], -1)
