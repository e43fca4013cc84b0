"""Oracle headroom: training-free scorers that say how much a query can gain from knowing context.

Every scorer picks, per annotated (object, frame), the proposal whose region feature has the highest
cosine with a query vector, and is scored like a run (STVG rule: a counted GT box, IoU > 0.5 with
the integer GT box in pixels):

* ``oracle_class``: one query per label class: the mean noiseless appearance of the training
  objects of that label over their frames (the best single query per class);
* ``oracle_language``: what the sentence alone says: for a mention with a cue in its sentence, the
  world's look of that class in the stated state (start and end state averaged when a verb changes
  it); for an uncued mention or a pronoun (the sentence names no class), the class query;
* ``oracle_state``: the object's own noiseless appearance in that frame (its true state).

Training-time headroom (what a context-free query can learn from the training bags; SCL infers with
E_f alone, so context can only help it through training, see SIMULATOR.md "Which oracle bounds which
method"), each one query per label class learned from the training split's features (``TrainingBags``):

* ``oracle_class_em``: MIL-EM class prototypes: in every training bag (a named object's segment, its
  sampled frames) the proposal of each frame closest to the class prototype, the prototype the mean of
  those picks, iterated (hard EM; started from the class's mean bag minus the mean bag);
* ``oracle_teacher_em``: the same, but in cued bags a perfect contextual teacher picks, per frame, the
  proposal closest to the stated state's look (``stated_look``); the other bags as above;
* ``oracle_class_box``: the box-supervised class ceiling: the mean feature of the training proposals
  with IoU > 0.5 to a counted GT box of the class.

``random`` (the expected accuracy of a uniform proposal) and ``upper_bound`` (some proposal hits) are
computed on the same units. Breakdowns: by mention type (cued / carried / uncued / pronoun), frames
with / without a visible twin, and before / after a state change (``no_change`` for the rest).
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from .base import PRONOUNS, SegmentPlan, SegmentSim
from ..boxes import iou_matrix
from ..datasets.yc2 import holdout_classes, load_class_file, load_official_annotations
from ..evaluate import evaluate_boxes, gt_units, heldout_metrics
from ..io import DataError, read_json
from ..paths import ANNOTATION_NAMES, BOX_DIR, CLASS_FILE, DATASET_META, FEATURE_DIR, WORLD_TRUTH_FILE, YC2_DATA
from .v2 import MENTION_TYPES, SegmentTruth, WorldV2, noiseless, segment_truth, word_looks
from .worlds import WORLDS, make_world, recorded_knobs

METHODS = ("random", "upper_bound", "oracle_class", "oracle_language", "oracle_state",
           "oracle_class_em", "oracle_teacher_em", "oracle_class_box")
EM_FRAMES = 5          # frames per training bag the EM oracles read (evenly spaced; the training default T)
EM_ITERS = 20          # hard-EM iterations (stops earlier when no pick changes)
TRUTH_WORLDS = tuple(n for n, v in WORLDS.items() if v.truth)    # the worlds that write world_truth.json
EM_MAX_BYTES = 512 * 2**20   # float16 features the EM bags may hold (a larger split: its first segments)


def _unit(v: np.ndarray) -> np.ndarray:
    """A vector (D,) scaled to unit length by its flat norm (not ``base.unit``'s last-axis norm, which can differ in
    the last bit: the oracle numbers of written worlds stay as they are)."""
    return v / max(float(np.linalg.norm(v)), 1e-12)


def stated_look(world: WorldV2, cls: int, lang: str) -> np.ndarray:
    """The world's look (D,) of class ``cls`` in the state(s) its sentence states (``lang`` = "start>end":
    start and end averaged when a verb changes it): what a perfect contextual teacher knows of a cued mention."""
    states = list(dict.fromkeys(lang.split(">")))
    return _unit(sum(world.appearance(cls, s) for s in states))


class Queries:
    """Class queries from the training split's truth (no features, no boxes); language queries from the
    world's appearance model and the sentence's cues."""

    def __init__(self, world: WorldV2, training: list[SegmentPlan]):
        sums: dict = defaultdict(lambda: np.zeros(world.dim))
        for plan in training:
            truth = segment_truth(world, plan)
            for ob in truth.objects[:truth.num_named]:
                sums[ob.label_cls] += noiseless(world, ob).sum(0)
        self.world = world
        self.cls = {c: v / max(np.linalg.norm(v), 1e-12) for c, v in sums.items()}
        self.learned: dict[str, dict[int, np.ndarray]] = {}   # TrainingBags.fit: em_class, em_teacher, box_class

    def class_query(self, label: int) -> np.ndarray:
        q = self.cls.get(label)
        return q if q is not None else self.world.class_appearance(label)

    def language_query(self, ob) -> np.ndarray:
        """What the sentence alone says: a cued mention of a class -> the look of that class in the
        stated state(s) (start and end averaged when the verb changes it); no cue, or a pronoun
        (the sentence does not name the class) -> the class query."""
        if ob.mention != "cued" or ob.label_cls in PRONOUNS:
            return self.class_query(ob.label_cls)
        return stated_look(self.world, ob.cls, ob.lang)

    def learned_query(self, kind: str, label: int) -> np.ndarray:
        """A query learned from the training bags (``TrainingBags.fit``: kind em_class | em_teacher |
        box_class); a label without training bags falls back to the class query."""
        q = self.learned.get(kind, {}).get(label)
        return q if q is not None else self.class_query(label)


def mil_em(bags: list[np.ndarray], labels: list[int], teacher: list[np.ndarray | None] | None = None,
           iters: int = EM_ITERS) -> dict[int, np.ndarray]:
    """Hard MIL-EM class prototypes {label: unit (D,)}.

    ``bags[i]``: (F, P, D) unit region features of bag i (F frames, P proposals) with class ``labels[i]``;
    ``teacher[i]``: None, or a (D,) look by which the bag's proposal of each frame is picked (fixed: a
    perfect teacher; the bag does not follow the prototype). Start: unit(mean bag of the class - mean bag
    of all classes) (what tells the class's bags apart); then per iteration pick, in every frame of every
    untaught bag, the proposal of highest cosine with its class's prototype; prototype = unit(mean of the
    picks of the class); until no pick changes or ``iters``."""
    teacher = teacher or [None] * len(bags)
    means = np.stack([b.reshape(-1, b.shape[-1]).mean(0) for b in bags])            # (B, D)
    overall = means.mean(0)
    classes = sorted(set(labels))
    lab = np.asarray(labels)
    proto = {c: _unit(means[lab == c].mean(0) - overall) for c in classes}
    fixed = [None if t is None else (b @ t).argmax(-1) for b, t in zip(bags, teacher)]   # (F,) each
    picks = [None] * len(bags)
    for _ in range(max(iters, 1)):
        new = [f if f is not None else (b @ proto[c]).argmax(-1) for b, c, f in zip(bags, labels, fixed)]
        if picks[0] is not None and all(np.array_equal(a, b) for a, b in zip(new, picks)):
            break
        picks = new
        sums = {c: np.zeros(bags[0].shape[-1], np.float64) for c in classes}
        for b, c, p in zip(bags, labels, picks):
            sums[c] += b[np.arange(len(p)), p].sum(0)
        proto = {c: _unit(v) for c, v in sums.items()}
    return proto


class TrainingBags:
    """The training split's bags (features of EM_FRAMES frames per segment, one bag per named object) and
    the box-supervised class sums; ``fit()`` puts the learned class queries into ``queries.learned``."""

    def __init__(self, queries: Queries, frames: int = EM_FRAMES, max_bytes: int = EM_MAX_BYTES):
        self.q, self.frames, self.max_bytes = queries, frames, max_bytes
        self.feats: list[np.ndarray] = []                 # per segment (F, P, D) float16, unit rows
        self.bags: list[tuple[int, int, np.ndarray | None]] = []   # (segment index, label, teacher look)
        self.box: dict = defaultdict(lambda: np.zeros(queries.world.dim))
        self.nbytes = 0
        self.segments = 0                                 # training segments seen (box sums: all of them)

    def add(self, plan: SegmentPlan, sim: SegmentSim, truth: SegmentTruth) -> None:
        feats = sim.features.astype(np.float64)
        feats = feats / np.maximum(np.linalg.norm(feats, axis=-1, keepdims=True), 1e-12)   # (T, P, D)
        t = feats.shape[0]
        self.segments += 1
        pick = np.unique(np.round(np.linspace(0, t - 1, min(self.frames, t))).astype(int))
        keep = self.nbytes + feats[pick].size * 2 <= self.max_bytes   # EM bags: a prefix of the split within the cap
        if keep:
            self.feats.append(feats[pick].astype(np.float16))
            self.nbytes += self.feats[-1].nbytes
        s = len(self.feats) - 1
        scale = np.array([plan.rwidth, plan.rheight, plan.rwidth, plan.rheight]) / 224.0
        rpn = sim.rpn.astype(np.float64) * scale                                 # (T, P, 4) pixels
        for j in range(truth.num_named):
            ob = truth.objects[j]
            look = self.q.language_query(ob) if ob.mention == "cued" and ob.label_cls not in PRONOUNS else None
            if keep:
                self.bags.append((s, ob.label_cls, look))
            frames = np.flatnonzero(~sim.outside[j] & ~sim.occluded[j])
            if len(frames):
                good = iou_matrix(rpn[frames], np.round(sim.gt_boxes[j])[frames][:, None, :])[..., 0] > 0.5  # (k, P)
                self.box[ob.label_cls] += (feats[frames] * good[..., None]).sum((0, 1))

    def fit(self) -> None:
        if not self.bags:
            return
        seg = [f.astype(np.float32) for f in self.feats]          # one float32 copy per segment, shared by its bags
        bags = [seg[s] for s, _, _ in self.bags]
        labels = [c for _, c, _ in self.bags]
        self.q.learned["em_class"] = mil_em(bags, labels)
        self.q.learned["em_teacher"] = mil_em(bags, labels, [t for _, _, t in self.bags])
        self.q.learned["box_class"] = {c: _unit(v) for c, v in self.box.items() if np.linalg.norm(v) > 0}

    def info(self) -> dict:
        """What the learned queries were fitted on (world_stats.json ``training_bags``)."""
        return {"segments": self.segments, "em_segments": len(self.feats), "em_bags": len(self.bags),
                "em_frames_per_bag": self.frames,
                "cued_bags": sum(t is not None for _, _, t in self.bags)}


class HeadroomAccumulator:
    """Per-unit hits of every scorer for one split; ``result()`` -> micro / macro and breakdowns."""

    def __init__(self, queries: Queries):
        self.q = queries
        self.rows: list[tuple] = []      # (label, mention, twin, phase, then one hit per METHODS)

    def add(self, plan: SegmentPlan, sim: SegmentSim, truth: SegmentTruth) -> None:
        w = self.q.world
        scale = np.array([plan.rwidth, plan.rheight, plan.rwidth, plan.rheight]) / 224.0
        rpn = sim.rpn.astype(np.float64) * scale                                 # (T, P, 4) pixels
        feats = sim.features.astype(np.float64)
        feats = feats / np.maximum(np.linalg.norm(feats, axis=-1, keepdims=True), 1e-12)   # (T, P, D)
        objs = truth.objects
        twin_vis = {}
        for i, ob in enumerate(objs):
            if ob.role == "twin":
                twin_vis[ob.of] = twin_vis.get(ob.of, np.zeros(plan.num_frames, bool)) | ~sim.outside[i]
        for j in range(truth.num_named):
            ob = objs[j]
            gt = np.round(sim.gt_boxes[j])                                        # (T, 4) as written
            counted = ~sim.outside[j] & ~sim.occluded[j]
            frames = np.flatnonzero(counted)
            if not len(frames):
                continue
            iou = iou_matrix(rpn[frames], gt[frames][:, None, :])[..., 0]          # (k, P)
            good = iou > 0.5
            f = feats[frames]                                                     # (k, P, D)
            picks = {}
            qc = self.q.class_query(ob.label_cls)
            ql = self.q.language_query(ob)
            qs = noiseless(w, ob)[frames]                                         # (k, D)
            picks["cls"] = (f @ qc).argmax(-1)
            picks["lang"] = (f @ ql).argmax(-1)
            picks["state"] = np.einsum("kpd,kd->kp", f, qs).argmax(-1)
            for name, kind in (("em", "em_class"), ("tem", "em_teacher"), ("box", "box_class")):
                picks[name] = (f @ self.q.learned_query(kind, ob.label_cls)).argmax(-1)
            tv = twin_vis.get(j)
            for r, fr in enumerate(frames):
                phase = "no_change" if ob.switch < 0 else ("before_change" if fr < ob.switch else "after_change")
                self.rows.append((ob.label_cls, ob.mention, bool(tv is not None and tv[fr]), phase,
                                  float(good[r].mean()), float(good[r].any()),
                                  float(good[r, picks["cls"][r]]), float(good[r, picks["lang"][r]]),
                                  float(good[r, picks["state"][r]]), float(good[r, picks["em"][r]]),
                                  float(good[r, picks["tem"][r]]), float(good[r, picks["box"][r]])))

    def result(self) -> dict:
        if not self.rows:
            return {}
        label = np.array([r[0] for r in self.rows])
        mention = np.array([r[1] for r in self.rows])
        twin = np.array([r[2] for r in self.rows])
        phase = np.array([r[3] for r in self.rows])
        hits = np.array([r[4:] for r in self.rows], dtype=np.float64)             # (U, len(METHODS))

        def score(mask: np.ndarray) -> dict:
            out = {}
            for m, name in enumerate(METHODS):
                h = hits[mask, m]
                per_class = [h[label[mask] == c].mean() for c in np.unique(label[mask])]
                out[name] = {"box_micro": round(100 * float(h.mean()), 2) if len(h) else None,
                             "box_macro": round(100 * float(np.mean(per_class)), 2) if per_class else None}
            out["boxes"] = int(mask.sum())
            return out

        res = score(np.ones(len(label), bool))
        res["by_mention"] = {m: score(mention == m) for m in MENTION_TYPES if (mention == m).any()}
        res["by_twin"] = {"with_twin": score(twin), "without_twin": score(~twin)}
        res["by_phase"] = {p: score(phase == p) for p in ("before_change", "after_change", "no_change")
                           if (phase == p).any()}
        return res



def teacher_looks(path, keys) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{segment key: (look (K, D) float32, cued (K,) bool)} of the named objects of ``keys`` in a world v2 or v3
    dataset at ``path``: the oracle teacher's truth (cfg.teacher = "oracle"). A cued object's look is
    ``stated_look`` (what a perfect contextual teacher knows); another's is its class's plain look (used only
    when it is the transfer's negative). Rebuilt from world_truth.json and the world (seed, dim, knobs) of
    dataset.json; a dataset without it, or whose truth has no training rows, is a DataError."""
    path = Path(path)
    meta_path, truth_path = path / DATASET_META, path / WORLD_TRUTH_FILE
    meta = read_json(meta_path) if meta_path.is_file() else {}
    name = meta.get("world")
    if name not in TRUTH_WORLDS:
        raise DataError(f"{meta_path}: not a world {' or '.join(TRUTH_WORLDS)} dataset; teacher='oracle' needs the "
                        "world's truth")
    if not truth_path.is_file():
        raise DataError(f"{truth_path}: not found; teacher='oracle' needs the world's truth (re-simulate the world)")
    truth = read_json(truth_path)
    world = make_world(name, int(meta["seed"]), int(meta["feature_dim"]), WORLDS[name].knobs(**recorded_knobs(meta)),
                       YC2_DATA)
    out = {}
    for key in keys:
        rows = truth.get(key)
        if rows is None or any("cls" not in r for r in rows):
            raise DataError(f"{truth_path}: no truth rows (with 'cls') for training segment {key}; this world was "
                            "written before the training truth was recorded: re-simulate it for teacher='oracle'")
        look = np.zeros((len(rows), world.dim), np.float32)
        cued = np.array([r["mention"] == "cued" for r in rows], bool)
        for k, r in enumerate(rows):
            if r["cls"] >= 0:
                look[k] = stated_look(world, r["cls"], r["lang"]) if cued[k] else world.class_appearance(r["cls"])
        out[key] = (look, cued)
    return out


