"""Simulate a YouCook2-BB dataset (the embedded default) in the real on-disk layouts.

The world is described in ``SIMULATOR.md`` beside this file. Every random draw of a segment
comes from a generator seeded by (seed, segment key), so a smaller preset is a consistent subset
of a larger one and the same seed gives byte-identical files.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..boxes import iou as pair_iou
from ..boxes import iou_matrix
from ..io import DataError, atomic_path, read_json, write_json
from ..paths import (ANNOTATION_NAMES, BOX_DIR, CLASS_FILE, DATASET_META, FEATURE_DIR, SENTENCES_FILE, TRAINING_VID_FILE,
                     YC2_DATA, YOUCOOKII_FILE)
from .layout import DatasetDir
from .yc2 import (SPLIT_DICT_NAMES, SPLITS, GTObject, GTSegment, SegmentInfo, SplitEntry, Box, load_class_file,
                  load_official_annotations, load_sentences, load_split_dict, load_youcookii,
                  write_official_annotations, write_split_dict)

GENERATOR_VERSION = "yc2-sim-1"
REAL_DATA = YC2_DATA
PRONOUNS = (63, 64, 65, 66)                  # it, them, that, they
FRAME = 224.0                                # proposals live in the 224x224 resized frame
RWIDTH = 720                                 # every YouCook2-BB video is resized to 720 px wide
ANNOTATION_FILES = {split: names[0] for split, names in ANNOTATION_NAMES.items()}  # what simulate writes

PRESETS = {
    # max_segments: per split (0 = all real segments); max_frames: only segments this short (0 = any)
    "smoke": dict(feature_dim=32, max_segments={"training": 60, "validation": 20, "testing": 20}, max_frames=8),
    "demo": dict(feature_dim=128, max_segments={}, max_frames=0),
    "full": dict(feature_dim=4096, max_segments={}, max_frames=0),
}

_STOPWORDS = frozenset("""a an the and or of to in on into onto with for from at by over under up down out off
    then until some all it its them that they this these those each few more about as is are be until well""".split())


@dataclass(frozen=True)
class Knobs:
    """Every knob of the simulated world (recorded in dataset.json)."""

    num_proposals: int = 20            # P: proposals per frame
    context_strength: float = 0.5      # size of the sentence-context shift of an object's appearance (0 = none)
    instance_spread: float = 0.3       # per-object deviation from its (class, context) appearance
    feature_noise: float = 0.5         # norm of the per-region Gaussian noise (appearances have norm 1)
    clutter_scene: float = 0.7         # weight of the video's scene vector in a clutter vector
    max_distractors: int = 2           # unnamed objects of the same video that co-occur in a segment
    min_visible_frac: float = 0.4      # an object is in the frame for a contiguous span of >= this fraction
    occluded_prob: float = 0.1         # per visible frame
    occluded_weight: float = 0.5       # an occluded object contributes this much to what overlaps it
    detect_prob: float = 0.58          # per (object, frame): the detector localises the object at all
    object_share: float = 0.25         # share of a frame's proposals drawn around each visible object
    max_object_share: float = 0.8      # cap on the share of all objects together (the rest is clutter)
    good_jitter: tuple = (0.02, 0.25)  # jitter scale (fraction of box size) of a detected object's proposals
    poor_jitter: tuple = (0.25, 0.60)  # jitter scale when not detected (IoU then kept <= 0.5)
    object_width: tuple = (0.12, 0.50) # GT box width as a fraction of the frame width
    clutter_size: tuple = (0.08, 0.60) # clutter box side as a fraction of the frame side


# --- deterministic randomness -----------------------------------------------------------------

def _hash_int(*parts) -> int:
    h = hashlib.blake2b("\x1f".join(str(p) for p in parts).encode(), digest_size=8)
    return int.from_bytes(h.digest(), "little")


def _rng(*parts) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(_hash_int(*parts)))


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


# --- appearance -------------------------------------------------------------------------------

class World:
    """Appearance vectors of classes, words and scenes for one (seed, feature_dim, knobs)."""

    def __init__(self, seed: int, feature_dim: int, knobs: Knobs, class_forms: dict[str, int]):
        self.seed, self.dim, self.knobs = int(seed), int(feature_dim), knobs
        self.class_forms = class_forms
        self._cache: dict[tuple, np.ndarray] = {}

    def vector(self, *parts) -> np.ndarray:
        """A unit vector (D,) fixed by (seed, parts)."""
        key = tuple(parts)
        v = self._cache.get(key)
        if v is None:
            v = _unit(_rng(self.seed, "vec", *parts).standard_normal(self.dim))
            self._cache[key] = v
        return v

    def class_appearance(self, cid: int) -> np.ndarray:
        return self.vector("class", cid)

    def context_words(self, sentence: str) -> list[str]:
        """The sentence's words that carry context: not object names, not stop words."""
        words = re.findall(r"[a-z]+", sentence.lower())
        return [w for w in words if w not in _STOPWORDS and w not in self.class_forms]

    def context_direction(self, cid: int, words: list[str]) -> np.ndarray:
        """Unit direction of the (class, context) shift: each word moves every class the same way
        (a shared part) and this class its own way (a class-specific part)."""
        if not words:
            return np.zeros(self.dim)
        v = sum(self.vector("word", w) + self.vector("class-word", cid, w) for w in words)
        return _unit(v)

    def object_appearance(self, cid: int, sentence: str) -> np.ndarray:
        """Appearance (D,) of an object of class ``cid`` described by ``sentence``."""
        a = self.class_appearance(cid)
        k = self.knobs.context_strength
        if k:
            a = a + k * self.context_direction(cid, self.context_words(sentence))
        return _unit(a)


