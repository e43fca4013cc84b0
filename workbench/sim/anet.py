"""Simulate an ActivityNet-Entities dataset (``simulate --dataset anet``) in GVD's on-disk layout.

The language is real: the sentences, ``process_clss`` / ``process_idx`` (which words of the
sentence name which annotated box), segment timestamps and the 431-class vocabulary of the
public test skeleton (``data/activitynet_entities``). Its 2,457 videos are split into
training / validation / testing by a fixed hash of the video id (70 / 15 / 15 %, ``split_of``).
Boxes, proposals and region features are simulated; see ``SIMULATOR_ANET.md`` beside this file.

Every random draw of a segment comes from a generator seeded by (seed, segment key), so a smaller
preset is a consistent subset of a larger one and the same seed gives byte-identical files.
"""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .base import (STOPWORDS as _YC2_STOPWORDS, UnitVectors, clutter_boxes, clutter_vectors, hash_int,
                   jittered_proposals, object_tracks, overlap_weights, parse_max_segments, pick_distractors,
                   proposal_sources, region_features, seeded_rng, unit, write_replacing)
from ..baselines import random_boxes, upper_bound_boxes
from ..datasets.anet import (CLEANED_PREFIX, FRAMES_PER_SEGMENT, GVD_FEATURES, GVD_INDEX, PROPOSAL_H5, SPLIT_IDS,
                             gt_segments, load_anet_annotations, load_vg_vocab)
from ..evaluate import evaluate_boxes
from ..features.store import stamp_world
from ..io import DataError, atomic_path, expect, read_json, write_json
from .knobs import parse_knobs
from ..paths import DATASET_META, REPO, SPLITS, STORE_DIR
from ..records import ClassVocab

GENERATOR_VERSION = "anet-sim-1"
GENERATOR = "workbench.data.sim_anet"          # dataset.json's "generator": this module's name when anet-sim-1 was written
ANET_DATA = REPO / "data" / "activitynet_entities"
SKELETON = f"{CLEANED_PREFIX}test_skeleton.json"
VG_VOCAB = "vg_object_vocab.txt"
RWIDTH = 720                                   # GVD resizes every video to 720 px wide
HEIGHTS = ((405, 0.8), (540, 0.15), (480, 0.05))   # rheight of a video (16:9, 4:3, 3:2), fixed by (seed, vid)
SPLIT_SHARES = (("training", 0.70), ("validation", 0.15), ("testing", 0.15))
SPLIT_SALT = "anet-sim-split-1"                # the split never depends on the world seed
# What `simulate --dataset anet` writes: trainval (training + validation videos) and test, with boxes.
ANNOTATION_FILES = {"trainval": ("training", "validation"), "test": ("testing",)}

WORLD_SIZES = {
    # max_segments: per split, the first N segments in split order (0 / absent = all)
    "smoke": dict(feature_dim=32, max_segments={"training": 120, "validation": 40, "testing": 40}),
    "demo": dict(feature_dim=128, max_segments={}),
    "full": dict(feature_dim=2048, max_segments={}),
}

# the YouCook2 worlds' stop words and the pronouns and auxiliaries of ActivityNet's longer sentences
STOPWORDS = _YC2_STOPWORDS | frozenset("he she his her their who which while there was were has have had being been"
                                       .split())


