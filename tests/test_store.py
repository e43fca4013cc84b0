"""build-store and FeatureStore on tiny per-segment layouts (CI/NAFAE, GVD, RoboWatch): exact
contents, chunking, attributes, and an error naming the segment for each kind of bad input."""
import json

import h5py
import numpy as np
import pytest

from workbench.__main__ import main
from workbench import records
from workbench.datasets import anet, robowatch, yc2
from workbench.features import store
from workbench.features.store import FeatureStore, build_store
from workbench.io import DataError, write_json

N, D, P = 20, 16, 24
RW, RH = 720, 405
FRAMES = {"vidA_00": 4, "vid_B_03": 6, "vidA_01": 3}  # video ids may contain underscores


def make_yc2(root, split="validation", frames=FRAMES, p=P, d=D, seed=0):
    """Write a CI/NAFAE per-segment layout + val annotations; return {key: (features, boxes)}."""
    rng = np.random.default_rng(seed)
    out, entries, gt = {}, [], []
    for key, T in frames.items():
        vid, seg = yc2.parse_seg_key(key)
        feats = rng.normal(size=(T, p, d)).astype(np.float32)
        xy = rng.uniform(0, 150, size=(T, p, 2))
        wh = rng.uniform(1, 70, size=(T, p, 2))
        boxes = np.concatenate([xy, xy + wh], -1).astype(np.float32)  # (T, P, 4) in 224x224
        for sub, arr in ((split, feats), (f"rpn_box/{split}", boxes)):
            (root / "region_features" / sub).mkdir(parents=True, exist_ok=True)
            np.save(root / "region_features" / sub / f"{key}.npy", arr)
        out[key] = (feats, boxes)
        entries.append(records.SplitEntry(split, "101", vid, seg, [0]))
        gt.append(records.GTSegment(key, vid, seg, "101", RW, RH,
                                [records.GTObject("bowl", [records.Box(1, 2, 30, 40)] * T)]))
    yc2.write_split_dict(root / yc2.SPLIT_DICT_NAMES[split], entries)
    if split != "training":
        yc2.write_official_annotations(root / "yc2_bb_val_annotations.json" if split == "validation"
                                       else root / "yc2_bb_test_annotations.json", gt)
    return out


def _files(d):
    return sorted(p.name for p in d.iterdir())


def test_build_store_cli_exact_contents(tmp_path, capsys):
    data = make_yc2(tmp_path / "ds")
    out = tmp_path / "st" / "validation.h5"
    rc = main(["build-store", "--root", str(tmp_path / "ds"), "--split", "validation", "--out", str(out)])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["segments"] == 3 and summary["frames"] == 13 and summary["feature_dim"] == D
    assert _files(out.parent) == ["validation.h5"]  # no temp file left
    with h5py.File(out, "r") as f:
        assert f["features"].dtype == np.float16 and f["features"].shape == (13, N, D)
        assert f["features"].chunks == (1, N, D)
        assert f["boxes"].dtype == np.float32 and f["boxes"].shape == (13, N, 4)
        assert [s.decode() for s in f["seg_ids"][:]] == list(FRAMES)
        assert f["frame_count"][:].tolist() == [4, 6, 3] and f["frame_offset"][:].tolist() == [0, 4, 10]
        a = dict(f.attrs)
        assert a["format_version"] == store.FORMAT_VERSION and a["split"] == "validation"
        assert a["num_proposals"] == N and a["feature_dim"] == D and a["feature_dtype"] == "float16"
        assert a["source_layout"] == "yc2-per-segment-npy" and "workbench_version" in a and "created" in a
        for i, (key, (feats, boxes)) in enumerate(data.items()):
            o, T = f["frame_offset"][i], f["frame_count"][i]
            np.testing.assert_array_equal(f["features"][o:o + T], feats[:, :N].astype(np.float16))
            scale = np.array([RW / 224, RH / 224, RW / 224, RH / 224], np.float32)
            np.testing.assert_allclose(f["boxes"][o:o + T], boxes[:, :N] * scale, rtol=1e-6)
    fs = FeatureStore(out)
    assert len(fs) == 3 and fs.seg_ids == list(FRAMES) and fs.num_proposals == N and fs.feature_dim == D
    i = fs.index("vid_B_03")
    feats, boxes = data["vid_B_03"]
    np.testing.assert_array_equal(fs.features(i, [5, 0, 2]), feats[[5, 0, 2], :N].astype(np.float16))
    np.testing.assert_array_equal(fs.features(i), feats[:, :N].astype(np.float16))
    np.testing.assert_allclose(fs.boxes(i, [5, 0]), boxes[[5, 0], :N] * np.array([RW, RH, RW, RH]) / 224, rtol=1e-6)
    assert fs.features(i, []).shape == (0, N, D)
    with pytest.raises(DataError, match="segment vid_B_03 has 6 frames"):
        fs.features(i, [6])
    with pytest.raises(DataError, match="segment nope_00 is not in the feature store"):
        fs.index("nope_00")
    fs.close()


