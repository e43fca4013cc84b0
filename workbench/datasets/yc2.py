"""YouCook2-BB formats: class file, STVG/CI split dicts, sentences, official box annotations,
NAFAE annotations and entity pickles. Readers validate as they parse and name what is wrong.

Where each file of a YouCook2-BB-layout dataset directory lives (see docs/ARCHITECTURE.md).

The open-vocabulary generalization protocol (the paper's Table 4) on the YouCook2 world.

``simulate --holdout K`` picks K classes of the testing objects and makes them unseen in training:

- every training and validation segment whose object list names a held-out class, or holds a
  pronoun that looks like one (``looks_like``), is **dropped** (not edited: its region features would
  otherwise show an object its sentence names but its object list hides);
- held-out classes are removed from the distractor pools of the remaining training/validation
  segments, so their appearance never occurs in a training or validation feature;
- testing is unchanged, so its objects include the K classes, known to a model only through the
  GloVe / contextual features of their names.

Validation loses those segments too: the epoch is selected on seen classes only, as a model trained
on YouCook2-BB and tested on RoboWatch is. ``dataset.json`` records ``holdout_classes`` (class ids of
``class_file.csv``), their names and how many segments were dropped; ``check_holdout`` re-checks a
directory on load (``Workspace``, ``text-features``).

YouCook2-BB (the default format): STVG/CI split dicts, box annotations (official or CI/NAFAE format), and
the per-segment ``.npy`` region features of the CI release (ppj567/WSVOG_Causal_Intervention, ``datasets/yc2_cvpr``:
``<root>[/region_features]/<split>/<key>.npy`` + ``rpn_box/<split>/<key>.npy``, boxes in 224x224; training
needs no boxes). Other releases are converted into this layout by ``python -m workbench import``.
"""
from __future__ import annotations

import csv
import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from .base import (BOX_SPACE_224, BOX_SPACE_ABSENT, BOX_SPACE_ANNOTATION, DatasetFormat, Source, SourceSegment,
                   npy_load, npy_shape)
from ..io import DataError, expect, load_builtin_pickle, read_json, write_json
from ..paths import (ANNOTATION_NAMES, BOX_DIR, CLASS_FILE, DATASET_META, FEATURE_DIR, SENTENCES_FILE, SPLITS,
                     SPLIT_DICT_NAMES, STORE_DIR, TEXT_FEATURES_FILE, TRAINING_VID_FILE, YOUCOOKII_FILE)
from ..records import (BOX_COORDS, Box, ClassVocab, GTObject, GTSegment, SegmentInfo, SplitEntry, parse_seg_key,
                       seg_key)
from ..text.objects import TextInputs, objects_for_segment


# === from data.yc2 =================================================================================


# --- class file ------------------------------------------------------------------------------


def load_class_file(path: str | os.PathLike) -> ClassVocab:
    """Read ``class_file.csv``: rows ``id,singular,alternative,plural`` (empty fields allowed); a ``.txt``
    file is NAFAE's ``youcook_cls.txt`` (``load_lemma_class_list``)."""
    path = Path(path)
    expect(path.is_file(), str(path), "file not found")
    if path.suffix == ".txt":
        return load_lemma_class_list(path)
    names: list[str] = []
    forms: dict[str, int] = {}
    with open(path, newline="") as f:
        for lineno, row in enumerate(csv.reader(f), 1):
            if not row or not "".join(row).strip():
                continue
            where = f"{path}:{lineno}"
            expect(len(row) == 4, where, f"expected 4 fields id,singular,alternative,plural, got {len(row)}")
            expect(row[0].strip().isdigit() and int(row[0]) == len(names), where,
                   f"expected class id {len(names)}, got {row[0]!r}")
            singular = row[1].strip().lower()
            expect(bool(singular), where, "empty singular form")
            names.append(singular)
            for form in row[1:]:
                form = form.strip().lower()
                if not form:
                    continue
                expect(forms.get(form, len(names) - 1) == len(names) - 1, where,
                       f"form {form!r} already names class {forms.get(form)}")
                forms[form] = len(names) - 1
    expect(len(names) > 0, str(path), "no classes")
    return ClassVocab(names, forms, str(path))


# Class vocabularies of known formats (the class file must match in full, never a prefix).
YC2_NUM_CLASSES = 67
_YC2_CLASS_FILE = Path(__file__).resolve().parents[2] / "data" / "youcook2_bb" / "class_file.csv"


def check_class_count(vocab: ClassVocab) -> ClassVocab:
    """A class file whose rows are YouCook2-BB's must hold all 67 classes: a truncated or extended
    copy would silently change every macro accuracy (the divisor of rule nafae is the class count)."""
    if len(vocab) == YC2_NUM_CLASSES or not _YC2_CLASS_FILE.is_file():
        return vocab
    ref = _load_ref_vocab()
    n = min(len(vocab), len(ref))
    if n and vocab.names[:n] == ref.names[:n]:
        raise DataError(f"{vocab.path}: {len(vocab)} classes, but its rows are YouCook2-BB's, which has "
                        f"{YC2_NUM_CLASSES} (a {'truncated' if len(vocab) < len(ref) else 'extended'} copy?); "
                        f"use the full class_file.csv ({_YC2_CLASS_FILE})")
    return vocab