@dataclass(frozen=True)
class AnetKnobs:
    """Every knob of the simulated ActivityNet-Entities world (recorded in dataset.json).

    The detector knobs (``detect_logit``, ``detect_freq_slope``, ``object_share``) were calibrated
    on the world's own validation boxes against the paper's Random and Upper Bound rows only
    (``calibration_stats``); no model was trained to choose them.
    """

    num_proposals: int = 20            # P: proposals per frame (GVD has 100; the store keeps the first N=20)
    context: float = 0.5               # sentence-context shift of an object's appearance (0 = none)
    instance_spread: float = 0.3       # per-object deviation from its (class, context) appearance
    feature_noise: float = 0.5         # norm of the per-region Gaussian noise (appearances have norm 1)
    clutter_scene: float = 0.7         # weight of the video's scene vector in a clutter vector
    max_distractors: int = 2           # unnamed objects of classes named elsewhere in the video
    min_visible_frac: float = 0.4      # an object is in view for a contiguous span of >= this fraction
    detect_logit: float = -0.6         # logit of P(the detector localises an object in a frame), average class
    detect_freq_slope: float = 0.5     # + this x the class's standardised log frequency (frequent classes
                                       # are found more often: the macro/micro gap of Table 2's Upper Bound)
    object_share: float = 0.08         # share of a frame's proposals drawn around each visible object
    good_proposals: int = 1            # well-placed proposals of an object in a frame where it is localised
    max_object_share: float = 0.8      # cap on the share of all objects together (the rest is clutter)
    good_jitter: tuple = (0.02, 0.20)  # jitter scale (fraction of box size) of a well-placed proposal
    poor_jitter: tuple = (0.25, 0.60)  # jitter scale of the other proposals around an object (IoU kept <= 0.5)
    object_width: tuple = (0.10, 0.55) # GT box width as a fraction of the frame width
    clutter_size: tuple = (0.05, 0.45) # clutter box side as a fraction of the frame side


# --- the split and the segment plans ----------------------------------------------------------

def split_of(vid: str) -> str:
    """The documented split of a skeleton video: a fixed hash of its id into 70 / 15 / 15 %."""
    u = hash_int(SPLIT_SALT, vid) / 2**64
    acc = 0.0
    for split, share in SPLIT_SHARES:
        acc += share
        if u < acc:
            return split
    return SPLIT_SHARES[-1][0]


@dataclass
class AnetPlan:
    """One segment before any draw: its sentence and annotated boxes (real), its split and frame size."""

    key: str
    split: str
    vid: str
    seg: str
    duration: float
    timestamps: list
    tokens: list[str]
    process_clss: list[list[str]]     # per annotated box: its class words
    process_idx: list[list[int]]      # per annotated box: their word indices
    rheight: int
    distractor_pool: list[str]        # classes named in other segments of the same video


def plan_segments(preset: str, seed: int, data_dir: str | Path = ANET_DATA,
                  max_segments: dict[str, int] | None = None) -> tuple[list[str], dict[str, list[AnetPlan]]]:
    """(vocab, {split: plans}) for ``preset`` from the public test skeleton in ``data_dir``; ``max_segments``
    ({split: N}) replaces the preset's per-split limits (a prefix of the preset's segments).

    Segments without tokens or without any annotated phrase are left out (302 of the 8,731)."""
    expect(preset in WORLD_SIZES, "simulate --dataset anet", f"unknown preset {preset!r}; presets: {sorted(WORLD_SIZES)}")
    path = Path(data_dir) / SKELETON
    vocab, segs = load_anet_annotations(path)
    raw = read_json(path)["annotations"]
    by_video: dict[str, list] = {}
    for s in segs.values():
        if s.tokens and s.process_clss:
            by_video.setdefault(s.vid, []).append(s)
    plans: dict[str, list[AnetPlan]] = {s: [] for s in SPLITS}
    for vid in sorted(by_video):
        split = split_of(vid)
        named = [c for s in by_video[vid] for cl in s.process_clss for c in cl]
        r = seeded_rng(seed, "height", vid).random()
        acc, height = 0.0, HEIGHTS[-1][0]
        for h, p in HEIGHTS:
            acc += p
            if r < acc:
                height = h
                break
        for s in sorted(by_video[vid], key=lambda s: int(s.seg)):
            mine = {c for cl in s.process_clss for c in cl}
            pool = sorted(set(named) - mine)
            plans[split].append(AnetPlan(s.key, split, vid, s.seg, float(raw[vid].get("duration", 0.0)),
                                         list(s.timestamps), s.tokens, s.process_clss, s.process_idx, height, pool))
    limits = WORLD_SIZES[preset]["max_segments"] if max_segments is None else max_segments
    for split in SPLITS:
        n = limits.get(split, 0)
        if n:
            plans[split] = plans[split][:n]
    return vocab, plans


# --- appearance -------------------------------------------------------------------------------

