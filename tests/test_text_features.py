"""GloVe, contextual features and the text cache on the real vendored sentences."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workbench.io import DataError
from workbench.features.text_cache import TextFeatures, build_text_features, ensure_text_features
from workbench.text.glove import load_glove, read_glove_text

ROOT = Path(__file__).resolve().parents[1]
YC2 = ROOT / "data" / "youcook2_bb"
REPEAT_SEG = "84i8Qdnyd0k_01"   # val: water, water, salt, salt; "salt" is named once


def cos(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A dataset directory from the real files with small subsets of the split dicts."""
    d = tmp_path_factory.mktemp("yc2small")
    shutil.copy(YC2 / "class_file.csv", d)
    shutil.copy(YC2 / "seg_sentence_dict.json", d)
    for name, n in [("train_dict.json", 12), ("val_dict.json", 6), ("test_dict.json", 4)]:
        full = json.loads((YC2 / name).read_text())
        keys = list(full)[:n] + ([REPEAT_SEG] if name == "val_dict.json" else [])
        (d / name).write_text(json.dumps({k: full[k] for k in keys}))
    return d


@pytest.fixture(scope="module")
def encoder():
    from workbench.text.contextual import load_encoder
    return load_encoder("minilm", device="cpu")


# --- GloVe ---------------------------------------------------------------------------------

def test_glove_text_format_with_spaces_in_words(tmp_path):
    p = tmp_path / "g.txt"
    p.write_text("the 1 2 3\n. . 4 5 6\nat&t co 7 8 9\nbowl 1 0 0\n")
    v = read_glove_text(p)
    assert set(v) == {"the", ". .", "at&t co", "bowl"} and v["at&t co"].tolist() == [7, 8, 9]
    g = load_glove(str(p), words=["bowl", "the"])
    assert set(g.vectors) == {"bowl", "the"} and g.dim == 3
    assert g.phrase(["the", "bowl"]).tolist() == [1, 1, 1.5]


def test_oov_policy():
    g = load_glove("yc2-vocab")
    assert g.dim == 300 and "bowl" in g
    with pytest.raises(DataError, match="qwzx"):
        g.phrase(["bowl", "qwzx", "zzyq"], "error")
    v = g.phrase(["bowl", "qwzx"], "zero")
    assert np.allclose(v, g.get("bowl") / 2) and g.oov["qwzx"] == 1
    with pytest.raises(DataError, match="unknown token"):   # yc2-vocab has no <unk>
        g.word("qwzx", "unk")


# --- contextual ----------------------------------------------------------------------------

def test_minilm_offline_real_embedding(encoder):
    from workbench.text.contextual import encode
    s = ["put the bowl on the table and add salt to the bowl", "wash the bowl", "add salt and pepper"]
    spans = [[(8, 12), (38, 42), (49, 53)], [(9, 13)], [(4, 8)]]
    sent, objs = encode(encoder, s, spans, progress=False, batch_size=2)
    assert encoder.dim == 384 and sent.shape == (3, 384) and objs[0].shape == (3, 384)
    assert np.isfinite(sent).all() and np.abs(sent).sum(1).min() > 0
    # same word, different position -> different contextual feature; same class closer than another class
    assert not np.allclose(objs[0][0], objs[0][2])
    assert cos(objs[0][0], objs[1][0]) > cos(objs[0][0], objs[0][1])
    sent1, objs1 = encode(encoder, s[:1], spans[:1], progress=False, batch_size=1)   # batched == unbatched
    assert np.allclose(sent1[0], sent[0], atol=1e-4) and np.allclose(objs1[0], objs[0], atol=1e-4)


def test_absent_object_uses_name_segment(encoder):
    from workbench.text.contextual import encode
    _, objs = encode(encoder, ["whisk the eggs", "whisk the eggs"], [[None], [(10, 14)]],
                     [["bowl"], ["egg"]], progress=False)
    assert np.abs(objs[0][0]).sum() > 0 and not np.allclose(objs[0][0], objs[1][0])
    with pytest.raises(DataError, match="no span and no name"):
        encode(encoder, ["whisk"], [[None]], progress=False)


# Loaded into the child through PYTHONPATH: every socket connection or name lookup is written to a file
# and refused, so the test sees whether the command tried the network at all (instead of timing it).
NO_NETWORK = """
import os, socket
_log = os.environ["SCL_TEST_NETLOG"]
def _refuse(what):
    def refuse(*a, **k):
        with open(_log, "a") as f:
            f.write(f"{what} {a[1:2] if what == 'connect' else a[:1]}\\n")
        raise OSError(f"test: network use refused ({what})")
    return refuse
socket.socket.connect = _refuse("connect")
socket.socket.connect_ex = _refuse("connect")
socket.create_connection = _refuse("create_connection")
socket.getaddrinfo = _refuse("getaddrinfo")
"""


