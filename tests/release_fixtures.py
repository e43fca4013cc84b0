"""Tiny datasets in each public release's own layout, written here from the layout descriptions in
docs/DATASETS.md (never copied from the public repositories). Every val/test ground-truth box is planted
exactly on one proposal, so Upper Bound = 100 proves that boxes, scale, row order and frame index were read
right. Real segment ids, sentences and class ids come from the vendored split dicts; features are random."""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
YC2 = REPO / "data" / "youcook2_bb"
ANET = REPO / "data" / "activitynet_entities"
CI_ANN = Path("mm_data/vg/video_grounding/data/youcook2/annotations")   # CI's annotation folder (config.py)
CI_FEAT = Path("datasets/yc2_cvpr")                                    # CI's cvpr feature root (config.py)


def _dump(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


@dataclass
class Seg:
    key: str
    vid: str
    seg: int
    split: str
    recipe: str
    class_ids: list[int]
    T: int
    props: np.ndarray = None                 # (T, P, 4) proposals in the annotation frame (w x h), 0-based
    size: tuple[int, int] = (720, 404)
    planted: list[list[int]] = field(default_factory=list)   # [object][frame] -> proposal index


def yc2_segments(n_train: int = 10, n_val: int = 3, n_test: int = 3, T: int = 4, P: int = 20,
                 seed: int = 0) -> list[Seg]:
    """Real segments of the vendored split dicts with random proposals; GT planted per (object, frame)."""
    rng = np.random.default_rng(seed)
    out = []
    for split, name, n in (("training", "train_dict.json", n_train), ("validation", "val_dict.json", n_val),
                           ("testing", "test_dict.json", n_test)):
        d = json.loads((YC2 / name).read_text())
        for key in list(d)[:n]:
            (sp, recipe, vid, seg), ids = d[key]
            w, h = 720, (404, 480, 540)[sum(map(ord, vid)) % 3]       # one frame size per video
            x1 = rng.uniform(0, w * 0.6, (T, P)); y1 = rng.uniform(0, h * 0.6, (T, P))
            bw = rng.uniform(0.15, 0.4, (T, P)) * w; bh = rng.uniform(0.15, 0.4, (T, P)) * h
            props = np.stack([x1, y1, np.minimum(x1 + bw, w - 1), np.minimum(y1 + bh, h - 1)], -1).round(1)
            s = Seg(key, vid, int(seg), split, recipe, list(ids), T, props.astype(np.float64), (w, h))
            s.planted = [[int(rng.integers(P)) for _ in range(T)] for _ in ids]
            out.append(s)
    return out


def class_names() -> list[str]:
    return [ln.split(",")[1] for ln in (YC2 / "class_file.csv").read_text().splitlines() if ln.strip()]


def gt_box(s: Seg, j: int, t: int) -> dict:
    x1, y1, x2, y2 = (float(v) for v in s.props[t, s.planted[j][t]])
    return {"xtl": x1, "ytl": y1, "xbr": x2, "ybr": y2, "occluded": 0, "outside": 0}


def official_gt(segs: list[Seg], empty: bool = False) -> dict:
    """The official YouCook2-BB format (rwidth/rheight/segments/objects); ``empty``: the public test file's {}."""
    names, db = class_names(), {}
    for s in segs:
        v = db.setdefault(s.vid, {"recipe_type": s.recipe, "rwidth": s.size[0], "rheight": s.size[1], "segments": {}})
        v["segments"][str(s.seg)] = {"objects": [
            {"label": names[c], "boxes": [{} if empty else gt_box(s, j, t) for t in range(s.T)]}
            for j, c in enumerate(s.class_ids)]}
    return {"database": db}


def ci_gt(segs: list[Seg]) -> dict:
    """The CI/NAFAE box format: database[vid].width/height/annotations[seg][obj].boxes[frame]."""
    names, db = class_names(), {}
    for s in segs:
        v = db.setdefault(s.vid, {"width": s.size[0], "height": s.size[1], "annotations": {}})
        v["annotations"][str(s.seg)] = {str(j): {"label": names[c], "boxes": {str(t): gt_box(s, j, t) for t in range(s.T)}}
                                        for j, c in enumerate(s.class_ids)}
    return {"database": db}


def _times(segs: list[Seg]) -> dict:
    """youcookii_annotations.json with segment times that give T 1-fps frames."""
    db = {}
    for s in segs:
        v = db.setdefault(s.vid, {"duration": 500.0, "subset": s.split, "recipe_type": s.recipe, "annotations": [],
                                  "video_url": ""})
        v["annotations"].append({"segment": [10 * s.seg, 10 * s.seg + s.T], "id": s.seg, "sentence": ""})
    return {"database": db}


def _dicts(segs: list[Seg]) -> dict[str, dict]:
    out = {"training": {}, "validation": {}, "testing": {}}
    for s in segs:
        out[s.split][s.key] = [[s.split, s.recipe, s.vid, f"{s.seg:02d}"], s.class_ids]
    return out


def _features(s: Seg, P: int, D: int, rng) -> np.ndarray:
    return rng.standard_normal((s.T, P, D)).astype(np.float32)


def _write_language(d: Path, segs: list[Seg]) -> None:
    """The files of the STVG/CI annotation folder both layouts share: class file, sentences, split dicts, times."""
    shutil.copy(YC2 / "class_file.csv", d / "class_file.csv")
    sentences = json.loads((YC2 / "seg_sentence_dict.json").read_text())
    _dump(d / "seg_sentence_dict.json", {s.key: sentences[s.key] for s in segs})
    for split, name in (("training", "train_dict.json"), ("validation", "val_dict.json"), ("testing", "test_dict.json")):
        _dump(d / name, _dicts(segs)[split])
    _dump(d / "youcookii_annotations.json", _times(segs))


def write_ci_release(src: Path, segs: list[Seg], D: int = 16, seed: int = 1) -> Path:
    """The CI release (ppj567/WSVOG_Causal_Intervention, dataset_name="cvpr") rooted at ``src``."""
    rng = np.random.default_rng(seed)
    ann = src / CI_ANN
    ann.mkdir(parents=True, exist_ok=True)
    _write_language(ann, segs)
    shutil.copy(YC2 / "youcook_cls.txt", ann / "youcook_cls.txt")
    _dump(ann / "yc2_training_vid.json", {"database": {s.vid: {"rwidth": s.size[0], "rheight": s.size[1], "segments": {}}
                                                       for s in segs}})
    _dump(ann / "yc2_bb_val_annotations.json", ci_gt([s for s in segs if s.split == "validation"]))
    _dump(ann / "yc2_bb_test_annotations.json", ci_gt([s for s in segs if s.split == "testing"]))
    for s in segs:
        P = s.props.shape[1]
        f = src / CI_FEAT / s.split / f"{s.key}.npy"
        f.parent.mkdir(parents=True, exist_ok=True)
        np.save(f, _features(s, P, D, rng))
        if s.split != "training":          # the training loader never reads boxes; the release has none
            w, h = s.size
            b = s.props * np.array([224 / w, 224 / h, 224 / w, 224 / h])
            bp = src / CI_FEAT / "rpn_box" / s.split / f"{s.key}.npy"
            bp.parent.mkdir(parents=True, exist_ok=True)
            np.save(bp, b.astype(np.float32))
            s.props = b.astype(np.float32).astype(np.float64) * np.array([w / 224, h / 224, w / 224, h / 224])
    # GT written above was planted on the unrounded proposals; re-plant on what the loader will compute
    _dump(ann / "yc2_bb_val_annotations.json", ci_gt([s for s in segs if s.split == "validation"]))
    _dump(ann / "yc2_bb_test_annotations.json", ci_gt([s for s in segs if s.split == "testing"]))
    return src


def write_workbench_dir(root: Path, segs: list[Seg], D: int = 16, public_test: bool = True, seed: int = 1) -> Path:
    """A dataset directory in the workbench's own YouCook2-BB layout (docs/ARCHITECTURE.md) whose testing GT
    is the official public test file (boxes ``{}``) when ``public_test``; proposals already in annotation
    pixels are written through the 224x224 rpn_box frame as the layout wants."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    _write_language(root, segs)
    for s in segs:
        if s.split == "training":
            continue
        w, h = s.size
        s.props = (s.props * np.array([224 / w, 224 / h, 224 / w, 224 / h])).astype(np.float32).astype(np.float64) \
            * np.array([w / 224, h / 224, w / 224, h / 224])
    _dump(root / "yc2_bb_val_annotations.json", official_gt([s for s in segs if s.split == "validation"]))
    test = [s for s in segs if s.split == "testing"]
    if public_test:
        _dump(root / "yc2_bb_public_test_annotations.json", official_gt(test, empty=True))
    else:
        _dump(root / "yc2_bb_test_annotations.json", official_gt(test))
    for s in segs:
        P = s.props.shape[1]
        f = root / "region_features" / s.split / f"{s.key}.npy"
        f.parent.mkdir(parents=True, exist_ok=True)
        np.save(f, _features(s, P, D, rng))
        if s.split != "training":
            w, h = s.size
            bp = root / "region_features" / "rpn_box" / s.split / f"{s.key}.npy"
            bp.parent.mkdir(parents=True, exist_ok=True)
            np.save(bp, (s.props * np.array([224 / w, 224 / h, 224 / w, 224 / h])).astype(np.float32))
    return root


# --- VOG/DVSA (MichiganCOG/Video-Grounding-from-Text) -----------------------------------------------------

def write_vog_release(src: Path, segs: list[Seg], D: int = 16, seed: int = 2) -> Path:
    """data/class_file.csv, data/yc2/annotations/ (official pack), roi_pooled_feat/<split>/<key>.pth (T, P, D),
    roi_box/<split>-box-100.{pth,txt}: rows shuffled, 1-indexed pixels in the rwidth x rheight frame."""
    import torch

    rng = np.random.default_rng(seed)
    ann = src / "data/yc2/annotations"
    ann.mkdir(parents=True, exist_ok=True)
    shutil.copy(YC2 / "class_file.csv", src / "data/class_file.csv")
    sentences = json.loads((YC2 / "seg_sentence_dict.json").read_text())
    db = {}
    for s in segs:
        v = db.setdefault(s.vid, {"rwidth": s.size[0], "rheight": s.size[1], "recipe_type": s.recipe, "segments": {}})
        if s.split == "training":
            v["segments"][str(s.seg)] = {"sentence": sentences[s.key]}
    _dump(ann / "yc2_training_vid.json", {"database": db})
    _dump(ann / "yc2_bb_val_annotations.json", official_gt([s for s in segs if s.split == "validation"]))
    _dump(ann / "yc2_bb_public_test_annotations.json", official_gt([s for s in segs if s.split == "testing"], empty=True))
    for split in ("training", "validation", "testing"):
        names, rows = [], []
        for s in (x for x in segs if x.split == split):
            P = s.props.shape[1]
            f = src / "data/yc2/roi_pooled_feat" / split / f"{s.key}.pth"
            f.parent.mkdir(parents=True, exist_ok=True)
            torch.save(torch.from_numpy(_features(s, P, D, rng)), f)
            for t in range(s.T):
                names.append(f"{s.key}_{t + 1:04d}.jpg")
                rows.append(s.props[t] + 1.0)                     # 1-indexed pixels
        if split == "training" or not names:
            continue
        perm = rng.permutation(len(names))                        # rows not in frame order
        box = src / "data/yc2/roi_box"
        box.mkdir(parents=True, exist_ok=True)
        (box / f"{split}-box-100.txt").write_text(", ".join(names[i] for i in perm))
        torch.save(torch.from_numpy(np.stack([rows[i] for i in perm]).astype(np.float32)), box / f"{split}-box-100.pth",
                   _use_new_zipfile_serialization=split != "testing")   # the 2018 files may be legacy pickles
    return src


# --- GVD / ActivityNet-Entities ------------------------------------------------------------------------------

def write_gvd_release(src: Path, n_videos: int = 6, P: int = 25, D: int = 16, seed: int = 3) -> dict:
    """data/anet/{fc6_feat_100rois/<vid>_segment_<NN>.npy (10, P, D), anet_detection_vg_fc6_feat_100rois.h5,
    dic_anet.json (id / vid_id / seg_id)} and tools/anet_entities/data/ (split ids, cleaned JSONs). Each frame's
    first 5 detection rows have confidence <= 0.2 and every GT box is planted on a confident one, so keeping the
    first N=20 rows of a frame instead of the 20 most confident would lose planted proposals."""
    import h5py

    rng = np.random.default_rng(seed)
    skel = json.loads((ANET / "anet_entities_cleaned_class_thresh50_test_skeleton.json").read_text())
    vids = [v for v, x in skel["annotations"].items()
            if all(s["tokens"] and s["process_clss"] for s in x["segments"].values())][:n_videos]
    split_of = {v: ("training" if i < n_videos - 2 else "validation" if i == n_videos - 2 else "testing")
                for i, v in enumerate(vids)}
    anet, ann = src / "data/anet", src / "tools/anet_entities/data"
    (anet / "fc6_feat_100rois").mkdir(parents=True, exist_ok=True)
    ann.mkdir(parents=True, exist_ok=True)
    videos, dets, trainval, test = [], [], {}, {}
    for v in vids:
        segs = dict(list(skel["annotations"][v]["segments"].items())[:2])
        out = {}
        for seg, s in segs.items():
            key = f"{v}_segment_{int(seg):02d}"
            h = 404
            x1 = rng.uniform(0, 400, (10, P)); y1 = rng.uniform(0, 220, (10, P))
            boxes = np.stack([x1, y1, x1 + rng.uniform(80, 300, (10, P)), y1 + rng.uniform(60, 180, (10, P))], -1).round(1)
            conf = np.concatenate([rng.uniform(0.05, 0.2, (10, 5)), rng.uniform(0.3, 0.99, (10, P - 5))], 1)
            frame = np.repeat(np.arange(10), P).reshape(10, P)
            rows = np.concatenate([boxes, frame[..., None], rng.integers(1, 1600, (10, P, 1)), conf[..., None]], -1)
            dets.append(rows.reshape(10 * P, 7))
            np.save(anet / "fc6_feat_100rois" / f"{key}.npy", rng.standard_normal((10, P, D)).astype(np.float32))
            videos.append({"id": key, "vid_id": v, "seg_id": str(int(seg)), "split": split_of[v]})
            e = dict(s)
            if split_of[v] == "testing":
                e.update(frame_ind=[], process_bnd_box=[])
            else:
                n = len(s["process_clss"])
                fi = [int(rng.integers(10)) for _ in range(n)]
                pi = [int(rng.integers(5, P)) for _ in range(n)]       # a confident proposal
                e.update(frame_ind=fi, process_bnd_box=[[float(c) for c in boxes[f, p]] for f, p in zip(fi, pi)],
                         crowds=[0] * n)
            out[seg] = e
        (test if split_of[v] == "testing" else trainval)[v] = {"duration": skel["annotations"][v]["duration"],
                                                                  "segments": out}
    with h5py.File(anet / "anet_detection_vg_fc6_feat_100rois.h5", "w") as f:
        f.create_dataset("dets_num", data=np.full(len(dets), 10 * P, np.int64))
        f.create_dataset("dets_labels", data=np.stack(dets).astype(np.float32))
    _dump(anet / "dic_anet.json", {"ix_to_word": {}, "videos": videos})
    _dump(ann / "split_ids_anet_entities.json", {s: [v for v in vids if split_of[v] == s]
                                                 for s in ("training", "validation", "testing")} | {"hidden_test": []})
    _dump(ann / "anet_entities_cleaned_class_thresh50_trainval.json", {"vocab": skel["vocab"], "annotations": trainval})
    _dump(ann / "anet_entities_cleaned_class_thresh50_test_skeleton.json", {"vocab": skel["vocab"], "annotations": test})
    return split_of