class AnetWorld:
    """Appearance vectors of classes, words and scenes, and per-class detectability."""

    def __init__(self, seed: int, dim: int, knobs: AnetKnobs, vocab: list[str], class_freq: Counter):
        self.seed, self.dim, self.knobs, self.vocab = int(seed), int(dim), knobs, vocab
        self.vocab_set = set(vocab)
        self.vector = UnitVectors(self.seed, self.dim, "anet-vec")   # vector(*parts) -> unit (D,) fixed by (seed, parts)
        logf = np.log1p(np.array([class_freq.get(c, 0) for c in vocab], np.float64))
        z = (logf - logf.mean()) / max(logf.std(), 1e-9)
        p = 1.0 / (1.0 + np.exp(-(knobs.detect_logit + knobs.detect_freq_slope * z)))
        self.detect_prob = dict(zip(vocab, p.tolist()))          # class -> P(localised in a frame)

    def context_words(self, tokens: list[str]) -> list[str]:
        words = [w.lower() for w in tokens if re.fullmatch(r"[A-Za-z]+", w)]
        return [w for w in words if w not in STOPWORDS and w not in self.vocab_set]

    def object_appearance(self, classes: list[str], words: list[str]) -> np.ndarray:
        """An annotated box naming ``classes`` in a sentence with context ``words``: the mean of its
        classes' appearances, shifted by the (class, context) direction."""
        a = np.mean([self.vector("class", c) for c in classes], axis=0)
        k = self.knobs.context
        if k and words:
            d = sum(self.vector("word", w) + self.vector("class-word", classes[0], w) for w in words)
            a = unit(a) + k * unit(d)
        return unit(a)


# --- one segment ------------------------------------------------------------------------------

@dataclass
class AnetSim:
    gt_boxes: np.ndarray      # (O, T, 4) float pixels (720 x rheight); the first len(plan.process_clss) annotated
    frame_ind: list[int]      # annotated frame of each annotated box
    rpn: np.ndarray           # (T, P, 4) float32 pixels
    rpn_class: np.ndarray     # (T, P) int: Visual Genome class of the proposal's source (0 = background)
    rpn_score: np.ndarray     # (T, P) float32 detector confidence
    features: np.ndarray      # (T, P, D) float32


def simulate_segment(world: AnetWorld, plan: AnetPlan, vg_ids: dict[str, int]) -> AnetSim:
    """Draw the objects, proposals and region features of one segment (T = 10 GVD frames)."""
    k, d, t, p = world.knobs, world.dim, FRAMES_PER_SEGMENT, world.knobs.num_proposals
    rng = seeded_rng(world.seed, "anet-segment", plan.key)
    nb = len(plan.process_clss)
    distractors = [str(c) for c in pick_distractors(rng, plan.distractor_pool, k.max_distractors, draw_if_empty=True)]
    classes = [list(cl) for cl in plan.process_clss] + [[c] for c in distractors]
    o = len(classes)

    # The boxes of one noun phrase (same word indices) are annotated in the same frame.
    phrase_frame: dict[tuple, int] = {}
    frame_ind = []
    for idx in plan.process_idx:
        key = tuple(idx)
        if key not in phrase_frame:
            phrase_frame[key] = int(rng.integers(0, t))
        frame_ind.append(phrase_frame[key])
    keep = np.array(frame_ind + [int(rng.integers(0, t)) for _ in distractors], dtype=int)

    words = world.context_words(plan.tokens)
    base = [world.object_appearance(cl, words) for cl in classes[:nb]]
    base += [world.vector("class", c) for c in distractors]
    appearance = unit(np.stack(base) + k.instance_spread * rng.standard_normal((o, d)) / np.sqrt(d))  # (O, D)

    width, height = float(RWIDTH), float(plan.rheight)
    gt, outside = object_tracks(rng, o, t, width, height, k.object_width, k.min_visible_frac, keep)  # (O, T, 4)
    inview = ~outside                                                                # (O, T)

    source = proposal_sources(rng, inview.T, k.object_share, k.max_object_share, p)  # (T, P) in 0..O (O = clutter)
    pdet = np.array([np.mean([world.detect_prob[c] for c in cl]) for cl in classes])  # (O,)
    detected = rng.random((t, o)) < pdet[None, :]                                     # (T, O)

    # A localised (object, frame) gets exactly `good_proposals` well-placed proposals (re-sourcing clutter
    # proposals when too few are drawn around it); every other proposal around an object misses it.
    hit = np.zeros((t, p), bool)
    for f, j in zip(*np.nonzero(detected & inview.T)):
        mine = np.flatnonzero(source[f] == j)
        if len(mine) < k.good_proposals:
            spare = np.flatnonzero(source[f] == o)
            extra = rng.choice(spare, size=min(len(spare), k.good_proposals - len(mine)), replace=False)
            source[f, extra] = j
            mine = np.concatenate([mine, extra])
        hit[f, rng.choice(mine, size=min(len(mine), k.good_proposals), replace=False)] = True
    src = np.minimum(source, o - 1)
    around = gt.transpose(1, 0, 2)[np.arange(t)[:, None], src]                       # (T, P, 4)
    boxes = jittered_proposals(rng, around, hit, source < o, k.good_jitter, k.poor_jitter, width, height,
                               plus_one=True)                                        # the anet rule's IoU
    boxes = np.where((source == o)[..., None], clutter_boxes(rng, t, p, k.clutter_size, width, height), boxes)

    weight, rest = overlap_weights(boxes, gt, inview.T)                              # (T, P, O), (T, P, 1)
    clutter = clutter_vectors(rng, k.clutter_scene * world.vector("scene", plan.vid), t, p)
    feats = region_features(rng, weight @ appearance, rest, clutter, k.feature_noise)

    src_vg = np.array([vg_ids.get(cl[0], 0) for cl in classes] + [0])
    rpn_class = np.where(source == o, rng.integers(1, max(len(vg_ids), 2), (t, p)), src_vg[source])
    score = np.where(hit & (source < o), rng.uniform(0.5, 1.0, (t, p)), rng.uniform(0.05, 0.6, (t, p)))
    return AnetSim(gt, frame_ind, boxes.astype(np.float32), rpn_class.astype(np.int64), score.astype(np.float32),
                   feats.astype(np.float32))


