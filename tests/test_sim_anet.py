"""The simulated ActivityNet-Entities world (simulate --dataset anet): GVD layout, real language,
documented split, the anet rule through the workbench's own path and through GVD's submission."""
import json

import numpy as np
import pytest

from workbench.__main__ import main
from workbench.io import DataError


@pytest.fixture(scope="module")
def anet_world(tmp_path_factory):
    """The smoke ANet world with its three feature stores (no text features)."""
    from workbench.datasets.yc2 import DatasetDir
    from workbench.features.store import build_store

    d = tmp_path_factory.mktemp("anet") / "world"
    assert main(["simulate", "--out", str(d), "--dataset", "anet", "--preset", "smoke"]) == 0
    for split in ("training", "validation", "testing"):
        build_store(d, split, DatasetDir(d).store(split), progress=False)
    return d


def test_anet_world_layout_language_and_split(anet_world, anet_dir):
    from workbench.datasets.anet import load_anet_annotations, load_split_ids
    from workbench.sim.anet import SKELETON, split_of
    from workbench.datasets import detect

    meta = json.loads((anet_world / "dataset.json").read_text())
    assert meta["dataset"] == "activitynet-entities" and meta["simulated"] is True
    fmt = detect(anet_world)
    assert fmt.name == "activitynet-entities" and fmt.rule == "anet"
    ids = load_split_ids(anet_world / "split_ids_anet_entities.json")
    sets = [set(ids[s]) for s in ("training", "validation", "testing")]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert all(split_of(v) == s for s, vids in ids.items() if s != "hidden_test" for v in vids)
    # language is the skeleton's, boxes are simulated (one frame 0..9, inside the 720-wide frame)
    _, real = load_anet_annotations(anet_dir / SKELETON)
    _, ours = load_anet_annotations(anet_world / "anet_entities_cleaned_class_thresh50_trainval.json")
    assert len(ours) == meta["splits"]["training"]["segments"] + meta["splits"]["validation"]["segments"]
    for key, s in ours.items():
        assert s.tokens == real[key].tokens and s.process_clss == real[key].process_clss
        assert len(s.process_bnd_box) == len(s.process_clss) and all(0 <= b[0] <= b[2] <= 720 for b in s.process_bnd_box)
    vocab = fmt.vocab(anet_world)
    assert len(vocab) == 431
    f = np.load(next((anet_world / "fc6_feat_100rois").glob("*.npy")))
    assert f.shape == (10, 20, 32) and f.dtype == np.float32


def test_split_of_skeleton_videos_is_about_70_15_15(anet_dir):
    from workbench.sim.anet import SKELETON, split_of

    vids = list(json.loads((anet_dir / SKELETON).read_text())["annotations"])
    share = {s: sum(split_of(v) == s for v in vids) / len(vids) for s in ("training", "validation", "testing")}
    assert abs(share["training"] - 0.70) < 0.03 and abs(share["validation"] - 0.15) < 0.03


def test_anet_ground_truth_matches_gvd_evaluation(anet_world):
    """Per-query predictions scored by the workbench (GT objects + query_rows, rule anet) equal the
    same predictions written as GVD's submission and scored by evaluate --rule anet --split."""
    from workbench.features.store import FeatureStore
    from workbench.evaluate import evaluate_anet, evaluate_boxes, per_object
    from workbench.datasets import detect
    from workbench.datasets.anet import query_order
    from workbench.io import read_json

    fmt = detect(anet_world)
    gt = fmt.ground_truth(anet_world, "validation")
    store = FeatureStore(anet_world / "store" / "validation.h5")
    rng = np.random.default_rng(0)
    pred = {}
    for key, g in gt.items():
        Q = max(g.query_rows) + 1
        props = store.boxes(store.index(key))                                     # (10, N, 4)
        pick = rng.integers(0, props.shape[1], size=(Q, 10))
        pick[0] = pick[0] * 0                                                     # a few repeated picks
        pred[key] = props[np.arange(10)[None, :], pick]                           # (Q, 10, 4)
    ours = evaluate_boxes(gt, per_object(gt, pred), fmt.vocab(anet_world), rule="anet")
    ann = read_json(anet_world / "anet_entities_cleaned_class_thresh50_trainval.json")
    sub = fmt.submission(anet_world, "validation", gt, pred)
    vids = set(read_json(anet_world / "split_ids_anet_entities.json")["validation"])
    ref = evaluate_anet(ann, sub, vids)
    for k in ("query_macro", "query_micro", "box_macro", "box_micro", "boxes", "queries"):
        assert ours[k] == pytest.approx(ref[k]), k
    assert ours["boxes"] > 50
    key = next(iter(gt))
    vid, seg = key.rsplit("_segment_", 1)
    s = ann["annotations"][vid]["segments"][str(int(seg))]
    entry = sub["results"][vid][str(int(seg))]
    assert list(zip(entry["clss"], entry["idx_in_sent"])) == query_order(s["process_clss"], s["process_idx"])


