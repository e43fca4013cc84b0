"""Simulate a YouCook2-BB dataset (the embedded default) in the real on-disk layouts.

The world is described in ``SIMULATOR.md`` beside this file. Every random draw of a segment
comes from a generator seeded by (seed, segment key), so a smaller preset is a consistent subset
of a larger one and the same seed gives byte-identical files.
"""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..boxes import iou_matrix
from ..io import DataError, atomic_path, read_json, write_json
from ..paths import WORLD_TRUTH_FILE, STORE_DIR, ANNOTATION_NAMES, BOX_DIR, CLASS_FILE, DATASET_META, FEATURE_DIR, SENTENCES_FILE, TRAINING_VID_FILE, YC2_DATA, YOUCOOKII_FILE
from ..datasets.yc2 import DatasetDir
from ..features.store import stamp_world
from .base import UnitVectors, parse_max_segments, proposals_around, write_replacing
from .base import FRAME, PRONOUNS, SegmentPlan, SegmentSim, _clip, _hash_int, _jitter, _rng, _unit
from ..datasets.yc2 import SPLIT_DICT_NAMES, SPLITS, load_class_file, load_official_annotations, load_sentences, load_split_dict, load_youcookii, write_official_annotations, write_split_dict
from ..records import GTObject, GTSegment, SegmentInfo, SplitEntry, Box

GENERATOR_VERSION = "yc2-sim-1"
REAL_DATA = YC2_DATA
RWIDTH = 720                                 # every YouCook2-BB video is resized to 720 px wide
ANNOTATION_FILES = {split: names[0] for split, names in ANNOTATION_NAMES.items()}  # what simulate writes

