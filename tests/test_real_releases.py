"""The public releases as distributed (CI/STVG, VOG/DVSA, GVD/ActivityNet-Entities, NAFAE), on tiny fixtures
written in each release's own layout (tests/release_fixtures.py). Every val/test GT box is planted on one
proposal: Upper Bound = 100 proves that boxes, scale, row order and frame index were read right."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import pytest

import release_fixtures as rf
from workbench.__main__ import main

TINY = ["--set", "epochs=1", "--set", "batch_size=4", "--set", "embed_dim=32", "--set", "threads=1",
        "--set", "attn_heads=4"]


def cli(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def write_release(name: str, src: Path) -> Path:
    if name == "ci":
        rf.write_ci_release(src, rf.yc2_segments())
    elif name == "vog":
        rf.write_vog_release(src, rf.yc2_segments())
    else:
        rf.write_gvd_release(src)
    return src


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """{release: (src, dataset directory)}: each fixture release imported once."""
    from workbench.datasets.releases import by_name

    base = tmp_path_factory.mktemp("releases")
    out = {}
    for name in ("ci", "vog", "gvd"):
        src = write_release(name, base / f"{name}-src")
        assert main(["import", name, str(src), "--out", str(base / name)]) == 0
        out[name] = (src, base / name)
    return out


# --- (a) bugs every real user hits --------------------------------------------------------------------------

def test_train_ends_with_null_test_metrics_on_the_official_public_test_file(tmp_path, capsys):
    """Before: TypeError in train's summary (round(None)), exit 1, whenever testing GT is the public {} file."""
    data = rf.write_workbench_dir(tmp_path / "d", rf.yc2_segments(n_train=8, n_val=2, n_test=2))
    assert (data / "yc2_bb_public_test_annotations.json").is_file()
    rc, out, _ = cli(capsys, "train", "--data", data, "--preset", "stvg", *TINY, "--out", tmp_path / "run")
    assert rc == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert all(metrics["testing"][k] is None for k in ("query_macro", "query_micro", "box_macro", "box_micro"))
    assert metrics["validation"]["box_micro"] is not None
    assert "testing annotations hold no boxes" in out and "predict --run" in out


def test_a_store_of_224_boxes_from_a_bare_ci_root_is_refused_not_scored(tmp_path, capsys):
    """Before: build-store --root on the bare feature root kept 224x224 boxes silently and Upper Bound scored 0.0."""
    data = rf.write_workbench_dir(tmp_path / "d", rf.yc2_segments(n_train=8, n_val=2, n_test=2))
    bare = data / "region_features"                        # the CI feature root alone, as --help allows
    for split in ("training", "validation", "testing"):
        assert cli(capsys, "build-store", "--root", bare, "--split", split, "--out", data / "store" / f"{split}.h5")[0] == 0
    with h5py.File(data / "store" / "validation.h5") as f:
        assert f.attrs["box_space"] == "resized-224x224"
    rc, _, err = cli(capsys, "train", "--data", data, "--preset", "upper-bound", "--out", tmp_path / "ub")
    assert rc == 2 and "224x224" in err and "build-store --root" in err
    assert not (tmp_path / "ub" / "metrics.json").exists()
    rc, out, _ = cli(capsys, "check-dataset", data)
    assert rc == 2 and "NOT ready" in out
    rc, _, err = cli(capsys, "baseline", "--data", data, "--split", "validation", "--method", "upper-bound",
                     "--out", tmp_path / "p.json")
    assert rc == 2 and "224x224" in err
    # rebuilt from the dataset directory as the message says: scored, Upper Bound = 100
    assert cli(capsys, "build-store", "--root", data, "--split", "validation", "--out", data / "store" / "validation.h5")[0] == 0
    rc, out, _ = cli(capsys, "check-dataset", data)
    assert rc == 0 and "box micro 100.00" in out


