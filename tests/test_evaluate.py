"""Hand-built cases for every clause of the evaluation rules (workbench/evaluate.py)."""
import json
import math

import numpy as np
import pytest

from workbench.__main__ import main
from workbench.records import Box, GTObject, GTSegment
from workbench.datasets.yc2 import load_class_file, write_official_annotations
from workbench.datasets.yc2 import to_submission
from workbench.evaluate import DEFAULT_CLASS_FILE, METRIC_KEYS, evaluate, evaluate_anet, evaluate_boxes, gt_units
from workbench.io import DataError

VOCAB = load_class_file(DEFAULT_CLASS_FILE)
NAN = [math.nan] * 4


def B(x1, y1, x2, y2, occ=0, out=0):
    return Box(x1, y1, x2, y2, occ, out)


def seg(key, objects, w=720, h=540):
    vid, s = key.rsplit("_", 1)
    return GTSegment(key, vid, int(s), "101", w, h, [GTObject(label, boxes) for label, boxes in objects])


def gtdict(*segments):
    return {s.key: s for s in segments}


def test_perfect_predictions_and_counted_boxes():
    gt = gtdict(seg("vA_00", [("bowl", [B(0, 0, 10, 10), B(0, 0, 10, 10, occ=1), None]),
                              ("pot", [B(5, 5, 20, 20), B(5, 5, 20, 20, out=1), B(1, 1, 9, 9)])]))
    pred = {"vA_00": np.array([[[0, 0, 10, 10], [50, 50, 60, 60], [50, 50, 60, 60]],
                               [[5, 5, 20, 20], [50, 50, 60, 60], [1, 1, 9, 9]]], float)}
    r = evaluate_boxes(gt, pred, VOCAB)
    assert set(r) == set(METRIC_KEYS)
    # occluded, outside and {} boxes are not units, so the wrong boxes there do not matter
    assert r["boxes"] == 3 and r["queries"] == 3 and r["missing"] == 0
    assert r["box_macro"] == r["box_micro"] == r["query_macro"] == r["query_micro"] == 100.0


def test_iou_exactly_half_is_a_miss_under_stvg():
    gt = gtdict(seg("vA_00", [("bowl", [B(0, 0, 2, 1)])]))
    r = evaluate_boxes(gt, {"vA_00": np.array([[[0, 0, 1, 1]]], float)}, VOCAB)  # IoU = 1/2 exactly
    assert r["box_micro"] == 0.0 and r["boxes"] == 1
    r = evaluate_boxes(gt, {"vA_00": np.array([[[0, 0, 1.01, 1]]], float)}, VOCAB)
    assert r["box_micro"] == 100.0
    # no overlap at all is IoU 0, a miss
    r = evaluate_boxes(gt, {"vA_00": np.array([[[5, 5, 6, 6]]], float)}, VOCAB)
    assert r["box_micro"] == 0.0


def test_duplicated_class_query_units():
    # two objects of class bowl (singular and plural label) and one pot, three frames
    gt = gtdict(seg("vA_00", [("bowl", [B(0, 0, 10, 10), B(0, 0, 10, 10), None]),
                              ("bowls", [B(20, 20, 30, 30), B(20, 20, 30, 30), B(20, 20, 30, 30)]),
                              ("pot", [B(0, 0, 10, 10), None, B(0, 0, 10, 10)])]))
    far = [90, 90, 99, 99]
    pred = {"vA_00": np.array([[[0, 0, 10, 10], far, far],          # bowl#1 hit t0, miss t1
                               [far, far, far],                      # bowl#2 all miss
                               [[0, 0, 10, 10], far, far]], float)}  # pot hit t0, miss t2
    r = evaluate_boxes(gt, pred, VOCAB)
    assert r["boxes"] == 2 + 3 + 2
    assert r["box_micro"] == pytest.approx(100 * 2 / 7)
    assert r["box_macro"] == pytest.approx(100 * (1 / 5 + 1 / 2) / 2)
    # queries: bowl at t0 (hit: one bowl hit), t1 (miss), t2 (miss: bowl#2 counted, not hit); pot t0 hit, t2 miss
    assert r["queries"] == 5
    assert r["query_micro"] == pytest.approx(100 * 2 / 5)
    assert r["query_macro"] == pytest.approx(100 * (1 / 3 + 1 / 2) / 2)


