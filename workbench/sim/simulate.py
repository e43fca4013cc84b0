"""Simulate a dataset (``python -m workbench simulate``): the one driver of every world.

A YouCook2-BB world (``--dataset yc2``, the default) in the real on-disk layouts: world v2 (``v2.py``, the
default), world v3 (``v3.py``) or world v1 (``v1.py``), each registered in ``WORLDS`` (``worlds.py``); the ActivityNet-Entities world (``--dataset
anet``, ``anet.py``) in GVD's layout. The worlds are described in ``SIMULATOR.md`` and ``SIMULATOR_ANET.md``
beside this file. Every random draw of a segment comes from a generator seeded by (seed, segment key), so a
smaller size is a consistent subset of a larger one and the same seed gives byte-identical files.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .anet import run as run_anet
from .base import (FRAME, PRONOUNS, SegmentPlan, SegmentSim, WORLD_STATS_FILE, hash_int, parse_max_segments,
                   write_replacing)
from ..baselines import proposal_hit_rates
from ..datasets.yc2 import (DatasetDir, SPLITS, SPLIT_DICT_NAMES, apply_holdout, load_class_file,
                            load_official_annotations, load_sentences, load_split_dict, load_youcookii,
                            write_official_annotations, write_split_dict)
from ..features.store import FeatureStore, stamp_world
from ..io import DataError, read_json, write_json
from .oracles import HeadroomAccumulator, Queries, TrainingBags
from ..paths import (ANNOTATION_NAMES, BOX_DIR, CLASS_FILE, DATASET_META, SENTENCES_FILE, STORE_DIR,
                     TRAINING_VID_FILE, WORLD_TRUTH_FILE, YC2_DATA, YOUCOOKII_FILE)
from ..records import Box, GTObject, GTSegment, SegmentInfo, SplitEntry
from .sinks import NpySink, StoreSink
from .worlds import DEFAULT_WORLD, WORLDS, make_world, recorded_knobs   # noqa: F401 (make_world: simulate's API)

# dataset.json's "generator" of the YouCook2 worlds: this driver's module when they were first written (kept: the
# files of every world stay byte for byte, and a store's world identity includes it)
GENERATOR = "workbench.data.simulator"
REAL_DATA = YC2_DATA
RWIDTH = 720                                 # every YouCook2-BB video is resized to 720 px wide
ANNOTATION_FILES = {split: names[0] for split, names in ANNOTATION_NAMES.items()}  # what simulate writes

WORLD_SIZES = {
    # max_segments: per split (0 = all real segments); max_frames: only segments this short (0 = any)
    "smoke": dict(feature_dim=32, max_segments={"training": 60, "validation": 20, "testing": 20}, max_frames=8),
    "demo": dict(feature_dim=128, max_segments={}, max_frames=0),
    # the context-effect curve (`sweep --grid context`): a consistent subset of demo at smaller D
    "curve": dict(feature_dim=64, max_segments={"training": 2000, "validation": 600, "testing": 300}, max_frames=0),
    "full": dict(feature_dim=4096, max_segments={}, max_frames=0),
}


# --- the YouCook2 worlds ----------------------------------------------------------------------

def segment_arrays(world, plan: SegmentPlan):
    """Every array of one segment, for any world: (SegmentSim, truth or None). The one function
    through which generation produces per-segment arrays (the sinks plug in after it)."""
    return world.segment(plan)


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
    return (hash_int(seed, "label", key, i) % 10_000) / 10_000 < p_alt


def plan_segments(preset: str, seed: int, data_dir: str | Path = REAL_DATA,
                  max_segments: dict[str, int] | None = None, size: dict | None = None) -> dict[str, list[SegmentPlan]]:
    """The segments of each split for ``preset``, from the real YouCook2-BB files in ``data_dir``;
    ``max_segments`` ({split: n}) keeps only the first n of a split (a prefix of the preset).
    ``size``: a size of WORLD_SIZES' layout that is none of them (``preset`` then only names it)."""
    if size is None and preset not in WORLD_SIZES:
        raise DataError(f"unknown simulator preset {preset!r}; presets: {sorted(WORLD_SIZES)}")
    data_dir = Path(data_dir)
    p = WORLD_SIZES[preset] if size is None else size
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
                u = (hash_int(seed, "rheight", e.vid) % 1_000_000) / 1_000_000
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