def annotation_entry(plan: AnetPlan, sim: AnetSim) -> dict:
    """The cleaned-JSON entry of a segment: the real language plus the simulated boxes (integer pixels)."""
    boxes = [[int(round(v)) for v in sim.gt_boxes[j, f]] for j, f in enumerate(sim.frame_ind)]
    return {"process_clss": plan.process_clss, "tokens": plan.tokens, "frame_ind": sim.frame_ind,
            "process_idx": plan.process_idx, "timestamps": plan.timestamps, "process_bnd_box": boxes,
            "crowds": [0] * len(boxes)}


# --- the dataset directory --------------------------------------------------------------------

def _vg_ids(data_dir: Path) -> dict[str, int]:
    path = data_dir / VG_VOCAB
    if not path.is_file():
        return {}
    return {name: i for i, names in enumerate(load_vg_vocab(path)) for name in names if i > 0}


def class_frequency(data_dir: str | Path = ANET_DATA) -> Counter:
    """How often each class annotates a box in the whole skeleton (drives per-class detectability)."""
    _, segs = load_anet_annotations(Path(data_dir) / SKELETON)
    return Counter(c for s in segs.values() for cl in s.process_clss for c in cl)


def simulate_anet(out: str | Path, preset: str = "smoke", seed: int = 0, feature_dim: int | None = None,
                  knobs: AnetKnobs | None = None, data_dir: str | Path = ANET_DATA, progress: bool = False,
                  max_segments: dict[str, int] | None = None) -> Path:
    """Write a simulated ActivityNet-Entities directory at ``out`` (built in a temporary sibling, then renamed);
    ``max_segments`` {split: N}: the first N segments of each split instead of the preset's."""
    out, data_dir = Path(out), Path(data_dir)
    if out.exists():
        raise DataError(f"{out}: already exists; simulate writes a new directory")
    knobs = knobs or AnetKnobs()
    dim = int(feature_dim or WORLD_SIZES.get(preset, {}).get("feature_dim", 0))
    if dim < 1:
        raise DataError(f"feature dim must be >= 1, got {feature_dim!r}")
    t0 = time.time()
    vocab, plans = plan_segments(preset, seed, data_dir, max_segments)
    world = AnetWorld(seed, dim, knobs, vocab, class_frequency(data_dir))
    vg = _vg_ids(data_dir)
    all_plans = [pl for s in SPLITS for pl in plans[s]]
    P, T = knobs.num_proposals, FRAMES_PER_SEGMENT
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        (tmp / GVD_FEATURES).mkdir()
        videos = {s: sorted({pl.vid for pl in plans[s]}) for s in SPLITS}
        write_json(tmp / SPLIT_IDS, {**videos, "hidden_test": []})
        write_json(tmp / GVD_INDEX, {"videos": [{"vid": pl.vid, "seg": pl.seg, "split": pl.split}
                                                for pl in all_plans]})
        ann: dict[str, dict] = {}
        stats = {}
        with atomic_path(tmp / PROPOSAL_H5, suffix=".h5") as h5tmp, h5py.File(h5tmp, "w") as f:
            f.create_dataset("dets_num", data=np.full(len(all_plans), T * P, np.int64))
            dets = f.create_dataset("dets_labels", (len(all_plans), T * P, 7), dtype="float32")
            row = 0
            for split in SPLITS:
                for i, pl in enumerate(plans[split]):
                    sim = simulate_segment(world, pl, vg)
                    with atomic_path(tmp / GVD_FEATURES / f"{pl.key}.npy", suffix=".npy") as ftmp:
                        np.save(ftmp, sim.features)
                    frame = np.repeat(np.arange(T), P)[:, None]
                    dets[row] = np.concatenate([sim.rpn.reshape(-1, 4), frame, sim.rpn_class.reshape(-1, 1),
                                                sim.rpn_score.reshape(-1, 1)], 1)   # (T*P, 7)
                    row += 1
                    video = ann.setdefault(pl.vid, {"duration": pl.duration, "segments": {}})
                    video["segments"][pl.seg] = annotation_entry(pl, sim)
                    if progress and (i + 1) % 1000 == 0:
                        print(f"  {split}: {i + 1}/{len(plans[split])} segments ({time.time() - t0:.0f}s)", flush=True)
                stats[split] = {"segments": len(plans[split]), "videos": len(videos[split]),
                                "frames": T * len(plans[split]),
                                "boxes": sum(len(pl.process_clss) for pl in plans[split])}
        for name, splits in ANNOTATION_FILES.items():
            vids = [v for s in splits for v in videos[s]]
            write_json(tmp / f"{CLEANED_PREFIX}{name}.json", {"vocab": vocab, "annotations": {v: ann[v] for v in vids}})
        meta = {
            "dataset": "activitynet-entities", "simulated": True, "generator": GENERATOR,
            "generator_version": GENERATOR_VERSION, "preset": preset, "seed": int(seed), "feature_dim": dim,
            "num_proposals": P, "frames_per_segment": T, "knobs": dataclasses.asdict(knobs),
            "max_segments": max_segments if max_segments is not None else WORLD_SIZES[preset]["max_segments"],
            "language": f"real: {SKELETON} (sentences, process_clss, process_idx, timestamps, vocab)",
            "split": f"videos of the skeleton by blake2b('{SPLIT_SALT}', vid): "
                     + ", ".join(f"{s} {int(100 * sh)}%" for s, sh in SPLIT_SHARES),
            "splits": stats,
        }
        stamp_world(tmp / STORE_DIR, meta)                        # stores written directly: the world they hold
        write_json(tmp / DATASET_META, meta, indent=2)           # written last: marks a complete dataset
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


