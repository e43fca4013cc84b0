"""What every simulated world shares (world v1 ``v1.py``, world v2 ``v2.py``, the ActivityNet world
``anet.py``): deterministic randomness, segment plans and arrays, the object tracks, the proposals drawn
around objects and the clutter, how a region feature mixes what its box overlaps, and writing a dataset
directory. No world logic lives here: where two worlds draw differently, the difference is a parameter.

Each function keeps its random draws in a fixed order; a world that calls them in its own order gets its
own, reproducible stream (the byte tests of the worlds pin them)."""
from __future__ import annotations

import hashlib
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..boxes import clip_boxes, iou, iou_matrix, jitter_boxes
from ..datasets.yc2 import PRONOUNS  # noqa: F401  (re-exported: the YouCook2 class ids of it, them, that, they)
from ..io import DataError, read_json
from ..paths import DATASET_META, SPLITS, STORE_DIR, TEXT_FEATURES_FILE

FRAME = 224.0                                # proposals live in the 224x224 resized frame
# Box geometry of the YouCook2 worlds: world v1's knob defaults, fixed in world v2 (fractions of the frame / box).
OBJECT_WIDTH = (0.12, 0.50)                  # GT box width as a fraction of the frame width
CLUTTER_SIZE = (0.08, 0.60)                  # clutter box side as a fraction of the frame side
GOOD_JITTER = (0.02, 0.25)                   # jitter scale of a detected object's proposals
POOR_JITTER = (0.25, 0.60)                   # jitter scale when not detected (IoU then kept <= 0.5)

# Words that carry no sentence context (world v1; the ActivityNet world adds the pronouns and auxiliaries of
# its longer sentences, ``anet.STOPWORDS``).
STOPWORDS = frozenset("""a an the and or of to in on into onto with for from at by over under up down out off
    then until some all it its them that they this these those each few more about as is are be until well""".split())


# --- deterministic randomness -----------------------------------------------------------------

def hash_int(*parts) -> int:
    """A 64-bit integer fixed by ``parts`` (blake2b of their strings joined by \\x1f)."""
    h = hashlib.blake2b("\x1f".join(str(p) for p in parts).encode(), digest_size=8)
    return int.from_bytes(h.digest(), "little")


