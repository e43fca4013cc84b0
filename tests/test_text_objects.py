"""Queried objects on the real vendored YouCook2-BB sentences."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.datasets.yc2 import load_class_file, load_sentences, load_split_dict
from workbench.io import DataError
from workbench.text.objects import anet_objects, find_objects, objects_for_segment, query_objects, tokenize

ROOT = Path(__file__).resolve().parents[1]
YC2 = ROOT / "data" / "youcook2_bb"


@pytest.fixture(scope="module")
def vocab():
    return load_class_file(YC2 / "class_file.csv")


@pytest.fixture(scope="module")
def sentences():
    return load_sentences(YC2 / "seg_sentence_dict.json")


def test_agreement_with_train_dict(vocab, sentences):
    train = load_split_dict(YC2 / "train_dict.json", len(vocab))
    agree = sum([o.class_id for o in find_objects(sentences[k], vocab)] == e.class_ids for k, e in train.items())
    assert len(train) == 9184
    assert agree >= 9184  # measured: every training segment agrees


def test_cli_extract_objects(tmp_path, vocab, sentences):
    sub = dict(list(sentences.items())[:50])
    (tmp_path / "s.json").write_text(json.dumps(sub))
    out = tmp_path / "objects.json"
    r = subprocess.run([sys.executable, "-m", "workbench", "extract-objects", "--sentences", str(tmp_path / "s.json"),
                        "--class-file", str(YC2 / "class_file.csv"), "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got = json.loads(out.read_text())
    assert list(got) == list(sub)
    assert got["2vNPfc8LaTc_00"] == [vocab.forms["bacon"], vocab.forms["pan"]]


def test_tokenisation_splits_hyphens_and_possessives(vocab):
    # spaCy splits these too; a whitespace split would miss ginger / garlic / it
    s = "add ginger-garlic paste until it's brown"
    names = [o.name for o in find_objects(s, vocab)]
    assert names == ["ginger", "garlic", "it"]
    assert [w for w, _, _ in tokenize("It's")] == ["it", "s"]


def test_plural_and_alt_forms_map_to_class(vocab):
    objs = find_objects("Add the Potatoes, shrimps and 2 eggs", vocab)
    assert [o.name for o in objs] == ["potato", "shrimp", "egg"]
    assert [("Add the Potatoes, shrimps and 2 eggs")[a:b] for a, b in (o.char_span for o in objs)] == \
        ["Potatoes", "shrimps", "eggs"]


def test_multiword_form_longest_match():
    class V:
        names = ["oil", "olive oil"]
        forms = {"oil": 0, "olive oil": 1}
    objs = find_objects("heat olive oil then oil", V)
    assert [(o.class_id, o.char_span) for o in objs] == [(1, (5, 14)), (0, (20, 23))]


def test_repeated_class_spans(vocab):
    s = "put in cold water and cook to a boil and salt the water"
    water, salt = vocab.forms["water"], vocab.forms["salt"]
    objs = objects_for_segment(s, [water, water, salt, salt], vocab)
    assert [s[a:b] for a, b in (o.char_span for o in objs)] == ["water", "water", "salt", "salt"]
    assert objs[0].char_span != objs[1].char_span            # k-th repeat -> k-th mention
    assert objs[1].char_span == (s.rindex("water"), len(s))
    assert [o.mention for o in objs] == ["named", "named", "named", "reused"]
    assert objs[3].char_span == objs[2].char_span


def test_absent_object_flagged(vocab):
    objs = objects_for_segment("whisk the eggs", [vocab.forms["bowl"], vocab.forms["egg"]], vocab)
    assert objs[0].char_span is None and objs[0].mention == "absent" and not objs[0].in_sentence
    assert objs[1].in_sentence
    with pytest.raises(DataError, match="class id"):
        objects_for_segment("whisk", [99], vocab, where="seg X")


def test_val_objects_all_located(vocab, sentences):
    val = load_split_dict(YC2 / "val_dict.json", len(vocab))
    objs = [o for k, e in val.items() for o in objects_for_segment(sentences[k], e.class_ids, vocab)]
    assert len(objs) == 6712
    assert sum(o.mention == "absent" for o in objs) == 0     # every annotated class is named in the real val
    assert sum(o.mention == "reused" for o in objs) > 0      # but some are annotated more often than named


def test_open_vocabulary_query(vocab):
    objs = query_objects("pick up the red mug and the bowl", ["mug", "bowl", "spoon"], vocab)
    assert [o.class_id for o in objs] == [None, vocab.forms["bowl"], None]
    assert objs[0].char_span == (16, 19) and objs[2].mention == "absent"


def test_anet_objects():
    tokens = ["A", "guy", "hold", "a", "shovel", "over", "his", "shoulder"]
    s, objs = anet_objects(tokens, [["shovel"], ["guy", "he"], ["shovel"]], [[4], [1, 6], [4]],
                           vocab=["guy", "he", "shovel"])
    assert [(o.name, o.class_id, s[o.char_span[0]:o.char_span[1]]) for o in objs] == \
        [("shovel", 2, "shovel"), ("guy", 0, "guy"), ("he", 1, "his")]
    with pytest.raises(DataError, match="word index"):
        anet_objects(tokens, [["guy"]], [[20]])
