"""Table 4's protocol: simulate --holdout K writes a YouCook2 world whose testing objects include K
classes that no training (or validation) object list, distractor or pronoun look-alike contains."""
import json

import pytest

from workbench.__main__ import main
from workbench.io import DataError


@pytest.fixture(scope="module")
def holdout_world(tmp_path_factory):
    d = tmp_path_factory.mktemp("holdout") / "world"
    assert main(["simulate", "--out", str(d), "--preset", "smoke", "--holdout", "3"]) == 0
    return d


def test_holdout_plans_drop_every_training_trace(yc2_dir):
    from workbench.datasets.yc2 import apply_holdout
    from workbench.sim.simulate import plan_segments

    plans = plan_segments("smoke", 0)
    out, meta = apply_holdout(plans, 4, seed=0)
    held = set(meta["holdout_classes"])
    assert len(held) == 4 and not held & {63, 64, 65, 66}
    for split in ("training", "validation"):
        for pl in out[split]:
            assert not held & set(pl.class_ids) and not held & set(pl.looks_like) and not held & set(pl.distractor_pool)
        assert meta["holdout_dropped"][split] == len(plans[split]) - len(out[split])
    assert out["testing"] == plans["testing"]
    assert meta["holdout_test_objects"] == sum(c in held for pl in plans["testing"] for c in pl.class_ids) > 0
    assert apply_holdout(plans, 4, seed=0)[1]["holdout_classes"] == meta["holdout_classes"]   # deterministic
    with pytest.raises(DataError, match="--holdout"):
        apply_holdout(plans, 10_000, seed=0)


def test_holdout_world_records_and_checks_its_classes(holdout_world):
    from workbench.datasets.yc2 import check_holdout
    from workbench.datasets.yc2 import load_split_dict

    meta = json.loads((holdout_world / "dataset.json").read_text())
    held = meta["holdout_classes"]
    assert len(held) == 3 and meta["holdout_names"] and "dropped" in meta["holdout_rule"]
    assert check_holdout(holdout_world) == held
    train = load_split_dict(holdout_world / "train_dict.json")
    test = load_split_dict(holdout_world / "test_dict.json")
    assert not {c for e in train.values() for c in e.class_ids} & set(held)
    assert {c for e in test.values() for c in e.class_ids} & set(held)


def test_holdout_bad_inputs_name_file_and_key(holdout_world, tmp_path):
    import shutil

    from workbench.datasets.yc2 import check_holdout

    d = tmp_path / "w"
    shutil.copytree(holdout_world, d)
    meta = json.loads((d / "dataset.json").read_text())
    held = meta["holdout_classes"]
    train = json.loads((d / "train_dict.json").read_text())
    key = next(iter(train))
    train[key][1].append(held[0])
    (d / "train_dict.json").write_text(json.dumps(train))
    with pytest.raises(DataError, match=rf"train_dict.json: segment {key}: held-out class\(es\) \[{held[0]}\].*holdout_classes"):
        check_holdout(d)
    from workbench.features.text_cache import collect_inputs
    with pytest.raises(DataError, match="held-out"):
        collect_inputs(d)                                      # text-features refuses it too
    (d / "dataset.json").write_text(json.dumps({**meta, "holdout_classes": [5, 67]}))
    with pytest.raises(DataError, match=r"dataset.json: holdout_classes: class ids \[67\] are outside the vocabulary"):
        check_holdout(d)


def test_generalization_grid_compares_with_table4(holdout_world):
    from workbench.report.paper import paper_numbers
    from workbench.experiments.sweep import GRIDS, _dataset_name

    assert {"random", "dvsa", "stvg", "scl-glove-bilstm"} <= set(GRIDS["generalization"])
    assert {"random", "upper-bound", "stvg", "scl-no-caos", "scl-no-cmakt", "scl"} <= set(GRIDS["anet"])
    name = _dataset_name(holdout_world)
    assert name == "youcook2-bb-holdout"
    assert paper_numbers("scl-glove-bilstm", name) == {"testing": {"query_micro": 33.16}}
