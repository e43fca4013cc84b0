"""Box and query accuracy (macro, micro) of grounding predictions under named reference rules."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Mapping

import numpy as np

from .boxes import iou
from .datasets.anet import SPLIT_IDS, load_split_ids
from .datasets.yc2 import check_class_count, load_class_file, load_official_annotations
from .io import DataError, expect, read_json
from .paths import CLASS_FILE, YC2_DATA
from .records import BOX_COORDS, ClassVocab, GTSegment, seg_key

DEFAULT_CLASS_FILE = YC2_DATA / CLASS_FILE
METRICS = ("query_macro", "query_micro", "box_macro", "box_micro")   # the four reported accuracies (percent)
METRIC_KEYS = (*METRICS, "boxes", "queries", "missing")                 # every key evaluate_boxes returns
_COORDS = BOX_COORDS


@dataclass(frozen=True)
class Rule:
    """How one reference evaluator scores; the differences are tabled in docs/METRICS.md."""

    name: str
    plus_one: bool = False        # IoU areas with the +1 pixel term
    strict: bool = True           # a hit is IoU > 0.5 (False: IoU >= 0.5)
    to224: bool = False           # GT scaled to 224x224 and truncated to integers, predictions scaled too
    macro_all: bool = False       # macro divides by every class of the vocabulary (absent classes count 0)
    skip_missing: bool = False    # a missing prediction leaves the denominator instead of being a miss
    box_macro_only: bool = False  # only box macro accuracy is reported
    sentence_queries: bool = False  # query units are the sentence's class words (needs sentence_classes)


RULES = {
    # stvg (the default): the STVG reference code. A GT box counts when it has coordinates and is neither
    # occluded nor outside; IoU on continuous coordinates, hit when IoU > 0.5; a missing prediction is a miss.
    # Query unit = (segment, class, frame) with >= 1 counted box of that class; hit if any object of the class
    # is hit in that frame. Macro = mean over classes with >= 1 unit.
    "stvg": Rule("stvg"),
    # nafae: NAFAE's eval script. GT boxes scaled to 224x224 and truncated to integers (predictions scaled to
    # 224x224, not truncated), IoU with +1 and >= 0.5, macro over all classes of the vocabulary (absent = 0).
    # Query units: the sentence's class words (sentence_classes, duplicates kept) - each occurrence of a class
    # word is a unit in every frame where that class has a counted box; without sentence_classes queries are null.
    "nafae": Rule("nafae", plus_one=True, strict=False, to224=True, macro_all=True, sentence_queries=True),
    # codalab: the official YouCook2-BB server. Box macro accuracy only (stvg IoU and counting) and (object, frame)
    # units without a prediction are skipped, i.e. they leave the denominator (still counted in `missing`).
    "codalab": Rule("codalab", skip_missing=True, box_macro_only=True),
    # anet: ActivityNet-Entities. Only the annotated frame of each noun phrase is scored; IoU with +1, hit
    # when > 0.5; units as in stvg on that frame; macro over classes present. See evaluate_anet().
    "anet": Rule("anet", plus_one=True),
}


def reported_metrics(rule: str, sentence_classes: bool = False) -> tuple[str, ...]:
    """The accuracies ``rule`` reports (the others are null): codalab box macro only; nafae no query accuracy
    without the sentence's class words (as in training and sweeps)."""
    r = RULES[rule]
    if r.box_macro_only:
        return ("box_macro",)
    if r.sentence_queries and not sentence_classes:
        return ("box_macro", "box_micro")
    return METRICS


@dataclass
class GTUnits:
    """Ground truth flattened to one row per (object, frame): objects in GT order, frames inner."""

    keys: list[str]              # segments, in GT order
    shapes: list[tuple[int, int]]  # (K, T) per segment
    offsets: np.ndarray          # (S + 1,) first row of each segment
    gt: np.ndarray               # (U, 4) float64, NaN where the box has no coordinates
    counted: np.ndarray          # (U,) bool: the GT box is scored
    cls: np.ndarray              # (U,) int class id
    seg: np.ndarray              # (U,) int segment index
    frame: np.ndarray            # (U,) int frame index within the segment
    size: np.ndarray             # (U, 2) rwidth, rheight of the unit's video
    num_classes: int