def test_build_store_float32_and_training_frame_counts(tmp_path):
    data = make_yc2(tmp_path, split="training", frames={"vidA_00": 3})
    write_json(tmp_path / "youcookii_annotations.json", {"database": {"vidA": {"subset": "training", "annotations": [
        {"segment": [10, 13], "id": 0, "sentence": "s"}]}}})
    summary = build_store(tmp_path, "training", tmp_path / "t.h5", num_proposals=N, feature_dtype="float32",
                          progress=False)
    fs = FeatureStore(summary["out"])
    np.testing.assert_array_equal(fs.features(0), data["vidA_00"][0][:, :N])
    np.testing.assert_allclose(fs.boxes(0), data["vidA_00"][1][:, :N])  # no annotation dims: 224x224 kept
    assert "224x224" in fs.attrs["notes"]
    write_json(tmp_path / "youcookii_annotations.json", {"database": {"vidA": {"subset": "training", "annotations": [
        {"segment": [10, 14], "id": 0, "sentence": "s"}]}}})
    with pytest.raises(DataError, match="segment vidA_00: 3 feature frames but the annotation has 4"):
        build_store(tmp_path, "training", tmp_path / "t2.h5", progress=False)


def _npy(root, key, boxes=False):
    sub = "rpn_box/validation" if boxes else "validation"
    return root / "region_features" / sub / f"{key}.npy"


def _edit(root, key, boxes, fn):
    p = _npy(root, key, boxes)
    np.save(p, fn(np.load(p)))


def _truncate(root, key, boxes):
    p = _npy(root, key, boxes)
    p.write_bytes(p.read_bytes()[:-64])


def _nan(a, value=np.nan):
    a = a.copy()
    a[-1, 3, 2] = value
    return a


def _outside(a):
    a = a.copy()
    a[1, 2] = [10, 10, 230, 50]
    return a


BAD = [  # (what is broken, mutation of the layout, expected message); vid_B_03 is the second segment
    ("missing features", lambda r: _npy(r, "vid_B_03").unlink(), r"segment vid_B_03: missing feature file .*vid_B_03.npy"),
    ("missing boxes", lambda r: _npy(r, "vid_B_03", True).unlink(), r"segment vid_B_03: missing rpn_box file"),
    ("short boxes", lambda r: _edit(r, "vid_B_03", True, lambda a: a[:4]),
     r"segment vid_B_03: features have 6 frames but the boxes file has shape \(4, 24, 4\)"),
    ("truncated npy", lambda r: _truncate(r, "vid_B_03", False), r"segment vid_B_03: unreadable feature file"),
    ("truncated boxes", lambda r: _truncate(r, "vid_B_03", True), r"segment vid_B_03: unreadable rpn_box file"),
    ("few proposals", lambda r: (_edit(r, "vid_B_03", False, lambda a: a[:, :12]),
                                 _edit(r, "vid_B_03", True, lambda a: a[:, :12])),
     r"segment vid_B_03: 12 proposals per frame, fewer than the configured N=20"),
    ("few boxes", lambda r: _edit(r, "vid_B_03", True, lambda a: a[:, :12]),
     r"segment vid_B_03: 12 proposal boxes, fewer than N=20"),
    ("nan features", lambda r: _edit(r, "vid_B_03", False, _nan), r"segment vid_B_03: non-finite values in the region"),
    ("inf boxes", lambda r: _edit(r, "vid_B_03", True, lambda a: _nan(a, np.inf)),
     r"segment vid_B_03: non-finite values in the proposal boxes"),
    ("float16 overflow", lambda r: _edit(r, "vid_B_03", False, lambda a: a * 1e5),
     r"segment vid_B_03: feature magnitude .* overflows float16"),
    ("frame count", lambda r: (_edit(r, "vid_B_03", False, lambda a: a[:5]), _edit(r, "vid_B_03", True, lambda a: a[:5])),
     r"segment vid_B_03: 5 feature frames but the annotation has 6"),
    ("box outside", lambda r: _edit(r, "vid_B_03", True, _outside),
     r"segment vid_B_03: proposal box \[10.0, 10.0, 230.0, 50.0\] of frame 1 lies outside the 224x224 frame"),
    ("box inverted", lambda r: _edit(r, "vid_B_03", True, lambda a: a[..., [2, 1, 0, 3]]),
     r"segment vid_B_03: proposal box .* x2<x1"),
    ("feature dim", lambda r: _edit(r, "vid_B_03", False, lambda a: a[..., :8]),
     r"segment vid_B_03: feature dimension 8 differs from the first segment's 16"),
    ("no annotation", lambda r: _drop_annotation(r, "vid_B_03"),
     r"yc2_bb_val_annotations.json: segment vid_B_03 of the split has no annotation"),
]