# --- segment plans ----------------------------------------------------------------------------

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


def _referents(entries: list[SplitEntry]) -> dict[tuple[str, int], int]:
    """(segment key, object index) -> the last non-pronoun class named before a pronoun in the video."""
    out: dict[tuple[str, int], int] = {}
    last = None
    for e in sorted(entries, key=lambda e: e.seg):
        for i, c in enumerate(e.class_ids):
            if c in PRONOUNS:
                if last is not None:
                    out[(e.key, i)] = last
            else:
                last = c
    return out


def _label_rng_choice(seed: int, key: str, i: int, p_alt: float) -> bool:
    return (_hash_int(seed, "label", key, i) % 10_000) / 10_000 < p_alt


def plan_segments(preset: str, seed: int, data_dir: str | Path = REAL_DATA) -> dict[str, list[SegmentPlan]]:
    """The segments of each split for ``preset``, from the real YouCook2-BB files in ``data_dir``."""
    if preset not in PRESETS:
        raise DataError(f"unknown simulator preset {preset!r}; presets: {sorted(PRESETS)}")
    data_dir = Path(data_dir)
    p = PRESETS[preset]
    vocab = load_class_file(data_dir / CLASS_FILE)
    sentences = load_sentences(data_dir / SENTENCES_FILE)
    infos = load_youcookii(data_dir / YOUCOOKII_FILE)
    public_test = load_official_annotations(data_dir / "yc2_bb_public_test_annotations.json")
    dicts = {s: load_split_dict(data_dir / SPLIT_DICT_NAMES[s], len(vocab)) for s in SPLITS}

    # Real label statistics: how often each class is labelled with its alternative form.
    alt_count: dict[int, list[int]] = {}
    for g in public_test.values():
        for o in g.objects:
            cid = vocab.id_of(o.label, g.key)
            n = alt_count.setdefault(cid, [0, 0])
            n[0 if o.label == vocab.names[cid] else 1] += 1
    heights = sorted({g.rheight for g in public_test.values()})
    height_w = np.array([sum(g.rheight == h for g in public_test.values()) for h in heights], float)
    height_cdf = np.cumsum(height_w) / height_w.sum()
    test_height = {g.vid: g.rheight for g in public_test.values()}

    by_video: dict[str, list[SplitEntry]] = {}
    for d in dicts.values():
        for e in d.values():
            by_video.setdefault(e.vid, []).append(e)
    referent: dict[tuple[str, int], int] = {}
    for entries in by_video.values():
        referent.update(_referents(entries))

    plans: dict[str, list[SegmentPlan]] = {}
    for split in SPLITS:
        cap = p["max_segments"].get(split, 0)
        out: list[SegmentPlan] = []
        for key, e in dicts[split].items():
            info: SegmentInfo | None = infos.get(key)
            if info is None:
                raise DataError(f"{data_dir / YOUCOOKII_FILE}: segment {key} of {split} missing")
            if key not in sentences:
                raise DataError(f"{data_dir / SENTENCES_FILE}: segment {key} of {split} missing")
            t = info.num_frames
            if t < 1:
                raise DataError(f"{data_dir / YOUCOOKII_FILE}: segment {key} has {t} frames")
            if p["max_frames"] and t > p["max_frames"]:
                continue
            if e.vid in test_height:
                rheight = test_height[e.vid]
            else:
                u = (_hash_int(seed, "rheight", e.vid) % 1_000_000) / 1_000_000
                rheight = heights[int(np.searchsorted(height_cdf, u, side="right"))]
            real = public_test.get(key) if split == "testing" else None
            labels = []
            for i, c in enumerate(e.class_ids):
                if real is not None and len(real.objects) == len(e.class_ids):
                    labels.append(real.objects[i].label)        # the real test labels, as written
                else:
                    forms = [f for f, j in vocab.forms.items() if j == c and f != vocab.names[c]]
                    n_sing, n_alt = alt_count.get(c, [1, 0])
                    alt = bool(forms) and _label_rng_choice(seed, key, i, n_alt / max(1, n_sing + n_alt))
                    labels.append(forms[0] if alt else vocab.names[c])
            looks_like = [referent.get((key, i), c) for i, c in enumerate(e.class_ids)]
            named = set(e.class_ids)
            pool = sorted({c for o in by_video[e.vid] if o.key != key for c in o.class_ids
                           if c not in PRONOUNS and c not in named})
            out.append(SegmentPlan(key, split, e.vid, e.seg, e.recipe, t, RWIDTH, int(rheight), sentences[key],
                                   list(e.class_ids), labels, looks_like, pool))
            if cap and len(out) >= cap:
                break
        plans[split] = out
    return plans