_REF: list[ClassVocab] = []


def _noun_forms(lemma: str) -> list[str]:
    """The lemma and its regular English plurals (NAFAE lemmatizes 'leaves' to 'leaf')."""
    out = [lemma, lemma + "s", lemma + "es"]
    if lemma.endswith("f"):
        out.append(lemma[:-1] + "ves")
    if lemma.endswith("fe"):
        out.append(lemma[:-2] + "ves")
    if lemma.endswith("y"):
        out.append(lemma[:-1] + "ies")
    return out


def load_lemma_class_list(path: str | os.PathLike) -> ClassVocab:
    """NAFAE's ``youcook_cls.txt`` (one lemmatized class name per line, sorted alphabetically) as a class file.

    Each lemma must name exactly one YouCook2-BB class (by one of its forms or a regular plural); the result is
    the YouCook2-BB vocabulary in class_file.csv order (so class ids and macro averages are the same as with
    class_file.csv), with each lemma added as a form of its class. DataError naming the line otherwise.
    """
    path = Path(path)
    lemmas = [(i, ln.strip().lower()) for i, ln in enumerate(path.read_text().splitlines(), 1) if ln.strip()]
    expect(bool(lemmas), str(path), "no class names")
    expect(all("," not in w for _, w in lemmas), str(path), "expected one class name per line (a .txt class list); "
           "a class_file.csv must be named *.csv")
    ref = _load_ref_vocab()
    forms = dict(ref.forms)
    seen: dict[int, int] = {}
    for lineno, lemma in lemmas:
        ids = {ref.forms[f] for f in _noun_forms(lemma) if f in ref.forms}
        expect(len(ids) == 1, f"{path}:{lineno}", f"class name {lemma!r} names {'no' if not ids else 'more than one'} "
               f"YouCook2-BB class of {_YC2_CLASS_FILE.name}")
        cid = ids.pop()
        expect(cid not in seen, f"{path}:{lineno}", f"{lemma!r} names the same class as line {seen.get(cid)}")
        seen[cid] = lineno
        forms.setdefault(lemma, cid)
    expect(len(seen) == len(ref), str(path), f"{len(seen)} classes, YouCook2-BB has {len(ref)}")
    return ClassVocab(list(ref.names), forms, str(path))


def _load_ref_vocab() -> ClassVocab:
    if not _REF:
        _REF.append(load_class_file(_YC2_CLASS_FILE))
    return _REF[0]


# --- STVG/CI split dicts and sentences ------------------------------------------------------


def load_split_dict(path: str | os.PathLike, num_classes: int | None = None) -> dict[str, SplitEntry]:
    """Read an STVG/CI split dict ``{"<vid>_<seg:02d>": [[split, recipe, vid, seg], [class ids]]}``."""
    raw = read_json(path)
    expect(isinstance(raw, dict), str(path), "expected a JSON object keyed by segment")
    out: dict[str, SplitEntry] = {}
    for key, value in raw.items():
        where = f"{path}: segment {key}"
        ok = (isinstance(value, list) and len(value) == 2 and isinstance(value[0], list) and len(value[0]) == 4
              and isinstance(value[1], list))
        expect(ok, where, "expected [[split, recipe, vid, seg], [class ids]]")
        split, recipe, vid, seg = value[0]
        expect(split in SPLITS, where, f"split {split!r} is not one of {SPLITS}")
        expect(str(seg).isdigit(), where, f"segment number {seg!r} is not a number")
        expect(seg_key(vid, int(seg)) == key, where, f"key does not match vid {vid!r} and segment {seg!r}")
        ids = value[1]
        expect(all(isinstance(c, int) and c >= 0 and (num_classes is None or c < num_classes) for c in ids),
               where, f"class ids must be integers in [0, {num_classes}), got {ids}")
        out[key] = SplitEntry(split, str(recipe), vid, int(seg), list(ids))
    return out


def write_split_dict(path: str | os.PathLike, entries: Iterable[SplitEntry]) -> None:
    """Write an STVG/CI split dict (segment number as a zero-padded string, as in the real files)."""
    write_json(path, {e.key: [[e.split, e.recipe, e.vid, f"{e.seg:02d}"], list(e.class_ids)] for e in entries})


def load_sentences(path: str | os.PathLike) -> dict[str, str]:
    """Read ``seg_sentence_dict.json``: ``{"<vid>_<seg:02d>": sentence}``."""
    raw = read_json(path)
    expect(isinstance(raw, dict), str(path), "expected a JSON object keyed by segment")
    for key, s in raw.items():
        expect(isinstance(s, str), f"{path}: segment {key}", f"sentence must be a string, got {type(s).__name__}")
    return raw