# --- the world's own Random / Upper Bound (calibration) ---------------------------------------

def calibration_stats(preset: str = "demo", seed: int = 0, knobs: AnetKnobs | None = None, split: str = "validation",
                      data_dir: str | Path = ANET_DATA, draws: int = 3) -> dict[str, dict[str, float]]:
    """Random and Upper Bound (rule ``anet``) of ``split``'s simulated boxes, without writing features
    (feature_dim 1): the numbers the detector knobs were calibrated against (Table 2)."""
    knobs = knobs or AnetKnobs()
    vocab, plans = plan_segments(preset, seed, data_dir)
    world = AnetWorld(seed, 1, knobs, vocab, class_frequency(data_dir))
    vg = _vg_ids(data_dir)
    segs, props = {}, {}
    for pl in plans[split]:
        sim = simulate_segment(world, pl, vg)
        segs[pl.key] = annotation_entry(pl, sim)
        props[pl.key] = sim.rpn
    gt = gt_segments({k: (k.rpartition("_segment_")[0], k.rpartition("_segment_")[2], s) for k, s in segs.items()},
                     vocab)

    class _Props:   # the FeatureStore surface the baselines use
        seg = list(props)

        def index(self, key):
            return key

        def boxes(self, key):
            return props[key]

    cv = ClassVocab(list(vocab), {c: i for i, c in enumerate(vocab)})
    out = {"upper_bound": evaluate_boxes(gt, upper_bound_boxes(gt, _Props(), plus_one=True), cv, rule="anet")}
    rand = [evaluate_boxes(gt, random_boxes(gt, _Props(), seed=s), cv, rule="anet") for s in range(draws)]
    out["random"] = {m: float(np.mean([r[m] for r in rand])) for m in ("query_macro", "query_micro", "box_macro",
                                                                      "box_micro")} | {"boxes": rand[0]["boxes"]}
    return out