def _drop_annotation(root, key):
    gt = yc2.load_official_annotations(root / "yc2_bb_val_annotations.json")
    yc2.write_official_annotations(root / "yc2_bb_val_annotations.json", [g for k, g in gt.items() if k != key])


@pytest.mark.parametrize("what,mutate,msg", BAD, ids=[b[0] for b in BAD])
def test_build_store_errors_name_the_segment(tmp_path, what, mutate, msg):
    root, outdir = tmp_path / "ds", tmp_path / "out"
    make_yc2(root)
    mutate(root)
    outdir.mkdir()
    with pytest.raises(DataError, match=msg):
        build_store(root, "validation", outdir / "validation.h5", progress=False)
    assert _files(outdir) == []  # nothing under the final name, no temp file


def test_cli_error_exit_code_and_message(tmp_path, capsys):
    make_yc2(tmp_path)
    _npy(tmp_path, "vidA_01").unlink()
    rc = main(["build-store", "--root", str(tmp_path), "--split", "validation", "--out", str(tmp_path / "v.h5")])
    assert rc == 2 and "segment vidA_01: missing feature file" in capsys.readouterr().err
    assert not (tmp_path / "v.h5").exists()


def test_interrupted_conversion_keeps_old_file(tmp_path, monkeypatch):
    make_yc2(tmp_path / "ds")
    out = tmp_path / "out" / "validation.h5"
    build_store(tmp_path / "ds", "validation", out, progress=False)
    before = out.read_bytes()
    calls = []
    real = store._validate

    def interrupt(seg, *a, **k):  # the second segment's conversion is interrupted
        calls.append(seg.key)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(seg, *a, **k)

    monkeypatch.setattr(store, "_validate", interrupt)
    with pytest.raises(KeyboardInterrupt):
        build_store(tmp_path / "ds", "validation", out, progress=False)
    assert calls == ["vidA_00", "vid_B_03"]
    assert _files(out.parent) == ["validation.h5"] and out.read_bytes() == before
    assert FeatureStore(out).seg_ids == list(FRAMES)