# --- NAFAE / YouCook2 segment annotations -----------------------------------------------------


def load_youcookii(path: str | os.PathLike) -> dict[str, SegmentInfo]:
    """Read ``youcookii_annotations.json`` (NAFAE / official YouCook2 layout) into segments by key."""
    raw = read_json(path)
    expect(isinstance(raw, dict) and isinstance(raw.get("database"), dict), str(path), "expected {'database': {vid: ...}}")
    out: dict[str, SegmentInfo] = {}
    for vid, video in raw["database"].items():
        where = f"{path}: video {vid}"
        expect(isinstance(video, dict) and isinstance(video.get("annotations"), list), where, "expected an 'annotations' list")
        for a in video["annotations"]:
            ok = isinstance(a, dict) and isinstance(a.get("segment"), list) and len(a["segment"]) == 2 and "id" in a
            expect(ok, where, "annotation needs 'segment': [start, end] and 'id'")
            try:
                start, end = (float(x) for x in a["segment"])
                key = seg_key(vid, a["id"])
            except (TypeError, ValueError):
                raise DataError(f"{where}: non-numeric segment {a['segment']!r} or id {a['id']!r}") from None
            expect(end >= start, f"{path}: segment {key}", f"end {end} before start {start}")
            expect(key not in out, f"{path}: segment {key}", "segment appears twice")
            out[key] = SegmentInfo(key, vid, int(a["id"]), start, end, str(a.get("sentence", "")),
                                   str(video.get("subset", "")), str(video.get("recipe_type", "")))
    return out


def load_nafae_entities(path: str | os.PathLike) -> dict[str, dict[str, list]]:
    """Read NAFAE's ``*_entities.pkl`` (plain builtins only; any global is refused).

    ``{vid: {"sentence_raw": [[tok]], "sentence": [[lemma]], "noun": [[noun]], "category": [[class]]}}``,
    one inner list per segment in youcookii_annotations order.
    """
    data = load_builtin_pickle(path)
    expect(isinstance(data, dict), str(path), "expected a dict keyed by video id")
    fields_ = ("sentence_raw", "sentence", "noun", "category")
    for vid, v in data.items():
        expect(isinstance(v, dict) and all(isinstance(v.get(f), list) for f in fields_), f"{path}: video {vid}",
               f"expected lists under {fields_}")
        n = len(v["category"])
        expect(all(len(v[f]) == n for f in fields_), f"{path}: video {vid}", "per-segment lists differ in length")
    return data


# --- official YouCook2-BB box annotations -----------------------------------------------------

_BOX_KEYS = ("xtl", "ytl", "xbr", "ybr", "occluded", "outside")


def frame_tolerance(size: float) -> float:
    """How far (pixels) a visible GT box may reach past the frame edge: 1% of the side + 1 px
    (annotation tools round and clip loosely); beyond that the box is not in the frame."""
    return 0.01 * size + 1.0


def parse_box(b: Any, where: str | Callable[[], str], frame: tuple[int, int] | None = None) -> Box | None:
    """One official box dict -> Box, or None for ``{}``. ``where`` may be a callable so that the
    message is only formatted when a check fails (the readers parse ~10^5 boxes)."""
    if isinstance(b, dict) and not b:
        return None

    def fail(what: str) -> DataError:
        return DataError(f"{where() if callable(where) else where}: {what}")

    if not (isinstance(b, dict) and all(k in b for k in _BOX_KEYS)):
        raise fail(f"box must be {{}} or have keys {_BOX_KEYS}, got {b!r}")
    try:
        box = Box(float(b["xtl"]), float(b["ytl"]), float(b["xbr"]), float(b["ybr"]), int(b["occluded"]), int(b["outside"]))
    except (TypeError, ValueError):
        raise fail(f"non-numeric box {b!r}") from None
    if box.occluded not in (0, 1) or box.outside not in (0, 1):
        raise fail(f"occluded/outside must be 0 or 1, got {b!r}")
    if not all(math.isfinite(v) for v in box.xyxy()):
        raise fail(f"non-finite box coordinates {b!r}")
    # Boxes marked outside may carry stale coordinates; a visible box must be ordered.
    if box.outside == 0 and (box.xbr < box.xtl or box.ybr < box.ytl):
        raise fail(f"malformed box (xbr < xtl or ybr < ytl) {b!r}")
    if box.outside == 0 and (box.xbr == box.xtl or box.ybr == box.ytl):
        raise fail(f"zero-area visible box {b!r}")
    if box.outside == 0 and frame is not None:
        w, h = frame
        tw, th = frame_tolerance(w), frame_tolerance(h)
        if box.xtl < -tw or box.ytl < -th or box.xbr > w + tw or box.ybr > h + th:
            raise fail(f"visible box {b!r} lies outside the {w}x{h} frame (rwidth x rheight)")
    return box


