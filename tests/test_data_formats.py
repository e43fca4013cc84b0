"""Format-exact tests of the data layer: every real file vendored in data/ goes through its loader,
hand-written files pin each format, and each kind of bad input gets a DataError naming where."""
import collections
import copy
import json
import os
import pickle

import pytest

from workbench import records
from workbench.datasets import anet, robowatch, yc2
from workbench.io import DataError, load_builtin_pickle, read_json

# --- real files: every file in data/ is read here -------------------------------------------

TESTED_FILES = {
    "youcook2_bb": {
        "class_file.csv", "train_dict.json", "val_dict.json", "test_dict.json", "seg_sentence_dict.json",
        "youcookii_annotations.json", "yc2_bb_public_test_annotations.json", "train_entities.pkl",
        "val_entities.pkl", "test_entities.pkl", "validation-box-100.txt", "testing-box-100.txt",
        "class_times.json", "youcook_cls.txt", "word_embedding_glove.json",
        "YC2BB_README.md", "yc2_bb_skeleton.txt",  # documentation, checked below
    },
    "activitynet_entities": {
        "anet_entities_cleaned_class_thresh50_test_skeleton.json",
        "anet_entities_cleaned_class_thresh50_hidden_test_skeleton.json",
        "split_ids_anet_entities.json", "vg_object_vocab.txt", "anet_entities_skeleton.txt",
    },
}


def test_every_vendored_file_is_covered(yc2_dir):
    data = yc2_dir.parent
    on_disk = {d.name: {f.name for f in d.iterdir() if f.is_file() and f.name != "SOURCES.md"}
               for d in data.iterdir() if d.is_dir()}
    assert on_disk == TESTED_FILES


@pytest.fixture(scope="module")
def youcookii(yc2_dir):
    return yc2.load_youcookii(yc2_dir / "youcookii_annotations.json")


@pytest.fixture(scope="module")
def split_dicts(yc2_dir, vocab):
    return {s: yc2.load_split_dict(yc2_dir / n, len(vocab)) for s, n in yc2.SPLIT_DICT_NAMES.items()}


def test_real_class_file(vocab):
    assert len(vocab) == 67
    assert vocab.names[0] == "bowl" and vocab.names[66] == "they"
    onion = vocab.names.index("onion")
    assert vocab.id_of("onions") == vocab.id_of("onion") == vocab.id_of(" Onions ") == onion
    assert vocab.id_of("shrimps") == vocab.id_of("shrimp") == 16  # alternative singular column
    assert vocab.id_of("bowls") == 0  # plural column
    assert sorted(vocab.alternatives(16)) == ["shrimp", "shrimps"]
    with pytest.raises(DataError, match="class_file.csv"):
        vocab.id_of("spatula", where="x")


def test_real_split_dicts(split_dicts, youcookii, yc2_dir):
    assert {s: len(d) for s, d in split_dicts.items()} == {"training": 9184, "validation": 3042, "testing": 1423}
    for split, d in split_dicts.items():
        for key, e in d.items():
            assert e.key == key and e.split == split and len(e.class_ids) >= 1
            assert youcookii[key].subset == split  # same segment, same split in the NAFAE file
    # class_times.json is the class frequency of train_dict (the CI deconfounder prior)
    times = read_json(yc2_dir / "class_times.json")
    freq = collections.Counter(c for e in split_dicts["training"].values() for c in e.class_ids)
    assert {int(k): v for k, v in times.items()} == {c: freq[c] for c in range(67)}


def test_real_split_dict_roundtrip(split_dicts, yc2_dir, tmp_path):
    yc2.write_split_dict(tmp_path / "t.json", split_dicts["testing"].values())
    assert read_json(tmp_path / "t.json") == read_json(yc2_dir / "test_dict.json")


def test_real_sentences(yc2_dir, split_dicts, youcookii):
    sent = yc2.load_sentences(yc2_dir / "seg_sentence_dict.json")
    assert len(sent) == 15433 and set(sent) == set(youcookii)  # every segment, incl. those with no class word
    assert all(k in sent for d in split_dicts.values() for k in d)
    assert all(youcookii[k].sentence == s for k, s in sent.items())


def test_real_youcookii(youcookii):
    subsets = collections.Counter(s.subset for s in youcookii.values())
    assert subsets == {"training": 10337, "validation": 3492, "testing": 1604}
    videos = collections.Counter(s.subset for s in {s.vid: s for s in youcookii.values()}.values())
    assert videos == {"training": 1333, "validation": 457, "testing": 210}
    s = youcookii["GLd3aX16zBg_00"]
    assert (s.start, s.end, s.num_frames) == (90, 102, 12) and s.frame_time(0) == 90.5
    assert all(s.num_frames == s.end - s.start > 0 for s in youcookii.values())