def test_missing_object_frame_and_segment_are_misses():
    gt = gtdict(seg("vA_00", [("bowl", [B(0, 0, 10, 10)] * 2), ("pot", [B(0, 0, 10, 10)] * 2)]),
                seg("vB_01", [("lid", [B(0, 0, 10, 10)] * 3)]))
    pred = {"vA_00": np.array([[[0, 0, 10, 10], NAN]], float)}  # pot absent, bowl frame 1 NaN, vB_01 absent
    r = evaluate_boxes(gt, pred, VOCAB)
    assert r["boxes"] == 7 and r["missing"] == 6
    assert r["box_micro"] == pytest.approx(100 / 7)
    # a shorter frame list is missing frames too
    pred = {"vA_00": np.array([[[0, 0, 10, 10]], [[0, 0, 10, 10]]], float)}
    assert evaluate_boxes(gt, pred, VOCAB)["missing"] == 2 + 3


def test_empty_segment_and_no_units():
    gt = gtdict(seg("vA_00", []))
    r = evaluate_boxes(gt, {"vA_00": np.zeros((0, 0, 4))}, VOCAB)
    assert r["boxes"] == 0 and r["queries"] == 0 and r["box_macro"] is None and r["query_micro"] is None
    with pytest.raises(DataError, match="vA_00"):
        evaluate_boxes(gt, {"vA_00": np.zeros((1, 0, 4))}, VOCAB)


def test_macro_is_mean_over_present_classes():
    gt = gtdict(seg("vA_00", [("bowl", [B(0, 0, 10, 10), None, None]), ("shrimps", [B(0, 0, 10, 10)] * 3)]))
    pred = {"vA_00": np.array([[[0, 0, 10, 10], NAN, NAN], [[50, 50, 60, 60]] * 3], float)}
    r = evaluate_boxes(gt, pred, VOCAB)
    assert r["box_micro"] == 25.0 and r["box_macro"] == 50.0


def test_nafae_rule():
    # +1 pixel term and >= 0.5: GT area 4*2, prediction 2*2, intersection 2*2 -> exactly 0.5 -> hit
    gt = gtdict(seg("vA_00", [("bowl", [B(0, 0, 3, 1)])], w=224, h=224))
    pred = {"vA_00": np.array([[[0, 0, 1, 1]]], float)}
    assert evaluate_boxes(gt, pred, VOCAB, "nafae")["box_micro"] == 100.0
    assert evaluate_boxes(gt, pred, VOCAB, "stvg")["box_micro"] == 0.0
    # macro over all 67 classes
    assert evaluate_boxes(gt, pred, VOCAB, "nafae")["box_macro"] == pytest.approx(100 / 67)
    # GT scaled to 224 and truncated: a prediction equal to the GT can miss
    gt = gtdict(seg("vA_00", [("bowl", [B(1, 1, 2.9, 2.9)])], w=448, h=448))
    pred = {"vA_00": np.array([[[1, 1, 2.9, 2.9]]], float)}
    assert evaluate_boxes(gt, pred, VOCAB, "stvg")["box_micro"] == 100.0
    assert evaluate_boxes(gt, pred, VOCAB, "nafae")["box_micro"] == 0.0


def test_nafae_queries_are_sentence_class_words():
    gt = gtdict(seg("vA_00", [("bowl", [B(0, 0, 10, 10)] * 2), ("pot", [B(0, 0, 10, 10)] * 2)], w=224, h=224))
    pred = {"vA_00": np.array([[[0, 0, 10, 10]] * 2, [[90, 90, 99, 99]] * 2], float)}
    assert evaluate_boxes(gt, pred, VOCAB, "nafae")["query_micro"] is None  # no sentence words given
    bowl, pot, oven = VOCAB.id_of("bowl"), VOCAB.id_of("pot"), VOCAB.id_of("oven")
    r = evaluate_boxes(gt, pred, VOCAB, "nafae", {"vA_00": [bowl, bowl, oven]})  # pot not named; bowl twice
    assert r["queries"] == 4 and r["query_micro"] == 100.0
    r = evaluate_boxes(gt, pred, VOCAB, "nafae", {"vA_00": [pot, bowl]})
    assert r["queries"] == 4 and r["query_micro"] == 50.0


def test_codalab_rule_skips_missing_and_reports_box_macro_only():
    gt = gtdict(seg("vA_00", [("bowl", [B(0, 0, 10, 10)] * 2), ("pot", [B(0, 0, 10, 10), None])]))
    pred = {"vA_00": np.array([[[0, 0, 10, 10], NAN]], float)}
    r = evaluate_boxes(gt, pred, VOCAB, "codalab")
    assert r["box_macro"] == 100.0 and r["boxes"] == 1 and r["missing"] == 2
    assert r["box_micro"] is None and r["query_macro"] is None and r["query_micro"] is None
    assert evaluate_boxes(gt, pred, VOCAB, "stvg")["box_macro"] == pytest.approx(100 * (1 / 2 + 0) / 2)


