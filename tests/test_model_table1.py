"""The defining equations of the Table 1 baselines (Extended DVSA, VOG, NAFAE) on tiny tensors,
each checked against an explicit loop over the paper's / public code's formula."""
import math

import numpy as np
import pytest
import torch

from workbench.config import preset
from workbench.model import build_model
from workbench.model.negatives import Negatives
from workbench.model.nafae import minmax
from workbench.model.vog import sinusoid_positions, snippet_index

DIMS = dict(visual=6, glove=5, ctx=3, classes=4)


def tiny_batch(B=3, T=3, N=4, K=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    obj_class = torch.tensor([[0, 1], [2, -1], [3, 1]])[:B, :K]
    return dict(regions=torch.randn(B, T, N, DIMS["visual"], generator=g),
                frame_mask=torch.ones(B, T, dtype=torch.bool),
                obj_glove=torch.randn(B, K, DIMS["glove"], generator=g),
                obj_mask=obj_class >= 0, obj_class=obj_class)


NEG = Negatives(sentence=torch.tensor([1, 2, 0]), video=torch.tensor([2, 0, 1]), fallbacks=0)


def model(name, **kw):
    torch.manual_seed(0)
    return build_model(preset(name, embed_dim=8, attn_heads=2, dtype="fp32", **kw), DIMS).eval()


def test_dvsa_score_is_squashed_scaled_dot_product():
    m, b = model("dvsa"), tiny_batch()
    s = m.ground(b)                                                          # (B, K, T, N)
    x = torch.relu(m.region[0](b["regions"]))                               # eval: dropout off
    e = m.label.weight[torch.where(b["obj_class"] >= 0, b["obj_class"], torch.tensor(4))]
    want = torch.sigmoid(torch.einsum("bkd,btnd->bktn", e, x) / math.sqrt(8))
    assert torch.allclose(s, want, atol=1e-6)
    assert m.label.weight.shape == (5, 8)                                  # 4 classes + the padding row


def test_dvsa_loss_is_the_video_level_ranking_loss():
    m, b = model("dvsa", margin=0.3), tiny_batch()
    loss = m.losses(b, NEG)["rank"]
    s = m.ground(b).detach().numpy()                                       # s(o_{i,k}, r) of (S_i, V_i)
    x = torch.relu(m.region[0](b["regions"])).detach()
    e = m.embed_objects(b).detach()
    mask = b["obj_mask"].numpy()

    def S(i, j):  # video-sentence score of sentence i with video j: mean_k max_{t,n}
        sc = torch.sigmoid(torch.einsum("kd,tnd->ktn", e[i], x[j]) / math.sqrt(8)).numpy()
        return np.mean([sc[k].max() for k in range(2) if mask[i, k]])

    assert np.allclose(S(0, 0), np.mean([s[0, k].max() for k in range(2)]))
    want = np.mean([0.5 * (max(0, 0.3 - S(i, i) + S(i, int(NEG.video[i])))
                           + max(0, 0.3 - S(i, i) + S(int(NEG.sentence[i]), i))) for i in range(3)])
    assert float(loss.detach()) == pytest.approx(want, abs=1e-6)


def test_vog_snippets_and_positions():
    assert snippet_index(5, 5).tolist() == [0, 1, 2, 3, 4]
    assert snippet_index(7, 5).tolist() == [0, 0, 1, 1, 2, 2, 3]           # c = ceil(7 / 5) = 2
    assert snippet_index(2, 5).tolist() == [0, 1]
    p = sinusoid_positions(3, 4)
    assert torch.allclose(p[0], torch.tensor([0.0, 1.0, 0.0, 1.0]))
    assert torch.allclose(p[2, :2], torch.tensor([math.sin(2.0), math.cos(2.0)]))


def test_vog_loss_is_the_guided_frame_weighted_ranking_loss():
    m, b = model("vog", margin=0.2, loss_factor=0.7, num_frames=3), tiny_batch()
    loss = float(m.losses(b, NEG)["rank"].detach())
    x = torch.relu(m.region[0](b["regions"])).detach()
    e = m.embed_objects(b).detach()
    g = m.guidance(e, b["obj_mask"], 3).detach().numpy()                  # (B, K, T)
    mask = b["obj_mask"].numpy()

    def f(i, j):  # frame scores (T,) of sentence i with video j: mean_k max_n
        sc = torch.sigmoid(torch.einsum("kd,tnd->ktn", e[i], x[j]) / math.sqrt(8)).numpy()
        return np.mean([sc[k].max(-1) for k in range(2) if mask[i, k]], 0)

    weighted, prior = [], []
    for i in range(3):
        w = (f(i, i) + np.mean([g[i, k] for k in range(2) if mask[i, k]], 0)) / 2
        for neg in (f(i, int(NEG.video[i])), f(int(NEG.sentence[i]), i)):
            weighted.extend(np.maximum(0, 0.2 - f(i, i) + neg) * w)
        prior.extend(-np.log(2 * w))
    assert loss == pytest.approx(0.7 * np.mean(weighted) + 0.3 * np.mean(prior), abs=1e-5)


def test_vog_guidance_ignores_padding_slots():
    m = model("vog", num_frames=3)
    e = torch.randn(1, 2, 8)
    one = m.guidance(e[:, :1], torch.tensor([[True]]), 3)
    padded = m.guidance(e, torch.tensor([[True, False]]), 3)
    assert torch.allclose(one, padded[:, :1], atol=1e-5)
    q = m.temporal_weights(tiny_batch())
    assert torch.allclose(q.sum(-1), torch.ones(3, 2), atol=1e-5)


def test_minmax_over_masked_axis():
    x = torch.tensor([[1.0, 3.0, 2.0, 100.0]])
    got = minmax(x, torch.tensor([[True, True, True, False]]), 1)
    assert torch.allclose(got, torch.tensor([[0.0, 1.0, 0.5, 0.0]]), atol=1e-4)


def test_nafae_losses_follow_the_frame_attention_equations():
    m, b = model("nafae", margin=1.0, vis_lambda=0.5, region_input="div100"), tiny_batch()
    out = m.losses(b, NEG)
    assert m.loss_weights(m.cfg) == {"rank": 10.0, "vis": 5.0}
    v = m.embed_regions(b["regions"]).detach().numpy()                   # (B, T, N, d)
    w = m.embed_objects(b["obj_glove"], b["obj_mask"]).detach().numpy()   # (B, K, d)
    assert np.allclose(v, np.tanh(m.region[0](b["regions"] / 100).detach().numpy()), atol=1e-6)
    mask = b["obj_mask"].numpy()
    B, T, K = 3, 3, 2
    S = np.einsum("skd,vtnd->vtnsk", w, v)                                # (v, t, n, s, k)
    P, top = S.max(2), S.argmax(2)                                        # (v, t, s, k)
    F = np.zeros((B, T, B))
    for a in range(B):
        for s in range(B):
            ks = [k for k in range(K) if mask[s, k]]
            for k in ks:
                p = P[a, :, s, k]
                A = (p - p.min()) / (p.max() - p.min() + 1e-5)
                F[a, :, s] += A * p / len(ks)
    term = np.zeros((B, T))
    for a in range(B):
        for t in range(T):
            term[a, t] = (np.mean([max(0, F[v_, t, a] - F[a, t, a] + 1) for v_ in range(B)])
                          + np.mean([max(0, F[a, t, s] - F[a, t, a] + 1) for s in range(B)]))
    assert float(out["rank"].detach()) == pytest.approx(term.mean(), abs=1e-4)
    dis = []
    for a in range(B):
        for k in [k for k in range(K) if mask[a, k]]:
            sc = P[a, :, a, k]
            scale = (sc - sc.min()) / (sc.max() - sc.min() + 1e-5)
            u = [v[a, t, top[a, t, a, k]] / np.linalg.norm(v[a, t, top[a, t, a, k]]) * scale[t] for t in range(T)]
            dis.extend(1 - u[t] @ u[r] for t in range(T) for r in range(T) if t != r)
    assert float(out["vis"].detach()) == pytest.approx(np.mean(dis), abs=1e-4)
    assert torch.allclose(m.ground(b), torch.einsum("bkd,btnd->bktn", torch.from_numpy(w), torch.from_numpy(v)),
                          atol=1e-5)


def test_nafae_l2_region_input():
    m, b = model("nafae"), tiny_batch()
    assert m.cfg.region_input == "l2"
    r = b["regions"] / b["regions"].norm(dim=-1, keepdim=True)
    assert torch.allclose(m.embed_regions(b["regions"]), torch.tanh(m.region[0](r)), atol=1e-6)


def test_label_models_need_the_class_count():
    from workbench.io import DataError

    with pytest.raises(DataError, match="classes"):
        build_model(preset("dvsa"), dict(visual=4, glove=4, ctx=4))
    with pytest.raises(DataError, match="class id 7 outside"):
        model("dvsa").ground(dict(tiny_batch(), obj_class=torch.tensor([[7, 0], [1, 2], [3, 0]])))


def test_glove_queries_ground_unseen_classes():
    """object_query=glove (Table 4): e(o) = W w(o) + b, so an open-vocabulary object (class -1) gets
    its own embedding instead of the shared padding row."""
    m, b = model("dvsa", object_query="glove"), tiny_batch()
    e = m.embed_objects(b)
    assert torch.allclose(e, m.glove(b["obj_glove"]), atol=1e-6)
    assert not hasattr(m, "label") and m.ground(b).shape == (3, 2, 3, 4)


@pytest.mark.parametrize("name", ["dvsa", "vog", "nafae"])
def test_table1_model_trains_selects_and_predicts(name, smoke_data, tmp_path):
    """One epoch end to end on the smoke world: train, select on validation, reload, predict."""
    from conftest import TINY
    from workbench.predict import load_run, predict_boxes
    from workbench.train import train

    cfg = preset(name, data=str(smoke_data), epochs=1, max_eval_segments=6,
                 **{k: v for k, v in TINY.items() if k != "lstm_hidden"})
    metrics = train(cfg, tmp_path / name, preset_name=name)
    assert all(0 <= metrics[s]["box_micro"] <= 100 for s in ("validation", "testing"))
    r = load_run(tmp_path / name)
    assert type(r.model).__name__ == {"dvsa": "ExtendedDVSA", "vog": "VOG", "nafae": "NAFAE"}[name]
    boxes = predict_boxes(r, "validation")
    assert boxes and all(b.ndim == 3 and b.shape[-1] == 4 for b in boxes.values())