def load_official_annotations(path: str | os.PathLike, vocab: ClassVocab | None = None,
                              max_boxed: int = 0) -> dict[str, GTSegment]:
    """Read an official YouCook2-BB annotation JSON (val/test, with or without boxes).

    Every object of a segment must have one box entry per 1-fps frame (the same count).
    With ``vocab``, every object label must be a form of the class file. ``max_boxed`` > 0: stop after
    the first ``max_boxed`` segments that hold a box (a run evaluating only those parses no more).
    """
    raw = read_json(path)
    expect(isinstance(raw, dict) and isinstance(raw.get("database"), dict), str(path), "expected {'database': {vid: ...}}")
    if box_format(raw, path) == CI_BOX_FORMAT:
        return load_ci_annotations(path, vocab, raw=raw)
    out: dict[str, GTSegment] = {}
    boxed = 0
    for vid, video in raw["database"].items():
        where = f"{path}: video {vid}"
        expect(isinstance(video, dict) and isinstance(video.get("segments"), dict), where, "expected a 'segments' object")
        expect("rwidth" in video and "rheight" in video, where, "expected 'rwidth' and 'rheight'")
        rwidth, rheight = video["rwidth"], video["rheight"]
        expect(isinstance(rwidth, int) and isinstance(rheight, int) and rwidth > 0 and rheight > 0, where,
               f"rwidth/rheight must be positive integers, got {rwidth!r}/{rheight!r}")
        for seg, s in video["segments"].items():
            key = seg_key(vid, int(seg)) if str(seg).isdigit() else f"{vid}_{seg}"
            w = f"{path}: segment {key}"
            expect(str(seg).isdigit(), w, f"segment id {seg!r} is not a number")
            expect(isinstance(s, dict) and isinstance(s.get("objects"), list), w, "expected an 'objects' list")
            expect(len(s["objects"]) > 0, w, "empty 'objects' list (every segment grounds at least one object)")
            objects = []
            for j, o in enumerate(s["objects"]):
                wo = f"{w} object {j}"
                expect(isinstance(o, dict) and isinstance(o.get("label"), str) and isinstance(o.get("boxes"), list), wo,
                       "expected {'label': str, 'boxes': [...]}")
                if vocab is not None:
                    vocab.id_of(o["label"], where=wo)
                objects.append(GTObject(o["label"], [parse_box(b, lambda wo=wo, t=t: f"{wo} frame {t}", (rwidth, rheight))
                                                     for t, b in enumerate(o["boxes"])]))
            counts = {len(o.boxes) for o in objects}
            expect(len(counts) <= 1, w, f"objects have different frame counts {sorted(counts)}")
            expect(key not in out, w, "segment appears twice")
            out[key] = GTSegment(key, vid, int(seg), str(video.get("recipe_type", "")), rwidth, rheight, objects)
            boxed += any(b is not None for o in objects for b in o.boxes)
            if max_boxed and boxed >= max_boxed:
                return out
    return out


# --- CI/NAFAE box annotations ---------------------------------------------------------------------
# The restructured val/test box files of jshi31/NAFAE (data/YouCookII/annotations/yc2_bb_{val,test}_annotations.json),
# mirrored byte for byte by ppj567/WSVOG_Causal_Intervention (the same blobs): per video ``width``/``height`` and
# ``annotations[seg][obj] = {"label", "boxes": {frame: box}}``, segments / objects / frames keyed by their decimal
# index as strings. NAFAE's youcook_eval.parse_gt and CI's YC2_test_data read them this way (docs/DATASETS.md).

OFFICIAL_BOX_FORMAT = "official"      # MichiganCOG pack: database[vid].rwidth/rheight/segments[seg].objects[]
CI_BOX_FORMAT = "ci-nafae"            # NAFAE / CI: database[vid].width/height/annotations[seg][obj].boxes[frame]


def box_format(raw: Any, path: str | os.PathLike = "annotations") -> str:
    """Which YouCook2-BB box-annotation format ``raw`` (a parsed JSON) is in; DataError naming what the file
    looks like when it is neither (e.g. youcookii_annotations.json, whose 'annotations' is a list)."""
    expect(isinstance(raw, dict) and isinstance(raw.get("database"), dict), str(path), "expected {'database': {vid: ...}}")
    for vid, video in raw["database"].items():
        if isinstance(video, dict) and isinstance(video.get("segments"), dict):
            return OFFICIAL_BOX_FORMAT
        if isinstance(video, dict) and isinstance(video.get("annotations"), dict) and "width" in video:
            return CI_BOX_FORMAT
        if isinstance(video, dict) and isinstance(video.get("annotations"), list):
            raise DataError(f"{path}: video {vid}: this is a YouCook2 segment file (youcookii_annotations.json: "
                            "'annotations' is a list of segments), not box annotations; expected the official "
                            "format ('rwidth', 'rheight', 'segments') or the CI/NAFAE one ('width', 'height', "
                            "'annotations': {seg: {obj: {label, boxes}}})")
        raise DataError(f"{path}: video {vid}: expected a 'segments' object (official YouCook2-BB format) or "
                        "'width'/'height'/'annotations' (CI/NAFAE format)")
    return OFFICIAL_BOX_FORMAT   # empty database