# --- one segment's annotation -------------------------------------------------------------

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

OUTPUTS = ("npy", "store", "both")


def default_output(preset: str) -> str:
    """``full`` writes the HDF5 stores directly (its per-segment .npy files would be ~89 GB); the
    small sizes keep the per-segment .npy layout that ``build-store`` converts."""
    return "store" if preset == "full" else "npy"


class TruthRecorder:
    """A world's truth while its segments are written (``WorldVersion.truth``): the world_truth.json rows of
    every segment, the training-time oracles' bags (fitted once training is done) and each annotated split's
    oracle headroom (world_stats.json)."""

    def __init__(self, world, training: list[SegmentPlan]):
        self.queries = Queries(world, training)
        self.bags = TrainingBags(self.queries)
        self.rows: dict[str, list[dict]] = {}
        self.headroom: dict[str, dict] = {}
        self.acc: HeadroomAccumulator | None = None

    def begin_split(self, split: str) -> None:
        self.acc = HeadroomAccumulator(self.queries) if split in ANNOTATION_FILES else None

    def add(self, split: str, plan: SegmentPlan, sim: SegmentSim, truth) -> None:
        if split == "training":
            self.bags.add(plan, sim, truth)
        elif self.acc is not None:
            self.acc.add(plan, sim, truth)
        else:
            return
        self.rows[plan.key] = _truth_rows(truth, sim)

    def end_split(self, split: str) -> None:
        if split == "training":
            self.bags.fit()
        if self.acc is not None:
            self.headroom[split] = {**self.acc.result(), "learned_from": self.bags.info()}

    def write(self, root: Path) -> None:
        write_json(root / WORLD_STATS_FILE, self.headroom, indent=1)
        write_json(root / WORLD_TRUTH_FILE, self.rows)


def simulate(out: str | Path, preset: str = "smoke", seed: int = 0, feature_dim: int | None = None,
             knobs=None, data_dir: str | Path = REAL_DATA, progress: bool = False,
             output: str | None = None, checkpoint_seconds: float = 60.0,
             max_segments: dict[str, int] | None = None, world: str = DEFAULT_WORLD, holdout: int = 0,
             size: dict | None = None) -> Path:
    """Write a simulated YouCook2-BB dataset directory at ``out`` (built in a sibling folder, then renamed).

    ``world``: a name of WORLDS, "v2" (default; ``knobs`` a ``knobs.WorldKnobs``), "v3" (``v3.WorldKnobsV3``) or
    "v1" (the yc2-sim-1 world, byte for byte; ``knobs`` a ``v1.Knobs``).
    ``output``: "npy" per-segment files (CI/NAFAE layout), "store" the HDF5 stores directly
    (``<out>/store/<split>.h5``), or "both"; default ``default_output(preset)``. With a store the
    sibling folder is ``.<name>.partial`` and is kept when interrupted: the same call resumes it
    from its last checkpoint (every ``checkpoint_seconds``).
    ``holdout`` K > 0: K testing classes unseen in training (``datasets.yc2.apply_holdout``). ``out`` must not
    exist yet. ``size``: the world's size when it is none of WORLD_SIZES (``plan_segments``); ``preset`` names
    it in dataset.json. Returns ``out``.
    """
    out = Path(out)
    if out.exists():
        raise DataError(f"{out}: already exists; simulate writes a new directory")
    if world not in WORLDS:
        raise DataError(f"unknown world {world!r}; worlds: {list(WORLDS)}")
    version = WORLDS[world]
    output = output or default_output(preset)
    if output not in OUTPUTS:
        raise DataError(f"simulate: output must be one of {OUTPUTS}, got {output!r}")
    knobs = knobs or version.knobs()
    if type(knobs) is not version.knobs:                  # exactly: v3's knobs subclass v2's
        raise DataError(f"world {world} takes {version.knobs.__name__}, got {type(knobs).__name__}")
    dim = int((size or WORLD_SIZES.get(preset, {})).get("feature_dim", 0) if feature_dim is None else feature_dim)
    if dim < 1:
        raise DataError(f"simulate: --feature-dim (feature_dim) must be >= 1, got {feature_dim!r}")
    data_dir = Path(data_dir)
    t0 = time.time()
    plans = plan_segments(preset, seed, data_dir, max_segments, size)
    holdout_meta = {}
    if holdout:
        plans, holdout_meta = apply_holdout(plans, holdout, seed, load_class_file(data_dir / CLASS_FILE).names)
    gen = version.build(seed, dim, knobs, data_dir)
    recorder = TruthRecorder(gen, plans["training"]) if version.truth else None
    out.parent.mkdir(parents=True, exist_ok=True)
    resumable = output != "npy"
    if resumable:
        tmp = out.parent / f".{out.name}.partial"
        tmp.mkdir(exist_ok=True)
    else:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    identity = {"generator_version": version.generator_version, "preset": preset, "seed": int(seed),
                "feature_dim": dim, "knobs": json.dumps(knobs.to_dict(), sort_keys=True), "holdout": int(holdout)}
    sinks = []
    if output in ("npy", "both"):
        sinks.append(NpySink(tmp))
    if output in ("store", "both"):
        sinks.append(StoreSink(tmp, knobs.num_proposals, dim, identity))
    finished = False
    try:
        _write_language(tmp, plans, data_dir)
        stats = {}
        for split in SPLITS:
            todo = plans[split]
            _write_split(tmp, split, todo, gen, sinks, recorder, progress and resumable,
                         checkpoint_seconds if resumable else None, t0, progress)
            stats[split] = {"segments": len(todo), "frames": sum(pl.num_frames for pl in todo)}
        meta = {
            "dataset": "youcook2-bb", "simulated": True, "generator": GENERATOR,
            "generator_version": version.generator_version, "preset": preset, "seed": int(seed), "feature_dim": dim,
            "num_proposals": knobs.num_proposals, "knobs": knobs.to_dict(),
            "frames": "real durations (end - start of youcookii_annotations.json) for every split",
            "splits": stats, **holdout_meta, **gen.meta(),
        }
        if recorder is not None:
            recorder.write(tmp)
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