def seeded_rng(*parts) -> np.random.Generator:
    """A generator fixed by ``parts`` (e.g. (seed, stream name, segment key))."""
    return np.random.Generator(np.random.PCG64(hash_int(*parts)))


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` scaled to unit length along its last axis."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


class UnitVectors:
    """Unit Gaussian vectors (D,) fixed by (seed, namespace, parts), cached: the appearance
    primitives of every simulated world."""

    def __init__(self, seed: int, dim: int, namespace: str):
        self.seed, self.dim, self.namespace = int(seed), int(dim), namespace
        self._cache: dict[tuple, np.ndarray] = {}

    def __call__(self, *parts) -> np.ndarray:
        v = self._cache.get(parts)
        if v is None:
            v = unit(seeded_rng(self.seed, self.namespace, *parts).standard_normal(self.dim))
            self._cache[parts] = v
        return v


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


def pick_distractors(rng: np.random.Generator, pool: list, most: int, draw_if_empty: bool = False) -> list:
    """Up to ``most`` distinct unnamed objects drawn from ``pool`` (classes named elsewhere in the video).
    The count is drawn only when the pool is not empty, unless ``draw_if_empty`` (the ActivityNet world's stream)."""
    n = int(rng.integers(0, most + 1)) if pool or draw_if_empty else 0
    n = min(n, len(pool))
    return list(rng.choice(pool, size=n, replace=False)) if n else []


# --- tracks, proposals, region features -------------------------------------------------------

def object_tracks(rng: np.random.Generator, n: int, t: int, width: float, height: float,
                  object_width: tuple[float, float], min_visible_frac: float, keep: np.ndarray | None = None):
    """GT boxes (n, t, 4) in pixels of a ``width`` x ``height`` frame, drifting and resizing smoothly, and
    ``outside`` (n, t) bool: each object is in view for one contiguous span of >= ``min_visible_frac`` of the
    frames, anywhere, or (``keep`` (n,) frame indices) a span containing frame ``keep[i]``."""
    w = width * rng.uniform(*object_width, size=(n, 1))
    h = np.minimum(w * np.exp(rng.normal(0.0, 0.35, size=(n, 1))), 0.9 * height)
    size = np.exp(np.cumsum(rng.normal(0.0, 0.03, size=(n, t)), axis=1))     # (n, t)
    w, h = np.minimum(w * size, 0.95 * width), np.minimum(h * size, 0.95 * height)
    cx = rng.uniform(0.25, 0.75, size=(n, 1)) * width + np.cumsum(rng.normal(0, 0.015 * width, (n, t)), axis=1)
    cy = rng.uniform(0.25, 0.75, size=(n, 1)) * height + np.cumsum(rng.normal(0, 0.015 * height, (n, t)), axis=1)
    cx = np.clip(cx, w / 2, width - w / 2)
    cy = np.clip(cy, h / 2, height - h / 2)
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)  # (n, t, 4)
    length = np.maximum(1, np.round(rng.uniform(min_visible_frac, 1.0, size=n) * t)).astype(int)
    if keep is None:
        lo, hi = 0, t - length
    else:
        lo, hi = np.maximum(0, keep - length + 1), np.minimum(keep, t - length)
    start = lo + (rng.random(n) * (hi - lo + 1)).astype(int)
    frames = np.arange(t)
    outside = (frames < start[:, None]) | (frames >= (start + length)[:, None])     # (n, t)
    return boxes, outside


def to_frame(gt: np.ndarray, width: float, height: float) -> np.ndarray:
    """Pixel boxes (..., 4) of a ``width`` x ``height`` frame in the 224x224 frame of the proposals."""
    return gt * np.array([FRAME / width, FRAME / height, FRAME / width, FRAME / height])


def proposal_sources(rng: np.random.Generator, present: np.ndarray, share, max_share: float, p: int) -> np.ndarray:
    """Which object each of a frame's ``p`` proposals is drawn around: ``present`` (T, O) bool, ``share`` (O,) or
    a scalar: each present object's share of the proposals, all together capped at ``max_share``; the rest is
    clutter. -> (T, P) in 0..O (O = clutter)."""
    s = present * share                                                    # (T, O)
    total = s.sum(1, keepdims=True)
    s = np.where(total > max_share, s * max_share / np.maximum(total, 1e-9), s)
    cum = np.cumsum(s, axis=1)                                             # (T, O)
    return (rng.random((present.shape[0], p))[..., None] >= cum[:, None, :]).sum(-1)


def jittered_proposals(rng: np.random.Generator, around: np.ndarray, hit: np.ndarray, on_object: np.ndarray,
                       good_jitter: tuple[float, float], poor_jitter: tuple[float, float], width: float,
                       height: float, plus_one: bool = False) -> np.ndarray:
    """Proposal boxes (T, P, 4) jittered around ``around`` (T, P, 4): tightly where ``hit`` (T, P), loosely
    elsewhere, clipped to the ``width`` x ``height`` frame. A loose proposal around an object (``on_object``)
    never localises it: shrunk about its centre until its IoU (``plus_one``: pixel-inclusive) is <= 0.5."""
    t, p = hit.shape
    jit = np.where(hit, rng.uniform(*good_jitter, (t, p)), rng.uniform(*poor_jitter, (t, p)))
    boxes = clip_boxes(jitter_boxes(rng, around, jit), width, height)
    for _ in range(3):
        bad = on_object & ~hit & (iou(boxes, around, plus_one) > 0.5)                # (T, P)
        if not bad.any():
            break
        c = (boxes[..., :2] + boxes[..., 2:]) / 2
        half = (boxes[..., 2:] - boxes[..., :2]) * 0.3
        boxes = np.where(bad[..., None], clip_boxes(np.concatenate([c - half, c + half], -1), width, height), boxes)
    return boxes


def proposals_around(rng: np.random.Generator, source: np.ndarray, detected: np.ndarray, gt224: np.ndarray,
                     good_jitter: tuple[float, float], poor_jitter: tuple[float, float]) -> np.ndarray:
    """Boxes of the proposals drawn around objects (the YouCook2 worlds): proposal (t, p) jitters around object
    ``source[t, p]`` (values >= O, the clutter ones, are placed by the caller), tightly where the detector
    found that object in frame t, loosely where it did not; a loose one never localises its object.

    source (T, P) in 0..O, detected (T, O) bool, gt224 (O, T, 4) boxes in the 224-frame -> (T, P, 4)."""
    t, p = source.shape
    o = detected.shape[1]
    src = np.minimum(source, o - 1)
    around = gt224.transpose(1, 0, 2)[np.arange(t)[:, None], src]          # (T, P, 4)
    hit = detected[np.arange(t)[:, None], src]                             # (T, P)
    return jittered_proposals(rng, around, hit, source < o, good_jitter, poor_jitter, FRAME, FRAME)


def clutter_boxes(rng: np.random.Generator, t: int, p: int, size: tuple[float, float], width: float,
                  height: float) -> np.ndarray:
    """(T, P, 4) boxes anywhere in the ``width`` x ``height`` frame, each side ``size`` of the frame's side."""
    frame = np.array([width, height])
    side = rng.uniform(*size, (t, p, 2)) * frame
    centre = rng.uniform(0, 1, (t, p, 2)) * (frame - side) + side / 2
    return np.concatenate([centre - side / 2, centre + side / 2], -1)


def visibility(outside: np.ndarray, occluded: np.ndarray, occluded_weight: float) -> np.ndarray:
    """(T, O) how much each object shows in a frame: 0 outside, ``occluded_weight`` occluded, else 1."""
    return np.where(outside, 0.0, np.where(occluded, occluded_weight, 1.0)).T


def overlap_weights(boxes: np.ndarray, gt: np.ndarray, shows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(weight (T, P, O), rest (T, P, 1)): how much of each object a proposal's region holds, its IoU with the
    object's box (``boxes`` (T, P, 4), ``gt`` (O, T, 4), one frame) times ``shows`` (T, O), rescaled to sum
    to at most 1; ``rest`` = 1 - their sum, the region's clutter."""
    weight = iou_matrix(boxes, gt.transpose(1, 0, 2)) * shows[:, None, :]            # (T, P, O)
    total = weight.sum(-1, keepdims=True)
    weight = np.where(total > 1, weight / np.maximum(total, 1e-9), weight)
    return weight, 1.0 - weight.sum(-1, keepdims=True)


def clutter_vectors(rng: np.random.Generator, mean: np.ndarray, t: int, p: int) -> np.ndarray:
    """(T, P, D) unit clutter vectors: ``mean`` ((D,) or (T, P, D): the video's scene, its backgrounds) plus
    unit-scale Gaussian noise."""
    d = mean.shape[-1]
    return unit(mean + rng.standard_normal((t, p, d)) / np.sqrt(d))


def region_features(rng: np.random.Generator, objects: np.ndarray, rest: np.ndarray, clutter: np.ndarray,
                    noise: float) -> np.ndarray:
    """(T, P, D) region features: what the regions hold of the objects (``objects`` (T, P, D), the weighted
    appearances), ``rest`` (T, P, 1) of clutter and Gaussian noise of norm ``noise``."""
    d = objects.shape[-1]
    return objects + rest * clutter + noise * rng.standard_normal(objects.shape) / np.sqrt(d)


# --- writing a dataset directory --------------------------------------------------------------

def parse_max_segments(items: list[str] | None) -> dict[str, int]:
    """``--max-segments SPLIT=N`` (repeatable) -> {split: N}; the same for every world."""
    caps: dict[str, int] = {}
    for item in items or []:
        split, _, n = item.partition("=")
        if split not in SPLITS or not n.isdigit() or int(n) < 1:
            raise DataError(f"--max-segments {item!r}: expected SPLIT=N with SPLIT in {SPLITS} and N >= 1 "
                            "(every split gets at least one segment; leave a split out to keep all of it)")
        if split in caps:
            raise DataError(f"--max-segments: split {split} given twice ({caps[split]} and {n})")
        caps[split] = int(n)
    return caps


WORLD_STATS_FILE = "world_stats.json"        # world v2: oracle headroom per split (`simulate --stats`)
# What other commands write into a dataset directory for that dataset (replaced with the simulator's own files
# by `simulate --force`: they describe the old world): feature stores, the default text cache, world statistics.
DERIVED = (STORE_DIR, TEXT_FEATURES_FILE, WORLD_STATS_FILE)


def _workbench_temp(name: str) -> bool:
    """A temporary file of an atomic write (``.<name>.<pid>.<random>.tmp<ext>``) or of a simulation."""
    return name.startswith(".") and ".tmp" in name


def write_replacing(out: Path, force: bool, write, log=None) -> list[str]:
    """Build a simulated dataset at ``out`` with ``write(target)``. An existing ``out`` is replaced only
    with ``force`` and only when it is a simulated dataset (or empty); the new one is built beside it
    first and swapped in, so a failed write loses nothing. ``--force`` replaces only what the workbench
    wrote for the dataset (the simulator's files and ``DERIVED``): anything else in ``out`` (a training
    run, notes) is moved into the new dataset untouched and named. Returns the names kept."""
    out = Path(out)
    if out.exists():
        meta = out / DATASET_META
        simulated = meta.is_file() and read_json(meta).get("simulated") is True
        if not force or not (simulated or not any(out.iterdir())):
            raise DataError(f"{out}: exists; pass --force to replace a simulated dataset (other directories are "
                            "never replaced)")
    target = out if not out.exists() else out.with_name(f".{out.name}.new")
    if target.exists():
        shutil.rmtree(target)
    write(target)
    kept: list[str] = []
    if target != out:
        ours = {p.name for p in target.iterdir()} | set(DERIVED)
        kept = sorted(p.name for p in out.iterdir() if p.name not in ours and not _workbench_temp(p.name))
        old = out.with_name(f".{out.name}.old")
        out.rename(old)
        target.rename(out)
        for name in kept:                               # never deleted: moved into the new dataset
            (old / name).rename(out / name)
        shutil.rmtree(old)
        if kept:
            (log or (lambda m: print(m, file=sys.stderr)))(f"simulate: kept {kept} in {out}: not written by the workbench for the dataset (--force replaces "
                "only the dataset's own files)")
    return kept