def test_real_public_test_annotations(yc2_dir, vocab, youcookii, split_dicts):
    gt = yc2.load_official_annotations(yc2_dir / "yc2_bb_public_test_annotations.json", vocab)
    assert len(gt) == 1423 and len({g.vid for g in gt.values()}) == 210
    assert sum(len(g.objects) for g in gt.values()) == 3049
    assert set(gt) == set(split_dicts["testing"])
    for key, g in gt.items():
        assert g.rwidth == 720 and g.rheight > 0
        assert all(b is None for o in g.objects for b in o.boxes)  # boxes withheld: {}
        assert all(len(o.boxes) == youcookii[key].num_frames for o in g.objects)
        # test_dict ids are the annotated labels in annotation order ("onions" -> onion etc.)
        assert [vocab.id_of(o.label) for o in g.objects] == split_dicts["testing"][key].class_ids


@pytest.mark.parametrize("name,split,segments,frames", [
    ("validation-box-100.txt", "validation", 3492, 68590), ("testing-box-100.txt", "testing", 1604, 30950)])
def test_real_box100_frame_lists(yc2_dir, youcookii, split_dicts, name, split, segments, frames):
    counts = yc2.load_box100_frames(yc2_dir / name)
    assert len(counts) == segments and sum(counts.values()) == frames
    assert all(youcookii[k].subset == split and n == youcookii[k].num_frames for k, n in counts.items())
    assert set(split_dicts[split]) <= set(counts)


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_real_nafae_entities(yc2_dir, youcookii, vocab, split):
    ent = yc2.load_nafae_entities(yc2_dir / f"{split}_entities.pkl")
    per_video = collections.Counter(s.vid for s in youcookii.values())
    subset = {"train": "training", "val": "validation", "test": "testing"}[split]
    assert set(ent) == {s.vid for s in youcookii.values() if s.subset == subset}
    lemmas = (yc2_dir / "youcook_cls.txt").read_text().split()
    for vid, v in ent.items():
        assert len(v["category"]) == per_video[vid]
        assert all(c in lemmas for seg in v["category"] for c in seg)


def test_real_youcook_cls_and_glove(yc2_dir, vocab):
    from workbench.text.glove import read_glove_json

    lemmas = (yc2_dir / "youcook_cls.txt").read_text().split()
    assert len(lemmas) == 67 == len(set(lemmas)) and lemmas == sorted(lemmas)
    assert [w for w in lemmas if w not in vocab.forms] == ["leaf"]  # class file says "leaves"
    glove = read_glove_json(yc2_dir / "word_embedding_glove.json")
    assert len(glove) == 1003 and {v.shape for v in glove.values()} == {(300,)}
    assert [n for n in vocab.names if n not in glove] == ["mussel"]


def test_real_docs_name_the_formats(yc2_dir, anet_dir):
    skel = (yc2_dir / "yc2_bb_skeleton.txt").read_text()
    assert all(k in skel for k in ("rwidth", "rheight", "segments", "objects", "xtl", "occluded", "outside"))
    assert "67" in (yc2_dir / "YC2BB_README.md").read_text()
    skel = (anet_dir / "anet_entities_skeleton.txt").read_text()
    assert all(k in skel for k in ("process_clss", "process_idx", "frame_ind", "process_bnd_box"))


def test_entities_pickle_with_a_global_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.makedirs, (str(marker),))

    p = tmp_path / "evil_entities.pkl"
    p.write_bytes(pickle.dumps({"vid": Evil()}))
    with pytest.raises(DataError, match="evil_entities.pkl.*refusing to load global"):
        yc2.load_nafae_entities(p)
    assert not marker.exists()
    p.write_bytes(pickle.dumps({"a": [1, 2.5, "x", (3,)], "b": {None: True}}))  # builtins only: fine
    assert load_builtin_pickle(p) == {"a": [1, 2.5, "x", (3,)], "b": {None: True}}


@pytest.mark.parametrize("name,split,videos,segments", [
    ("anet_entities_cleaned_class_thresh50_test_skeleton.json", "testing", 2457, 8731),
    ("anet_entities_cleaned_class_thresh50_hidden_test_skeleton.json", "hidden_test", 3129, 4955)])