def test_anet_defaults_are_the_papers_and_sets_win(anet_world):
    from workbench.train import config_for

    cfg = config_for("scl", data=str(anet_world))
    assert (cfg.num_frames, cfg.batch_size, cfg.lr) == (6, 24, 8e-4)
    cfg = config_for("stvg", data=str(anet_world), batch_size=8)
    assert (cfg.num_frames, cfg.batch_size) == (6, 8)
    assert config_for("random", data=str(anet_world)).num_frames == 6


def test_anet_baselines_run_through_train(anet_world, tmp_path):
    """Random / Upper Bound rows (train --preset random|upper-bound) need no text features beyond the cache;
    here scored directly with the format's GT and rule."""
    from workbench.baselines import random_boxes, upper_bound_boxes
    from workbench.features.store import FeatureStore
    from workbench.evaluate import evaluate_boxes
    from workbench.datasets import detect

    fmt = detect(anet_world)
    gt = fmt.ground_truth(anet_world, "validation")
    store = FeatureStore(anet_world / "store" / "validation.h5")
    ub = evaluate_boxes(gt, upper_bound_boxes(gt, store, plus_one=True), fmt.vocab(anet_world), rule="anet")
    rnd = evaluate_boxes(gt, random_boxes(gt, store), fmt.vocab(anet_world), rule="anet")
    assert 30 < ub["box_micro"] < 95 and rnd["box_micro"] < 15


def test_anet_bad_inputs_name_file_and_key(tmp_path):
    from workbench.datasets.anet import load_anet_annotations

    seg = {"tokens": ["a", "man"], "frame_ind": [], "process_idx": [[1]], "timestamps": [0, 1],
           "process_bnd_box": [], "crowds": []}
    path = tmp_path / "anet_entities_cleaned_class_thresh50_x.json"
    path.write_text(json.dumps({"vocab": ["man"], "annotations": {"v_a": {"segments": {"0": seg}}}}))
    with pytest.raises(DataError, match=r"anet_entities_cleaned_class_thresh50_x.json: video v_a segment 0.*process_clss"):
        load_anet_annotations(path)
    path.write_text(json.dumps({"vocab": ["man"], "annotations": {"v_a": {"segments": {"0": {
        **seg, "process_clss": [["dog"]]}}}}}))
    with pytest.raises(DataError, match=r"video v_a segment 0: phrase 0: classes \['dog'\] not in the file's vocab"):
        load_anet_annotations(path)


def test_anet_world_trains_predicts_and_evaluates(anet_world, tmp_path):
    """End to end: text features (format default GloVe source), one short stvg run, predict, and
    evaluate --rule anet --split validation reproduce the run's validation metrics."""
    from workbench.features.text_cache import ensure_text_features

    ensure_text_features(anet_world)
    run = tmp_path / "run"
    assert main(["train", "--data", str(anet_world), "--preset", "stvg", "--out", str(run), "--set", "epochs=1",
                 "--set", "embed_dim=32", "--set", "attn_heads=4", "--set", "threads=1"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    cfg = cfg.get("config", cfg)
    assert (cfg["num_frames"], cfg["batch_size"], cfg["eval_rule"]) == (6, 24, "auto")
    pred = tmp_path / "pred.json"
    assert main(["predict", "--run", str(run), "--split", "validation", "--out", str(pred)]) == 0
    out = tmp_path / "eval.json"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["evaluate", "--rule", "anet", "--split", "validation", "--predictions", str(pred),
                     "--annotations", str(anet_world / "anet_entities_cleaned_class_thresh50_trainval.json")]) == 0
    got = json.loads(buf.getvalue().strip().splitlines()[-1])
    want = json.loads((run / "metrics.json").read_text())["validation"]
    for k in ("query_macro", "query_micro", "box_macro", "box_micro"):
        assert got[k] == pytest.approx(want[k]), k
