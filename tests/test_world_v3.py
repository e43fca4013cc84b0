"""World v3 (yc2-sim-3): compound heads as looks, twins from the same-sentence statistic; v2 otherwise."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from workbench.datasets.yc2 import load_class_file
from workbench.experiments.world_sweep import world_sweep
from workbench.io import DataError
from workbench.sim import simulate as sim
from workbench.sim.cues import parse_mentions
from workbench.sim.knobs import WorldKnobs
from workbench.sim.oracles import teacher_looks
from workbench.sim.stats import real_statistics, same_sentence_twin_rate
from workbench.sim.v3 import SOURCES_V3, WorldKnobsV3, headed

REAL = Path(__file__).resolve().parents[1] / "data" / "youcook2_bb"
SMALL = {"training": 20, "validation": 8, "testing": 8}     # a prefix of the smoke world (fast)


@pytest.fixture(scope="module")
def vocab():
    return load_class_file(REAL / "class_file.csv")


@pytest.fixture(scope="module")
def small3(tmp_path_factory) -> Path:
    return sim.simulate(tmp_path_factory.mktemp("w3") / "small", preset="smoke", seed=0, world="v3",
                        knobs=WorldKnobsV3(context=0.9), max_segments=SMALL)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_same_sentence_twin_rate_on_hand_written_sentences(vocab):
    sentences = {
        "add the chopped onion and the green onion": (2, 2),   # cut vs colour:green: both cued, both twinned
        "add chopped onion and garlic": (1, 0),                # no second onion
        "fry the onion and the onion": (2, 0),                 # both heat: the same state
        "add chopped onion and onion": (1, 1),                 # cut vs plain; the plain one is not cued
    }
    for text, (cued, twins) in sentences.items():
        ms = parse_mentions(text, vocab)
        assert sum(bool(m.sentence_cues) for m in ms) == cued, text
        assert same_sentence_twin_rate([ms]) == round(100 * twins / cued, 2), text
    assert same_sentence_twin_rate([parse_mentions(t, vocab) for t in sentences]) == 50.0      # 3 of 6


def test_twin_prob_is_the_real_same_sentence_rate():
    s = real_statistics(REAL)
    assert s["knob_sources"]["same_sentence_twin_rate"] == 4.29          # 278 of 6,473 cued training mentions
    assert WorldKnobsV3().twin_prob == pytest.approx(s["knob_sources"]["same_sentence_twin_rate"] / 100, abs=1e-4)
    assert WorldKnobs().twin_prob == 0.3382                               # world v2's default is unchanged
    heads = s["compound_heads"]
    assert heads["with_head"] == pytest.approx(heads["class_head"] + heads["word_head"], abs=0.011)
    assert {"oil", "juice", "powder", "mixture", "seed"} <= set(heads["top_heads"])


def test_compound_heads_name_the_look_and_leave_states_and_lists_alone(vocab):
    def heads(text):
        return [(m.name, m.head, m.start_state(), m.end_state()) for m in headed(parse_mentions(text, vocab), text, vocab)]

    assert heads("add sesame oil and rice wine vinegar") == [
        ("sesame", "oil", "compound:oil", "compound:oil"), ("oil", "", "", ""),
        ("rice", "vinegar", "compound:vinegar", "compound:vinegar"),
        ("wine", "vinegar", "compound:vinegar", "compound:vinegar"), ("vinegar", "", "", "")]
    assert heads("heat the sesame oil")[0] == ("sesame", "oil", "compound:oil", "compound:oil+heat")
    assert [h[1] for h in heads("add lemon juice and sesame seeds")] == ["juice", "seed"]
    assert [h[1] for h in heads("add the egg milk mixture")] == ["mixture", "mixture", ""]
    assert [h[1] for h in heads("add salt pepper and rice, noodles")] == ["", "", "", ""]   # lists
    assert heads("add potato chunks") == [("potato", "", "cut", "cut")]                      # a shape: cut
    assert [h[1] for h in heads("serve without sesame oil")] == ["", ""]                     # negated


def test_a_compound_object_looks_like_its_head():
    plans = sim.plan_segments("demo", 0, REAL, max_segments={"training": 400, "validation": 1, "testing": 1})
    world = sim.make_world("v3", 0, 32, WorldKnobsV3(context=0.9), REAL)
    by_head: dict[str, list[tuple[int, np.ndarray]]] = {}
    class_heads = 0
    for plan in plans["training"]:
        if not any(m.head for m in world.corpus.get(plan.key, [])):
            continue
        s, truth = world.segment(plan)
        for j, ob in enumerate(truth.objects[:truth.num_named]):
            state = ob.states[0]
            if not state.startswith("compound:") or "+" in state or ob.cls == world.vocab.forms.get(state[9:]):
                continue
            head = state[len("compound:"):]
            if head in world.vocab.forms:                  # a class head: the head class's look, not its own
                hc = world.vocab.forms[head]
                assert _cos(s.appearance[j], world.appearance(hc, "")) > _cos(s.appearance[j], world.appearance(ob.cls, ""))
                class_heads += 1
            else:
                by_head.setdefault(head, []).append((ob.cls, world.appearance(ob.cls, state)))
    assert class_heads >= 5
    shared = [h for h, obs in by_head.items() if len({c for c, _ in obs}) >= 2]
    assert shared                                          # e.g. lemon juice and tomato juice
    for h in shared:
        (c1, a1), (c2, a2) = next((a, b) for a in by_head[h] for b in by_head[h] if a[0] != b[0])
        assert _cos(a1, a2) == pytest.approx(1.0) and _cos(a1, world.class_appearance(c1)) < 0.9


def test_v3_is_v2_but_for_compound_looks_and_twin_frames():
    plans = sim.plan_segments("demo", 0, REAL, max_segments={"training": 200, "validation": 1, "testing": 1})
    w2 = sim.make_world("v2", 0, 16, WorldKnobs(context=0.9, twin_prob=0.0), REAL)
    w3 = sim.make_world("v3", 0, 16, WorldKnobsV3(context=0.9, twin_prob=0.0), REAL)
    tried = {True: 0, False: 0}                      # segments whose sentence has / has no compound head
    seen = {True: 0, False: 0}                       # segments with / without a compound state
    for plan in plans["training"]:
        has_head = any(m.head for m in w3.corpus.get(plan.key, []))
        if tried[has_head] >= 8:
            continue
        tried[has_head] += 1
        (s2, t2), (s3, t3) = w2.segment(plan), w3.segment(plan)
        compound = any(st.startswith("compound:") for t in (t2, t3) for o in t.objects for st in o.states)
        # no twins: v2's bytes, unless a compound state changed the looks (and the states stream: `heat the sesame
        # oil` switches from oil to heated oil, world v2's compound state does not switch)
        same = s2.features.tobytes() == s3.features.tobytes() and s2.rpn.tobytes() == s3.rpn.tobytes()
        assert same == (not compound), plan.key
        seen[compound] += 1
    assert seen[True] >= 5 and seen[False] >= 8
    # twins: v2 in exactly the frames of their object, v3 on their own span in the segment
    for world, knobs in (("v2", WorldKnobs(twin_prob=1.0)), ("v3", WorldKnobsV3(twin_prob=1.0))):
        w = sim.make_world(world, 0, 16, knobs, REAL)
        same_frames = []
        for plan in plans["training"][:40]:
            s, truth = w.segment(plan)
            same_frames += [bool((s.outside[i] == s.outside[o.of]).all())
                            for i, o in enumerate(truth.objects) if o.role == "twin"]
        assert len(same_frames) >= 10 and all(same_frames) == (world == "v2"), world


def test_v3_dataset_records_its_version_and_is_deterministic(small3, tmp_path):
    meta = json.loads((small3 / "dataset.json").read_text())
    assert meta["generator_version"] == "yc2-sim-3" and meta["world"] == "v3"
    assert meta["knobs"]["twin_prob"] == 0.0429 and meta["knob_sources"] == SOURCES_V3
    again = sim.simulate(tmp_path / "again", preset="smoke", seed=0, world="v3", knobs=WorldKnobsV3(context=0.9),
                         max_segments=SMALL)
    for f in sorted(small3.rglob("*")):
        if f.is_file():
            assert (again / f.relative_to(small3)).read_bytes() == f.read_bytes(), f
    with pytest.raises(DataError, match="WorldKnobsV3"):
        sim.simulate(tmp_path / "wrong", preset="smoke", world="v3", knobs=WorldKnobs(), max_segments=SMALL)


def test_the_oracle_teacher_reads_a_v3_world(small3):
    truth = json.loads((small3 / "world_truth.json").read_text())
    keys = list(json.loads((small3 / "train_dict.json").read_text()))[:SMALL["training"]]
    looks = teacher_looks(small3, keys)
    assert set(looks) == set(keys)
    for key in keys:
        look, cued = looks[key]
        assert look.shape[0] == len(truth[key]) and cued.tolist() == [r["mention"] == "cued" for r in truth[key]]


def test_a_folder_of_one_world_is_not_taken_for_another(tmp_path):
    """ensure_dataset (world sweeps, train's smoke default) refuses a dataset of another generator."""
    d = sim.ensure_dataset(tmp_path / "w", preset="smoke", world="v3")
    assert sim.ensure_dataset(d, preset="smoke", world="v3") == d                     # the same world: kept
    with pytest.raises(DataError, match=r"holds a 'yc2-sim-3' world, expected 'yc2-sim-2' \(world v2\)"):
        sim.ensure_dataset(d, preset="smoke")


def test_world_sweep_records_its_world_and_refuses_to_mix_two(tmp_path):
    out = tmp_path / "curve"
    out.mkdir()
    (out / "sweep.json").write_text(json.dumps({"axis": "context", "world_preset": "smoke", "world_seed": 0,
                                                "world_sets": {}, "overrides": {}}))   # from before --world: v2
    with pytest.raises(DataError, match=r"holds a sweep with world='v2', not 'v3'"):
        world_sweep("context", (0.5,), ["stvg"], tmp_path / "worlds", out, seeds=1, world_preset="smoke", world="v3")
    assert not (tmp_path / "worlds").exists()