def test_real_anet_skeletons(anet_dir, name, split, videos, segments):
    vocab, segs = anet.load_anet_annotations(anet_dir / name)
    ids = anet.load_split_ids(anet_dir / "split_ids_anet_entities.json")
    assert len(vocab) == 431 and len(segs) == segments
    assert {s.vid for s in segs.values()} == set(ids[split]) and len(ids[split]) == videos
    assert all(s.process_bnd_box == [] and s.frame_ind == [] for s in segs.values())  # boxes withheld
    assert all(k == anet.anet_key(s.vid, s.seg) for k, s in segs.items())


def test_real_anet_split_ids_and_vg_vocab(anet_dir):
    ids = anet.load_split_ids(anet_dir / "split_ids_anet_entities.json")
    assert {k: len(v) for k, v in ids.items()} == {"training": 10009, "validation": 2460, "testing": 2457,
                                                   "hidden_test": 3129}
    assert all(v.startswith("v_") for vs in ids.values() for v in vs)
    assert len(set().union(*map(set, ids.values()))) == sum(map(len, ids.values()))  # disjoint
    vg = anet.load_vg_vocab(anet_dir / "vg_object_vocab.txt")
    assert len(vg) == 1601 and vg[0] == ["__background__"] and vg[1] == ["yolk"]
    assert ["stop sign", "stopsign"] in vg


# --- format-exact hand-written files ---------------------------------------------------------

OFFICIAL = """{"database": {"abc_DEF-12": {"recipe_type": "101", "rwidth": 720, "rheight": 405, "segments": {
 "3": {"objects": [
   {"label": "onions", "boxes": [
     {"xtl": 10, "ytl": 20.5, "xbr": 110, "ybr": 220, "occluded": 0, "outside": 0},
     {"xtl": 12, "ytl": 22, "xbr": 112, "ybr": 222, "occluded": 1, "outside": 0},
     {"xtl": 0, "ytl": 0, "xbr": 0, "ybr": 0, "occluded": 0, "outside": 1}]},
   {"label": "bowl", "boxes": [
     {"xtl": 300, "ytl": 100, "xbr": 400, "ybr": 200, "occluded": 0, "outside": 0}, {}, {}]}]},
 "10": {"objects": [{"label": "it", "boxes": [{}]}]}}}}}"""


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text if isinstance(text, str) else json.dumps(text))
    return p


def test_official_annotations_format(tmp_path, vocab):
    p = _write(tmp_path, "yc2_bb_val_annotations.json", OFFICIAL)
    gt = yc2.load_official_annotations(p, vocab)
    assert list(gt) == ["abc_DEF-12_03", "abc_DEF-12_10"]
    s = gt["abc_DEF-12_03"]
    assert (s.vid, s.seg, s.recipe, s.rwidth, s.rheight, s.num_frames) == ("abc_DEF-12", 3, "101", 720, 405, 3)
    onion, bowl = s.objects
    assert onion.label == "onions" and vocab.id_of(onion.label) == vocab.names.index("onion")
    assert onion.boxes[0] == records.Box(10, 20.5, 110, 220, 0, 0) and onion.boxes[0].counted
    assert onion.boxes[1].occluded == 1 and not onion.boxes[1].counted
    assert onion.boxes[2].outside == 1 and not onion.boxes[2].counted
    assert bowl.boxes[0].xyxy() == (300, 100, 400, 200) and bowl.boxes[1:] == [None, None]
    assert gt["abc_DEF-12_10"].num_frames == 1
    # writing back gives the same JSON (segment ids unpadded, {} for missing boxes)
    yc2.write_official_annotations(tmp_path / "out.json", gt.values())
    assert read_json(tmp_path / "out.json") == json.loads(OFFICIAL)


def test_split_dict_and_sentences_format(tmp_path):
    text = ('{"abc_DEF-12_03": [["validation", "101", "abc_DEF-12", "03"], [32, 0]],'
            ' "x_y_10": [["training", "7", "x_y", "10"], [66]]}')
    d = yc2.load_split_dict(_write(tmp_path, "val_dict.json", text), 67)
    assert d["abc_DEF-12_03"] == records.SplitEntry("validation", "101", "abc_DEF-12", 3, [32, 0])
    assert d["x_y_10"].key == "x_y_10" and yc2.parse_seg_key("x_y_10") == ("x_y", 10)
    yc2.write_split_dict(tmp_path / "w.json", d.values())
    assert (tmp_path / "w.json").read_text().strip() == text  # byte-exact
    sent = yc2.load_sentences(_write(tmp_path, "s.json", '{"x_y_10": "add the onions to the bowl"}'))
    assert sent == {"x_y_10": "add the onions to the bowl"}