def gt_units(gt: Mapping[str, GTSegment], vocab: ClassVocab) -> GTUnits:
    """Flatten official YouCook2-BB annotations; labels map to class ids through ``vocab`` (DataError if unknown).

    Build once and pass to ``evaluate_boxes`` in place of ``gt`` to skip the flattening on repeated calls.
    """
    keys, shapes, offsets = [], [], [0]
    rows: list[tuple] = []
    meta: list[tuple] = []
    nan4 = (math.nan,) * 4
    for s, (key, segment) in enumerate(gt.items()):
        T = segment.num_frames
        for j, obj in enumerate(segment.objects):
            where = f"ground truth: segment {key} object {j}"
            expect(len(obj.boxes) == T, where, f"expected {T} boxes, got {len(obj.boxes)}")
            cid = vocab.id_of(obj.label, where)
            for t, b in enumerate(obj.boxes):
                if b is None:
                    rows.append(nan4 + (False,))
                else:
                    rows.append((b.xtl, b.ytl, b.xbr, b.ybr, b.counted))
                meta.append((cid, s, t, segment.rwidth, segment.rheight))
        keys.append(key)
        shapes.append((len(segment.objects), T))
        offsets.append(offsets[-1] + len(segment.objects) * T)
    r = np.array(rows, dtype=np.float64).reshape(-1, 5)  # (U, 5)
    m = np.array(meta, dtype=np.int64).reshape(-1, 5)    # (U, 5)
    return GTUnits(keys, shapes, np.array(offsets), r[:, :4], r[:, 4] > 0, m[:, 0], m[:, 1], m[:, 2],
                   m[:, 3:5].astype(np.float64), len(vocab))


def _flatten_predictions(units: GTUnits, pred_boxes: Mapping[str, np.ndarray]) -> np.ndarray:
    """Predicted boxes per segment [k, t, 4] -> (U, 4) aligned with ``units``; absent rows are NaN."""
    index = {k: i for i, k in enumerate(units.keys)}
    unknown = [k for k in pred_boxes if k not in index]
    expect(not unknown, "predictions", f"{len(unknown)} segment(s) not in the ground truth, e.g. {unknown[:3]}")
    out = np.full((len(units.gt), 4), np.nan)  # (U, 4)
    for key, arr in pred_boxes.items():
        s = index[key]
        K, T = units.shapes[s]
        arr = np.asarray(arr, dtype=np.float64)
        expect(arr.ndim == 3 and arr.shape[2] == 4, f"predictions: segment {key}",
               f"expected boxes of shape [objects, frames, 4], got {arr.shape}")
        expect(arr.shape[0] <= K, f"predictions: segment {key}", f"{arr.shape[0]} objects, ground truth has {K}")
        expect(arr.shape[1] <= T or arr.shape[0] == 0, f"predictions: segment {key}", f"{arr.shape[1]} frames, ground truth has {T}")
        ok = np.isfinite(arr).all(-1)  # (k, t)
        expect(not np.isinf(arr).any(), f"predictions: segment {key}", "infinite coordinate")
        bad = ok & ((arr[..., 2] < arr[..., 0]) | (arr[..., 3] < arr[..., 1]))
        if bad.any():
            o, t = np.argwhere(bad)[0]
            raise DataError(f"predictions: segment {key} object {o} frame {t}: box {arr[o, t].tolist()} "
                            "has xbr < xtl or ybr < ytl")
        if arr.shape[0]:
            block = out[units.offsets[s]:units.offsets[s + 1]].reshape(K, T, 4)  # view into out
            block[:arr.shape[0], :arr.shape[1]] = arr
    return out


def _percent(hits: float, total: float) -> float | None:
    return float(100.0 * hits / total) if total > 0 else None


def _macro(hits: np.ndarray, total: np.ndarray, num_classes: int, over_all: bool) -> float | None:
    present = total > 0
    if not present.any():
        return None
    rates = hits[present] / total[present]
    return float(100.0 * (rates.sum() / num_classes if over_all else rates.mean()))