# --- one segment ------------------------------------------------------------------------------

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


def _object_tracks(rng: np.random.Generator, n: int, t: int, width: float, height: float, k: Knobs):
    """GT boxes (n, t, 4) in pixels moving smoothly, with a contiguous visible span and occlusions."""
    w = width * rng.uniform(*k.object_width, size=(n, 1))
    h = np.minimum(w * np.exp(rng.normal(0.0, 0.35, size=(n, 1))), 0.9 * height)
    size = np.exp(np.cumsum(rng.normal(0.0, 0.03, size=(n, t)), axis=1))     # (n, t)
    w, h = np.minimum(w * size, 0.95 * width), np.minimum(h * size, 0.95 * height)
    cx = rng.uniform(0.25, 0.75, size=(n, 1)) * width + np.cumsum(rng.normal(0, 0.015 * width, (n, t)), axis=1)
    cy = rng.uniform(0.25, 0.75, size=(n, 1)) * height + np.cumsum(rng.normal(0, 0.015 * height, (n, t)), axis=1)
    cx = np.clip(cx, w / 2, width - w / 2)
    cy = np.clip(cy, h / 2, height - h / 2)
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)  # (n, t, 4)
    length = np.maximum(1, np.round(rng.uniform(k.min_visible_frac, 1.0, size=n) * t)).astype(int)
    start = (rng.random(n) * (t - length + 1)).astype(int)
    frames = np.arange(t)
    outside = (frames < start[:, None]) | (frames >= (start + length)[:, None])     # (n, t)
    occluded = ~outside & (rng.random((n, t)) < k.occluded_prob)
    return boxes, outside, occluded