def _indexed(d: Any, where: str, what: str) -> list:
    """A dict keyed by "0", "1", ... (or a list) -> its values in index order; the keys must be 0..n-1."""
    if isinstance(d, list):
        return d
    expect(isinstance(d, dict), where, f"expected an object of {what} keyed by index")
    expect(all(str(k).isdigit() for k in d), where, f"{what} keys must be indices, got {sorted(d)[:5]}")
    idx = sorted(int(k) for k in d)
    expect(idx == list(range(len(idx))), where, f"{what} indices must be 0..{len(idx) - 1}, got {idx[:10]}")
    return [d[str(i)] if str(i) in d else d[i] for i in idx]


def load_ci_annotations(path: str | os.PathLike, vocab: ClassVocab | None = None, raw: Any = None
                        ) -> dict[str, GTSegment]:
    """Read a CI/NAFAE box-annotation JSON (val/test) into the same ``GTSegment``s as the official reader.

    ``database[vid] = {"width", "height", "annotations": {seg: {obj: {"label", "boxes": {frame: box}}}}}``;
    a box has the official keys (xtl, ytl, xbr, ybr, occluded, outside) in the width x height frame, or is ``{}``.
    """
    raw = read_json(path) if raw is None else raw
    expect(box_format(raw, path) == CI_BOX_FORMAT, str(path), "expected the CI/NAFAE box format")
    out: dict[str, GTSegment] = {}
    for vid, video in raw["database"].items():
        where = f"{path}: video {vid}"
        expect(isinstance(video, dict) and isinstance(video.get("annotations"), dict), where,
               "expected 'annotations': {seg: {obj: {label, boxes}}} (CI/NAFAE format)")
        w, h = video.get("width"), video.get("height")
        ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer() and v > 0
                 for v in (w, h))
        expect(ok, where, f"'width'/'height' must be positive integers, got {w!r}/{h!r}")
        w, h = int(w), int(h)
        for seg, objs in video["annotations"].items():
            wseg = f"{path}: video {vid} segment {seg}"
            expect(str(seg).isdigit(), wseg, f"segment id {seg!r} is not a number")
            key = seg_key(vid, int(seg))
            ws = f"{path}: segment {key}"
            objs = _indexed(objs, ws, "objects")
            expect(len(objs) > 0, ws, "no objects (every segment grounds at least one object)")
            objects = []
            for j, o in enumerate(objs):
                wo = f"{ws} object {j}"
                expect(isinstance(o, dict) and isinstance(o.get("label"), str) and "boxes" in o, wo,
                       "expected {'label': str, 'boxes': {frame: box}}")
                if vocab is not None:
                    vocab.id_of(o["label"], where=wo)
                frames = _indexed(o["boxes"], wo, "frames")
                objects.append(GTObject(o["label"], [parse_box(b, lambda wo=wo, t=t: f"{wo} frame {t}", (w, h))
                                                     for t, b in enumerate(frames)]))
            counts = {len(o.boxes) for o in objects}
            expect(len(counts) <= 1, ws, f"objects have different frame counts {sorted(counts)}")
            expect(key not in out, ws, "segment appears twice")
            out[key] = GTSegment(key, vid, int(seg), "", w, h, objects)
    return out


def write_ci_annotations(path: str | os.PathLike, segments: Iterable[GTSegment]) -> None:
    """Write segments in the CI/NAFAE box format (tests, converters), atomically."""
    db: dict[str, dict] = {}
    for s in segments:
        video = db.setdefault(s.vid, {"width": s.rwidth, "height": s.rheight, "annotations": {}})
        video["annotations"][str(s.seg)] = {
            str(j): {"label": o.label, "boxes": {str(t): ({} if b is None else b.to_json()) for t, b in enumerate(o.boxes)}}
            for j, o in enumerate(s.objects)}
    write_json(path, {"database": db})


def write_official_annotations(path: str | os.PathLike, segments: Iterable[GTSegment]) -> None:
    """Write segments in the official layout (boxes None -> {}), grouped by video, atomically."""
    db: dict[str, dict] = {}
    for s in segments:
        video = db.setdefault(s.vid, {"recipe_type": s.recipe, "rwidth": s.rwidth, "rheight": s.rheight, "segments": {}})
        video["segments"][str(s.seg)] = {"objects": [
            {"label": o.label, "boxes": [{} if b is None else b.to_json() for b in o.boxes]} for o in s.objects]}
    write_json(path, {"database": db})


# --- frame lists of the proposal tensors (MichiganCOG ``<split>-box-100.txt``) ------------------

