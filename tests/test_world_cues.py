"""The state-cue parser on hand-written sentences, and the real-sentence statistics recomputed from the data."""
from __future__ import annotations

from pathlib import Path

import pytest

from workbench.datasets.yc2 import load_class_file
from workbench.sim.cues import carry_over, parse_mentions
from workbench.sim.stats import real_statistics

REAL = Path(__file__).resolve().parents[1] / "data" / "youcook2_bb"


@pytest.fixture(scope="module")
def vocab():
    return load_class_file(REAL / "class_file.csv")


def _cues(sentence, vocab):
    return {m.name: sorted((c.source, c.kind, c.word) for c in m.cues) for m in parse_mentions(sentence, vocab)}


def test_prenominal_words_plurals_and_prepositions(vocab):
    ms = parse_mentions("add chopped green onions to the pan", vocab)
    onion, pan = ms
    assert onion.name == "onion" and pan.name == "pan"        # plural form names the class
    assert {(c.source, c.kind, c.word) for c in onion.cues} == {("prenominal", "cut", "chopped"),
                                                                 ("prenominal", "colour", "green")}
    assert onion.start_state() == "colour:green" and onion.enters and not onion.after_preposition
    assert pan.cues == [] and pan.after_preposition


def test_verb_patients_stop_at_prepositions_and_next_verbs(vocab):
    assert _cues("fry the onion in the pan", vocab) == {"onion": [("patient", "heat", "fry")], "pan": []}
    assert _cues("peel cut and boil the potatoes", vocab) == {"potato": [("patient", "heat", "boil")]}
    assert _cues("coat the chicken with flour", vocab) == {"chicken": [("patient", "coat", "coat")], "flour": []}
    c = _cues("take the carrots out and chop the celery", vocab)
    assert c == {"carrot": [], "celery": [("patient", "cut", "chop")]}
    m = parse_mentions("fry the chopped onion", vocab)[0]
    assert m.start_state() == "cut" and m.end_state() == "heat"       # state changes inside the segment


def test_compound_heads_and_ambiguous_words(vocab):
    assert _cues("add lemon juice and sesame oil", vocab) == {
        "lemon": [("compound", "compound", "juice")], "sesame": [("compound", "compound", "oil")], "oil": []}
    assert _cues("brown the meat and add brown sugar", vocab) == {
        "meat": [("patient", "heat", "brown")], "sugar": [("prenominal", "colour", "brown")]}
    assert _cues("add potato chunks", vocab) == {"potato": [("compound", "cut", "chunks")]}


def test_negation_and_pronouns(vocab):
    ms = parse_mentions("serve the chopped salad without onion", vocab)
    assert [m.name for m in ms] == ["salad", "onion"]
    assert ms[1].negated and ms[1].cues == [] and not ms[0].negated
    assert _cues("chop onions without the whole tomatoes", vocab)["tomato"] == []
    it, = parse_mentions("fry it", vocab)
    assert it.is_pronoun and [(c.source, c.kind) for c in it.cues] == [("patient", "heat")]
    assert _cues("put them in the bowl", vocab) == {"them": [], "bowl": []}


def test_cues_carry_over_within_a_video(vocab):
    video = [parse_mentions(s, vocab) for s in ("chop the onion", "add the onion and garlic", "fry the onion",
                                                "add the onion")]
    carry_over(video)
    assert [(c.source, c.kind) for c in video[1][0].cues] == [("carried", "cut")]
    assert video[1][1].cues == []                                       # garlic: never cued before
    assert [(c.source, c.kind) for c in video[3][0].cues] == [("carried", "heat")]   # the latest state


def test_real_statistics_are_recomputed_from_the_vendored_data():
    s = real_statistics(REAL)
    cues = s["cues_train"]
    assert 20_000 <= cues["mentions"] <= 20_100                       # non-pronoun mentions of train_dict sentences
    assert 28 <= cues["cued"] <= 38 and 28 <= s["cues_val"]["cued"] <= 40
    assert cues["by_source"]["patient"] > cues["by_source"]["prenominal"] > cues["by_source"]["compound"] > 0
    assert 5 <= cues["carried"] <= 12
    assert cues["per_class"]["sesame"]["cued"] > 90 and cues["per_class"]["lemon"]["top_cues"]["juice"] > 60
    assert cues["per_class"]["onion"]["top_cues"]["green"] > 15
    assert 16 <= s["containers"]["label_share"] <= 17.5 and 35 <= s["containers"]["segments_naming_one"] <= 39
    assert s["containers"]["after_preposition"] > 75
    assert 43 <= s["labels"]["top10_share"] <= 45
    assert 5 <= s["labels"]["pronoun_share_train"] <= 6 and 2 <= s["labels"]["pronoun_share_val"] <= 3.5