def simulate_segment(world: World, plan: SegmentPlan) -> SegmentSim:
    """Draw the objects, proposals and region features of one segment (vectorised over frames)."""
    k, d = world.knobs, world.dim
    rng = _rng(world.seed, "segment", plan.key)
    t, p = plan.num_frames, k.num_proposals
    n_dis = int(rng.integers(0, k.max_distractors + 1)) if plan.distractor_pool else 0
    n_dis = min(n_dis, len(plan.distractor_pool))
    distractors = [int(c) for c in rng.choice(plan.distractor_pool, size=n_dis, replace=False)] if n_dis else []
    o = len(plan.class_ids) + n_dis

    # Appearance of each object instance (O, D): named objects shift with their sentence context,
    # pronouns look like their referent, distractors look like their class.
    base = [world.object_appearance(c, plan.sentence) for c in plan.looks_like]
    base += [world.class_appearance(c) for c in distractors]
    appearance = _unit(np.stack(base) + k.instance_spread * rng.standard_normal((o, d)) / np.sqrt(d))

    width, height = float(plan.rwidth), float(plan.rheight)
    gt, outside, occluded = _object_tracks(rng, o, t, width, height, k)
    scale = np.array([FRAME / width, FRAME / height, FRAME / width, FRAME / height])
    gt224 = gt * scale                                                     # (O, T, 4)

    # Which object each proposal is drawn around (index O = clutter).
    present = ~outside.T                                                   # (T, O)
    share = present * k.object_share
    total = share.sum(1, keepdims=True)
    share = np.where(total > k.max_object_share, share * k.max_object_share / np.maximum(total, 1e-9), share)
    cum = np.cumsum(share, axis=1)                                         # (T, O)
    source = (rng.random((t, p))[..., None] >= cum[:, None, :]).sum(-1)    # (T, P) in 0..O
    detected = rng.random((t, o)) < k.detect_prob                          # (T, O)

    src = np.minimum(source, o - 1)
    around = gt224.transpose(1, 0, 2)[np.arange(t)[:, None], src]          # (T, P, 4)
    hit = detected[np.arange(t)[:, None], src]                             # (T, P)
    jit = np.where(hit, rng.uniform(*k.good_jitter, (t, p)), rng.uniform(*k.poor_jitter, (t, p)))
    boxes = _clip(_jitter(rng, around, jit), FRAME, FRAME)
    for _ in range(3):  # a proposal around an undetected object never localises it (IoU <= 0.5)
        overlap = pair_iou(boxes, around)                                  # (T, P)
        bad = (source < o) & ~hit & (overlap > 0.5)
        if not bad.any():
            break
        c = (boxes[..., :2] + boxes[..., 2:]) / 2
        half = (boxes[..., 2:] - boxes[..., :2]) * 0.3
        boxes = np.where(bad[..., None], _clip(np.concatenate([c - half, c + half], -1), FRAME, FRAME), boxes)
    cw = FRAME * rng.uniform(*k.clutter_size, (t, p, 2))
    cc = rng.uniform(0, 1, (t, p, 2)) * (FRAME - cw) + cw / 2
    clutter_boxes = np.concatenate([cc - cw / 2, cc + cw / 2], -1)
    boxes = np.where((source == o)[..., None], clutter_boxes, boxes)       # (T, P, 4)

    # Region features: the appearance of what a proposal overlaps, weighted by IoU, plus clutter and noise.
    weight = iou_matrix(boxes, gt224.transpose(1, 0, 2))                   # (T, P, O)
    vis = np.where(outside, 0.0, np.where(occluded, k.occluded_weight, 1.0)).T   # (T, O)
    weight = weight * vis[:, None, :]
    total = weight.sum(-1, keepdims=True)
    weight = np.where(total > 1, weight / np.maximum(total, 1e-9), weight)
    rest = 1.0 - weight.sum(-1, keepdims=True)                             # (T, P, 1)
    scene = world.vector("scene", plan.vid)
    clutter = _unit(k.clutter_scene * scene + rng.standard_normal((t, p, d)) / np.sqrt(d))
    feats = weight @ appearance + rest * clutter + k.feature_noise * rng.standard_normal((t, p, d)) / np.sqrt(d)
    return SegmentSim(gt, outside, occluded, appearance, boxes.astype(np.float32), feats.astype(np.float32),
                      len(plan.class_ids))


def gt_segment(plan: SegmentPlan, sim: SegmentSim) -> GTSegment:
    """The official-format annotation of a segment's named objects (integer pixel boxes)."""
    objects = []
    for j, label in enumerate(plan.labels):
        b = np.round(sim.gt_boxes[j]).astype(int)
        boxes = [Box(int(x1), int(y1), int(x2), int(y2), int(sim.occluded[j, f]), int(sim.outside[j, f]))
                 for f, (x1, y1, x2, y2) in enumerate(b.tolist())]
        objects.append(GTObject(label, boxes))
    return GTSegment(plan.key, plan.vid, plan.seg, plan.recipe, plan.rwidth, plan.rheight, objects)


# --- the dataset directory --------------------------------------------------------------------

def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, array)