def _write_language(tmp: Path, plans: dict[str, list[SegmentPlan]], data_dir: Path) -> None:
    """The real-language files of the simulated segments: classes, sentences, split dicts, NAFAE and
    training-video layouts."""
    shutil.copyfile(data_dir / CLASS_FILE, tmp / CLASS_FILE)
    all_plans = [pl for s in SPLITS for pl in plans[s]]
    write_json(tmp / SENTENCES_FILE, {pl.key: pl.sentence for pl in all_plans})
    for split in SPLITS:
        write_split_dict(tmp / SPLIT_DICT_NAMES[split],
                         [SplitEntry(split, pl.recipe, pl.vid, pl.seg, pl.class_ids) for pl in plans[split]])
    _write_youcookii(tmp / YOUCOOKII_FILE, all_plans, data_dir)
    _write_training_vid(tmp / TRAINING_VID_FILE, plans["training"])


def _write_split(tmp: Path, split: str, todo: list[SegmentPlan], gen, sinks: list, recorder: TruthRecorder | None,
                 bar: bool, checkpoint_seconds: float | None, t0: float, progress: bool) -> None:
    """Every segment of ``split`` through the sinks, its annotations and (``recorder``) its truth; resumed after
    the sinks' last commit, checkpointed every ``checkpoint_seconds`` (None: not resumable)."""
    starts = [r for r in (s.begin_split(split, todo) for s in sinks) if r is not None]
    start = min(starts, default=0)
    annotated = split in ANNOTATION_FILES
    if recorder is not None:
        recorder.begin_split(split)
    gts = []
    if start and recorder is not None:  # resume: regenerate the done segments' truth (nothing is written twice)
        for pl in todo[:start]:
            sim, truth = segment_arrays(gen, pl)
            if annotated:
                gts.append(gt_segment(pl, sim))
            recorder.add(split, pl, sim, truth)
    elif start and annotated:           # resume without truth: the done segments' annotations as written
        gts = _partial_gts(tmp, split, todo, start)
    shown = _progress(split, len(todo), start) if bar else None
    last = time.time()
    for i in range(start, len(todo)):
        pl = todo[i]
        sim, truth = segment_arrays(gen, pl)
        for sink in sinks:
            sink.write(split, i, pl, sim.features, sim.rpn)
        if annotated:
            gts.append(gt_segment(pl, sim))
        if recorder is not None:
            recorder.add(split, pl, sim, truth)
        if shown is not None:
            shown.update(1)
        elif progress and (i + 1) % 1000 == 0:
            print(f"  {split}: {i + 1}/{len(todo)} segments ({time.time() - t0:.0f}s)", flush=True)
        if checkpoint_seconds is not None and time.time() - last > checkpoint_seconds and i + 1 < len(todo):
            if annotated:  # the annotations of the done segments first, then the resume point
                write_official_annotations(tmp / (ANNOTATION_FILES[split] + ".partial"), gts)
            for sink in sinks:
                sink.commit(split, i + 1)
            last = time.time()
    if shown is not None:
        shown.close()
    if annotated:
        write_official_annotations(tmp / ANNOTATION_FILES[split], gts)
        (tmp / (ANNOTATION_FILES[split] + ".partial")).unlink(missing_ok=True)
    if recorder is not None:
        recorder.end_split(split)
    for sink in sinks:
        sink.end_split(split)


