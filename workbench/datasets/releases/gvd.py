"""The GVD release of ActivityNet-Entities features (facebookresearch/grounded-video-description; facts read from
cfgs/anet_res101_vg_feat_10x100prop.yml, opts.py and misc/dataloader_anet.py, docs/DATASETS.md):

SRC/data/anet/fc6_feat_100rois/<vid>_segment_<NN>.npy         (10, 100, 2048): 10 frames x 100 proposals
SRC/data/anet/anet_detection_vg_fc6_feat_100rois.h5           dets_num [S], dets_labels [S, 1000, 7] =
                                                              x1, y1, x2, y2, frame 0-9, class, confidence;
                                                              row r pairs with feature row r of the reshaped
                                                              (1000, 2048) features (frame-major); boxes in the
                                                              720-wide frame (no resizing, says the loader)
SRC/data/anet/dic_anet.json                                   videos[ix] = {"id": "<vid>_segment_<NN>", ...}: the
                                                              h5 row order
SRC/tools/anet_entities/data/ (opts.py --grd_reference / --split_file; SRC/data/anet/ also looked in):
    anet_entities_cleaned_class_thresh50_{trainval,test_skeleton,...}.json, split_ids_anet_entities.json

All of it is used as it is (links); the stores keep, per frame, the N proposals of highest confidence
(GVD masks confidence <= 0.2 and never truncates; docs/DECISIONS.md), features reordered with them.
"""
from __future__ import annotations

from pathlib import Path

from ..anet import CLEANED_PREFIX, GVD_FEATURES, GVD_INDEX, PROPOSAL_H5, SPLIT_IDS, gvd_source, split_videos
from .base import Release, build, finish, link
from ...io import expect
from ...paths import SPLITS

ANET = Path("data/anet")
ANN_DIRS = (Path("tools/anet_entities/data"), ANET)


def recognise(root: Path) -> bool:
    return (root / ANET / GVD_FEATURES).is_dir() or (root / ANET / PROPOSAL_H5).is_file()


def _find(src: Path, name: str) -> Path | None:
    for d in ANN_DIRS:
        if (src / d / name).is_file():
            return src / d / name
    return None


def import_gvd(src: Path, out: Path, log, num_proposals: int) -> dict:
    files: dict[str, str] = {}
    link(src / ANET / GVD_FEATURES, out, GVD_FEATURES, files)
    link(src / ANET / PROPOSAL_H5, out, PROPOSAL_H5, files)
    link(src / ANET / GVD_INDEX, out, GVD_INDEX, files)
    split_ids = _find(src, SPLIT_IDS)
    expect(split_ids is not None, str(src), f"{SPLIT_IDS} not found in {[str(d) for d in ANN_DIRS]}")
    link(split_ids, out, SPLIT_IDS, files)
    anns = sorted({p.name: p for d in ANN_DIRS for p in (src / d).glob(f"{CLEANED_PREFIX}*.json")}.values())
    expect(bool(anns), str(src), f"no {CLEANED_PREFIX}*.json in {[str(d) for d in ANN_DIRS]} (the sentences and boxes)")
    for p in anns:
        link(p, out, p.name, files)
    log(f"import: linked {len(files)} files and folders of {src}")
    stores = {}
    for split in SPLITS:
        if split_videos(out, split):
            stores[split] = build(out, split, gvd_source(out, split), "gvd", src, log, num_proposals)
    finish(out, "gvd", src, files, {"dataset": "activitynet-entities"})
    return {"stores": {s: {k: v for k, v in d.items() if k in ("segments", "frames", "box_space", "kept")}
                       for s, d in stores.items()}}


RELEASE = Release("gvd", "GVD / ActivityNet-Entities (facebookresearch/grounded-video-description, data/anet)",
                  recognise, import_gvd)