# --- CLI (dispatched from `simulate --dataset anet`) ------------------------------------------

# what parse_knobs checks of each knob's value (the ranges tuples are set in code)
RANGES = {**{k: "probability" for k in ("min_visible_frac", "object_share", "max_object_share", "clutter_scene")},
          **{k: "finite" for k in ("detect_logit", "detect_freq_slope")},
          **{k: "positive" for k in ("num_proposals", "good_proposals")},
          **{k: "non_negative" for k in ("context", "instance_spread", "feature_noise", "max_distractors")}}
RENAMED = {"context": "context_strength"}      # a knob's name in worlds written before issue 22


def parse_anet_knobs(items: list[str] | None, base: AnetKnobs | None = None, where: str = "--set") -> AnetKnobs:
    """``KNOB=VALUE`` strings applied to ``base``: every scalar knob of ``AnetKnobs``; an unknown knob, a bad
    value or a knob given twice raises DataError naming it (``knobs.parse_knobs``)."""
    return parse_knobs(items, base or AnetKnobs(), RANGES, where, what="ActivityNet world knob", once=True,
                       renamed=RENAMED)


def run(args) -> int:
    out = Path(args.out)
    if getattr(args, "holdout", 0):
        raise DataError("--holdout: the open-vocabulary protocol is defined on the YouCook2 world (--dataset yc2)")
    if getattr(args, "output", None) is not None:
        raise DataError("--output: the ActivityNet-Entities world writes GVD's layout (per-segment .npy files and "
                        "the proposal HDF5); build its stores with `prepare` / `build-store`")
    if getattr(args, "world", "v2") != "v2":                 # v2 is --world's default: not given
        raise DataError(f"--world {args.world} is a YouCook2 world; the ActivityNet-Entities world has one generator")
    t0 = time.time()
    knobs = parse_anet_knobs(getattr(args, "set", None))
    caps = parse_max_segments(getattr(args, "max_segments", None) or [])
    limits = None
    if caps:                                            # a prefix of the preset's segments, as in the YouCook2 world
        preset_caps = WORLD_SIZES.get(args.preset, {}).get("max_segments", {})
        limits = {s: min(n, preset_caps[s]) if preset_caps.get(s) else n for s, n in caps.items()}
        limits = {**{s: n for s, n in preset_caps.items() if s not in limits}, **limits}
    write_replacing(out, args.force, lambda target: simulate_anet(target, preset=args.preset, seed=args.seed,
                                                                   feature_dim=args.feature_dim, knobs=knobs,
                                                                   progress=True, max_segments=limits))
    meta = read_json(out / DATASET_META)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(json.dumps({"out": str(out), "dataset": meta["dataset"], "preset": args.preset, "seed": args.seed,
                      "feature_dim": meta["feature_dim"], "splits": meta["splits"], "bytes": size,
                      "seconds": round(time.time() - t0, 1)}))
    if getattr(args, "stats", False):
        print(json.dumps(calibration_stats(args.preset, args.seed, knobs), indent=1))
    return 0