def load_box100_frames(path: str | os.PathLike) -> dict[str, int]:
    """Read ``validation-box-100.txt`` / ``testing-box-100.txt`` -> 1-fps frame count per segment key.

    The file is one line of ``", "``-separated image names ``<vid>_<seg:02d>_<frame:04d>.jpg`` (frames
    1-indexed, in any order); each segment's frames must be exactly 1..n.
    """
    path = Path(path)
    expect(path.is_file(), str(path), "file not found")
    frames: dict[str, set[int]] = {}
    text = path.read_text().strip()
    for i, name in enumerate(text.split(",") if text else []):
        name = name.strip()
        stem, dot, ext = name.rpartition(".")
        key, _, frame = stem.rpartition("_")
        if not (dot and ext == "jpg" and frame.isdigit() and key):
            raise DataError(f"{path}: entry {i} {name!r}: expected '<vid>_<seg:02d>_<frame:04d>.jpg'")
        parse_seg_key(key)
        fs = frames.setdefault(key, set())
        expect(int(frame) not in fs, f"{path}: segment {key}", f"frame {int(frame)} listed twice")
        fs.add(int(frame))
    out = {}
    for key, fs in frames.items():
        expect(fs == set(range(1, len(fs) + 1)), f"{path}: segment {key}",
               f"frames must be 1..{len(fs)}, got {sorted(fs)}")
        out[key] = len(fs)
    return out


# === from data.layout ==============================================================================


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise DataError(f"split {split!r}: expected one of {SPLITS}")
    return split


@dataclass(frozen=True)
class DatasetDir:
    """A dataset directory in the YouCook2-BB layout."""

    root: Path

    def __init__(self, root: str | Path):
        object.__setattr__(self, "root", Path(root))

    def _file(self, name: str) -> Path:
        p = self.root / name
        if not p.is_file():
            raise DataError(f"{p}: file not found (expected in dataset directory {self.root})")
        return p

    @property
    def class_file(self) -> Path:
        return self._file(CLASS_FILE)

    @property
    def sentences(self) -> Path:
        return self._file(SENTENCES_FILE)

    @property
    def youcookii(self) -> Path:
        return self._file(YOUCOOKII_FILE)

    def split_dict(self, split: str) -> Path:
        return self._file(SPLIT_DICT_NAMES[check_split(split)])

    def annotations(self, split: str) -> Path:
        """Official-format box annotations of validation/testing."""
        names = ANNOTATION_NAMES.get(check_split(split))
        if names is None:
            raise DataError(f"split {split}: YouCook2-BB has no box annotations for training")
        for n in names:
            if (self.root / n).is_file():
                return self.root / n
        raise DataError(f"{self.root}: none of {names} found (box annotations of {split})")

    def has_annotations(self, split: str) -> bool:
        return any((self.root / n).is_file() for n in ANNOTATION_NAMES.get(split, ()))

    @property
    def feature_root(self) -> Path:
        """Root of the per-segment .npy layout: DIR/region_features if present, else DIR itself."""
        sub = self.root / FEATURE_DIR
        return sub if sub.is_dir() else self.root

    def store(self, split: str) -> Path:
        return self.root / STORE_DIR / f"{check_split(split)}.h5"

    @property
    def text_features(self) -> Path:
        return self.root / TEXT_FEATURES_FILE


# === from data.holdout =============================================================================


PRONOUNS = (63, 64, 65, 66)        # it, them, that, they: never held out (they name no object class)
HOLDOUT_KEY = "holdout_classes"
RULE = ("training and validation segments naming a held-out class (or with a pronoun referring to one) are "
        "dropped; held-out classes are removed from every training/validation distractor pool; testing is unchanged")


def choose_holdout(plans: dict[str, list], k: int, seed: int) -> list[int]:
    """K classes of the testing objects (no pronouns), drawn by a generator seeded by ``seed``."""
    cands = sorted({c for pl in plans["testing"] for c in pl.class_ids if c not in PRONOUNS})
    expect(0 < k <= len(cands), "--holdout", f"K must be in 1..{len(cands)} (classes among the testing objects), got {k}")
    rng = np.random.default_rng([int(seed), 4_000_004])
    return sorted(int(c) for c in rng.choice(cands, size=k, replace=False))


def apply_holdout(plans: dict[str, list], k: int, seed: int, names: list[str] | None = None) -> tuple[dict, dict]:
    """(plans without the held-out classes in training/validation, the dataset.json entries)."""
    held = choose_holdout(plans, k, seed)
    hs = set(held)
    out, dropped = {}, {}
    for split, pls in plans.items():
        if split == "testing":
            out[split] = list(pls)
            continue
        keep = [pl for pl in pls if not (hs & set(pl.class_ids) or hs & set(pl.looks_like))]
        dropped[split] = len(pls) - len(keep)
        out[split] = [dataclasses.replace(pl, distractor_pool=[c for c in pl.distractor_pool if c not in hs])
                      for pl in keep]
        expect(len(out[split]) > 0, "--holdout", f"no {split} segment is left after dropping those naming {held}")
    meta = {HOLDOUT_KEY: held, "holdout_names": [names[c] for c in held] if names else [],
            "holdout_dropped": dropped, "holdout_rule": RULE,
            "holdout_test_objects": sum(c in hs for pl in out["testing"] for c in pl.class_ids)}
    return out, meta


