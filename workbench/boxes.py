"""Box geometry: boxes are x1, y1, x2, y2 (the official xtl, ytl, xbr, ybr)."""
from __future__ import annotations

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray, plus_one: bool = False) -> np.ndarray:
    """IoU of every box in ``a`` [..., M, 4] against every box in ``b`` [..., K, 4] -> [..., M, K].

    ``plus_one=False``: continuous coordinates (area = (x2-x1)*(y2-y1)), the STVG rule.
    ``plus_one=True``: pixel-inclusive areas (x2-x1+1)*(y2-y1+1), the NAFAE / ActivityNet rule.
    Boxes that do not overlap have IoU 0.
    """
    a = np.asarray(a, dtype=np.float64)[..., :, None, :]  # (..., M, 1, 4)
    b = np.asarray(b, dtype=np.float64)[..., None, :, :]  # (..., 1, K, 4)
    one = 1.0 if plus_one else 0.0
    iw = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + one
    ih = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + one
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = (a[..., 2] - a[..., 0] + one) * (a[..., 3] - a[..., 1] + one)
    area_b = (b[..., 2] - b[..., 0] + one) * (b[..., 3] - b[..., 1] + one)
    union = area_a + area_b - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(union > 0, inter / union, 0.0)
    return out


def iou(a, b, plus_one: bool = False) -> np.ndarray:
    """Elementwise IoU of matching boxes ``a`` [..., 4] and ``b`` [..., 4] -> [...]."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return iou_matrix(a[..., None, :], b[..., None, :], plus_one)[..., 0, 0]


def scale_boxes(boxes: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Scale x coordinates by ``sx`` and y coordinates by ``sy`` (e.g. 224x224 -> rwidth x rheight)."""
    return np.asarray(boxes, dtype=np.float32) * np.array([sx, sy, sx, sy], dtype=np.float32)


def jitter_boxes(rng: np.random.Generator, boxes: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Boxes [..., 4] moved and resized by Gaussian noise of relative size ``scale`` [...] (of the box size)."""
    w = boxes[..., 2] - boxes[..., 0]
    h = boxes[..., 3] - boxes[..., 1]
    cx = (boxes[..., 0] + boxes[..., 2]) / 2 + w * scale * rng.standard_normal(scale.shape)
    cy = (boxes[..., 1] + boxes[..., 3]) / 2 + h * scale * rng.standard_normal(scale.shape)
    w = w * np.exp(scale * rng.standard_normal(scale.shape))
    h = h * np.exp(scale * rng.standard_normal(scale.shape))
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def clip_boxes(boxes: np.ndarray, width: float, height: float, min_size: float = 2.0) -> np.ndarray:
    """Boxes [..., 4] clipped into a ``width`` x ``height`` frame, at least ``min_size`` on each side."""
    x1 = np.clip(boxes[..., 0], 0, width - min_size)
    y1 = np.clip(boxes[..., 1], 0, height - min_size)
    x2 = np.clip(boxes[..., 2], x1 + min_size, width)
    y2 = np.clip(boxes[..., 3], y1 + min_size, height)
    return np.stack([x1, y1, x2, y2], -1)
