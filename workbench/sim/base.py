"""Primitives shared by the simulated worlds (v1 in ``simulator.py``, v2 in ``workbench.world``):
deterministic randomness, segment plans and arrays, box jitter. No world logic lives here."""
from __future__ import annotations

import hashlib
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..boxes import clip_boxes, iou, jitter_boxes
from ..io import DataError, read_json
from ..paths import DATASET_META, SPLITS, STORE_DIR, TEXT_FEATURES_FILE

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


class UnitVectors:
    """Unit Gaussian vectors (D,) fixed by (seed, namespace, parts), cached: the appearance
    primitives of every simulated world."""

    def __init__(self, seed: int, dim: int, namespace: str):
        self.seed, self.dim, self.namespace = int(seed), int(dim), namespace
        self._cache: dict[tuple, np.ndarray] = {}

    def __call__(self, *parts) -> np.ndarray:
        v = self._cache.get(parts)
        if v is None:
            v = _unit(_rng(self.seed, self.namespace, *parts).standard_normal(self.dim))
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


# --- boxes ----------------------------------------------------------------------------------

# one implementation, shared with the ActivityNet world (boxes.py)
_jitter = jitter_boxes
_clip = clip_boxes


def proposals_around(rng: np.random.Generator, source: np.ndarray, detected: np.ndarray, gt224: np.ndarray,
                     good_jitter: tuple[float, float], poor_jitter: tuple[float, float]) -> np.ndarray:
    """Boxes of the proposals drawn around objects (both worlds): proposal (t, p) jitters around object
    ``source[t, p]`` (values >= O, the clutter ones, are placed by the caller), tightly where the detector
    found that object in frame t, loosely where it did not; a loose one never localises its object.

    source (T, P) in 0..O, detected (T, O) bool, gt224 (O, T, 4) boxes in the 224-frame -> (T, P, 4)."""
    t, p = source.shape
    o = detected.shape[1]
    src = np.minimum(source, o - 1)
    around = gt224.transpose(1, 0, 2)[np.arange(t)[:, None], src]          # (T, P, 4)
    hit = detected[np.arange(t)[:, None], src]                             # (T, P)
    jit = np.where(hit, rng.uniform(*good_jitter, (t, p)), rng.uniform(*poor_jitter, (t, p)))
    boxes = _clip(_jitter(rng, around, jit), FRAME, FRAME)
    for _ in range(3):  # a proposal around an undetected object never localises it (IoU <= 0.5)
        overlap = iou(boxes, around)                                       # (T, P)
        bad = (source < o) & ~hit & (overlap > 0.5)
        if not bad.any():
            break
        c = (boxes[..., :2] + boxes[..., 2:]) / 2
        half = (boxes[..., 2:] - boxes[..., :2]) * 0.3
        boxes = np.where(bad[..., None], _clip(np.concatenate([c - half, c + half], -1), FRAME, FRAME), boxes)
    return boxes


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


# What other commands write into a dataset directory for that dataset (replaced with the simulator's own files
# by `simulate --force`: they describe the old world): feature stores, the default text cache, world statistics.
DERIVED = (STORE_DIR, TEXT_FEATURES_FILE, "world_stats.json")


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