def test_hub_name_fails_fast_offline(tmp_path, data_dir):
    """A hub model name offline fails at once with a clear error and never touches the network (no
    connection, no name lookup): checked by refusing and logging every attempt in the child, not by a
    wall clock (which failed under load)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NO_NETWORK)
    netlog = tmp_path / "net.log"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"), HF_HUB_CACHE=str(tmp_path / "hf" / "hub"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
               SCL_TEST_NETLOG=str(netlog))
    probe = subprocess.run([sys.executable, "-c", "import socket; socket.getaddrinfo('localhost', 80)"],
                           capture_output=True, text=True, env=env, timeout=120)
    assert probe.returncode != 0 and netlog.read_text().startswith("getaddrinfo")  # the guard is live
    netlog.unlink()
    r = subprocess.run([sys.executable, "-m", "workbench", "text-features", "--data", str(data_dir),
                        "--encoder", "bert-base-uncased", "--out", str(tmp_path / "x.h5")],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "bert-base-uncased" in r.stderr and "local Hugging Face cache" in r.stderr and "path" in r.stderr
    assert "network use refused" not in r.stderr
    assert not netlog.exists(), netlog.read_text()
    assert not (tmp_path / "x.h5").exists()


# --- cache ---------------------------------------------------------------------------------

def test_cache_layout_reuse_and_invalidation(data_dir, tmp_path, capsys):
    out = tmp_path / "tf.h5"
    build_text_features(data_dir, out=out, progress=False, device="cpu")
    tf = TextFeatures(out)
    assert len(tf) == 12 + 7 + 4 and tf.ctx_dim == 384 and tf.glove_dim == 300
    seg = tf[REPEAT_SEG]
    assert [seg.sentence[a:b] for a, b in seg.obj_char_span] == ["water", "water", "salt", "salt"]
    assert seg.obj_char_span[0][0] != seg.obj_char_span[1][0]
    assert [seg.tok_words[a:b] for a, b in seg.obj_tok_span] == [["water"]] * 2 + [["salt"]] * 2
    assert np.allclose(seg.obj_ctx[2], seg.obj_ctx[3]) and not np.allclose(seg.obj_ctx[0], seg.obj_ctx[1])
    assert np.allclose(seg.obj_glove[0], load_glove().get("water"))
    assert seg.tok_glove.shape == (len(seg.tok_words), 300) and seg.sent_ctx.shape == (384,)
    assert tf.attrs["reused_mentions"] >= 1 and tf.attrs["absent_objects"] == 0
    mtime = out.stat().st_mtime_ns
    capsys.readouterr()

    build_text_features(data_dir, out=out, progress=False, device="cpu")          # same inputs: reused
    assert "reusing" in capsys.readouterr().out and out.stat().st_mtime_ns == mtime

    glove_txt = tmp_path / "g.txt"                                              # another GloVe: rebuilt
    words = sorted(load_glove().vectors)
    glove_txt.write_text("".join(f"{w} " + " ".join(["0.5"] * 4) + "\n" for w in words))
    build_text_features(data_dir, glove=str(glove_txt), out=out, progress=False, device="cpu", oov="zero")
    assert "changed: glove_source" in capsys.readouterr().out
    assert TextFeatures(out).glove_dim == 4

    val = json.loads((data_dir / "val_dict.json").read_text())                 # other inputs: rebuilt
    val[REPEAT_SEG][1] = val[REPEAT_SEG][1][:2]
    changed = tmp_path / "changed"
    shutil.copytree(data_dir, changed)
    (changed / "val_dict.json").write_text(json.dumps(val))
    ensure_text_features(changed, glove=str(glove_txt), out=out, progress=False, device="cpu", oov="zero")
    assert "rebuilding" in capsys.readouterr().out
    assert len(TextFeatures(out)[REPEAT_SEG].obj_class) == 2


def test_cache_oov_error_lists_words(data_dir, tmp_path):
    glove_txt = tmp_path / "g.txt"
    glove_txt.write_text("bowl 1 2\nwater 3 4\n")
    with pytest.raises(DataError, match=r"out of vocabulary: \[.*'salt'"):
        build_text_features(data_dir, glove=str(glove_txt), out=tmp_path / "tf.h5", progress=False)
    assert not (tmp_path / "tf.h5").exists()
