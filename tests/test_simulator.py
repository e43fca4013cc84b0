"""The simulator writes the real YouCook2-BB layouts, deterministically, with the documented world (v1 here;
world v2 in test_world_v2.py)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from workbench.__main__ import main
from workbench.boxes import iou_matrix
from workbench.sim import simulate as sim
from workbench.sim import v1
from workbench.datasets.yc2 import load_class_file, load_official_annotations, load_sentences, load_split_dict, load_youcookii
from workbench.io import DataError

REAL = Path(__file__).resolve().parents[1] / "data" / "youcook2_bb"
SPLIT_FILES = {"training": "train_dict.json", "validation": "val_dict.json", "testing": "test_dict.json"}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Path:
    return sim.simulate(tmp_path_factory.mktemp("sim") / "smoke", preset="smoke", seed=0, world="v1")


@pytest.fixture(scope="module")
def vocab():
    return load_class_file(REAL / "class_file.csv")


def _files(root: Path) -> dict[str, bytes]:
    return {str(f.relative_to(root)): f.read_bytes() for f in sorted(root.rglob("*")) if f.is_file()}


def test_same_seed_gives_identical_files_and_other_seed_differs(smoke, tmp_path):
    again = _files(sim.simulate(tmp_path / "again", preset="smoke", seed=0, world="v1"))
    first = _files(smoke)
    assert again.keys() == first.keys()
    assert all(again[k] == first[k] for k in first)
    other = _files(sim.simulate(tmp_path / "other", preset="smoke", seed=1))
    key = next(k for k in first if k.startswith("region_features/validation/"))
    assert other[key] != first[key]


def test_files_load_with_the_real_format_loaders(smoke, vocab):
    assert (smoke / "class_file.csv").read_bytes() == (REAL / "class_file.csv").read_bytes()
    sentences = load_sentences(smoke / "seg_sentence_dict.json")
    real_sentences = load_sentences(REAL / "seg_sentence_dict.json")
    infos = load_youcookii(smoke / "youcookii_annotations.json")
    meta = json.loads((smoke / "dataset.json").read_text())
    assert meta["simulated"] and meta["preset"] == "smoke" and meta["feature_dim"] == 32
    public_test = load_official_annotations(REAL / "yc2_bb_public_test_annotations.json")
    total = 0
    for split, name in SPLIT_FILES.items():
        raw = json.loads((smoke / name).read_text())
        real = json.loads((REAL / name).read_text())
        entries = load_split_dict(smoke / name, len(vocab))
        assert len(entries) == meta["splits"][split]["segments"] > 0
        total += len(entries)
        for key, value in raw.items():
            assert value == real[key]                      # same ids, types ("02" strings) and class lists
            assert sentences[key] == real_sentences[key] == infos[key].sentence
            t = infos[key].num_frames
            feats = np.load(smoke / "region_features" / split / f"{key}.npy")
            rpn = np.load(smoke / "region_features" / "rpn_box" / split / f"{key}.npy")
            assert feats.dtype == rpn.dtype == np.float32
            assert feats.shape == (t, 20, 32) and rpn.shape == (t, 20, 4)
            assert np.isfinite(feats).all()
            assert (rpn >= 0).all() and (rpn <= 224).all() and (rpn[..., 2:] > rpn[..., :2]).all()
        if split == "training":
            vids = json.loads((smoke / sim.TRAINING_VID_FILE).read_text())["database"]
            assert {e.vid for e in entries.values()} == set(vids)
            real_heights = {g.rheight for g in public_test.values()}
            assert all(v["rwidth"] == 720 and v["rheight"] in real_heights for v in vids.values())
            assert all(vids[e.vid]["segments"][str(e.seg)]["sentence"] == sentences[k] for k, e in entries.items())
            continue
        gts = load_official_annotations(smoke / sim.ANNOTATION_FILES[split])
        assert list(gts) == list(raw)                      # annotation order = split dict order
        for key, g in gts.items():
            assert [vocab.id_of(o.label, key) for o in g.objects] == entries[key].class_ids
            assert g.rwidth == 720 and g.num_frames == infos[key].num_frames
            assert all(b is not None and 0 <= b.xtl < b.xbr <= g.rwidth and 0 <= b.ytl < b.ybr <= g.rheight
                       for o in g.objects for b in o.boxes)
            if split == "testing":
                assert g.rheight == public_test[key].rheight
                assert [o.label for o in g.objects] == [o.label for o in public_test[key].objects]
    assert len(sentences) == len(infos) == total


def test_visible_span_is_contiguous_and_flags_are_like_the_real_data(smoke):
    n_occluded = n_outside = 0
    for split in sim.ANNOTATION_FILES:
        for key, g in load_official_annotations(smoke / sim.ANNOTATION_FILES[split]).items():
            for o in g.objects:
                inside = np.array([b.outside == 0 for b in o.boxes])
                idx = np.flatnonzero(inside)
                assert len(idx) >= 1 and idx[-1] - idx[0] + 1 == len(idx), key
                assert all(b.occluded == 0 for b in o.boxes if b.outside)
                n_occluded += sum(b.occluded for b in o.boxes)
                n_outside += sum(b.outside for b in o.boxes)
    assert n_occluded > 0 and n_outside > 0


def test_calibration_of_random_and_upper_bound_on_smoke(smoke):
    for split in sim.ANNOTATION_FILES:
        s = sim.world_stats(smoke, split)
        assert s["boxes"] > 50
        assert 0.06 < s["random"] < 0.20, s
        assert 0.50 < s["upper_bound"] < 0.85, s


def test_world_stats_follows_the_stvg_rule(smoke, tmp_path):
    # Same proposals, but make every GT box equal to one proposal: the upper bound becomes 1.
    d = tmp_path / "copy"
    import shutil
    shutil.copytree(smoke, d)
    raw = json.loads((d / sim.ANNOTATION_FILES["validation"]).read_text())
    for vid, v in raw["database"].items():
        for seg, s in v["segments"].items():
            rpn = np.load(d / "region_features" / "rpn_box" / "validation" / f"{vid}_{int(seg):02d}.npy")
            scale = np.array([v["rwidth"], v["rheight"]] * 2) / 224.0
            for o in s["objects"]:
                for t, b in enumerate(o["boxes"]):
                    b.update(zip(("xtl", "ytl", "xbr", "ybr"), (rpn[t, 3] * scale).tolist()), occluded=0, outside=0)
    (d / sim.ANNOTATION_FILES["validation"]).write_text(json.dumps(raw))
    s = sim.world_stats(d, "validation")
    assert s["upper_bound"] == 1.0 and s["random"] >= 1 / 20


def test_context_zero_removes_the_context_shift(vocab):
    a, b = "chop the onion finely", "fry the onion in a hot pan"
    plain = v1.World(0, 64, v1.Knobs(context=0.0), vocab.forms)
    assert np.array_equal(plain.object_appearance(32, a), plain.class_appearance(32))
    assert np.array_equal(plain.object_appearance(32, a), plain.object_appearance(32, b))
    ctx = v1.World(0, 64, v1.Knobs(context=0.5), vocab.forms)
    assert np.array_equal(ctx.class_appearance(32), plain.class_appearance(32))
    assert not np.allclose(ctx.object_appearance(32, a), ctx.object_appearance(32, b))
    assert ctx.object_appearance(32, a) @ ctx.class_appearance(32) > 0.7      # still mostly the class
    assert ctx.context_words(a) == ["chop", "finely"]
    # Same words, another class: a different shift (per-(class, context) offset).
    shift_onion = ctx.object_appearance(32, a) - ctx.class_appearance(32)
    shift_carrot = ctx.object_appearance(25, a) - ctx.class_appearance(25)
    assert not np.allclose(shift_onion, shift_carrot)


def _pronoun_plans():
    plans = sim.plan_segments("demo", 0)
    return [(pl, i) for pl in plans["validation"] for i, c in enumerate(pl.class_ids)
            if c in sim.PRONOUNS and pl.looks_like[i] != c]


def test_pronouns_look_like_their_referent(vocab):
    found = _pronoun_plans()
    assert len(found) > 50
    world = v1.World(0, 128, v1.Knobs(), vocab.forms)
    closer = 0
    for pl, i in found[:40]:
        ref = pl.looks_like[i]
        assert ref not in sim.PRONOUNS
        earlier = [c for c in pl.class_ids[:i] if c not in sim.PRONOUNS]
        if earlier:
            assert ref == earlier[-1]
        s = v1.simulate_segment(world, pl)
        app = s.appearance[i]
        closer += app @ world.class_appearance(ref) > app @ world.class_appearance(pl.class_ids[i]) + 0.3
    assert closer == 40


def test_annotated_object_appearance_is_in_its_best_proposals(smoke, vocab):
    world = v1.World(0, 32, v1.Knobs(), vocab.forms)
    plans = sim.plan_segments("smoke", 0)["validation"]
    best, other = [], []
    for pl in plans:
        feats = np.load(smoke / "region_features" / "validation" / f"{pl.key}.npy")
        rpn = np.load(smoke / "region_features" / "rpn_box" / "validation" / f"{pl.key}.npy")
        s = v1.simulate_segment(world, pl)
        assert np.array_equal(s.features, feats) and np.array_equal(s.rpn, rpn)   # per-segment seeding
        f = feats / np.linalg.norm(feats, axis=-1, keepdims=True)
        gt224 = s.gt_boxes * (224.0 / np.array([pl.rwidth, pl.rheight] * 2))
        for j, c in enumerate(pl.looks_like):
            cos = f @ world.class_appearance(c)                                 # (T, P)
            iou = iou_matrix(rpn, gt224[j][:, None, :])[..., 0]                 # (T, P)
            ok = ~s.outside[j] & (iou.max(1) > 0.5)
            top = iou.argmax(1)
            best += cos[ok, top[ok]].tolist()
            other += cos[ok].mean(1).tolist()
    assert len(best) > 30
    assert np.mean(best) > np.mean(other) + 0.2


def test_ensure_dataset_simulates_once_and_checks_what_is_there(tmp_path):
    p = sim.ensure_dataset(tmp_path / "d", preset="smoke", seed=3)
    stamp = (p / "dataset.json").stat().st_mtime_ns
    assert sim.ensure_dataset(p, preset="smoke", seed=3) == p
    assert (p / "dataset.json").stat().st_mtime_ns == stamp
    with pytest.raises(DataError, match="seed"):
        sim.ensure_dataset(p, preset="smoke", seed=4)
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "class_file.csv").write_text("x")
    with pytest.raises(DataError, match="no complete dataset"):
        sim.ensure_dataset(tmp_path / "partial")
    assert not list(tmp_path.glob(".*tmp"))                     # no temporary directory left behind


def test_cli_writes_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["simulate", "--out", str(out), "--preset", "smoke", "--feature-dim", "8", "--seed", "2"]) == 0
    assert json.loads((out / "dataset.json").read_text())["feature_dim"] == 8
    assert main(["simulate", "--out", str(out), "--preset", "smoke"]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["simulate", "--out", str(out), "--preset", "smoke", "--force", "--feature-dim", "4"]) == 0
    assert json.loads((out / "dataset.json").read_text())["feature_dim"] == 4
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    assert main(["simulate", "--out", str(tmp_path / "mine"), "--preset", "smoke", "--force"]) == 2
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_cli_max_segments_zero_is_an_error_not_all(tmp_path, capsys):
    # `--max-segments validation=0` once silently meant "the whole split" (0 was the preset's "all")
    out = tmp_path / "zero"
    assert main(["simulate", "--out", str(out), "--preset", "smoke", "--max-segments", "validation=0"]) == 2
    err = capsys.readouterr().err
    assert "validation=0" in err and "N >= 1" in err
    assert not out.exists()