def test_youcookii_format(tmp_path):
    raw = {"database": {"x_y": {"duration": 60.1, "subset": "validation", "recipe_type": "7", "video_url": "u",
                                "annotations": [{"segment": [3, 9], "id": 0, "sentence": "cut it"},
                                                {"segment": [10, 11], "id": 1, "sentence": "stir"}]}}}
    y = yc2.load_youcookii(_write(tmp_path, "youcookii_annotations.json", raw))
    assert y["x_y_00"] == records.SegmentInfo("x_y_00", "x_y", 0, 3.0, 9.0, "cut it", "validation", "7")
    assert y["x_y_00"].num_frames == 6 and y["x_y_00"].frame_time(5) == 8.5 and y["x_y_01"].num_frames == 1


def test_class_file_format(tmp_path):
    v = yc2.load_class_file(_write(tmp_path, "class_file.csv", "0,bowl,,bowls\n1,shrimp,shrimps,\n2,leaves,,\n"))
    assert v.names == ["bowl", "shrimp", "leaves"]
    assert v.forms == {"bowl": 0, "bowls": 0, "shrimp": 1, "shrimps": 1, "leaves": 2}


def test_box100_format(tmp_path):
    p = _write(tmp_path, "validation-box-100.txt", "a_b_01_0002.jpg, c_00_0001.jpg, a_b_01_0001.jpg")
    assert yc2.load_box100_frames(p) == {"a_b_01": 2, "c_00": 1}


ANET = {"vocab": ["man", "ball"], "annotations": {"v_abc": {"duration": 30.0, "segments": {"0": {
    "tokens": ["A", "man", "kicks", "a", "ball"], "process_clss": [["man"], ["ball"]],
    "process_idx": [[1], [4]], "frame_ind": [2, 9], "process_bnd_box": [[10, 20, 300, 400], [5.5, 6, 7, 8]],
    "timestamps": [1.5, 12.0], "crowds": [0, 0]}}}}}


def test_anet_cleaned_json_format(tmp_path):
    vocab, segs = anet.load_anet_annotations(_write(tmp_path, "anet.json", ANET))
    assert vocab == ["man", "ball"] and list(segs) == ["v_abc_segment_00"]
    s = segs["v_abc_segment_00"]
    assert s.frame_ind == [2, 9] and s.process_bnd_box[1] == [5.5, 6, 7, 8]
    assert [s.tokens[i] for idx in s.process_idx for i in idx] == ["man", "ball"]
    assert s.timestamps == [1.5, 12.0] and s.crowds == [0, 0]


ROBO = {"vid1": {"frm": [["f1", "f2"], ["f7"]],
                 "entity": [{"noun": ["gripper", "cup"]}, {"noun": ["drawer"]}],
                 "box": {"f1": {"box": [[1, 2, 50, 60], [10, 10, 20, 20]], "label": ["gripper", "cup"]},
                         "f7": {"box": [[0, 0, 224, 224]], "label": ["drawer"]}}}}


def test_robowatch_format(tmp_path):
    segs = robowatch.load_robowatch(_write(tmp_path, robowatch.ANNOTATION_NAME, ROBO))
    assert list(segs) == ["vid1_00", "vid1_01"]
    s0, s1 = segs["vid1_00"], segs["vid1_01"]
    assert s0.frames == ["f1", "f2"] and s0.nouns == ["gripper", "cup"]
    assert s0.boxes == {"f1": [([1.0, 2.0, 50.0, 60.0], "gripper"), ([10.0, 10.0, 20.0, 20.0], "cup")]}
    assert s1.boxes == {"f7": [([0.0, 0.0, 224.0, 224.0], "drawer")]} and s1.nouns == ["drawer"]


# --- bad inputs: each kind gets a DataError naming file / segment / key -----------------------

def _mutated(base, path, value):
    """Copy of ``base`` with the item at ``path`` (a key list) replaced (or deleted when value is DEL)."""
    out = copy.deepcopy(base)
    node = out
    for k in path[:-1]:
        node = node[k]
    if value is DEL:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


DEL = object()
_SEG = ["database", "abc_DEF-12", "segments", "3", "objects"]
_BOX = _SEG + [0, "boxes", 0]

