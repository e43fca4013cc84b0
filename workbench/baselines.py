"""The Random and Upper Bound rows: predictions picked from a dataset's proposals without a model."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from .boxes import iou_matrix
from .datasets import detect
from .datasets.yc2 import DatasetDir
from .features.store import FeatureStore, check_box_space
from .io import check_output_path, expect, write_json
from .records import GTSegment

METHODS = ("random", "upper-bound")


def _proposals(store, segment: GTSegment) -> np.ndarray:
    """Proposal boxes of one annotated segment (T, N, 4); the store must hold the annotation's frames."""
    i = store.index(segment.key)
    props = np.asarray(store.boxes(i), dtype=np.float64)  # (t, N, 4)
    T = segment.num_frames
    expect(props.ndim == 3 and props.shape[0] == T and props.shape[2] == 4, f"segment {segment.key}",
           f"store has proposals of shape {props.shape}, annotation has {T} frames")
    return props


def random_boxes(gt: Mapping[str, GTSegment], store, seed: int = 0) -> dict[str, np.ndarray]:
    """A uniformly drawn proposal per (object, frame): segment key -> [K, T, 4].

    Each segment draws from its own generator seeded by (seed, position in ``gt``), so the result
    depends only on the seed and the annotation order.
    """
    out = {}
    for s, (key, segment) in enumerate(gt.items()):
        props = _proposals(store, segment)                                   # (T, N, 4)
        T, N = props.shape[:2]
        K = len(segment.objects)
        rng = np.random.default_rng([seed, s])
        pick = rng.integers(0, N, size=(K, T)) if N else np.zeros((K, T), np.int64)  # (K, T)
        out[key] = props[np.arange(T)[None, :], pick] if N else np.full((K, T, 4), np.nan)
    return out


def upper_bound_boxes(gt: Mapping[str, GTSegment], store, plus_one: bool = False) -> dict[str, np.ndarray]:
    """The proposal with the highest IoU to each ground-truth box: segment key -> [K, T, 4].

    Frames whose GT box has no coordinates are never scored; they get proposal 0.
    """
    out = {}
    for key, segment in gt.items():
        props = _proposals(store, segment)                                   # (T, N, 4)
        T, N = props.shape[:2]
        K = len(segment.objects)
        if N == 0 or K == 0:
            out[key] = np.full((K, T, 4), np.nan)
            continue
        g = np.array([[b.xyxy() if b is not None else (np.nan,) * 4 for b in o.boxes] for o in segment.objects],
                     dtype=np.float64).reshape(K, T, 4)                     # (K, T, 4)
        ious = iou_matrix(g.transpose(1, 0, 2), props, plus_one)            # (T, K, N)
        ious = np.nan_to_num(ious, nan=-1.0)
        pick = ious.argmax(-1).T                                             # (K, T)
        out[key] = props[np.arange(T)[None, :], pick]
    return out


def proposal_hit_rates(pairs: Iterable[tuple[GTSegment, np.ndarray]]) -> dict[str, float]:
    """Expected Random and Upper Bound box accuracy (STVG rule, micro over counted GT boxes) of
    (annotation, proposals (T, P, 4) in annotation pixels) pairs, without drawing anything.

    A GT box counts when it has coordinates and occluded == outside == 0; a proposal hits when its
    continuous IoU with the box is > 0.5. Random = mean fraction of hitting proposals; upper bound
    = fraction of boxes with at least one hitting proposal.
    """
    rand = hits = n = 0.0
    for segment, props in pairs:
        for o in segment.objects:
            idx = [t for t, b in enumerate(o.boxes) if b is not None and b.counted]
            if not idx:
                continue
            gt = np.array([o.boxes[t].xyxy() for t in idx])                 # (k, 4)
            hit = iou_matrix(props[idx], gt[:, None, :])[..., 0] > 0.5      # (k, P)
            rand += hit.mean(1).sum()
            hits += hit.any(1).sum()
            n += len(idx)
    return {"random": rand / n if n else float("nan"), "upper_bound": hits / n if n else float("nan"),
            "boxes": int(n)}


def per_query(segment: GTSegment, boxes: np.ndarray) -> np.ndarray:
    """Boxes per GT object (K, T, 4) -> per query (Q, T, 4) when the format answers several GT objects with one
    query (ActivityNet-Entities ``query_rows``): each query takes, per frame, the box of an object of it that
    is annotated in that frame (else its first object's)."""
    rows = segment.query_rows
    if rows is None:
        return boxes
    Q = max(rows) + 1 if rows else 0
    out = np.full((Q, boxes.shape[1], 4), np.nan)
    for j, q in enumerate(rows):
        for t, b in enumerate(segment.objects[j].boxes):
            if b is not None or np.isnan(out[q, t, 0]):
                out[q, t] = boxes[j, t]
    return out


def add_arguments(parser) -> None:
    parser.add_argument("--data", required=True, help="dataset directory (any format; with store/<split>.h5)")
    parser.add_argument("--split", required=True, choices=("validation", "testing"))
    parser.add_argument("--method", required=True, choices=METHODS)
    parser.add_argument("--out", required=True, help="predictions JSON (the format's submission layout)")
    parser.add_argument("--seed", type=int, default=0, help="RNG seed of the random method (>= 0)")


def run(args) -> int:

    expect(args.seed >= 0, "--seed", f"must be an integer >= 0 (the random method's RNG seed), got {args.seed}")
    root = Path(args.data)
    check_output_path(args.out, inputs=(DatasetDir(root).store(args.split),), dirs=(root,))  # never on an input
    fmt = detect(root)
    gt = fmt.ground_truth(root, args.split)
    expect(gt is not None, str(root), f"the {args.split} split has no box annotations ({fmt.name}); the baselines "
           "pick proposals by their boxes")
    d = DatasetDir(root)
    path = d.store(args.split)
    expect(path.is_file(), str(path), f"feature store not found; run `python -m workbench build-store` for {args.split}")
    store = FeatureStore(path)
    try:
        check_box_space(store, f"the {args.split} annotations of {root}", root)
        boxes = random_boxes(gt, store, args.seed) if args.method == "random" else upper_bound_boxes(gt, store)
    finally:
        store.close()
    boxes = {k: per_query(gt[k], b) for k, b in boxes.items()}
    write_json(args.out, fmt.submission(root, args.split, gt, boxes))
    return 0