def simulate(out: str | Path, preset: str = "smoke", seed: int = 0, feature_dim: int | None = None,
             knobs: Knobs | None = None, data_dir: str | Path = REAL_DATA, progress: bool = False,
             holdout: int = 0) -> Path:
    """Write a simulated dataset directory at ``out`` (built in a temporary sibling, then renamed).

    ``holdout`` K > 0: K testing classes unseen in training (``data/holdout.py``). ``out`` must not exist yet.
    Returns ``out``.
    """
    out = Path(out)
    if out.exists():
        raise DataError(f"{out}: already exists; simulate writes a new directory")
    knobs = knobs or Knobs()
    dim = int(PRESETS.get(preset, {}).get("feature_dim", 0) if feature_dim is None else feature_dim)
    if dim < 1:
        raise DataError(f"simulate: --feature-dim (feature_dim) must be >= 1, got {feature_dim!r}")
    data_dir = Path(data_dir)
    t0 = time.time()
    plans = plan_segments(preset, seed, data_dir)
    vocab = load_class_file(data_dir / CLASS_FILE)
    holdout_meta = {}
    if holdout:
        from .holdout import apply_holdout
        plans, holdout_meta = apply_holdout(plans, holdout, seed, vocab.names)
    world = World(seed, dim, knobs, vocab.forms)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        shutil.copyfile(data_dir / CLASS_FILE, tmp / CLASS_FILE)
        all_plans = [pl for s in SPLITS for pl in plans[s]]
        write_json(tmp / SENTENCES_FILE, {pl.key: pl.sentence for pl in all_plans})
        for split in SPLITS:
            write_split_dict(tmp / SPLIT_DICT_NAMES[split],
                             [SplitEntry(split, pl.recipe, pl.vid, pl.seg, pl.class_ids) for pl in plans[split]])
        _write_youcookii(tmp / YOUCOOKII_FILE, all_plans, data_dir)
        _write_training_vid(tmp / TRAINING_VID_FILE, plans["training"])
        stats = {}
        for split in SPLITS:
            gts = []
            frames = 0
            for i, pl in enumerate(plans[split]):
                sim = simulate_segment(world, pl)
                _save_npy(tmp / FEATURE_DIR / split / f"{pl.key}.npy", sim.features)
                _save_npy(tmp / FEATURE_DIR / BOX_DIR / split / f"{pl.key}.npy", sim.rpn)
                frames += pl.num_frames
                if split in ANNOTATION_FILES:
                    gts.append(gt_segment(pl, sim))
                if progress and (i + 1) % 1000 == 0:
                    print(f"  {split}: {i + 1}/{len(plans[split])} segments ({time.time() - t0:.0f}s)", flush=True)
            if split in ANNOTATION_FILES:
                write_official_annotations(tmp / ANNOTATION_FILES[split], gts)
            stats[split] = {"segments": len(plans[split]), "frames": frames}
        meta = {
            "dataset": "youcook2-bb", "simulated": True, "generator": "workbench.data.simulator",
            "generator_version": GENERATOR_VERSION, "preset": preset, "seed": int(seed), "feature_dim": dim,
            "num_proposals": knobs.num_proposals, "knobs": dataclasses.asdict(knobs),
            "frames": "real durations (end - start of youcookii_annotations.json) for every split",
            "splits": stats, **holdout_meta,
        }
        write_json(tmp / DATASET_META, meta, indent=2)           # written last: marks a complete dataset
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def _write_youcookii(path: Path, plans: list[SegmentPlan], data_dir: Path) -> None:
    """NAFAE layout holding only the simulated segments (real start/end, sentence, id)."""
    real = read_json(data_dir / YOUCOOKII_FILE)["database"]
    db: dict[str, dict] = {}
    for pl in sorted(plans, key=lambda pl: (pl.vid, pl.seg)):
        v = real[pl.vid]
        video = db.setdefault(pl.vid, {"duration": v["duration"], "subset": v["subset"],
                                       "recipe_type": v["recipe_type"], "annotations": [],
                                       "video_url": v.get("video_url", "")})
        a = next(a for a in v["annotations"] if a["id"] == pl.seg)
        video["annotations"].append({"segment": list(a["segment"]), "id": a["id"], "sentence": a["sentence"]})
    write_json(path, {"database": db})


def _write_training_vid(path: Path, plans: list[SegmentPlan]) -> None:
    """The official ``yc2_training_vid.json`` layout: training video sizes and segment sentences."""
    db: dict[str, dict] = {}
    for pl in plans:
        video = db.setdefault(pl.vid, {"rwidth": pl.rwidth, "rheight": pl.rheight, "recipe_type": pl.recipe,
                                       "segments": {}})
        video["segments"][str(pl.seg)] = {"sentence": pl.sentence}
    write_json(path, {"database": db})


def is_complete(path: str | Path) -> bool:
    """True when ``path`` holds a finished simulated dataset (its dataset.json is written last)."""
    return (Path(path) / DATASET_META).is_file()


