"""World v2's appearance_from_words knob: class looks tied to their names' GloVe vectors (Table 4's
generalization protocol needs visual-semantic structure), off by default without changing any byte."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from workbench.sim import simulate as sim
from workbench.sim.base import PRONOUNS
from workbench.io import DataError
from workbench.text.glove import load_glove
from workbench.sim.knobs import WorldKnobs, parse_world_sets

REAL = Path(__file__).resolve().parents[1] / "data" / "youcook2_bb"
# simulate(preset="smoke", seed=3) (world v2, default knobs) with the code of commit 559863d, before the knob
# existed: sha256 over (relative path, bytes) of every file but dataset.json, and of dataset.json's JSON
# (sorted keys) without the new knob's entries.
V2_SMOKE_SEED3_FILES = "c9cc4d02df6eb37ad18be06b5f36263777fe2489769cf586052fc0196d9846ec"
# Issue 21 extended two derived files and nothing else: world_truth.json gained the training segments and
# a `cls` field, world_stats.json the training-time oracles. So the data files are hashed without them (the
# same hash with the code of b2777a5, whose full hash was the one above), the old truth rows must be there
# unchanged, and every old statistic must keep its value.
V2_SMOKE_SEED3_DATA = "d5a82ea533d62eeefcc6d17db3f18bb47bda5c08345172277a1efed8c4aa3165"
V2_SMOKE_SEED3_EVAL_TRUTH = "676f9f3aab87c6c70477f9a23ce70e8e1b6296dd9c06d1b840d2ca80212257fe"
V2_SMOKE_SEED3_STATS = "28ed4b7a754687e191466945fac75e12d6658ce2b991f796253d2c9da7ed9d7c"
DERIVED = ("dataset.json", "world_truth.json", "world_stats.json")
V2_SMOKE_SEED3_META = "f0627822bfbde870a44a90d27b132abf6c1f3f9fb56a61138b7868f378600da9"


def test_knob_range_errors_name_the_knob():
    assert parse_world_sets(["appearance_from_words=0.5"]).appearance_from_words == 0.5
    assert WorldKnobs().appearance_from_words == 0.0
    for bad in ("-0.1", "1.5", "nan", "abc"):
        with pytest.raises(DataError, match="appearance_from_words"):
            parse_world_sets([f"appearance_from_words={bad}"])


def test_default_world_is_byte_for_byte_the_world_before_the_knob(tmp_path):
    out = sim.simulate(tmp_path / "w", preset="smoke", seed=3)
    h = hashlib.sha256()
    for f in sorted(p for p in out.rglob("*") if p.is_file() and p.name not in DERIVED):
        h.update(str(f.relative_to(out)).encode())
        h.update(f.read_bytes())
    assert h.hexdigest() == V2_SMOKE_SEED3_DATA
    truth = json.loads((out / "world_truth.json").read_text())
    stats = json.loads((out / "world_stats.json").read_text())
    keys = [k for k in truth if all("cls" in r for r in truth[k])]
    for k in keys:
        for r in truth[k]:
            assert r.pop("cls") >= -1
    old_rows = {k: v for k, v in truth.items() if k in json.loads((out / "val_dict.json").read_text())
                or k in json.loads((out / "test_dict.json").read_text())}
    assert _sha(old_rows) == V2_SMOKE_SEED3_EVAL_TRUTH
    assert _sha(_without(stats, NEW_STATS)) == V2_SMOKE_SEED3_STATS
    # dataset.json without the knob of this file (its entries were added later)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["knobs"].pop("appearance_from_words") == 0.0 and "appearance_words" not in meta
    assert "assumption" in meta["knob_sources"].pop("appearance_from_words")
    assert hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest() == V2_SMOKE_SEED3_META


NEW_STATS = ("oracle_class_em", "oracle_teacher_em", "oracle_class_box", "learned_from")  # issue 21's oracles


def _without(x, names):
    return {k: _without(v, names) for k, v in x.items() if k not in names} if isinstance(x, dict) else x


def _sha(x) -> str:
    return hashlib.sha256(json.dumps(x, sort_keys=True).encode()).hexdigest()


def _pairs(world, glove, vocab):
    ids = [c for c in range(len(vocab.names)) if c not in PRONOUNS]
    g = {c: glove.get(vocab.names[c]) for c in ids}
    ids = [c for c in ids if g[c] is not None]
    word, look = [], []
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            word.append(float(g[a] @ g[b] / np.linalg.norm(g[a]) / np.linalg.norm(g[b])))
            look.append(float(world.class_appearance(a) @ world.class_appearance(b)))
    return np.array(word), np.array(look)


def test_words_near_in_glove_look_alike_at_w1_and_not_at_w0():
    vocab = sim.load_class_file(REAL / "class_file.csv")
    glove = load_glove("yc2-vocab")
    tied = sim.make_world("v2", 0, 64, WorldKnobs(appearance_from_words=1.0), REAL)
    assert tied.words_info["classes_tied"] == len(vocab.names) - len(PRONOUNS)
    word, look = _pairs(tied, glove, vocab)
    close = word >= np.quantile(word, 0.9)                   # the 10 % of class pairs nearest in GloVe
    assert look[close].mean() > look.mean() + 0.15
    assert np.corrcoef(word, look)[0, 1] > 0.6
    free = sim.make_world("v2", 0, 64, WorldKnobs(), REAL)   # w = 0: looks independent of the words
    assert free.words_info == {} and not free.word_looks
    word0, look0 = _pairs(free, glove, vocab)
    assert abs(look0[close].mean() - look0.mean()) < 0.1
    # w moves the base look only: a state's look is still the class look moved toward the state by ρ
    half = sim.make_world("v2", 0, 64, WorldKnobs(appearance_from_words=0.5), REAL)
    c = vocab.forms["onion"]
    assert np.allclose(half.appearance(c, ""), half.class_appearance(c))
    assert not np.allclose(half.class_appearance(c), free.class_appearance(c))


def test_word_oracle_finds_objects_only_when_looks_follow_words(tmp_path):
    from workbench.sim.oracles import word_oracle

    out = sim.simulate(tmp_path / "w1", preset="smoke", seed=0, holdout=3, knobs=WorldKnobs(appearance_from_words=1.0))
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["knobs"]["appearance_from_words"] == 1.0 and meta["appearance_words"]["classes_tied"] == 63
    res = word_oracle(out)["testing"]
    random = json.loads((out / "world_stats.json").read_text())["testing"]["random"]["box_micro"]
    assert res["heldout"]["boxes"] > 0 and res["heldout"]["box_micro"] > random + 15
    assert res["all"]["box_micro"] > random + 15
    with pytest.raises(DataError, match="world"):
        (out / "dataset.json").write_text(json.dumps({**meta, "world": "v1"}))
        word_oracle(out)
