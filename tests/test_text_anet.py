"""ActivityNet-Entities text side: objects from process_clss / process_idx of the real skeleton,
cached through the same text-features command."""
import json

import numpy as np
import pytest

from workbench.__main__ import main
from workbench.io import DataError
from workbench.features.text_cache import TextFeatures, collect_inputs

SKELETON = "anet_entities_cleaned_class_thresh50_test_skeleton.json"


@pytest.fixture(scope="module")
def anet_text_dir(anet_dir, tmp_path_factory):
    """A directory holding the first 12 videos of the real public-test skeleton and the real split ids."""
    raw = json.loads((anet_dir / SKELETON).read_text())
    keep = dict(list(raw["annotations"].items())[:12])
    d = tmp_path_factory.mktemp("anet")
    (d / SKELETON).write_text(json.dumps({"vocab": raw["vocab"], "annotations": keep}))
    (d / "split_ids_anet_entities.json").write_text((anet_dir / "split_ids_anet_entities.json").read_text())
    return d, raw["vocab"], keep


def test_anet_inputs_follow_the_annotated_phrases(anet_text_dir):
    d, vocab, keep = anet_text_dir
    inp = collect_inputs(d)
    n_segments = sum(1 for v in keep.values() for s in v["segments"].values() if s["tokens"])
    assert len(inp.seg_ids) == n_segments and set(inp.splits) == {"testing"}
    for key, sentence, objs in zip(inp.seg_ids, inp.sentences, inp.objects):
        vid, seg = key.rsplit("_segment_", 1)
        s = keep[vid]["segments"][str(int(seg))]
        assert sentence == " ".join(s["tokens"])
        pairs = list(dict.fromkeys((c, i) for cs, ids in zip(s["process_clss"], s["process_idx"])
                                   for c, i in zip(cs, ids)))
        assert [(vocab[o.class_id], sentence[o.char_span[0]:o.char_span[1]]) for o in objs] == \
               [(c, s["tokens"][i]) for c, i in pairs]


def test_anet_text_features_cache(anet_text_dir, tmp_path, capsys):
    d, vocab, _ = anet_text_dir
    out = tmp_path / "tf.h5"
    assert main(["text-features", "--data", str(d), "--encoder", "minilm", "--glove", "yc2-vocab",
                 "--out", str(out), "--oov", "zero"]) == 0
    tf = TextFeatures(out)
    key = tf.seg_ids[0]
    st = tf[key]
    assert st.obj_ctx.shape == (len(st.obj_class), tf.ctx_dim) and st.sent_ctx.shape == (tf.ctx_dim,)
    assert all(0 <= c < len(vocab) for c in st.obj_class)
    assert np.isfinite(st.obj_ctx).all()


def test_anet_bad_word_index_names_the_segment(tmp_path):
    seg = {"process_clss": [["man"]], "tokens": ["a", "man"], "frame_ind": [], "process_idx": [[5]],
           "timestamps": [0, 1], "process_bnd_box": [], "crowds": []}
    (tmp_path / SKELETON).write_text(json.dumps({"vocab": ["man"], "annotations": {
        "v_x": {"duration": 1.0, "segments": {"0": seg}}}}))
    with pytest.raises(DataError, match="v_x"):
        collect_inputs(tmp_path)