def test_proposals_misread_in_the_annotation_frame_are_an_error_not_a_score(tmp_path, capsys):
    """Proposals stamped as pixels but normalised to 0-1 (as VOG's loader normalises them): Upper Bound near 0
    stops check-dataset (computed from the per-segment files, no store yet) and train (after it built the stores)."""
    import numpy as np

    data = rf.write_workbench_dir(tmp_path / "d", rf.yc2_segments(n_train=8, n_val=2, n_test=2))
    for p in (data / "region_features" / "rpn_box" / "validation").glob("*.npy"):
        np.save(p, np.load(p) / 224.0)
    rc, out, _ = cli(capsys, "check-dataset", data)
    assert rc == 2 and "Upper Bound box micro is" in out and "misread" in out
    rc, _, err = cli(capsys, "train", "--data", data, "--preset", "upper-bound", "--out", tmp_path / "ub")
    assert rc == 2 and "Upper Bound box micro is" in err and not (tmp_path / "ub" / "metrics.json").exists()


def test_a_store_stamped_by_an_older_build_store_note_is_refused_too(tmp_path, capsys):
    """Stores built before the stamp: the old 224x224 note is read as that box space."""
    from workbench.features.store import BOX_SPACE_224, box_space_of

    assert box_space_of({"notes": "no annotations or yc2_training_vid.json for validation: boxes kept in the "
                                  "224x224 frame"}) == BOX_SPACE_224
    assert box_space_of({"notes": ""}) == "annotation-pixels"


def test_train_builds_the_anet_text_cache_with_the_formats_glove(tmp_path, monkeypatch):
    """Before: prepare.fill_missing hard-coded GloVe yc2-vocab (11 OOV words on ActivityNet-Entities)."""
    import workbench.prepare as prepare
    from workbench.prepare import fill_missing

    src = write_release("gvd", tmp_path / "src")
    assert main(["import", "gvd", str(src), "--out", str(tmp_path / "d")]) == 0
    seen = {}
    monkeypatch.setattr(prepare, "build_text_features", lambda data, encoder, glove, **kw: seen.setdefault("glove", glove))
    fill_missing(tmp_path / "d", log=lambda m: None)
    assert seen["glove"] == "minilm-static"


def test_baseline_and_predict_work_on_every_format(imported, tmp_path, capsys):
    """Before: baseline looked for yc2_bb_val_annotations.json on ActivityNet-Entities."""
    _, data = imported["gvd"]
    pred = tmp_path / "ub.json"
    assert cli(capsys, "baseline", "--data", data, "--split", "validation", "--method", "upper-bound", "--out", pred)[0] == 0
    rc, out, _ = cli(capsys, "evaluate", "--rule", "anet", "--split", "validation", "--annotations",
                     data / "anet_entities_cleaned_class_thresh50_trainval.json", "--predictions", pred)
    assert rc == 0 and json.loads(out)["box_micro"] == 100.0


# --- (b) the CI/NAFAE box format and NAFAE's class list --------------------------------------------------------

def test_ci_nafae_box_format_reads_like_the_official_one(tmp_path, yc2_dir):
    from workbench.datasets.yc2 import load_class_file, load_official_annotations

    segs = rf.yc2_segments(n_train=0, n_val=3, n_test=0)
    (tmp_path / "ci.json").write_text(json.dumps(rf.ci_gt(segs)))
    (tmp_path / "off.json").write_text(json.dumps(rf.official_gt(segs)))
    vocab = load_class_file(yc2_dir / "youcook_cls.txt")
    ci, off = load_official_annotations(tmp_path / "ci.json", vocab), load_official_annotations(tmp_path / "off.json")
    assert list(ci) == list(off)
    for k in ci:
        assert (ci[k].rwidth, ci[k].rheight, ci[k].num_frames) == (off[k].rwidth, off[k].rheight, off[k].num_frames)
        assert [o.label for o in ci[k].objects] == [o.label for o in off[k].objects]
        assert [[b.xyxy() for b in o.boxes] for o in ci[k].objects] == [[b.xyxy() for b in o.boxes] for o in off[k].objects]


def test_youcook_cls_is_a_class_file_with_class_file_ids(yc2_dir):
    from workbench.datasets.yc2 import load_class_file

    nafae, ref = load_class_file(yc2_dir / "youcook_cls.txt"), load_class_file(yc2_dir / "class_file.csv")
    assert nafae.names == ref.names and nafae.id_of("leaf") == ref.id_of("leaves")