OFFICIAL_BAD = [
    (_BOX, {"xtl": 10, "ytl": 20, "xbr": 110, "occluded": 0, "outside": 0}, r"abc_DEF-12_03 object 0 frame 0.*keys"),
    (_BOX + ["xbr"], 5, r"abc_DEF-12_03 object 0 frame 0: malformed box"),
    (_BOX + ["ytl"], "top", r"abc_DEF-12_03 object 0 frame 0: non-numeric"),
    (_BOX + ["ytl"], float("nan"), r"abc_DEF-12_03 object 0 frame 0: non-finite"),
    (_BOX + ["occluded"], 2, r"abc_DEF-12_03 object 0 frame 0: occluded/outside"),
    (_SEG + [1, "boxes"], [{}, {}], r"abc_DEF-12_03: objects have different frame counts \[2, 3\]"),
    (_SEG + [1, "label"], "spatula", r"abc_DEF-12_03 object 1: unknown object label 'spatula'"),
    (_SEG + [1, "boxes"], {}, r"abc_DEF-12_03 object 1: expected"),
    (["database", "abc_DEF-12", "rwidth"], DEL, r"video abc_DEF-12: expected 'rwidth'"),
    (["database", "abc_DEF-12", "rheight"], "405px", r"video abc_DEF-12: rwidth/rheight"),
    (["database", "abc_DEF-12", "segments", "x3"], {"objects": []}, r"segment id 'x3' is not a number"),
]


@pytest.mark.parametrize("path,value,msg", OFFICIAL_BAD)
def test_official_annotations_bad(tmp_path, vocab, path, value, msg):
    p = _write(tmp_path, "yc2_bb_val_annotations.json", _mutated(json.loads(OFFICIAL), path, value))
    with pytest.raises(DataError, match=r"yc2_bb_val_annotations.json: .*" + msg):
        yc2.load_official_annotations(p, vocab)


def test_not_json_is_named(tmp_path):
    with pytest.raises(DataError, match="broken.json: not valid JSON"):
        yc2.load_official_annotations(_write(tmp_path, "broken.json", '{"database": {'))
    with pytest.raises(DataError, match="absent.json: file not found"):
        yc2.load_split_dict(tmp_path / "absent.json")


SPLIT_OK = {"abc_03": [["validation", "101", "abc", "03"], [32, 0]]}


@pytest.mark.parametrize("value,msg", [
    ({"abc_04": SPLIT_OK["abc_03"]}, r"segment abc_04: key does not match vid 'abc' and segment '03'"),
    ({"abc_03": [["val", "101", "abc", "03"], [1]]}, r"segment abc_03: split 'val' is not one of"),
    ({"abc_03": [["validation", "101", "abc", "03"], [67]]}, r"segment abc_03: class ids must be integers in \[0, 67\)"),
    ({"abc_03": [["validation", "101", "abc"], [1]]}, r"segment abc_03: expected \[\[split, recipe, vid, seg\]"),
    ({"abc_03": [["validation", "101", "abc", "x3"], [1]]}, r"segment abc_03: segment number 'x3'"),
    ([SPLIT_OK], r"expected a JSON object keyed by segment"),
])
def test_split_dict_bad(tmp_path, value, msg):
    p = _write(tmp_path, "val_dict.json", value)
    with pytest.raises(DataError, match=r"val_dict.json: ?" + msg):
        yc2.load_split_dict(p, 67)


@pytest.mark.parametrize("text,msg", [
    ("0,bowl,,bowls\n2,pot,,pots\n", r"class_file.csv:2: expected class id 1"),
    ("0,bowl,,bowls\n1,plate,bowls,\n", r"class_file.csv:2: form 'bowls' already names class 0"),
    ("0,bowl,bowls\n", r"class_file.csv:1: expected 4 fields"),
    ("0,,,bowls\n", r"class_file.csv:1: empty singular"),
])
def test_class_file_bad(tmp_path, text, msg):
    with pytest.raises(DataError, match=msg):
        yc2.load_class_file(_write(tmp_path, "class_file.csv", text))


def test_sentences_and_youcookii_bad(tmp_path):
    with pytest.raises(DataError, match=r"s.json: segment x_00: sentence must be a string"):
        yc2.load_sentences(_write(tmp_path, "s.json", {"x_00": ["cut"]}))
    raw = {"database": {"x": {"subset": "training", "annotations": [{"segment": [9, 3], "id": 0}]}}}
    with pytest.raises(DataError, match=r"youcookii_annotations.json: segment x_00: end 3.0 before start 9.0"):
        yc2.load_youcookii(_write(tmp_path, "youcookii_annotations.json", raw))
    raw["database"]["x"]["annotations"] = [{"segment": [3], "id": 0}]
    with pytest.raises(DataError, match=r"youcookii_annotations.json: video x: annotation needs 'segment'"):
        yc2.load_youcookii(_write(tmp_path, "youcookii_annotations.json", raw))