def test_feature_store_rejects_bad_files(tmp_path):
    with pytest.raises(DataError, match="missing.h5: feature store not found"):
        FeatureStore(tmp_path / "missing.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(DataError, match="junk.h5: not a readable HDF5 file"):
        FeatureStore(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "part.h5", "w") as f:
        f["features"] = np.zeros((1, 2, 3), np.float16)
    with pytest.raises(DataError, match="part.h5: missing dataset /boxes"):
        FeatureStore(tmp_path / "part.h5")


# --- ActivityNet-Entities (GVD layout) ------------------------------------------------------

def make_gvd(root, d=8, seed=0):
    """fc6_feat_100rois/<vid>_segment_NN.npy (10, 100, d) + a *det*.h5 + dic_anet.json + split_ids."""
    rng = np.random.default_rng(seed)
    segs = [("v_aaa", 0), ("v_aaa", 1), ("v_bbb", 0), ("v_ccc", 2)]
    (root / anet.GVD_FEATURES).mkdir(parents=True)
    dets = np.zeros((len(segs), 1000, 7), np.float32)
    feats = {}
    for i, (vid, seg) in enumerate(segs):
        f = rng.normal(size=(10, 100, d)).astype(np.float32)
        np.save(root / anet.GVD_FEATURES / f"{anet.anet_key(vid, seg)}.npy", f)
        xy = rng.uniform(0, 500, size=(1000, 2))
        dets[i, :, :2], dets[i, :, 2:4] = xy, xy + rng.uniform(1, 200, size=(1000, 2))
        dets[i, :, 4] = np.repeat(np.arange(10), 100)  # frame-major, as the features
        dets[i, :, 5] = rng.integers(1, 1601, 1000)
        dets[i, :, 6] = rng.uniform(size=1000)
        feats[anet.anet_key(vid, seg)] = (f, dets[i, :, :4].reshape(10, 100, 4), dets[i, :, 6].reshape(10, 100))
    with h5py.File(root / "anet_detection_vg_fc6_feat_100rois.h5", "w") as h:
        h["dets_labels"] = dets
        h["dets_num"] = np.full(len(segs), 1000)
    write_json(root / anet.GVD_INDEX, {"videos": [{"vid": v, "seg": s} for v, s in segs]})
    write_json(root / "split_ids_anet_entities.json", {"training": ["v_aaa", "v_ccc"], "validation": ["v_bbb"],
                                                       "testing": [], "hidden_test": []})
    return feats


def test_gvd_layout_store(tmp_path):
    feats = make_gvd(tmp_path)
    s = build_store(tmp_path, "training", tmp_path / "tr.h5", progress=False)
    fs = FeatureStore(s["out"])
    assert fs.seg_ids == ["v_aaa_segment_00", "v_aaa_segment_01", "v_ccc_segment_02"]
    assert fs.frame_count.tolist() == [10, 10, 10] and fs.attrs["source_layout"] == "anet-gvd"
    for i, k in enumerate(fs.seg_ids):
        f, b, conf = feats[k]
        top = np.argsort(-conf, axis=1, kind="stable")[:, :N]          # the N most confident per frame (DECISIONS)
        t = np.arange(10)[:, None]
        np.testing.assert_array_equal(fs.features(i, [9, 4]), f[t, top][[9, 4]].astype(np.float16))
        np.testing.assert_array_equal(fs.boxes(i), b[t, top])  # already in annotation pixels, features paired
    with pytest.raises(DataError, match=r"v_bbb_segment_00: missing feature file"):
        (tmp_path / anet.GVD_FEATURES / "v_bbb_segment_00.npy").unlink()
        build_store(tmp_path, "validation", tmp_path / "va.h5", progress=False)
    assert not (tmp_path / "va.h5").exists()


# --- RoboWatch ------------------------------------------------------------------------------

def test_robowatch_layout_store(tmp_path):
    rng = np.random.default_rng(1)
    ann = {"r1": {"frm": [["a", "b", "c"], ["d", "e"]], "entity": [{"noun": ["cup"]}, {"noun": ["lid"]}],
                  "box": {"a": {"box": [[1, 2, 50, 60]], "label": ["cup"]}}}}
    write_json(tmp_path / robowatch.ANNOTATION_NAME, ann)
    data = {}
    for key, T in (("r1_00", 3), ("r1_01", 2)):
        f = rng.normal(size=(T, 20, 8)).astype(np.float32)
        b = np.tile(np.array([0, 0, 224, 224], np.float32), (T, 20, 1))
        for sub, arr in (("testing", f), ("rpn_box/testing", b)):
            (tmp_path / sub).mkdir(parents=True, exist_ok=True)
            np.save(tmp_path / sub / f"{key}.npy", arr)
        data[key] = (f, b)
    fs = FeatureStore(build_store(tmp_path, "testing", tmp_path / "te.h5", progress=False)["out"])
    assert fs.seg_ids == ["r1_00", "r1_01"] and fs.attrs["source_layout"] == "robowatch-per-segment-npy"
    for i, k in enumerate(fs.seg_ids):
        np.testing.assert_array_equal(fs.features(i), data[k][0].astype(np.float16))
        np.testing.assert_array_equal(fs.boxes(i), data[k][1])  # 224x224 is the annotation space
    ann["r1"]["frm"][1].append("f")  # annotation now says 3 frames for r1_01
    write_json(tmp_path / robowatch.ANNOTATION_NAME, ann)
    with pytest.raises(DataError, match="segment r1_01: 2 feature frames but the annotation has 3"):
        build_store(tmp_path, "testing", tmp_path / "te2.h5", progress=False)