def _anet(frame=3):
    ann = {"vocab": ["man", "dog"], "annotations": {"v_x": {"duration": 10, "segments": {"0": {
        "process_clss": [["man"], ["dog"], ["man"]], "tokens": ["a", "man", "walks", "a", "dog", "man"],
        "frame_ind": [frame, 5, 1], "process_idx": [[1], [4], [5]],
        "process_bnd_box": [[0, 0, 9, 9], [10, 10, 19, 19], [0, 0, 9, 9]], "crowds": [0, 0, 0]}}}}}
    return ann


def test_anet_scores_only_the_annotated_frame():
    far = [100, 100, 120, 120]
    man = [far] * 10
    man[3] = [0, 0, 9, 9]                       # right box only on the annotated frame
    dog = [[10, 10, 19, 19]] * 10
    dog[5] = far                                # wrong on exactly its annotated frame
    pred = {"results": {"v_x": {"0": {"clss": ["man", "dog"], "idx_in_sent": [1, 4],
                                      "bbox_for_all_frames": [man, dog]}}}}
    r = evaluate_anet(_anet(), pred)
    assert r["boxes"] == 3 and r["missing"] == 1                # word 5 has no prediction
    assert r["box_micro"] == pytest.approx(100 / 3)
    assert r["box_macro"] == pytest.approx(100 * (1 / 2 + 0) / 2)
    assert r["queries"] == 3                                    # man@3, dog@5, man@1
    # +1 pixel term, strictly > 0.5: GT [0,0,9,9] area 100; a 10x5 prediction gives IoU 0.5 -> miss
    man[3] = [0, 0, 9, 4]
    assert evaluate_anet(_anet(), pred)["box_micro"] == 0.0
    with pytest.raises(DataError, match="v_y"):
        evaluate_anet(_anet(), {"results": {"v_y": {"0": {}}}})
    twice = _anet()
    twice["vocab"] = [*twice["vocab"], twice["vocab"][0]]     # a class named twice: refused, not mapped to one index
    with pytest.raises(DataError, match=r"vocab\[%d\].*already vocab\[0\]" % (len(twice["vocab"]) - 1)):
        evaluate_anet(twice, pred)


def test_bad_input_errors():
    gt = gtdict(seg("vA_00", [("bowl", [B(0, 0, 10, 10)])]))
    ok = {"vA_00": np.array([[[0, 0, 10, 10]]], float)}
    with pytest.raises(DataError, match="unknown object label"):
        evaluate_boxes(gtdict(seg("vA_00", [("spaceship", [B(0, 0, 1, 1)])])), ok, VOCAB)
    with pytest.raises(DataError, match="vZ_03"):
        evaluate_boxes(gt, {**ok, "vZ_03": np.zeros((1, 1, 4))}, VOCAB)
    with pytest.raises(DataError, match="2 objects"):
        evaluate_boxes(gt, {"vA_00": np.zeros((2, 1, 4))}, VOCAB)
    with pytest.raises(DataError, match="frames"):
        evaluate_boxes(gt, {"vA_00": np.zeros((1, 2, 4))}, VOCAB)
    with pytest.raises(DataError, match="xbr < xtl"):
        evaluate_boxes(gt, {"vA_00": np.array([[[10, 0, 0, 10]]], float)}, VOCAB)
    with pytest.raises(DataError, match="unknown rule"):
        evaluate_boxes(gt, ok, VOCAB, "voc")
    sub = to_submission(gt, ok)
    sub["database"]["vA"]["segments"]["0"]["objects"][0]["boxes"][0] = {"xtl": 0, "ytl": 0, "xbr": 1}
    with pytest.raises(DataError, match="vA_00 object 0 frame 0"):
        evaluate(gt, sub, VOCAB)
    sub["database"]["vA"]["segments"]["0"]["objects"][0] = {"label": "pot", "boxes": [{}]}
    with pytest.raises(DataError, match="does not match"):
        evaluate(gt, sub, VOCAB)
    sub["database"]["vA"]["segments"]["0"]["objects"][0] = {"label": "zzz", "boxes": [{}]}
    with pytest.raises(DataError, match="unknown object label"):
        evaluate(gt, sub, VOCAB)


