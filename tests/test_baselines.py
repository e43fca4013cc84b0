"""Random and Upper Bound predictions (workbench/baselines.py) on hand-built proposals."""
import json

import h5py
import numpy as np
import pytest

from workbench.__main__ import main
from workbench.baselines import random_boxes, upper_bound_boxes
from workbench.boxes import iou_matrix
from workbench.features.store import seal
from workbench.records import Box, GTObject, GTSegment
from workbench.datasets.yc2 import load_class_file, write_official_annotations
from workbench.evaluate import DEFAULT_CLASS_FILE, evaluate_boxes
from workbench.io import DataError

VOCAB = load_class_file(DEFAULT_CLASS_FILE)


class FakeStore:
    """Stand-in for FeatureStore: .index(key) and .boxes(i) only."""

    def __init__(self, boxes: dict):
        self.keys = list(boxes)
        self._boxes = [np.asarray(b, np.float32) for b in boxes.values()]

    def index(self, key):
        if key not in self.keys:
            raise DataError(f"segment {key} is not in the store")
        return self.keys.index(key)

    def boxes(self, i, frames=None):
        return self._boxes[i]


def make(seed=0, n_seg=6, T=4, N=8):
    rng = np.random.default_rng(seed)
    gt, props = {}, {}
    labels = ["bowl", "pot", "lid"]
    for s in range(n_seg):
        key = f"v{s}_{s:02d}"
        objs = []
        for k in range(rng.integers(1, 3)):
            xy = rng.uniform(0, 200, (T, 2))
            boxes = [Box(x, y, x + 60, y + 50, int(rng.random() < 0.15), 0) if rng.random() > 0.1 else None
                     for x, y in xy]
            objs.append(GTObject(labels[rng.integers(3)], boxes))
        gt[key] = GTSegment(key, f"v{s}", s, "101", 720, 540, objs)
        xy = rng.uniform(0, 200, (T, N, 2))
        props[key] = np.concatenate([xy, xy + rng.uniform(30, 90, (T, N, 2))], -1)
    return gt, props


def test_upper_bound_hits_every_reachable_box():
    gt, props = make()
    ub = upper_bound_boxes(gt, FakeStore(props))
    r = evaluate_boxes(gt, {k: v for k, v in ub.items()}, VOCAB)
    reachable = total = 0
    for key, seg in gt.items():
        for o in seg.objects:
            for t, b in enumerate(o.boxes):
                if b is not None and b.counted:
                    total += 1
                    reachable += iou_matrix(np.array([b.xyxy()]), props[key][t]).max() > 0.5
    assert r["boxes"] == total and 0 < reachable < total
    assert r["box_micro"] == pytest.approx(100 * reachable / total)
    assert all(ub[k].shape == (len(gt[k].objects), 4, 4) for k in gt)


def test_random_is_seeded_and_picks_proposals():
    gt, props = make()
    store = FakeStore(props)
    a, b, c = random_boxes(gt, store, 0), random_boxes(gt, store, 0), random_boxes(gt, store, 1)
    assert all(np.array_equal(a[k], b[k]) for k in gt)
    assert any(not np.array_equal(a[k], c[k]) for k in gt)
    for k, arr in a.items():  # every pick is one of that frame's proposals
        for t in range(arr.shape[1]):
            assert all((np.abs(props[k][t] - box).max(-1) < 1e-4).any() for box in arr[:, t])


def test_store_frame_mismatch_is_an_error():
    gt, props = make()
    key = next(iter(props))
    props[key] = props[key][:2]
    with pytest.raises(DataError, match=key):
        random_boxes(gt, FakeStore(props), 0)


def test_cli_writes_submission(tmp_path, capsys):
    gt, props = make(n_seg=3)
    write_official_annotations(tmp_path / "yc2_bb_val_annotations.json", gt.values())
    counts = [len(props[k]) for k in gt]
    (tmp_path / "store").mkdir()
    with h5py.File(tmp_path / "store" / "validation.h5", "w") as f:
        boxes = np.concatenate([props[k] for k in gt]).astype(np.float32)
        f["boxes"] = boxes
        f["features"] = np.zeros(boxes.shape[:2] + (2,), np.float16)
        f["seg_ids"] = np.array(list(gt), dtype="S")
        f["frame_offset"] = np.cumsum([0] + counts[:-1]).astype(np.int64)
        f["frame_count"] = np.array(counts, np.int32)
        seal(f)
    for method in ("random", "upper-bound"):
        out = tmp_path / f"{method}.json"
        assert main(["baseline", "--data", str(tmp_path), "--split", "validation", "--method", method,
                     "--out", str(out)]) == 0
        assert main(["evaluate", "--annotations", str(tmp_path / "yc2_bb_val_annotations.json"),
                     "--predictions", str(out)]) == 0
        r = json.loads(capsys.readouterr().out)
        assert r["missing"] == 0 and r["boxes"] > 0
    ub = evaluate_boxes(gt, upper_bound_boxes(gt, FakeStore(props)), VOCAB)
    assert r["box_micro"] == pytest.approx(ub["box_micro"])