def holdout_classes(root: str | Path) -> list[int]:
    """dataset.json's ``holdout_classes`` of a dataset directory ([] without the protocol), type-checked
    (``check_holdout`` checks them against the class file and the training object lists)."""
    meta_path = Path(root) / DATASET_META
    if not meta_path.is_file():
        return []
    meta = read_json(meta_path)
    if not isinstance(meta, dict) or HOLDOUT_KEY not in meta:
        return []
    held = meta[HOLDOUT_KEY]
    expect(isinstance(held, list) and all(isinstance(c, int) and not isinstance(c, bool) for c in held),
           f"{meta_path}: {HOLDOUT_KEY}", f"expected a list of class ids, got {held!r}")
    return list(held)


def check_holdout(root: str | Path) -> list[int]:
    """The held-out class ids of a dataset directory ([] without the protocol); DataError naming the
    file and key when they are not class ids of class_file.csv or a training object list names one."""
    root = Path(root)
    held = holdout_classes(root)
    if not held:
        return held
    where = f"{root / DATASET_META}: {HOLDOUT_KEY}"
    n = len(load_class_file(root / CLASS_FILE))
    bad = [c for c in held if not 0 <= c < n]
    expect(not bad, where, f"class ids {bad} are outside the vocabulary of {root / CLASS_FILE} (0..{n - 1})")
    path = root / SPLIT_DICT_NAMES["training"]
    for key, e in load_split_dict(path, n).items():
        seen = sorted(set(e.class_ids) & set(held))
        if seen:
            raise DataError(f"{path}: segment {key}: held-out class(es) {seen} (dataset.json {HOLDOUT_KEY}) appear in "
                            "a training object list; the generalization protocol needs them unseen in training")
    return held


# === from formats.yc2 ==============================================================================


RESIZED = 224.0  # CI proposal boxes (rpn_box) live in the 224x224 resized frame


def yc2_source(root: Path, split: str) -> Source:
    """CI per-segment layout: <froot>/<split>/<key>.npy and <froot>/rpn_box/<split>/<key>.npy (not for training)."""
    ds = DatasetDir(root)
    froot = ds.feature_root
    fdir, bdir = froot / split, froot / BOX_DIR / split
    expect(fdir.is_dir(), str(fdir), f"no feature folder for split {split}")
    dict_path = root / SPLIT_DICT_NAMES[split]
    keys = list(load_split_dict(dict_path)) if dict_path.is_file() else sorted(p.stem for p in fdir.glob("*.npy"))
    expect(len(keys) > 0, str(fdir), "no segments")
    dims: dict[str, tuple[int, int]] = {}
    expected: dict[str, int] = {}
    notes = ""
    if ds.has_annotations(split):
        gt = load_official_annotations(ds.annotations(split))
        for k in keys:
            expect(k in gt, str(ds.annotations(split)), f"segment {k} of the split has no annotation")
            dims[k] = (gt[k].rwidth, gt[k].rheight)
            expected[k] = gt[k].num_frames
    elif (root / YOUCOOKII_FILE).is_file():
        # Training has no boxes: its frame counts come from the segment times (1 fps).
        yc = load_youcookii(root / YOUCOOKII_FILE)
        for k in keys:
            expect(k in yc, str(root / YOUCOOKII_FILE), f"segment {k} of the split has no annotation")
            expected[k] = yc[k].num_frames
    if not dims:
        vids_file = root / TRAINING_VID_FILE
        if vids_file.is_file():
            db = read_json(vids_file).get("database", {})
            for k in keys:
                vid = k.rpartition("_")[0]
                expect(vid in db, str(vids_file), f"video {vid} (segment {k}) has no rwidth/rheight")
                dims[k] = (int(db[vid]["rwidth"]), int(db[vid]["rheight"]))
        elif split != "training" or bdir.is_dir():
            notes = (f"no box annotations or {TRAINING_VID_FILE} for {split} under {root}: boxes kept in the "
                     "224x224 frame (stamped so; refused wherever annotations are read)")
    # Training never reads proposal boxes (the public loaders do not): without rpn_box/training they are absent.
    no_boxes = split == "training" and not bdir.is_dir()
    if no_boxes:
        space, how = BOX_SPACE_ABSENT, f"no {BOX_DIR}/{split} folder: boxes absent (zeros), never read by training"
    elif dims:
        space = BOX_SPACE_ANNOTATION
        frame_src = ds.annotations(split).name if ds.has_annotations(split) else TRAINING_VID_FILE
        how = f"{bdir} (224x224 frame) scaled to each video's frame size from {frame_src}"
    else:
        space, how = BOX_SPACE_224, f"{bdir} (224x224 frame), not scaled: no frame size known"
    segs = []
    for k in keys:
        fp, bp = fdir / f"{k}.npy", bdir / f"{k}.npy"
        w, h = dims.get(k, (RESIZED, RESIZED))
        segs.append(SourceSegment(
            key=k,
            load=(lambda fp=fp, k=k: _with_zero_boxes(npy_load(fp, k, "feature"))) if no_boxes else
                 (lambda fp=fp, bp=bp, k=k: (npy_load(fp, k, "feature"), npy_load(bp, k, "rpn_box"))),
            shapes=(lambda fp=fp, k=k: (npy_shape(fp, k, "feature"), None)) if no_boxes else
                   (lambda fp=fp, bp=bp, k=k: (npy_shape(fp, k, "feature"), npy_shape(bp, k, "rpn_box"))),
            expected_frames=expected.get(k),
            scale=(w / RESIZED, h / RESIZED),
            frame_size=(RESIZED, RESIZED),
        ))
    return Source("yc2-per-segment-npy", froot, segs, notes, box_space=space, box_source=how)