def test_json_path_equals_array_path():
    rng = np.random.default_rng(0)
    labels = ["bowl", "pots", "shrimps", "lid"]
    segs = []
    for s in range(30):
        objs = []
        for _ in range(rng.integers(0, 4)):
            xy = rng.uniform(0, 300, (6, 2))
            boxes = [None if rng.random() < 0.1 else B(x, y, x + 80, y + 60, int(rng.random() < 0.1), 0) for x, y in xy]
            objs.append((labels[rng.integers(4)], boxes))
        segs.append(seg(f"v{s % 7}_{s:02d}", objs))
    gt = gtdict(*segs)
    pred = {}
    for k, sgt in gt.items():
        K = len(sgt.objects)
        xy = rng.uniform(0, 300, (K, 6, 2))
        arr = np.concatenate([xy, xy + [80, 60]], -1)
        arr[rng.random((K, 6)) < 0.1] = np.nan
        pred[k] = arr
    a = evaluate_boxes(gt, pred, VOCAB)
    b = evaluate(gt, json.loads(json.dumps(to_submission(gt, pred))), VOCAB)
    c = evaluate_boxes(gt_units(gt, VOCAB), pred, VOCAB)
    assert a == b == c and a["missing"] > 0 and 0 < a["box_micro"] < 100


def test_cli_prints_one_json_object(tmp_path, capsys):
    gt = gtdict(seg("vA_00", [("bowl", [B(0, 0, 10, 10), None])]))
    write_official_annotations(tmp_path / "gt.json", gt.values())
    (tmp_path / "pred.json").write_text(json.dumps(to_submission(gt, {"vA_00": np.array([[[0, 0, 10, 10], NAN]])})))
    for rule in ("stvg", "nafae", "codalab"):
        assert main(["evaluate", "--annotations", str(tmp_path / "gt.json"), "--predictions",
                     str(tmp_path / "pred.json"), "--rule", rule]) == 0
        out = json.loads(capsys.readouterr().out)
        assert list(out) == list(METRIC_KEYS)
    assert out["box_macro"] == 100.0
    (tmp_path / "anet.json").write_text(json.dumps(_anet()))
    (tmp_path / "apred.json").write_text(json.dumps({"results": {}}))
    assert main(["evaluate", "--annotations", str(tmp_path / "anet.json"), "--predictions",
                 str(tmp_path / "apred.json"), "--rule", "anet"]) == 0
    assert json.loads(capsys.readouterr().out)["missing"] == 3
    assert main(["evaluate", "--annotations", str(tmp_path / "gt.json"), "--predictions",
                 str(tmp_path / "nope.json")]) == 2
    assert "nope.json" in capsys.readouterr().err


def test_heldout_metrics_score_only_held_out_class_objects():
    from workbench.evaluate import heldout_metrics

    # bowl (id 0) is held out; pot (id 1) and cup (id 4) are seen. Two segments, two frames each.
    gt = gtdict(seg("vA_00", [("bowl", [B(0, 0, 10, 10), B(0, 0, 10, 10)]),
                              ("pot", [B(20, 20, 30, 30), B(20, 20, 30, 30)])]),
                seg("vB_01", [("bowls", [B(0, 0, 10, 10), None]),
                              ("cup", [B(40, 40, 50, 50), B(40, 40, 50, 50)])]))
    far = [90, 90, 99, 99]
    pred = {"vA_00": np.array([[[0, 0, 10, 10], far],                     # bowl: hit, miss
                               [[20, 20, 30, 30], [20, 20, 30, 30]]], float),  # pot: hit, hit
            "vB_01": np.array([[[0, 0, 10, 10], far],                     # bowls: hit (t1 has no box)
                               [far, far]], float)}                       # cup: miss, miss
    every = evaluate_boxes(gt, pred, VOCAB)
    assert every["boxes"] == 7 and every["box_micro"] == pytest.approx(100 * 4 / 7)
    held = heldout_metrics(gt, pred, VOCAB, [0])
    assert set(held) == set(METRIC_KEYS)
    assert held["boxes"] == 3 and held["queries"] == 3                    # bowl's 3 counted boxes only
    assert held["box_micro"] == held["query_micro"] == pytest.approx(100 * 2 / 3)
    assert held["query_macro"] == pytest.approx(100 * 2 / 3)              # one class present
    seen = heldout_metrics(gt, pred, VOCAB, [1, 4])
    assert seen["box_micro"] == pytest.approx(50.0) and seen["query_macro"] == pytest.approx(50.0)  # pot 100, cup 0
    # nafae's macro over every class divides by the held-out classes, not the whole vocabulary
    nafae = heldout_metrics(gt, pred, VOCAB, [0, 2], rule="nafae")
    assert nafae["box_macro"] == pytest.approx(100 * (2 / 3) / 2)
    # a split without any held-out object (validation under the protocol) has no accuracy
    none = heldout_metrics(gt, pred, VOCAB, [5])
    assert none["boxes"] == 0 and none["box_micro"] is None and none["query_micro"] is None
