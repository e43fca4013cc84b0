"""The CI release (ppj567/WSVOG_Causal_Intervention, ``dataset_name="cvpr"``; facts read from its config.py and
data_loader_mm.py, docs/DATASETS.md):

SRC/datasets/yc2_cvpr/<split>/<vid>_<seg:02d>.npy           float (T, >=20, 4096) region features
SRC/datasets/yc2_cvpr/rpn_box/<split>/<vid>_<seg:02d>.npy   (T, P, 4) x1,y1,x2,y2 in the 224x224 frame; val/test
                                                            only (YC2_test_data scales them by width/224,
                                                            height/224; the training loader reads no boxes)
SRC/mm_data/vg/video_grounding/data/youcook2/annotations/   class_file.csv, train/val/test_dict.json,
    seg_sentence_dict.json, youcookii_annotations.json, yc2_training_vid.json (dims only), youcook_cls.txt,
    yc2_bb_val_annotations.json, yc2_bb_test_annotations.json  (CI/NAFAE box format: database[vid].width/height,
    annotations[seg][obj].boxes[frame]; the same blobs as jshi31/NAFAE's)

Everything is usable as it is: the dataset directory links the annotation files and ``region_features`` ->
``datasets/yc2_cvpr`` (the workbench's YouCook2-BB layout is this one), and builds the stores from it.
"""
from __future__ import annotations

from pathlib import Path

from .base import Release, build, finish, link
from ...paths import SPLITS
from ..yc2 import yc2_source

ANN = Path("mm_data/vg/video_grounding/data/youcook2/annotations")
FEAT = Path("datasets/yc2_cvpr")
# annotation files linked as they are (optional ones may be absent from a partial download)
REQUIRED = ("class_file.csv", "train_dict.json", "val_dict.json", "test_dict.json", "seg_sentence_dict.json")
OPTIONAL = ("youcookii_annotations.json", "yc2_training_vid.json", "youcook_cls.txt",
            "yc2_bb_val_annotations.json", "yc2_bb_test_annotations.json")


def recognise(root: Path) -> bool:
    return (root / FEAT).is_dir() and (root / ANN).is_dir()


def import_ci(src: Path, out: Path, log, num_proposals: int) -> dict:
    files: dict[str, str] = {}
    for name in REQUIRED:
        link(src / ANN / name, out, name, files)
    for name in OPTIONAL:
        if (src / ANN / name).is_file():
            link(src / ANN / name, out, name, files)
    link(src / FEAT, out, "region_features", files)
    log(f"import: linked {len(files)} files and folders of {src}")
    stores = {}
    for split in SPLITS:
        if (src / FEAT / split).is_dir():
            stores[split] = build(out, split, yc2_source(out, split), "ci", src, log, num_proposals)
        else:
            log(f"import: no {split} features in {src / FEAT} (skipped)")
    finish(out, "ci", src, files, {})
    return {"stores": {s: {k: v for k, v in d.items() if k in ("segments", "frames", "box_space", "kept")}
                       for s, d in stores.items()}}


RELEASE = Release("ci", "CI/STVG (ppj567/WSVOG_Causal_Intervention, datasets/yc2_cvpr)", recognise, import_ci)
