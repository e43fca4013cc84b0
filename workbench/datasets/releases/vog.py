"""The VOG/DVSA release (MichiganCOG/Video-Grounding-from-Text; facts read from train.py / test.py defaults,
data/yc2_dataset.py and data/yc2_test_dataset.py, docs/DATASETS.md):

SRC/data/class_file.csv
SRC/data/yc2/annotations/yc2_training_vid.json            official pack: rwidth/rheight/recipe_type and the
                                                          training sentences (segments[seg].sentence)
SRC/data/yc2/annotations/yc2_bb_val_annotations.json      official format, boxes
SRC/data/yc2/annotations/yc2_bb_public_test_annotations.json   official format, boxes withheld ({})
SRC/data/yc2/roi_pooled_feat/<split>/<vid>_<seg:02d>.pth  torch tensor (T, 100, D); the loaders permute (2, 0, 1)
                                                          to (D, T, 100), so T is the first axis as stored
SRC/data/yc2/roi_box/<split>-box-100.pth                  (F, 100, 4) proposals, row i = image i of
SRC/data/yc2/roi_box/<split>-box-100.txt                  one line of names <vid>_<seg:02d>_<frame:04d>.jpg,
                                                          frames 1-indexed, rows not in frame order;
                                                          coordinates 1-indexed pixels x_tl,y_tl,x_br,y_br in the
                                                          rwidth x rheight frame (test.py scores rpn - 1)

Converted: features (.pth read with weights_only=True) and proposals (rows gathered per segment by their
names, frame 1..T, minus 1 to 0-based pixels) go straight into the stores; the split dicts are written
(training: the vendored STVG/CI train_dict's class ids of the segments the release has; val/test: the
annotated labels in annotation order); sentences come from yc2_training_vid.json (training) and, for val/test
(the release has none), from youcookii_annotations.json when present, else the vendored seg_sentence_dict.json.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..base import BOX_SPACE_ABSENT, BOX_SPACE_ANNOTATION, Source, SourceSegment
from .base import Release, build, finish, link
from ...io import DataError, expect, read_json, write_json
from ...paths import YC2_DATA
from ...records import SplitEntry, parse_seg_key
from ..yc2 import (load_box100_frames, load_class_file, load_official_annotations, load_split_dict, load_youcookii,
                   write_split_dict)

ANN = Path("data/yc2/annotations")
FEAT = Path("data/yc2/roi_pooled_feat")
BOX = Path("data/yc2/roi_box")
CLASS_FILE = Path("data/class_file.csv")
GT_NAMES = {"validation": ("yc2_bb_val_annotations.json",),
            "testing": ("yc2_bb_test_annotations.json", "yc2_bb_public_test_annotations.json")}


def recognise(root: Path) -> bool:
    return (root / FEAT).is_dir() or (root / BOX).is_dir()


def _gt_file(src: Path, split: str) -> Path | None:
    for n in GT_NAMES[split]:
        if (src / ANN / n).is_file():
            return src / ANN / n
    return None


def load_pth(path: Path, key: str, what: str) -> np.ndarray:
    # torch is heavy: light commands (evaluate, --help) must not load it
    import torch

    try:
        t = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:   # noqa: BLE001  (pickle / zip errors of a bad file: named, never a raw traceback)
        raise DataError(f"segment {key}: unreadable {what} file {path} ({type(e).__name__}: {str(e)[:200]})") from None
    expect(isinstance(t, torch.Tensor), str(path), f"expected one tensor, got {type(t).__name__}")
    return t.float().numpy()


class BoxRows:
    """``<split>-box-100.pth`` rows by segment, in frame order 1..T (``<split>-box-100.txt`` names the rows)."""

    def __init__(self, src: Path, split: str):
        # torch is heavy: light commands (evaluate, --help) must not load it
        import torch

        self.txt, self.pth = src / BOX / f"{split}-box-100.txt", src / BOX / f"{split}-box-100.pth"
        expect(self.pth.is_file(), str(self.pth), f"proposal tensor of {split} not found")
        self.frames = load_box100_frames(self.txt)                      # key -> T (frames 1..T, verified)
        names = [n.strip() for n in self.txt.read_text().strip().split(",")]
        self.row = {n: i for i, n in enumerate(names)}
        try:                   # memory-mapped when the file is in the zip format; the 2018 release may be legacy
            try:
                self.chunk = torch.load(self.pth, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as e:
                if "mmap" not in str(e):
                    raise
                self.chunk = torch.load(self.pth, map_location="cpu", weights_only=True)
        except Exception as e:   # noqa: BLE001
            raise DataError(f"{self.pth}: unreadable proposal tensor ({type(e).__name__}: {str(e)[:200]})") from None
        expect(isinstance(self.chunk, torch.Tensor) and self.chunk.ndim == 3 and self.chunk.shape[2] == 4,
               str(self.pth), f"expected a tensor (F, 100, 4), got {getattr(self.chunk, 'shape', type(self.chunk))}")
        expect(self.chunk.shape[0] == len(names), str(self.pth),
               f"{self.chunk.shape[0]} rows but {self.txt.name} names {len(names)} images")

    def boxes(self, key: str) -> np.ndarray:
        """(T, 100, 4) 0-based pixel boxes of segment ``key`` (rows gathered by name; 1-indexed -> 0-based)."""
        expect(key in self.frames, str(self.txt), f"segment {key} has no proposal rows")
        rows = [self.row[f"{key}_{t:04d}.jpg"] for t in range(1, self.frames[key] + 1)]
        return self.chunk[rows].float().numpy() - 1.0


def vog_source(src: Path, out: Path, split: str, keys: list[str], dims: dict) -> Source:
    rows = BoxRows(src, split) if split != "training" else None
    segs = []
    for k in keys:
        fp = src / FEAT / split / f"{k}.pth"

        def load(fp=fp, k=k):
            f = load_pth(fp, k, "feature")
            expect(f.ndim == 3, f"segment {k}", f"features must be (T, P, D) as stored, got {f.shape}")
            return f, (rows.boxes(k) if rows else np.zeros((*f.shape[:2], 4), np.float32))

        def shapes(fp=fp, k=k):
            f = load_pth(fp, k, "feature")
            return f.shape, ((rows.frames[k], f.shape[1], 4) if rows and k in rows.frames else None)

        w, h = dims.get(k.rpartition("_")[0], (1e5, 1e5))
        segs.append(SourceSegment(k, load, shapes, rows.frames.get(k) if rows else None, (1.0, 1.0), (w, h)))
    space = BOX_SPACE_ANNOTATION if rows else BOX_SPACE_ABSENT
    how = (f"{rows.pth.name} rows gathered by the names of {rows.txt.name}, 1-indexed pixels minus 1" if rows
           else "training: boxes not read (absent)")
    return Source("vog-roi-pooled-pth", src / FEAT / split, segs, box_space=space, box_source=how)


def import_vog(src: Path, out: Path, log, num_proposals: int) -> dict:
    files: dict[str, str] = {}
    link(src / CLASS_FILE, out, "class_file.csv", files)
    vocab = load_class_file(out / "class_file.csv")
    tv = src / ANN / "yc2_training_vid.json"
    link(tv, out, "yc2_training_vid.json", files)
    gts, dims = {}, {}
    for split in ("validation", "testing"):
        p = _gt_file(src, split)
        if p is not None:
            link(p, out, p.name, files)
            gts[split] = load_official_annotations(p, vocab)
            dims.update({g.vid: (g.rwidth, g.rheight) for g in gts[split].values()})
    raw_tv = read_json(tv)
    db = raw_tv.get("database") if isinstance(raw_tv, dict) else None
    expect(isinstance(db, dict), str(tv), "expected {'database': {vid: {rwidth, rheight, segments}}}")
    sentences: dict[str, str] = {}
    for vid, v in db.items():
        dims.setdefault(vid, (int(v["rwidth"]), int(v["rheight"])))
        for seg, s in (v.get("segments") or {}).items():
            if isinstance(s, dict) and "sentence" in s:
                sentences[f"{vid}_{int(seg):02d}"] = s["sentence"]
    yca = src / ANN / "youcookii_annotations.json"
    if yca.is_file():
        for k, s in load_youcookii(yca).items():
            sentences.setdefault(k, s.sentence)
        files["sentences (val/test)"] = str(yca.resolve())
    vendored = json.loads((YC2_DATA / "seg_sentence_dict.json").read_text())
    # split dicts: the segments the release has features for
    train_ref = load_split_dict(YC2_DATA / "train_dict.json", len(vocab))
    entries = {"training": [], "validation": [], "testing": []}
    left_out = 0
    for split in entries:
        fdir = src / FEAT / split
        keys = sorted(p.stem for p in fdir.glob("*.pth")) if fdir.is_dir() else []
        for k in keys:
            vid, seg = parse_seg_key(k)
            if split == "training":
                if k not in train_ref:
                    left_out += 1           # no class word in its sentence (STVG/CI leave these out too)
                    continue
                e = train_ref[k]
                entries[split].append(SplitEntry(split, e.recipe, vid, seg, e.class_ids))
            else:
                g = gts.get(split, {}).get(k)
                if g is None:
                    left_out += 1
                    continue
                entries[split].append(SplitEntry(split, g.recipe, vid, seg,
                                                 [vocab.id_of(o.label) for o in g.objects]))
            if k not in sentences:
                expect(k in vendored, f"segment {k}", "no sentence in the release or the vendored seg_sentence_dict.json")
                sentences[k] = vendored[k]
                files.setdefault("sentences (vendored)", str(YC2_DATA / "seg_sentence_dict.json"))
    for split, name in (("training", "train_dict.json"), ("validation", "val_dict.json"), ("testing", "test_dict.json")):
        write_split_dict(out / name, entries[split])
        files[name] = "written from " + ("the vendored train_dict.json" if split == "training" else "the box annotations")
    write_json(out / "seg_sentence_dict.json", {e.key: sentences[e.key] for es in entries.values() for e in es})
    files["seg_sentence_dict.json"] = "written"
    log(f"import: {sum(map(len, entries.values()))} segments ({left_out} with features left out: no class word "
        "or no annotation)")
    stores = {}
    for split, es in entries.items():
        if es:
            source = vog_source(src, out, split, [e.key for e in es], dims)
            stores[split] = build(out, split, source, "vog", src, log, num_proposals)
    finish(out, "vog", src, files, {})
    return {"stores": {s: {k: v for k, v in d.items() if k in ("segments", "frames", "box_space", "kept")}
                       for s, d in stores.items()}}


RELEASE = Release("vog", "VOG/DVSA (MichiganCOG/Video-Grounding-from-Text, data/yc2)", recognise, import_vog)
