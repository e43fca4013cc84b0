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

``random`` (the expected accuracy of a uniform proposal) and ``upper_bound`` (some proposal hits) are
computed on the same units. Breakdowns: by mention type (cued / carried / uncued / pronoun), frames
with / without a visible twin, and before / after a state change (``no_change`` for the rest).
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..boxes import iou_matrix
from ..data.simbase import PRONOUNS, SegmentPlan, SegmentSim
from .v2 import MENTION_TYPES, SegmentTruth, WorldV2, noiseless, segment_truth

METHODS = ("random", "upper_bound", "oracle_class", "oracle_language", "oracle_state")


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

    def class_query(self, label: int) -> np.ndarray:
        q = self.cls.get(label)
        return q if q is not None else self.world.class_appearance(label)

    def language_query(self, ob) -> np.ndarray:
        """What the sentence alone says: a cued mention of a class -> the look of that class in the
        stated state(s) (start and end averaged when the verb changes it); no cue, or a pronoun
        (the sentence does not name the class) -> the class query."""
        if ob.mention != "cued" or ob.label_cls in PRONOUNS:
            return self.class_query(ob.label_cls)
        states = list(dict.fromkeys(ob.lang.split(">")))
        v = sum(self.world.appearance(ob.cls, s) for s in states)
        return v / max(np.linalg.norm(v), 1e-12)


class HeadroomAccumulator:
    """Per-unit hits of every scorer for one split; ``result()`` -> micro / macro and breakdowns."""

    def __init__(self, queries: Queries):
        self.q = queries
        self.rows: list[tuple] = []      # (label, mention, twin, phase, rand, ub, cls, lang, state)

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
            tv = twin_vis.get(j)
            for r, fr in enumerate(frames):
                phase = "no_change" if ob.switch < 0 else ("before_change" if fr < ob.switch else "after_change")
                self.rows.append((ob.label_cls, ob.mention, bool(tv is not None and tv[fr]), phase,
                                  float(good[r].mean()), float(good[r].any()),
                                  float(good[r, picks["cls"][r]]), float(good[r, picks["lang"][r]]),
                                  float(good[r, picks["state"][r]])))

    def result(self) -> dict:
        if not self.rows:
            return {}
        label = np.array([r[0] for r in self.rows])
        mention = np.array([r[1] for r in self.rows])
        twin = np.array([r[2] for r in self.rows])
        phase = np.array([r[3] for r in self.rows])
        hits = np.array([r[4:] for r in self.rows], dtype=np.float64)             # (U, 5)

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



def word_oracle(path) -> dict:
    """The no-training check of ``appearance_from_words``: pick, per annotated object and frame, the proposal
    whose region feature (read back from ``path``'s per-segment .npy files) has the highest cosine with the
    world's projected GloVe vector of the object's class, unit(P g_c) (``v2.word_looks``: the world's own P,
    no sentence, no context); score it like a run (the dataset's STVG rule) on every object and on the
    held-out classes only. {split: {"all": metrics, "heldout": metrics or None}}. At w = 0 the looks do not
    follow the words, so this is chance; it rises with w as far as the projection survives the noise."""
    from pathlib import Path

    from ..data.holdout import holdout_classes
    from ..data.yc2 import load_class_file, load_official_annotations
    from ..evaluate import evaluate_boxes, gt_units, heldout_metrics
    from ..io import DataError, read_json
    from ..paths import ANNOTATION_NAMES, BOX_DIR, CLASS_FILE, DATASET_META, FEATURE_DIR
    from .v2 import word_looks

    path = Path(path)
    meta = read_json(path / DATASET_META)
    if meta.get("world") != "v2":
        raise DataError(f"{path / DATASET_META}: world {meta.get('world')!r}; the word oracle needs a world v2 dataset")
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
