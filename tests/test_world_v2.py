"""World v2: knobs recorded and validated, states switch inside their segment, twins unannotated, oracles."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from workbench.__main__ import main
from workbench.sim import simulate as sim
from workbench.datasets.yc2 import load_official_annotations, load_split_dict
from workbench.io import DataError
from workbench.sim.knobs import SOURCES, WorldKnobs, parse_world_sets
from workbench.sim.stats import real_statistics
from workbench.sim.v2 import segment_truth, simulate_segment_v2

REAL = Path(__file__).resolve().parents[1] / "data" / "youcook2_bb"


@pytest.fixture(scope="module")
def smoke2(tmp_path_factory) -> Path:
    return sim.simulate(tmp_path_factory.mktemp("w2") / "smoke", preset="smoke", seed=0,
                        knobs=WorldKnobs(context=0.9, twin_prob=1.0))


@pytest.fixture(scope="module")
def world_and_plans():
    plans = sim.plan_segments("smoke", 0, REAL)
    return sim.make_world("v2", 0, 16, WorldKnobs(context=0.9, twin_prob=1.0), REAL), plans


def test_dataset_json_records_version_every_knob_and_its_source(smoke2):
    meta = json.loads((smoke2 / "dataset.json").read_text())
    assert meta["generator_version"] == "yc2-sim-2" and meta["world"] == "v2"
    names = [f.name for f in dataclasses.fields(WorldKnobs)]
    assert sorted(meta["knobs"]) == sorted(names) and meta["knobs"]["context"] == 0.9
    assert sorted(meta["knob_sources"]) == sorted(names) == sorted(SOURCES)


def test_same_seed_same_bytes(smoke2, tmp_path):
    again = sim.simulate(tmp_path / "again", preset="smoke", seed=0, knobs=WorldKnobs(context=0.9, twin_prob=1.0))
    for f in sorted(smoke2.rglob("*")):
        if f.is_file():
            assert (again / f.relative_to(smoke2)).read_bytes() == f.read_bytes(), f


def test_knob_parsing_rejects_unknown_and_bad_values():
    k = parse_world_sets(["context=0.9", "max_distractors=3", "twin_prob=0"])
    assert k.context == 0.9 and k.max_distractors == 3 and k.twin_prob == 0.0
    for bad, name in (("context=-0.1", "context"), ("context=1.5", "context"), ("twin_prob=1.5", "twin_prob"), ("surprise=-0.01", "surprise"),
                      ("nope=1", "nope"), ("max_distractors=1.5", "max_distractors"), ("context=abc", "context"),
                      ("hand_prob=nan", "hand_prob")):
        with pytest.raises(DataError, match=name):
            parse_world_sets([bad])


def test_cli_set_and_stats(tmp_path, capsys):
    out = tmp_path / "d"
    assert main(["simulate", "--out", str(out), "--preset", "smoke", "--set", "context=-1"]) == 2
    assert "context" in capsys.readouterr().err and not out.exists()
    assert main(["simulate", "--out", str(out), "--preset", "smoke", "--set", "context=0.25", "--stats"]) == 0
    stats = json.loads(capsys.readouterr().out)                  # exactly one JSON object on stdout
    assert set(stats) == {"validation", "testing"}
    for split in stats.values():
        for m in ("random", "upper_bound", "oracle_class", "oracle_language", "oracle_state"):
            assert {"box_micro", "box_macro"} <= set(split[m])
        assert {"by_mention", "by_twin", "by_phase"} <= set(split)
    assert json.loads((out / "dataset.json").read_text())["knobs"]["context"] == 0.25
    # world v1 takes the one knob name too (recorded under its yc2-sim-1 name), and only that knob
    assert main(["simulate", "--out", str(tmp_path / "v1"), "--preset", "smoke", "--world", "v1",
                 "--set", "context=0.1"]) == 0
    assert json.loads((tmp_path / "v1" / "dataset.json").read_text())["knobs"]["context_strength"] == 0.1
    capsys.readouterr()
    for bad, name in (("twin_prob=0.1", "twin_prob"), ("context_strength=0.1", "context_strength"),
                      ("context=-1", "context")):
        assert main(["simulate", "--out", str(tmp_path / "v1b"), "--preset", "smoke", "--world", "v1",
                     "--set", bad]) == 2
        assert name in capsys.readouterr().err and not (tmp_path / "v1b").exists()


def test_state_switch_happens_inside_its_segment(world_and_plans):
    world, plans = world_and_plans
    switched = 0
    for pl in plans["training"] + plans["validation"]:
        for ob in segment_truth(world, pl).objects:
            assert len(ob.states) == pl.num_frames
            if ob.switch >= 0:
                switched += 1
                assert 1 <= ob.switch <= pl.num_frames - 1
                assert ob.states[ob.switch - 1] != ob.states[ob.switch]
                assert len(set(ob.states[:ob.switch])) == len(set(ob.states[ob.switch:])) == 1
            else:
                assert len(set(ob.states)) == 1
    assert switched > 5


def test_twins_never_carry_annotations(smoke2, world_and_plans):
    world, plans = world_and_plans
    gts = load_official_annotations(smoke2 / "yc2_bb_val_annotations.json")
    entries = load_split_dict(smoke2 / "val_dict.json")
    twins = 0
    for pl in plans["validation"]:
        sim_, truth = simulate_segment_v2(world, pl)
        n_twins = sum(o.role == "twin" for o in truth.objects)
        twins += n_twins
        assert len(gts[pl.key].objects) == len(entries[pl.key].class_ids) == truth.num_named
        assert all(o.role == "named" for o in truth.objects[:truth.num_named])
        assert all(o.role != "named" for o in truth.objects[truth.num_named:])
        for o in truth.objects:
            if o.role == "twin":
                twin_of = truth.objects[o.of]
                assert o.cls == twin_of.cls and all(a != b for a, b in zip(o.states, twin_of.states))
    assert twins > 0


def test_context_zero_makes_states_look_alike_and_language_oracle_equal_class():
    world = sim.make_world("v2", 0, 32, WorldKnobs(context=0.0), REAL)
    onion = world.vocab.forms["onion"]
    assert np.array_equal(world.appearance(onion, "cut"), world.appearance(onion, ""))
    world9 = sim.make_world("v2", 0, 32, WorldKnobs(context=0.9), REAL)
    assert float(world9.appearance(onion, "cut") @ world9.appearance(onion, "")) < 0.9


def test_default_knobs_come_from_the_real_statistics():
    s = real_statistics(REAL)["knob_sources"]
    k = WorldKnobs()
    assert k.twin_prob == pytest.approx(s["twin_rate"] / 100, abs=1e-4)
    assert k.surprise == pytest.approx(s["surprise_rate"] / 100, abs=1e-4)
    assert k.group_share == pytest.approx(s["glove_group_excess"], abs=1e-4)
    assert k.nest_prob == pytest.approx(real_statistics(REAL)["containers"]["after_preposition"] / 100, abs=1e-4)