def _with_zero_boxes(feats):
    """(features, zero boxes (T, P, 4)) for a split whose proposal boxes are absent (training)."""
    return feats, np.zeros((*feats.shape[:2], 4), np.float32)


def yc2_text_inputs(root: Path) -> TextInputs:
    """Segments of the train/val/test split dicts with their sentences and objects (spans located)."""
    d = DatasetDir(root)
    vocab = load_class_file(d.class_file)
    check_holdout(root)
    sentences = load_sentences(d.sentences)
    out = TextInputs([], [], [], [], {i: vocab.alternatives(i) for i in range(len(vocab))})
    seen: dict[str, str] = {}
    for split in SPLITS:
        path = d.split_dict(split)
        for key, e in load_split_dict(path, len(vocab)).items():
            expect(key not in seen, f"{path}: segment {key}", f"also in the {seen.get(key)} split dict")
            seen[key] = split
            expect(key in sentences, f"{d.sentences}", f"no sentence for segment {key} of {path.name}")
            out.seg_ids.append(key)
            out.splits.append(split)
            out.sentences.append(sentences[key])
            out.objects.append(objects_for_segment(sentences[key], e.class_ids, vocab, where=f"{path}: segment {key}"))
    expect(len(out.seg_ids) > 0, str(d.root), "the split dicts hold no segments")
    return out


def yc2_has_source(root: Path, split: str) -> bool:
    return (DatasetDir(root).feature_root / split).is_dir()


def to_submission(gt: Mapping[str, GTSegment], pred_boxes: Mapping[str, np.ndarray]) -> dict:
    """Predicted boxes [K, T, 4] per segment -> official submission JSON (NaN rows become {})."""
    db: dict[str, dict] = {}
    for key, segment in gt.items():
        arr = np.asarray(pred_boxes[key], dtype=np.float64) if key in pred_boxes else np.zeros((0, 0, 4))
        objects = []
        for j, obj in enumerate(segment.objects[:arr.shape[0]]):
            boxes = [{} if np.isnan(b).any() else dict(zip(BOX_COORDS, map(float, b))) for b in arr[j]]
            objects.append({"label": obj.label, "boxes": boxes})
        video = db.setdefault(segment.vid, {"segments": {}})
        video["segments"][str(segment.seg)] = {"objects": objects}
    return {"database": db}


def yc2_submission(root: Path, split: str, gt: dict, boxes: dict) -> dict:
    """{key: boxes (K, T, 4) per query} -> the official YouCook2-BB submission JSON ``evaluate`` reads."""
    if not gt:
        raise DataError(f"{root}: no {split} annotation file to shape the submission with (its labels and frame "
                        "counts; YouCook2-BB testing: yc2_bb_public_test_annotations.json of the official pack)")
    return to_submission(gt, boxes)


class YouCook2(DatasetFormat):
    name = "youcook2-bb"
    rule = "stvg"

    def detect(self, root: Path) -> bool:
        return True   # the default layout: the last entry of FORMATS

    def source(self, root: Path, split: str) -> Source:
        return yc2_source(Path(root), split)

    def text_inputs(self, root: Path) -> TextInputs:
        return yc2_text_inputs(Path(root))

    def vocab(self, root: Path) -> ClassVocab:
        return load_class_file(DatasetDir(root).class_file)

    def validate(self, root: Path) -> None:
        check_holdout(root)

    def has_source(self, root: Path, split: str) -> bool:
        return yc2_has_source(Path(root), split)

    def submission(self, root: Path, split: str, gt: dict, boxes: dict) -> dict:
        return yc2_submission(Path(root), split, gt, boxes)

    def ground_truth(self, root: Path, split: str, max_boxed: int = 0) -> dict[str, GTSegment] | None:
        ds = DatasetDir(root)
        return load_official_annotations(ds.annotations(split), max_boxed=max_boxed) if ds.has_annotations(split) else None


FORMAT = YouCook2()