def word_oracle(path) -> dict:
    """The no-training check of ``appearance_from_words``: pick, per annotated object and frame, the proposal
    whose region feature (read back from ``path``'s per-segment .npy files) has the highest cosine with the
    world's projected GloVe vector of the object's class, unit(P g_c) (``v2.word_looks``: the world's own P,
    no sentence, no context); score it like a run (the dataset's STVG rule) on every object and on the
    held-out classes only. {split: {"all": metrics, "heldout": metrics or None}}. At w = 0 the looks do not
    follow the words, so this is chance; it rises with w as far as the projection survives the noise."""
    path = Path(path)
    meta = read_json(path / DATASET_META)
    if meta.get("world") not in TRUTH_WORLDS:
        raise DataError(f"{path / DATASET_META}: world {meta.get('world')!r}; the word oracle needs a world "
                        f"{' or '.join(TRUTH_WORLDS)} dataset")
    vocab = load_class_file(path / CLASS_FILE)
    looks, _ = word_looks(int(meta["seed"]), int(meta["feature_dim"]), vocab)
    held = holdout_classes(path)
    out = {}
    for split, names in ANNOTATION_NAMES.items():
        name = names[0]                                  # the name simulate writes
        if not (path / name).is_file():
            continue
        gt = load_official_annotations(path / name)
        pred = {}
        for key, seg in gt.items():
            f_path = path / FEATURE_DIR / split / f"{key}.npy"
            b_path = path / FEATURE_DIR / BOX_DIR / split / f"{key}.npy"
            if not f_path.is_file() or not b_path.is_file():
                raise DataError(f"{f_path}: missing; the word oracle reads the per-segment .npy files (--output npy)")
            feats = np.load(f_path).astype(np.float64)                                  # (T, P, D)
            feats /= np.maximum(np.linalg.norm(feats, axis=-1, keepdims=True), 1e-12)
            rpn = np.load(b_path).astype(np.float64) * np.array([seg.rwidth, seg.rheight] * 2) / 224.0  # (T, P, 4)
            boxes = np.full((len(seg.objects), seg.num_frames, 4), np.nan)
            for j, ob in enumerate(seg.objects):
                q = looks.get(vocab.id_of(ob.label))
                if q is not None:                       # no word vector: no query, a missing prediction
                    pick = (feats @ q).argmax(-1)                                          # (T,)
                    boxes[j] = rpn[np.arange(seg.num_frames), pick]
            pred[key] = boxes
        units = gt_units(gt, vocab)
        out[split] = {"all": evaluate_boxes(units, pred, vocab),
                      "heldout": heldout_metrics(units, pred, vocab, held) if held else None}
    return out
