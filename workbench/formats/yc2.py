"""YouCook2-BB (the default format): STVG/CI split dicts, box annotations (official or CI/NAFAE format), and
the per-segment ``.npy`` region features of the CI release (ppj567/WSVOG_Causal_Intervention, ``datasets/yc2_cvpr``:
``<root>[/region_features]/<split>/<key>.npy`` + ``rpn_box/<split>/<key>.npy``, boxes in 224x224; training
needs no boxes). Other releases are converted into this layout by ``python -m workbench import``."""
from __future__ import annotations

from pathlib import Path

from ..data.layout import DatasetDir
from ..data.yc2 import (ClassVocab, GTSegment, load_class_file, load_official_annotations, load_sentences,
                        load_split_dict, load_youcookii)
from ..io import expect, read_json
from ..paths import BOX_DIR, SPLIT_DICT_NAMES, SPLITS, TRAINING_VID_FILE, YOUCOOKII_FILE
from ..text.objects import TextInputs, objects_for_segment
from .base import (BOX_SPACE_224, BOX_SPACE_ABSENT, BOX_SPACE_ANNOTATION, DatasetFormat, Source, SourceSegment,
                   npy_load, npy_shape)

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
    import numpy as np

    return feats, np.zeros((*feats.shape[:2], 4), np.float32)


def yc2_text_inputs(root: Path) -> TextInputs:
    """Segments of the train/val/test split dicts with their sentences and objects (spans located)."""
    from ..data.holdout import check_holdout

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
        from ..data.holdout import check_holdout

        check_holdout(root)

    def ground_truth(self, root: Path, split: str) -> dict[str, GTSegment] | None:
        ds = DatasetDir(root)
        return load_official_annotations(ds.annotations(split)) if ds.has_annotations(split) else None


FORMAT = YouCook2()