PRESETS = {
    # max_segments: per split (0 = all real segments); max_frames: only segments this short (0 = any)
    "smoke": dict(feature_dim=32, max_segments={"training": 60, "validation": 20, "testing": 20}, max_frames=8),
    "demo": dict(feature_dim=128, max_segments={}, max_frames=0),
    # the context-effect curve (`sweep --grid context`): a consistent subset of demo at smaller D
    "curve": dict(feature_dim=64, max_segments={"training": 2000, "validation": 600, "testing": 300}, max_frames=0),
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


# --- appearance -------------------------------------------------------------------------------

class World:
    """Appearance vectors of classes, words and scenes for one (seed, feature_dim, knobs)."""

    def __init__(self, seed: int, feature_dim: int, knobs: Knobs, class_forms: dict[str, int]):
        self.seed, self.dim, self.knobs = int(seed), int(feature_dim), knobs
        self.class_forms = class_forms
        self.vector = UnitVectors(self.seed, self.dim, "vec")   # vector(*parts) -> unit (D,) fixed by (seed, parts)

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


def plan_segments(preset: str, seed: int, data_dir: str | Path = REAL_DATA,
                  max_segments: dict[str, int] | None = None) -> dict[str, list[SegmentPlan]]:
    """The segments of each split for ``preset``, from the real YouCook2-BB files in ``data_dir``;
    ``max_segments`` ({split: n}) keeps only the first n of a split (a prefix of the preset)."""
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
        cap = (max_segments or {}).get(split) or p["max_segments"].get(split, 0)
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

    boxes = proposals_around(rng, source, detected, gt224, k.good_jitter, k.poor_jitter)  # (T, P, 4)
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


OUTPUTS = ("npy", "store", "both")
WORLDS = ("v1", "v2")
DEFAULT_WORLD = "v2"
WORLD_STATS_FILE = "world_stats.json"       # v2: oracle headroom per split (`simulate --stats`)


def default_output(preset: str) -> str:
    """``full`` writes the HDF5 stores directly (its per-segment .npy files would be ~89 GB); the
    small presets keep the per-segment .npy layout that ``build-store`` converts."""
    return "store" if preset == "full" else "npy"


def segment_arrays(world, plan: SegmentPlan):
    """Every array of one segment, for either world: (SegmentSim, truth or None). The one function
    through which generation produces per-segment arrays (the sinks plug in after it)."""
    if isinstance(world, World):
        return simulate_segment(world, plan), None
    from .v2 import simulate_segment_v2
    return simulate_segment_v2(world, plan)


def make_world(world: str, seed: int, dim: int, knobs, data_dir: Path):
    """The appearance world of ``world`` (v1 | v2) with ``knobs`` (None: that world's defaults)."""
    vocab = load_class_file(data_dir / CLASS_FILE)
    if world == "v1":
        return World(seed, dim, knobs or Knobs(), vocab.forms)
    from .knobs import WorldKnobs
    from .stats import parsed_corpus, real_statistics
    from .v2 import WorldV2
    return WorldV2(seed, dim, knobs or WorldKnobs(), vocab, real_statistics(data_dir), parsed_corpus(data_dir))


def _knob_dict(knobs) -> dict:
    return knobs.to_dict() if hasattr(knobs, "to_dict") else dataclasses.asdict(knobs)


def simulate(out: str | Path, preset: str = "smoke", seed: int = 0, feature_dim: int | None = None,
             knobs=None, data_dir: str | Path = REAL_DATA, progress: bool = False,
             output: str | None = None, checkpoint_seconds: float = 60.0,
             max_segments: dict[str, int] | None = None, world: str = DEFAULT_WORLD, holdout: int = 0) -> Path:
    """Write a simulated dataset directory at ``out`` (built in a sibling folder, then renamed).

    ``world``: "v2" (default; ``knobs`` a ``world.knobs.WorldKnobs``) or "v1" (the yc2-sim-1 world,
    byte for byte; ``knobs`` a ``Knobs``).
    ``output``: "npy" per-segment files (CI/NAFAE layout), "store" the HDF5 stores directly
    (``<out>/store/<split>.h5``), or "both"; default ``default_output(preset)``. With a store the
    sibling folder is ``.<name>.partial`` and is kept when interrupted: the same call resumes it
    from its last checkpoint (every ``checkpoint_seconds``).
    ``holdout`` K > 0: K testing classes unseen in training (``data/holdout.py``). ``out`` must not exist yet.
    Returns ``out``.
    """
    from .sinks import NpySink, StoreSink

    out = Path(out)
    if out.exists():
        raise DataError(f"{out}: already exists; simulate writes a new directory")
    if world not in WORLDS:
        raise DataError(f"unknown world {world!r}; worlds: {list(WORLDS)}")
    output = output or default_output(preset)
    if output not in OUTPUTS:
        raise DataError(f"simulate: output must be one of {OUTPUTS}, got {output!r}")
    v2 = world == "v2"
    if v2:
        from .knobs import SOURCES, WorldKnobs
        from .oracles import HeadroomAccumulator, Queries, TrainingBags
        from .v2 import GENERATOR_VERSION_V2
        knobs = knobs or WorldKnobs()
        if not isinstance(knobs, WorldKnobs):
            raise DataError(f"world v2 takes WorldKnobs, got {type(knobs).__name__}")
    else:
        knobs = knobs or Knobs()
    dim = int(PRESETS.get(preset, {}).get("feature_dim", 0) if feature_dim is None else feature_dim)
    if dim < 1:
        raise DataError(f"simulate: --feature-dim (feature_dim) must be >= 1, got {feature_dim!r}")
    data_dir = Path(data_dir)
    t0 = time.time()
    plans = plan_segments(preset, seed, data_dir, max_segments)
    holdout_meta = {}
    if holdout:
        from ..datasets.yc2 import apply_holdout
        plans, holdout_meta = apply_holdout(plans, holdout, seed, load_class_file(data_dir / CLASS_FILE).names)
    gen = make_world(world, seed, dim, knobs, data_dir)
    queries = Queries(gen, plans["training"]) if v2 else None
    bags = TrainingBags(queries) if v2 else None      # the training-time oracles' bags (fitted after training)
    version = GENERATOR_VERSION_V2 if v2 else GENERATOR_VERSION
    out.parent.mkdir(parents=True, exist_ok=True)
    resumable = output != "npy"
    if resumable:
        tmp = out.parent / f".{out.name}.partial"
        tmp.mkdir(exist_ok=True)
    else:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    identity = {"generator_version": version, "preset": preset, "seed": int(seed), "feature_dim": dim,
                "knobs": json.dumps(_knob_dict(knobs), sort_keys=True), "holdout": int(holdout)}
    sinks = []
    if output in ("npy", "both"):
        sinks.append(NpySink(tmp))
    if output in ("store", "both"):
        sinks.append(StoreSink(tmp, knobs.num_proposals, dim, identity))
    finished = False
    try:
        shutil.copyfile(data_dir / CLASS_FILE, tmp / CLASS_FILE)
        all_plans = [pl for s in SPLITS for pl in plans[s]]
        write_json(tmp / SENTENCES_FILE, {pl.key: pl.sentence for pl in all_plans})
        for split in SPLITS:
            write_split_dict(tmp / SPLIT_DICT_NAMES[split],
                             [SplitEntry(split, pl.recipe, pl.vid, pl.seg, pl.class_ids) for pl in plans[split]])
        _write_youcookii(tmp / YOUCOOKII_FILE, all_plans, data_dir)
        _write_training_vid(tmp / TRAINING_VID_FILE, plans["training"])
        stats, headroom, truth_out = {}, {}, {}
        for split in SPLITS:
            todo = plans[split]
            starts = [r for r in (s.begin_split(split, todo) for s in sinks) if r is not None]
            start = min(starts, default=0)
            annotated = split in ANNOTATION_FILES
            acc = HeadroomAccumulator(queries) if v2 and annotated else None
            learn = bags is not None and split == "training"
            gts = []
            if learn and start:  # v2 resume: regenerate the done training segments' bags and truth (no writes)
                for pl in todo[:start]:
                    sim, truth = segment_arrays(gen, pl)
                    bags.add(pl, sim, truth)
                    truth_out[pl.key] = _truth_rows(truth, sim)
            if annotated and start and not v2:
                gts = _partial_gts(tmp, split, todo, start)
            elif annotated and start:  # v2 resume: regenerate the done segments' truth (no writes)
                for pl in todo[:start]:
                    sim, truth = segment_arrays(gen, pl)
                    gts.append(gt_segment(pl, sim))
                    acc.add(pl, sim, truth)
                    truth_out[pl.key] = _truth_rows(truth, sim)
            bar = _progress(split, len(todo), start) if progress and resumable else None
            last = time.time()
            for i in range(start, len(todo)):
                pl = todo[i]
                sim, truth = segment_arrays(gen, pl)
                for sink in sinks:
                    sink.write(split, i, pl, sim.features, sim.rpn)
                if annotated:
                    gts.append(gt_segment(pl, sim))
                if acc is not None:
                    acc.add(pl, sim, truth)
                    truth_out[pl.key] = _truth_rows(truth, sim)
                if learn:
                    bags.add(pl, sim, truth)
                    truth_out[pl.key] = _truth_rows(truth, sim)
                if bar is not None:
                    bar.update(1)
                elif progress and (i + 1) % 1000 == 0:
                    print(f"  {split}: {i + 1}/{len(todo)} segments ({time.time() - t0:.0f}s)", flush=True)
                if resumable and time.time() - last > checkpoint_seconds and i + 1 < len(todo):
                    if annotated:  # the annotations of the done segments first, then the resume point
                        write_official_annotations(tmp / (ANNOTATION_FILES[split] + ".partial"), gts)
                    for sink in sinks:
                        sink.commit(split, i + 1)
                    last = time.time()
            if bar is not None:
                bar.close()
            if annotated:
                write_official_annotations(tmp / ANNOTATION_FILES[split], gts)
                (tmp / (ANNOTATION_FILES[split] + ".partial")).unlink(missing_ok=True)
            if learn:
                bags.fit()
            if acc is not None:
                headroom[split] = {**acc.result(), "learned_from": bags.info()}
            for sink in sinks:
                sink.end_split(split)
            stats[split] = {"segments": len(todo), "frames": sum(pl.num_frames for pl in todo)}
        meta = {
            "dataset": "youcook2-bb", "simulated": True, "generator": "workbench.sim.simulate",
            "generator_version": version, "preset": preset, "seed": int(seed), "feature_dim": dim,
            "num_proposals": knobs.num_proposals, "knobs": _knob_dict(knobs),
            "frames": "real durations (end - start of youcookii_annotations.json) for every split",
            "splits": stats, **holdout_meta,
        }
        if v2:
            write_json(tmp / WORLD_STATS_FILE, headroom, indent=1)
            write_json(tmp / WORLD_TRUTH_FILE, truth_out)
            meta = {**meta, "world": "v2", "knob_sources": SOURCES}
            if gen.words_info:                     # appearance_from_words > 0: which word vectors the looks follow
                meta["appearance_words"] = gen.words_info
        if output != "npy":
            meta["output"] = output
        if max_segments:
            meta["max_segments"] = dict(max_segments)  # a prefix of the preset's splits
        stamp_world(tmp / STORE_DIR, meta)                        # stores written directly: the world they hold
        write_json(tmp / DATASET_META, meta, indent=2)           # written last: marks a complete dataset
        tmp.rename(out)
        finished = True
    finally:
        for sink in sinks:
            getattr(sink, "close", lambda: None)()
        if tmp.exists() and (finished or not resumable):
            shutil.rmtree(tmp)
    return out


def _progress(split: str, total: int, start: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, desc=f"simulate {split}", unit="seg", mininterval=5)


def _partial_gts(tmp: Path, split: str, plans: list[SegmentPlan], start: int) -> list[GTSegment]:
    """The annotations of the first ``start`` segments of an interrupted split (resume)."""
    done = tmp / ANNOTATION_FILES[split]
    path = done if done.is_file() else tmp / (ANNOTATION_FILES[split] + ".partial")
    gts = load_official_annotations(path) if path.is_file() else {}
    missing = [pl.key for pl in plans[:start] if pl.key not in gts]
    if missing:
        raise DataError(f"{path}: the annotations of {len(missing)} finished segments of {split} are missing "
                        f"(e.g. {missing[:3]}); delete {tmp} to start over")
    out = []
    for pl in plans[:start]:  # the simulator writes integer pixels; JSON reading gave floats
        g = gts[pl.key]
        for o in g.objects:
            o.boxes = [None if b is None else Box(int(b.xtl), int(b.ytl), int(b.xbr), int(b.ybr), b.occluded,
                                                  b.outside) for b in o.boxes]
        out.append(g)
    return out


def _truth_rows(truth, sim: SegmentSim) -> list[dict]:
    """world_truth.json rows of a segment's named objects (its split dict's class ids, in order): mention type,
    appearance class ``cls``, what the sentence states ``lang``, first / last state, switch frame, twin frames."""
    rows = []
    for n, o in enumerate(truth.objects[:truth.num_named]):
        twin = np.zeros(sim.outside.shape[1], bool)
        for j, tw in enumerate(truth.objects):
            if tw.role == "twin" and tw.of == n:
                twin |= ~sim.outside[j]
        rows.append({"mention": o.mention, "cls": o.cls, "lang": o.lang, "start": o.states[0], "end": o.states[-1],
                     "switch": o.switch, "enters": o.enters, "nested": o.nest_in >= 0,
                     "twin_frames": np.flatnonzero(twin).tolist()})
    return rows


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


def ensure_dataset(path: str | Path, preset: str = "smoke", seed: int = 0, knobs=None,
                   world: str = DEFAULT_WORLD) -> Path:
    """Simulate ``preset`` at ``path`` unless a complete dataset of the same preset and seed is there
    (with ``knobs`` given: the same knobs too)."""
    path = Path(path)
    if is_complete(path):
        meta = read_json(path / DATASET_META)
        if meta.get("preset") != preset or meta.get("seed") != seed:
            raise DataError(f"{path / DATASET_META}: holds preset {meta.get('preset')!r} seed {meta.get('seed')!r}, "
                            f"expected preset {preset!r} seed {seed!r}")
        recorded = dict(meta.get("knobs") or {})
        if meta.get("world") == "v2":                # a world written before a knob existed has its neutral value
            from .knobs import ADDED_LATER
            recorded = {**ADDED_LATER, **recorded}
        if knobs is not None and recorded != json.loads(json.dumps(knobs.to_dict() if hasattr(knobs, "to_dict")
                                                                  else dataclasses.asdict(knobs))):
            raise DataError(f"{path / 'dataset.json'}: holds a world with other knobs; use another directory")
        return path
    if path.exists() and any(path.iterdir()):
        raise DataError(f"{path}: exists but holds no complete dataset (no dataset.json); remove it first")
    if path.exists():
        path.rmdir()
    return simulate(path, preset=preset, seed=seed, knobs=knobs, world=world)


# --- the world's own box statistics -----------------------------------------------------------

def world_stats(path: str | Path, split: str) -> dict[str, float]:
    """Random and upper-bound box accuracy of a dataset's proposal files (``baselines.proposal_hit_rates``)."""
    from ..baselines import proposal_hit_rates

    ds = DatasetDir(path)
    gts = load_official_annotations(ds.annotations(split))

    store = None
    if not (ds.feature_root / BOX_DIR / split).is_dir() and ds.store(split).is_file():
        from ..features.store import FeatureStore

        store = FeatureStore(ds.store(split))  # `--output store`: no .npy files; boxes in annotation pixels

    def pairs():
        for key, g in gts.items():
            if store is not None:
                yield g, store.boxes(store.index(key)).astype(np.float64)  # (T, P, 4)
                continue
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
    parser.add_argument("--world", default=DEFAULT_WORLD, choices=WORLDS,
                        help="v2 (default): states from language (yc2-sim-2); v1: the yc2-sim-1 world, byte for byte")
    parser.add_argument("--set", action="append", metavar="KNOB=VALUE",
                        help="world v2 knob (repeatable), e.g. --set context=0.9; see data/SIMULATOR.md")
    parser.add_argument("--context-strength", type=float, default=None,
                        help="world v1 only: sentence-context shift of object appearance (default 0.5)")
    parser.add_argument("--output", choices=OUTPUTS, default=None,
                        help="npy: per-segment .npy files; store: the HDF5 feature stores directly (resumable: "
                             "rerun the same command after an interruption); both. Default: store for the "
                             "full preset, npy otherwise")
    parser.add_argument("--max-segments", action="append", default=[], metavar="SPLIT=N",
                        help="keep only the first N segments of SPLIT (a prefix of the preset); repeatable")
    parser.add_argument("--dataset", default="yc2", choices=("yc2", "anet"),
                        help="yc2 (default): YouCook2-BB; anet: ActivityNet-Entities in GVD's layout (data/SIMULATOR_ANET.md)")
    parser.add_argument("--holdout", type=int, default=0, metavar="K",
                        help="yc2: K testing classes never seen in training (Table 4's protocol, data/holdout.py)")
    parser.add_argument("--force", action="store_true", help="replace an existing simulated dataset at --out")
    parser.add_argument("--stats", action="store_true",
                        help="print one JSON object keyed by split: random, upper bound and (v2) the oracles")


def run(args) -> int:
    import sys

    if args.dataset == "anet":
        from .anet import run as run_anet
        return run_anet(args)

    out = Path(args.out)
    if args.world == "v1":
        if args.set:
            raise DataError("--set: world knobs are world v2's; world v1 takes --context-strength")
        cs = Knobs.context_strength if args.context_strength is None else args.context_strength
        knobs = Knobs(context_strength=cs)
    else:
        from .knobs import parse_world_sets
        if args.context_strength is not None:
            raise DataError("--context-strength is world v1's knob; world v2 takes --set context=VALUE")
        knobs = parse_world_sets(args.set)
    caps = parse_max_segments(args.max_segments)
    t0 = time.time()
    write_replacing(out, args.force, lambda target: simulate(
        target, preset=args.preset, seed=args.seed, feature_dim=args.feature_dim, knobs=knobs, progress=True,
        output=args.output, max_segments=caps or None, world=args.world, holdout=args.holdout))
    meta = read_json(out / DATASET_META)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    summary = json.dumps({"out": str(out), "preset": args.preset, "seed": args.seed, "world": args.world,
                          "feature_dim": meta["feature_dim"], "splits": meta["splits"], "bytes": size,
                          "seconds": round(time.time() - t0, 1)})
    if not args.stats:
        print(summary)
        return 0
    print(summary, file=sys.stderr)
    print(json.dumps(dataset_stats(out), indent=1))
    return 0


def dataset_stats(path: str | Path) -> dict:
    """The `--stats` object of a simulated dataset: world v2's world_stats.json (random, upper bound,
    oracles and breakdowns per split); for world v1, random and upper bound per split."""
    path = Path(path)
    if (path / WORLD_STATS_FILE).is_file():
        return read_json(path / WORLD_STATS_FILE)
    out = {}
    for split in ANNOTATION_FILES:
        s = world_stats(path, split)
        out[split] = {"random": {"box_micro": round(100 * s["random"], 2)},
                      "upper_bound": {"box_micro": round(100 * s["upper_bound"], 2)}, "boxes": s["boxes"]}
    return out