def ensure_dataset(path: str | Path, preset: str = "smoke", seed: int = 0) -> Path:
    """Simulate ``preset`` at ``path`` unless a complete dataset of the same preset and seed is there."""
    path = Path(path)
    if is_complete(path):
        meta = read_json(path / DATASET_META)
        if meta.get("preset") != preset or meta.get("seed") != seed:
            raise DataError(f"{path / DATASET_META}: holds preset {meta.get('preset')!r} seed {meta.get('seed')!r}, "
                            f"expected preset {preset!r} seed {seed!r}")
        return path
    if path.exists() and any(path.iterdir()):
        raise DataError(f"{path}: exists but holds no complete dataset (no dataset.json); remove it first")
    if path.exists():
        path.rmdir()
    return simulate(path, preset=preset, seed=seed)


# --- the world's own box statistics -----------------------------------------------------------

def world_stats(path: str | Path, split: str) -> dict[str, float]:
    """Random and upper-bound box accuracy of a dataset's proposal files (``baselines.proposal_hit_rates``)."""
    from ..baselines import proposal_hit_rates

    ds = DatasetDir(path)
    gts = load_official_annotations(ds.annotations(split))

    def pairs():
        for key, g in gts.items():
            f = ds.feature_root / BOX_DIR / split / f"{key}.npy"
            if not f.is_file():
                raise DataError(f"{f}: proposal boxes of segment {key} not found")
            rpn = np.load(f).astype(np.float64) * np.array([g.rwidth, g.rheight, g.rwidth, g.rheight]) / FRAME
            if rpn.shape[0] != g.num_frames:
                raise DataError(f"{f}: {rpn.shape[0]} frames, annotation of {key} has {g.num_frames}")
            yield g, rpn                                                    # (T, P, 4)

    stats = proposal_hit_rates(pairs())
    if stats["boxes"] == 0:
        raise DataError(f"{path}: no counted GT boxes in {split}")
    return stats


# --- CLI --------------------------------------------------------------------------------------

def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, help="dataset directory to create (must not exist unless --force)")
    parser.add_argument("--preset", default="smoke", choices=sorted(PRESETS), help="dataset size")
    parser.add_argument("--seed", type=int, default=0, help="world seed (same seed -> identical files)")
    parser.add_argument("--feature-dim", type=int, default=None, help="region feature dim D (default: the preset's)")
    parser.add_argument("--context-strength", type=float, default=Knobs.context_strength,
                        help="sentence-context shift of object appearance (0 = none)")
    parser.add_argument("--dataset", default="yc2", choices=("yc2", "anet"),
                        help="yc2 (default): YouCook2-BB; anet: ActivityNet-Entities in GVD's layout (data/SIMULATOR_ANET.md)")
    parser.add_argument("--holdout", type=int, default=0, metavar="K",
                        help="yc2: K testing classes never seen in training (Table 4's protocol, data/holdout.py)")
    parser.add_argument("--force", action="store_true", help="replace an existing simulated dataset at --out")
    parser.add_argument("--stats", action="store_true", help="print random / upper-bound box accuracy of val and test")


def run(args) -> int:
    if args.dataset == "anet":
        from .sim_anet import run as run_anet
        return run_anet(args)
    out = Path(args.out)
    if out.exists():
        meta = out / DATASET_META
        simulated = meta.is_file() and read_json(meta).get("simulated") is True
        if not args.force or not (simulated or not any(out.iterdir())):
            raise DataError(f"{out}: exists; pass --force to replace a simulated dataset (other directories are "
                            "never replaced)")
    knobs = Knobs(context_strength=args.context_strength)
    t0 = time.time()
    target = out if not out.exists() else out.with_name(f".{out.name}.new")
    if target.exists():
        shutil.rmtree(target)
    simulate(target, preset=args.preset, seed=args.seed, feature_dim=args.feature_dim, knobs=knobs, progress=True,
             holdout=args.holdout)
    if target != out:
        old = out.with_name(f".{out.name}.old")
        out.rename(old)
        target.rename(out)
        shutil.rmtree(old)
    meta = read_json(out / DATASET_META)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(json.dumps({"out": str(out), "preset": args.preset, "seed": args.seed, "feature_dim": meta["feature_dim"],
                      "splits": meta["splits"], "bytes": size, "seconds": round(time.time() - t0, 1)}))
    if args.stats:
        for split in ANNOTATION_FILES:
            s = world_stats(out, split)
            print(f"{split}: random {100 * s['random']:.2f}%  upper bound {100 * s['upper_bound']:.2f}%  "
                  f"({s['boxes']} counted boxes)")
    return 0