def test_a_segment_file_given_as_box_annotations_is_named(tmp_path, yc2_dir):
    from workbench.datasets.yc2 import load_official_annotations
    from workbench.io import DataError

    with pytest.raises(DataError, match="youcookii_annotations.json"):
        load_official_annotations(yc2_dir / "youcookii_annotations.json")


# --- (c) check-dataset on a foreign layout --------------------------------------------------------------------

@pytest.mark.parametrize("name", ["ci", "vog", "gvd"])
def test_check_dataset_names_a_release_and_its_import_command(imported, name, capsys):
    src, _ = imported[name]
    rc, out, _ = cli(capsys, "check-dataset", src)
    assert rc == 2 and f"python -m workbench import {name} {src}" in out


def test_check_dataset_on_nafae_says_what_to_do(tmp_path, capsys):
    (tmp_path / "data/YouCookII/annotations").mkdir(parents=True)
    (tmp_path / "data/YouCookII/annotations/youcook_cls.txt").write_text("bacon\n")
    rc, out, _ = cli(capsys, "check-dataset", tmp_path)
    assert rc == 2 and "no region features" in out and "import ci" in out


# --- (d, e) import -> check-dataset -> train -> predict -> evaluate, per release --------------------------------

@pytest.mark.parametrize("name", ["ci", "vog", "gvd"])
def test_release_imports_checks_trains_predicts_and_evaluates(imported, name, tmp_path, capsys):
    src, data = imported[name]
    meta = json.loads((data / "dataset.json").read_text())
    assert meta["release"]["name"] == name and meta["release"]["files"]
    rc, out, _ = cli(capsys, "check-dataset", data)
    assert rc == 0 and "box micro 100.00" in out, out
    rc, out, _ = cli(capsys, "train", "--data", data, "--preset", "upper-bound", "--out", tmp_path / "ub")
    assert rc == 0
    ub = json.loads((tmp_path / "ub" / "metrics.json").read_text())
    assert ub["validation"]["box_micro"] == 100.0
    rc, out, _ = cli(capsys, "train", "--data", data, "--preset", "stvg", *TINY, "--out", tmp_path / "run")
    assert rc == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for split in ("validation", "testing"):
        rc, out, _ = cli(capsys, "predict", "--run", tmp_path / "run", "--split", split, "--out", tmp_path / f"{split}.json")
        assert rc == 0, out
    sub = json.loads((tmp_path / "testing.json").read_text())
    if name == "gvd":
        assert sub["results"] and "predict: the testing annotations hold no boxes" in out
        argv = ["--rule", "anet", "--split", "validation", "--annotations",
                data / "anet_entities_cleaned_class_thresh50_trainval.json"]
    else:
        assert len(sub["database"]) >= 1
        argv = ["--annotations", data / "yc2_bb_val_annotations.json"]
    rc, out, _ = cli(capsys, "evaluate", *argv, "--predictions", tmp_path / "validation.json")
    assert rc == 0
    assert json.loads(out)["box_micro"] == pytest.approx(metrics["validation"]["box_micro"], abs=0.01)
    # resumable: a second import keeps the links and stores
    rc, out, _ = cli(capsys, "import", name, src, "--out", data)
    assert rc == 0 and out.count("(kept)") == 3


def test_import_refuses_the_wrong_release(imported, tmp_path, capsys):
    src, _ = imported["vog"]
    rc, _, err = cli(capsys, "import", "ci", src, "--out", tmp_path / "x")
    assert rc == 2 and "looks like the VOG/DVSA" in err and "import vog" in err


def test_vog_pth_is_read_with_weights_only(tmp_path):
    """A .pth that would run code when unpickled is refused, named, never executed."""
    import torch

    from workbench.datasets.releases.vog import load_pth
    from workbench.io import DataError

    torch.save({"f": print}, tmp_path / "x.pth")
    with pytest.raises(DataError, match="x.pth"):
        load_pth(tmp_path / "x.pth", "k_00", "feature")