def _progress(split: str, total: int, start: int):
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
    """Simulate ``preset`` of ``world`` at ``path`` unless a complete dataset of the same world, preset and seed is
    there (with ``knobs`` given: the same knobs too)."""
    path = Path(path)
    if is_complete(path):
        meta = read_json(path / DATASET_META)
        if meta.get("preset") != preset or meta.get("seed") != seed:
            raise DataError(f"{path / DATASET_META}: holds preset {meta.get('preset')!r} seed {meta.get('seed')!r}, "
                            f"expected preset {preset!r} seed {seed!r}")
        want = WORLDS[world].generator_version
        if meta.get("generator_version") != want:
            raise DataError(f"{path / DATASET_META}: holds a {meta.get('generator_version')!r} world, expected {want!r} "
                            f"(world {world}); use another directory")
        if knobs is not None and recorded_knobs(meta) != json.loads(json.dumps(knobs.to_dict())):
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
    ds = DatasetDir(path)
    gts = load_official_annotations(ds.annotations(split))

    store = None
    if not (ds.feature_root / BOX_DIR / split).is_dir() and ds.store(split).is_file():
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
    parser.add_argument("--preset", default="smoke", choices=sorted(WORLD_SIZES),
                        help="dataset size (WORLD_SIZES; --dataset anet: anet.WORLD_SIZES)")
    parser.add_argument("--seed", type=int, default=0, help="world seed (same seed -> identical files)")
    parser.add_argument("--feature-dim", type=int, default=None, help="region feature dim D (default: the preset's)")
    parser.add_argument("--world", default=DEFAULT_WORLD, choices=WORLDS,
                        help="v2 (default): states from language (yc2-sim-2); v3: v2 with compound heads as looks "
                             "and twins from one sentence (yc2-sim-3); v1: the yc2-sim-1 world, byte for byte")
    parser.add_argument("--set", action="append", metavar="KNOB=VALUE",
                        help="a knob of the world (repeatable), e.g. --set context=0.9 (world v1: context only); "
                             "see sim/SIMULATOR.md")
    parser.add_argument("--output", choices=OUTPUTS, default=None,
                        help="npy: per-segment .npy files; store: the HDF5 feature stores directly (resumable: "
                             "rerun the same command after an interruption); both. Default: store for the "
                             "full preset, npy otherwise")
    parser.add_argument("--max-segments", action="append", default=[], metavar="SPLIT=N",
                        help="keep only the first N segments of SPLIT (a prefix of the preset); repeatable")
    parser.add_argument("--dataset", default="yc2", choices=("yc2", "anet"),
                        help="yc2 (default): YouCook2-BB; anet: ActivityNet-Entities in GVD's layout (sim/SIMULATOR_ANET.md)")
    parser.add_argument("--holdout", type=int, default=0, metavar="K",
                        help="yc2: K testing classes never seen in training (Table 4's protocol, "
                             "datasets.yc2.apply_holdout)")
    parser.add_argument("--force", action="store_true", help="replace an existing simulated dataset at --out")
    parser.add_argument("--stats", action="store_true",
                        help="print one JSON object keyed by split: random, upper bound and (v2) the oracles")


def run(args) -> int:
    if args.dataset == "anet":
        return run_anet(args)

    out = Path(args.out)
    knobs = WORLDS[args.world].parse_sets(args.set)
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