def score_units(units: GTUnits, pred: np.ndarray, rule: Rule,
                sentence_classes: Mapping[str, list[int]] | None = None,
                classes: Collection[int] | None = None) -> dict:
    """Score flattened predictions (U, 4) against ``units`` under ``rule``; the one implementation of every rule.

    ``classes``: score only the units of objects of these class ids (e.g. the held-out classes of the
    generalization protocol); a rule's macro over every class (``macro_all``) then divides by their number."""
    C = units.num_classes
    g, p = units.gt, pred
    if rule.to224:
        scale = np.concatenate([224.0 / units.size, 224.0 / units.size], axis=1)  # (U, 4) x, y, x, y
        g, p = np.trunc(g * scale), p * scale
    have = ~np.isnan(p).any(axis=1)                  # (U,) a prediction exists
    scored = units.counted & have
    ious = np.zeros(len(g))
    ious[scored] = iou(g[scored], p[scored], plus_one=rule.plus_one)
    hit = scored & ((ious > 0.5) if rule.strict else (ious >= 0.5))
    missing = int((units.counted & ~have).sum())
    unit = scored if rule.skip_missing else units.counted  # (U,) box units
    macro_n = C
    if classes is not None:
        keep = np.isin(units.cls, np.asarray(sorted({int(c) for c in classes}), dtype=np.int64))
        unit, scored, hit = unit & keep, scored & keep, hit & keep
        missing = int((units.counted & ~have & keep).sum())
        macro_n = len({int(c) for c in classes})

    box_tot = np.bincount(units.cls[unit], minlength=C).astype(np.float64)
    box_hit = np.bincount(units.cls[unit & hit], minlength=C).astype(np.float64)
    out = {k: None for k in METRIC_KEYS}
    out["box_macro"] = _macro(box_hit, box_tot, macro_n, rule.macro_all)
    out["boxes"] = int(unit.sum())
    out["missing"] = missing
    if rule.box_macro_only:
        return out
    out["box_micro"] = _percent(box_hit.sum(), box_tot.sum())
    if rule.sentence_queries and sentence_classes is None:
        return out  # nafae queries need the sentence's class words

    # Query units: (segment, class, frame) among box units; hit if any object of that class is hit.
    T = int(units.frame.max()) + 1 if len(units.frame) else 1
    code = (units.seg[unit] * C + units.cls[unit]) * T + units.frame[unit]  # (u,)
    qcode, inverse = np.unique(code, return_inverse=True)
    q_hit = np.bincount(inverse, weights=hit[unit].astype(np.float64), minlength=len(qcode)) > 0  # (Q,)
    q_cls = (qcode // T) % C
    q_weight = np.ones(len(qcode))
    if rule.sentence_queries:
        # Each occurrence of the class word in the sentence is one query; unnamed classes are not queries.
        q_seg = qcode // (T * C)
        counts = {}
        for s, key in enumerate(units.keys):
            for c in sentence_classes.get(key, []):
                counts[(s, int(c))] = counts.get((s, int(c)), 0) + 1
        q_weight = np.array([counts.get((int(s), int(c)), 0) for s, c in zip(q_seg, q_cls)], dtype=np.float64)
    q_tot = np.bincount(q_cls, weights=q_weight, minlength=C)
    q_hits = np.bincount(q_cls, weights=q_weight * q_hit, minlength=C)
    out["query_macro"] = _macro(q_hits, q_tot, macro_n, rule.macro_all)
    out["query_micro"] = _percent(q_hits.sum(), q_tot.sum())
    out["queries"] = int(q_weight.sum())
    return out


def per_object(gt: Mapping[str, GTSegment], pred: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Predictions per query {key: [Q, T, 4]} -> per ground-truth object [K, T, 4] (``GTSegment.query_rows``;
    unchanged where the GT objects are the queries, as in YouCook2-BB)."""
    out = {}
    for key, arr in pred.items():
        rows = gt[key].query_rows if key in gt else None
        out[key] = np.asarray(arr)[np.asarray(rows, dtype=np.int64)] if rows is not None else arr
    return out


def _rule(name: str) -> Rule:
    expect(name in RULES, "rule", f"unknown rule {name!r}, expected one of {sorted(RULES)}")
    return RULES[name]


def evaluate_boxes(gt: Mapping[str, GTSegment] | GTUnits, pred_boxes: Mapping[str, np.ndarray], vocab: ClassVocab,
                   rule: str = "stvg", sentence_classes: Mapping[str, list[int]] | None = None,
                   classes: Collection[int] | None = None) -> dict:
    """Box and query accuracy of predicted boxes.

    Parameters
    ----------
    gt : official annotations by segment key (or ``gt_units(gt, vocab)`` built once).
    pred_boxes : segment key -> float array [K, T, 4] (x1, y1, x2, y2 in annotation pixels), objects in GT
        order; NaN rows, absent objects/frames and absent segments are missing predictions.
    vocab : class vocabulary (class_file.csv).
    rule : one of ``RULES`` (``anet`` on ActivityNet-Entities GT objects of ``formats.anet.gt_segments``, the
        workbench's own path; the cleaned JSON and a GVD submission go through ``evaluate_anet``).
    sentence_classes : segment key -> class ids of the sentence's class words (``nafae`` queries only).
    classes : score only objects of these class ids (None: every object); see ``heldout_metrics``.

    Returns
    -------
    dict with ``METRIC_KEYS``: accuracies in percent (None when there is no unit or the rule does not
    report it), ``boxes`` and ``queries`` the counted units, ``missing`` the counted GT boxes without a prediction.
    """
    r = _rule(rule)
    units = gt if isinstance(gt, GTUnits) else gt_units(gt, vocab)
    return score_units(units, _flatten_predictions(units, pred_boxes), r, sentence_classes, classes)


HELDOUT = "heldout"   # metrics.json key of the held-out-class-only metrics (generalization protocol)


def heldout_metrics(gt: Mapping[str, GTSegment] | GTUnits, pred_boxes: Mapping[str, np.ndarray], vocab: ClassVocab,
                    classes: Collection[int], rule: str = "stvg",
                    sentence_classes: Mapping[str, list[int]] | None = None) -> dict:
    """``evaluate_boxes`` restricted to objects of the held-out ``classes`` (dataset.json
    ``holdout_classes``): the same units, rule and metrics, counted only where the GT object's class
    is held out. Accuracies are None where the split holds no such object (validation drops them)."""
    return evaluate_boxes(gt, pred_boxes, vocab, rule, sentence_classes, classes=classes)


def _parse_box(b: Any, where: str) -> tuple[float, float, float, float]:
    """A submitted box: {} -> NaNs (missing); else xtl, ytl, xbr, ybr numbers."""
    if b == {}:
        return (math.nan,) * 4
    expect(isinstance(b, dict) and all(k in b for k in _COORDS), where, f"box must be {{}} or have {_COORDS}, got {b!r}")
    bad = [k for k in _COORDS if not _is_number(b[k])]
    expect(not bad, where, f"coordinate(s) {bad} must be JSON numbers, got {b!r}")
    xyxy = tuple(float(b[k]) for k in _COORDS)
    expect(all(math.isfinite(v) for v in xyxy), where, f"non-finite box {b!r}")
    return xyxy


def _is_number(v: Any) -> bool:
    """A JSON number: int or float, not a bool or a numeric string."""
    return type(v) in (int, float)


def _parse_boxes(boxes: list, where: str) -> np.ndarray:
    """A submitted object's boxes -> (t, 4); a vectorised fast path, per-box checks (and messages) otherwise.
    Coordinates must be JSON numbers ("12" or true are refused, not converted)."""
    try:
        rows = [(b["xtl"], b["ytl"], b["xbr"], b["ybr"]) for b in boxes]
        if all(type(v) in (int, float) for r in rows for v in r):
            xy = np.array(rows, dtype=np.float64).reshape(-1, 4)
            if np.isfinite(xy).all():
                return xy
    except (KeyError, TypeError, ValueError):
        pass
    return np.array([_parse_box(b, f"{where} frame {t}") for t, b in enumerate(boxes)], dtype=np.float64).reshape(-1, 4)


def parse_submission(predictions: Mapping, gt: Mapping[str, GTSegment], vocab: ClassVocab,
                     name: str = "predictions") -> dict[str, np.ndarray]:
    """Official submission JSON -> segment key -> [k, t, 4]; each object's label must name its GT object's class.
    ``name`` (the file) prefixes every message."""
    expect(isinstance(predictions, Mapping) and isinstance(predictions.get("database"), Mapping), name,
           "expected {'database': {vid: {'segments': ...}}}")
    out: dict[str, np.ndarray] = {}
    for vid, video in predictions["database"].items():
        expect(isinstance(video, Mapping) and isinstance(video.get("segments"), Mapping), f"{name}: video {vid}",
               "expected a 'segments' object")
        for seg, s in video["segments"].items():
            expect(str(seg).isdigit(), f"{name}: video {vid}", f"segment id {seg!r} is not a number")
            key = seg_key(vid, int(seg))
            where = f"{name}: segment {key}"
            expect(key in gt, where, "segment not in the ground truth")
            expect(isinstance(s, Mapping) and isinstance(s.get("objects"), list), where, "expected an 'objects' list")
            gobj = gt[key].objects
            expect(len(s["objects"]) <= len(gobj), where, f"{len(s['objects'])} objects, ground truth has {len(gobj)}")
            T = gt[key].num_frames
            arr = np.full((len(s["objects"]), T, 4), np.nan)  # (k, T, 4)
            for j, o in enumerate(s["objects"]):
                wo = f"{where} object {j}"
                expect(isinstance(o, Mapping) and isinstance(o.get("boxes"), list), wo, "expected {'label', 'boxes'}")
                if "label" in o:
                    gid = vocab.id_of(gobj[j].label, f"ground truth: segment {key} object {j}")
                    expect(vocab.id_of(str(o["label"]), wo) == gid, wo,
                           f"label {o['label']!r} does not match ground-truth object {gobj[j].label!r} (order?)")
                expect(len(o["boxes"]) <= T, wo, f"{len(o['boxes'])} boxes, ground truth has {T} frames")
                arr[j, :len(o["boxes"])] = _parse_boxes(o["boxes"], wo)
            out[key] = arr
    return out


def evaluate(gt: Mapping[str, GTSegment], predictions: Mapping, vocab: ClassVocab, rule: str = "stvg",
             sentence_classes: Mapping[str, list[int]] | None = None, name: str = "predictions") -> dict:
    """Score a parsed official submission JSON; see ``evaluate_boxes`` for the result."""
    return evaluate_boxes(gt, parse_submission(predictions, gt, vocab, name), vocab, rule, sentence_classes)


# --- ActivityNet-Entities ----------------------------------------------------------------------

ANET_FRAMES = 10  # 10 uniformly sampled frames per segment


def _anet_units(annotations: Mapping, predictions: Mapping, where: str = "annotations") -> tuple[GTUnits, np.ndarray]:
    """ActivityNet-Entities cleaned annotations + GT-mode submission -> units and aligned predictions.

    One object per (annotated box, word of its noun phrase): its class is process_clss, its frame frame_ind,
    its prediction the submitted object with the same idx_in_sent (absent -> missing). Crowd boxes count like
    any other; submitted words with no annotated box are not scored.
    """
    expect(isinstance(annotations, Mapping) and isinstance(annotations.get("vocab"), list)
           and isinstance(annotations.get("annotations"), Mapping), where, "expected {'vocab': [...], 'annotations': {...}}")
    seen: dict = {}
    for i, c in enumerate(annotations["vocab"]):
        expect(isinstance(c, str), f"{where}: vocab[{i}]", f"expected a class name, got {c!r}")
        expect(c not in seen, f"{where}: vocab[{i}]", f"class {c!r} is already vocab[{seen.get(c)}] (a class named "
               "twice would map its boxes to one index silently)")
        seen[c] = i
    cls_id = seen
    expect(isinstance(predictions, Mapping) and isinstance(predictions.get("results"), Mapping), "predictions",
           "expected {'results': {vid: {seg: {clss, idx_in_sent, bbox_for_all_frames}}}}")
    results = predictions["results"]
    ann = annotations["annotations"]
    for vid, segs in results.items():
        expect(vid in ann, f"predictions: video {vid}", "not in the annotations")
        for seg in segs:
            expect(seg in ann[vid].get("segments", {}), f"predictions: video {vid} segment {seg}", "not in the annotations")
    keys, shapes, offsets = [], [], [0]
    gt_rows, pred_rows, meta = [], [], []
    T = ANET_FRAMES
    for vid, video in ann.items():
        for seg, s in video.get("segments", {}).items():
            w = f"{where}: video {vid} segment {seg}"
            fields = ("process_clss", "process_idx", "frame_ind", "process_bnd_box")
            expect(all(isinstance(s.get(f), list) for f in fields), w, f"expected lists {fields}")
            n = len(s["frame_ind"])
            expect(all(len(s[f]) == n for f in fields), w, "per-box lists differ in length")
            pred = results.get(vid, {}).get(seg)
            by_word: dict[int, list] = {}
            if pred is not None:
                pw = f"predictions: video {vid} segment {seg}"
                expect(isinstance(pred, Mapping) and isinstance(pred.get("idx_in_sent"), list)
                       and isinstance(pred.get("bbox_for_all_frames"), list)
                       and len(pred["idx_in_sent"]) == len(pred["bbox_for_all_frames"]), pw,
                       "expected idx_in_sent and bbox_for_all_frames of the same length")
                for idx, frames in zip(pred["idx_in_sent"], pred["bbox_for_all_frames"]):
                    arr = np.asarray(frames, dtype=np.float64)
                    expect(arr.shape == (T, 4) and np.isfinite(arr).all(), f"{pw} word {idx}",
                           f"expected {T} finite boxes [x1, y1, x2, y2], got shape {arr.shape}")
                    by_word[int(idx)] = arr
            k = 0
            for i in range(n):
                f = int(s["frame_ind"][i])
                box = np.asarray(s["process_bnd_box"][i], dtype=np.float64)
                expect(0 <= f < T and box.shape == (4,), f"{w} box {i}", f"frame {f} / box {box.tolist()} malformed")
                expect(len(s["process_idx"][i]) == len(s["process_clss"][i]), f"{w} box {i}",
                       "process_idx and process_clss differ in length")
                for idx, c in zip(s["process_idx"][i], s["process_clss"][i]):
                    expect(c in cls_id, f"{w} box {i}", f"class {c!r} not in vocab")
                    g = np.full((T, 4), np.nan)
                    g[f] = box
                    gt_rows.append(g)
                    pred_rows.append(by_word.get(int(idx), np.full((T, 4), np.nan)))
                    counted = np.zeros(T, bool)
                    counted[f] = True
                    meta.append(np.stack([counted, np.full(T, cls_id[c]), np.full(T, len(keys)), np.arange(T)], 1))
                    k += 1
            keys.append(f"{vid}/{seg}")
            shapes.append((k, T))
            offsets.append(offsets[-1] + k * T)
    g = np.concatenate(gt_rows) if gt_rows else np.zeros((0, 4))
    p = np.concatenate(pred_rows) if pred_rows else np.zeros((0, 4))
    m = np.concatenate(meta).astype(np.int64) if meta else np.zeros((0, 4), np.int64)
    units = GTUnits(keys, shapes, np.array(offsets), g, m[:, 0] > 0, m[:, 1], m[:, 2], m[:, 3],
                    np.zeros((len(g), 2)), len(cls_id))
    return units, p


def evaluate_anet(annotations: Mapping, predictions: Mapping, videos: set[str] | None = None) -> dict:
    """ActivityNet-Entities GT-mode grounding accuracy under rule ``anet`` (parsed JSON of both files);
    with ``videos``, only those videos of the annotations are scored (GVD's ``--split``)."""
    if videos is not None:
        expect(isinstance(annotations, Mapping) and isinstance(annotations.get("annotations"), Mapping), "annotations",
               "expected {'vocab': [...], 'annotations': {...}}")
        annotations = {**annotations, "annotations": {v: a for v, a in annotations["annotations"].items() if v in videos}}
    units, pred = _anet_units(annotations, predictions)
    return score_units(units, pred, RULES["anet"])


# --- CLI ---------------------------------------------------------------------------------------

def load_sentence_classes(path: str | Path, num_classes: int) -> dict[str, list[int]]:
    """Read ``--sentence-classes``: {segment key: [class ids in [0, num_classes)]}."""
    raw = read_json(path)
    expect(isinstance(raw, dict), str(path), "expected a JSON object {segment key: [class ids]}")
    for key, ids in raw.items():
        ok = isinstance(ids, list) and all(type(c) is int and 0 <= c < num_classes for c in ids)
        expect(ok, f"{path}: segment {key}", f"expected a list of class ids in [0, {num_classes}), got {ids!r}")
    return raw


def add_arguments(parser) -> None:
    parser.add_argument("--annotations", required=True, help="ground truth (official YouCook2-BB layout; "
                        "ActivityNet-Entities cleaned JSON with --rule anet)")
    parser.add_argument("--predictions", required=True, help="predictions in the official submission layout")
    parser.add_argument("--class-file", default=None, help=f"class_file.csv (default: {DEFAULT_CLASS_FILE})")
    parser.add_argument("--rule", default="stvg", choices=sorted(RULES), help="reference rule (default stvg)")
    parser.add_argument("--split", default=None, choices=("training", "validation", "testing"),
                        help="rule anet: score only this split's videos (split ids from --split-file)")
    parser.add_argument("--split-file", default=None,
                        help="rule anet: split_ids_anet_entities.json (default: beside --annotations)")
    parser.add_argument("--sentence-classes", default=None,
                        help="JSON {segment key: [class ids of the sentence's class words]} (nafae query units)")


def _outside_split(annotations: Any, predictions: Any, videos: set[str]) -> list[str]:
    """Videos of the predictions that the annotations hold but the --split filter leaves out."""
    ann = annotations.get("annotations") if isinstance(annotations, Mapping) else None
    res = predictions.get("results") if isinstance(predictions, Mapping) else None
    if not isinstance(ann, Mapping) or not isinstance(res, Mapping):
        return []
    return sorted(v for v in res if v in ann and v not in videos)


def run(args) -> int:
    if args.rule != "anet" and (args.split or args.split_file):
        flag = "--split" if args.split else "--split-file"
        raise DataError(f"{flag} applies to --rule anet only (it picks an ActivityNet-Entities split's videos); "
                        f"--rule {args.rule} scores every segment of --annotations {args.annotations}: pass that "
                        "split's own annotation file (e.g. yc2_bb_test_annotations.json for testing)")
    if args.rule == "anet":
        videos = None
        annotations, predictions = read_json(args.annotations), read_json(args.predictions)
        if args.split:
            path = Path(args.split_file) if args.split_file else Path(args.annotations).parent / SPLIT_IDS
            ids = load_split_ids(path)
            expect(args.split in ids, str(path), f"no split {args.split!r}")
            videos = set(ids[args.split])
            outside = _outside_split(annotations, predictions, videos)
            expect(not outside, str(args.predictions),
                   f"{len(outside)} video(s) of the predictions, e.g. {outside[:3]}, are in {args.annotations} but "
                   f"not in split {args.split!r} of {path} (the --split filter); predictions of another split?")
        result = evaluate_anet(annotations, predictions, videos)
    else:
        class_file = Path(args.class_file) if args.class_file else DEFAULT_CLASS_FILE
        expect(class_file.is_file(), str(class_file), "class file not found; pass --class-file class_file.csv")
        vocab = check_class_count(load_class_file(class_file))
        gt = load_official_annotations(args.annotations, vocab)  # labels checked against the class file here
        sentence_classes = (load_sentence_classes(args.sentence_classes, len(vocab)) if args.sentence_classes
                            else None)
        result = evaluate(gt, read_json(args.predictions), vocab, args.rule, sentence_classes, name=str(args.predictions))
    print(json.dumps(result))
    return 0