def test_entities_bad(tmp_path):
    p = tmp_path / "val_entities.pkl"
    p.write_bytes(pickle.dumps({"vid9": {"sentence_raw": [["a"]], "sentence": [["a"]], "noun": [], "category": [[]]}}))
    with pytest.raises(DataError, match=r"val_entities.pkl: video vid9: per-segment lists differ"):
        yc2.load_nafae_entities(p)
    p.write_bytes(pickle.dumps({"vid9": {"sentence": [["a"]]}}))
    with pytest.raises(DataError, match=r"val_entities.pkl: video vid9: expected lists"):
        yc2.load_nafae_entities(p)


@pytest.mark.parametrize("text,msg", [
    ("a_01_0001.jpg, a_01_0003.jpg", r"segment a_01: frames must be 1..2, got \[1, 3\]"),
    ("a_01_0001.jpg, a_01_0001.jpg", r"segment a_01: frame 1 listed twice"),
    ("a_01_0001.jpg, a_01_x.jpg", r"entry 1 'a_01_x.jpg'"),
    ("a_01_0001.png", r"entry 0 'a_01_0001.png'"),
])
def test_box100_bad(tmp_path, text, msg):
    with pytest.raises(DataError, match=r"testing-box-100.txt: " + msg):
        yc2.load_box100_frames(_write(tmp_path, "testing-box-100.txt", text))


_ASEG = ["annotations", "v_abc", "segments", "0"]


@pytest.mark.parametrize("path,value,msg", [
    (_ASEG + ["frame_ind"], [2, 10], r"box 1: frame_ind 10 not in 0..9"),
    (_ASEG + ["process_idx"], [[1], [5]], r"phrase 1: word index \[5\] outside the 5 tokens"),
    (_ASEG + ["process_bnd_box"], [[10, 20, 300, 400]], r"frame_ind and process_bnd_box differ"),
    (_ASEG + ["process_bnd_box", 1], [7, 6, 5, 8], r"box 1: malformed process_bnd_box"),
    (_ASEG + ["process_clss", 1], ["bat"], r"phrase 1: classes \['bat'\] not in the file's vocab"),
    (_ASEG + ["tokens"], DEL, r"expected keys"),
])
def test_anet_bad(tmp_path, path, value, msg):
    p = _write(tmp_path, "anet.json", _mutated(ANET, path, value))
    with pytest.raises(DataError, match=r"anet.json: video v_abc segment 0: " + msg):
        anet.load_anet_annotations(p)


def test_anet_split_ids_and_vg_vocab_bad(tmp_path):
    with pytest.raises(DataError, match=r"split_ids.json: expected \{split: \[video ids\]\}"):
        anet.load_split_ids(_write(tmp_path, "split_ids.json", {"training": "v_a"}))
    with pytest.raises(DataError, match=r"vg.txt:2: empty class name"):
        anet.load_vg_vocab(_write(tmp_path, "vg.txt", "yolk\nstop sign,\n"))


@pytest.mark.parametrize("path,value,msg", [
    (["vid1", "frm"], [["f1"]], r"video vid1: 1 segments in 'frm' but 2 in 'entity'"),
    (["vid1", "box", "f1", "box", 0], [50, 2, 1, 60], r"video vid1 frame f1: malformed box \[50, 2, 1, 60\]"),
    (["vid1", "box", "f1", "box", 0], [1, 2, 50], r"video vid1 frame f1: malformed box"),
    (["vid1", "box", "f1", "label"], ["gripper"], r"video vid1 frame f1: expected \{'box'"),
    (["vid1", "entity", 1], ["drawer"], r"video vid1 segment 1: entity must be"),
    (["vid1", "box"], DEL, r"video vid1: expected keys 'frm', 'entity', 'box'"),
])
def test_robowatch_bad(tmp_path, path, value, msg):
    p = _write(tmp_path, robowatch.ANNOTATION_NAME, _mutated(ROBO, path, value))
    with pytest.raises(DataError, match=robowatch.ANNOTATION_NAME + ": " + msg):
        robowatch.load_robowatch(p)
