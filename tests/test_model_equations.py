"""Each equation of the model on tiny hand-computed tensors, plus batched == unbatched scoring."""
import math

import pytest
import torch

from workbench.bench import synthetic_batch
from workbench.config import preset
from workbench.model import build_model, sample_negatives
from workbench.model.caos import caos_loss, caos_means, extract_concept
from workbench.model.cmakt import ContextSelector, alignment_gap, negative_context, spatial_transfer_loss, temporal_transfer_loss
from workbench.model.mil import log_loss, masked_softmax, pair_score, temporal_weights, video_sentence_score
from workbench.model.text import GloveBiLSTM

DIMS = dict(visual=24, glove=12, ctx=10, classes=67)  # classes: label embeddings of dvsa / vog


def test_log_loss_scale():
    eta = 0.2
    x = torch.tensor([0.0, 0.2, -0.2, 100.0, -100.0])
    want = [math.log(2), math.log(1 + math.e), math.log(1 + 1 / math.e), 100.0 / eta, 0.0]
    assert torch.allclose(log_loss(x, eta), torch.tensor(want), atol=1e-6)


def test_max_mil_score():
    # B=1, K=2 (second slot is padding), T=2, N=3
    m = torch.tensor([[[[0.1, 0.5, -0.2], [0.3, 0.0, 0.2]],
                       [[9.0, 9.0, 9.0], [9.0, 9.0, 9.0]]]])
    q = torch.tensor([[[0.25, 0.75], [0.5, 0.5]]])
    h = video_sentence_score(m, q, torch.tensor([[True, False]]))
    assert torch.allclose(h, torch.tensor([0.5 * 0.25 + 0.3 * 0.75]))
    h2 = video_sentence_score(m, q, torch.tensor([[True, True]]))
    assert torch.allclose(h2, torch.tensor([(0.5 * 0.25 + 0.3 * 0.75 + 9.0) / 2]))


def test_temporal_softmax_masks_frames():
    logits = torch.tensor([[[1.0, 2.0, 50.0]]])
    q = temporal_weights(logits, torch.tensor([[True, True, False]]))
    e = math.exp(1.0)
    assert torch.allclose(q, torch.tensor([[[1 / (1 + e), e / (1 + e), 0.0]]]))
    # softened: tau scales the logits; an all-masked row gives zeros, not NaN
    q2 = masked_softmax(torch.tensor([[0.0, 2.0]]), torch.tensor([[True, True]]), tau=2.0)
    assert torch.allclose(q2, torch.tensor([[1 / (1 + e), e / (1 + e)]]))
    assert torch.equal(masked_softmax(torch.ones(1, 2), torch.zeros(1, 2, dtype=torch.bool)), torch.zeros(1, 2))


def test_context_selector():
    sel = ContextSelector(2)
    with torch.no_grad():
        sel.g.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        sel.g.bias.copy_(torch.tensor([0.5, -1.0]))
    ec_o, ec_s, ef = torch.tensor([[[1.0, 2.0]]]), torch.tensor([[3.0, -1.0]]), torch.tensor([[[2.0, 1.0]]])
    u = sel(ec_o + ec_s[:, None], ef)
    # (E_c(o) + E_c(S)) * (g(E_f) + 1) = [4, 1] * ([2.5, 1.0] + 1)
    assert torch.allclose(u, torch.tensor([[[4 * 3.5, 1 * 2.0]]]))


def test_negative_context_keeps_slots():
    ec_o = torch.arange(2 * 3 * 1, dtype=torch.float32).view(2, 3, 1)  # seg 0: 0,1,2; seg 1: 3,4,5
    ec_s = torch.tensor([[10.0], [20.0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    out = negative_context(ec_o, ec_s, mask, torch.tensor([1, 0]))
    # segment 0 takes segment 1's two objects cyclically: 3, 4, 3 (+ c(S_1) = 20)
    assert out[0, :, 0].tolist() == [23.0, 24.0, 23.0]
    assert out[1, :, 0].tolist() == [10.0, 11.0, 12.0]
    assert negative_context(ec_o, None, mask, torch.tensor([1, 0]))[0, :, 0].tolist() == [3.0, 4.0, 3.0]


def test_spatial_transfer_sign_and_scale():
    eta = 0.2
    om, fm = torch.tensor([[True]]), torch.tensor([[True]])
    m_f = torch.tensor([[[[0.0, math.log(3.0)]]]])  # softmax_n -> [0.25, 0.75]
    m_same = m_f.clone()
    m_other = torch.tensor([[[[math.log(3.0), 0.0]]]])  # -> [0.75, 0.25]: |diff| mean = 0.5
    # aligned positive, misaligned negative: A+ = 0, A- = 0.5 -> l(-0.5)
    good = spatial_transfer_loss(m_f, m_same, m_other, om, fm, tau=1.0, eta=eta)
    assert torch.allclose(good, torch.tensor(math.log1p(math.exp(-0.5 / eta))))
    bad = spatial_transfer_loss(m_f, m_other, m_same, om, fm, tau=1.0, eta=eta)
    assert torch.allclose(bad, torch.tensor(math.log1p(math.exp(0.5 / eta))))
    assert good < math.log(2) < bad


def test_temporal_transfer_ignores_padded_frames():
    om, fm = torch.tensor([[True]]), torch.tensor([[True, True, False]])
    lg_f = torch.tensor([[[0.0, 0.0, 5.0]]])
    lg_c = torch.tensor([[[0.0, 0.0, -5.0]]])  # differs only on the padded frame
    lg_n = torch.tensor([[[math.log(3.0), 0.0, 0.0]]])  # [0.75, 0.25] vs [0.5, 0.5] -> A- = 0.25
    loss = temporal_transfer_loss(lg_f, lg_c, lg_n, om, fm, tau=1.0, eta=0.2)
    assert torch.allclose(loss, torch.tensor(math.log1p(math.exp(-0.25 / 0.2))))
    gap = alignment_gap(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]]), torch.tensor([[True, False]]))
    assert torch.allclose(gap, torch.tensor([1.0]))


def test_caos_ratio_hand_vectors():
    # three objects: two of class 7 (segments 0, 1), one of class 9 (segment 1)
    ef = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]])
    ec_o = torch.tensor([[[2.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [0.0, 3.0]]])
    ec_s = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    cls = torch.tensor([[7, -1], [7, 9]])
    om = cls >= 0
    d = extract_concept(ec_o, ec_s)  # D: [1,0], [1,1], [0,3]
    assert torch.allclose(d[om], torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 3.0]]))
    d_pos, d_neg, has = caos_means(ef, d, cls, om)
    r = 1 / math.sqrt(2)
    assert torch.allclose(d_pos, torch.tensor([(1 + r) / 2, (1 + r) / 2, 1.0]))
    assert torch.allclose(d_neg, torch.tensor([0.0, 0.0, (0 + r) / 2]), atol=1e-7)
    # anchor 0 and 1 have d- = 0: the literal ratio is infinite -> this is why "contrast" exists
    assert not torch.isfinite(caos_loss(ef, d, cls, om, form="ratio"))
    ef2 = ef.clone()
    ef2[0, 0] = torch.tensor([1.0, 1.0])  # anchor 0 now: d+ = (r + 1)/2, d- = r
    d_pos, d_neg, _ = caos_means(ef2, d, cls, om)
    assert torch.allclose(d_pos[0], torch.tensor((r + 1) / 2)) and torch.allclose(d_neg[0], torch.tensor(r))
    contrast = caos_loss(ef, d, cls, om, form="contrast", temperature=0.5)
    d_pos, d_neg = torch.tensor([(1 + r) / 2] * 2 + [1.0]), torch.tensor([0.0, 0.0, r / 2])
    want = torch.nn.functional.softplus((d_neg - d_pos) / 0.5)
    assert torch.allclose(contrast, want.mean())
    # no concept extraction: D = E_c(o)
    assert torch.equal(extract_concept(ec_o, ec_s, extract=False), ec_o)


def test_caos_ratio_value():
    ef = torch.tensor([[[1.0, 1.0]], [[0.0, 1.0]]])
    d = torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]]])
    cls, om = torch.tensor([[1], [2]]), torch.ones(2, 1, dtype=torch.bool)
    r = 1 / math.sqrt(2)
    # anchor 0 (E_f [1,1]): d+ = cos([1,0],[1,1]) = r, d- = 1; anchor 1 (E_f [0,1]): d+ = r, d- = 0
    d_pos, d_neg, _ = caos_means(ef, d, cls, om)
    assert torch.allclose(d_pos, torch.tensor([r, r])) and torch.allclose(d_neg, torch.tensor([1.0, 0.0]), atol=1e-7)
    loss = caos_loss(ef[:1].expand(2, 1, 2), d, cls, om, form="ratio")  # both anchors [1,1]
    # anchor (class 1): d+ = r, d- = 1; anchor (class 2): d+ = cos([1,1],[1,1]) = 1, d- = r
    assert torch.allclose(loss, torch.tensor(-(r / 1 + 1 / r) / 2))


def test_negatives_share_no_class():
    cls = torch.tensor([[1, 2, -1], [3, -1, -1], [2, 4, -1], [5, 6, 7], [1, 9, -1]])
    om = cls >= 0
    for seed in range(20):
        neg = sample_negatives(cls, om, torch.Generator().manual_seed(seed))
        assert neg.fallbacks == 0
        for idx in (neg.sentence, neg.video):
            for i, j in enumerate(idx.tolist()):
                assert i != j
                assert not set(cls[i][om[i]].tolist()) & set(cls[j][om[j]].tolist())
    a = sample_negatives(cls, om, torch.Generator().manual_seed(3))
    b = sample_negatives(cls, om, torch.Generator().manual_seed(3))
    assert torch.equal(a.sentence, b.sentence) and torch.equal(a.video, b.video)
    assert torch.equal(a.to("cpu").sentence, a.sentence)


def test_negatives_fallback_is_counted():
    cls = torch.tensor([[1], [1], [2]])  # segment 2 shares nothing with 0, 1; 0 and 1 can pair with 2
    neg = sample_negatives(cls, cls >= 0, torch.Generator().manual_seed(0))
    assert neg.fallbacks == 0 and neg.sentence[:2].tolist() == [2, 2]
    same = torch.tensor([[1], [1], [1]])
    neg = sample_negatives(same, same >= 0, torch.Generator().manual_seed(0))
    assert neg.fallbacks == 6  # 3 sentences + 3 videos
    assert all(i != j for i, j in enumerate(neg.sentence.tolist()))


def test_pair_score_reuses_embeddings():
    torch.manual_seed(0)
    text = torch.nn.functional.normalize(torch.randn(3, 2, 4), dim=-1)
    vis = torch.nn.functional.normalize(torch.randn(3, 2, 5, 4), dim=-1)
    frames, fm, om = vis.mean(2), torch.ones(3, 2, dtype=torch.bool), torch.ones(3, 2, dtype=torch.bool)
    h, _, _ = pair_score(text, om, vis, frames, fm, None, text_idx=torch.tensor([2, 0, 1]),
                         video_idx=torch.tensor([0, 0, 2]))
    for i, (a, v) in enumerate([(2, 0), (0, 0), (1, 2)]):
        m = torch.einsum("kd,tnd->ktn", text[a], vis[v])
        assert torch.allclose(h[i], m.amax(-1).mean(-1).mean(), atol=1e-6)


def _segment(b, i, K, T):
    out = {}
    for k, v in b.items():
        v = v[i:i + 1]
        if k in ("regions", "frame_mask"):
            v = v[:, :T]
        elif k in ("obj_glove", "obj_ctx", "obj_mask", "obj_class", "obj_tok_span"):
            v = v[:, :K]
        out[k] = v
    return out


@pytest.mark.parametrize("name", ["stvg", "scl-infer-both", "scl-glove-bilstm", "dvsa"])
def test_batched_equals_unbatched(name):
    torch.manual_seed(0)
    cfg = preset(name, embed_dim=16, attn_heads=2, lstm_hidden=8)
    model = build_model(cfg, DIMS).eval()
    b = synthetic_batch(4, 5, 3, DIMS["visual"], K=3, L=8, Dw=DIMS["glove"], Dc=DIMS["ctx"],
                        generator=torch.Generator().manual_seed(1))
    frames = [5, 2, 4, 1]
    b["frame_mask"] = torch.arange(5)[None, :] < torch.tensor(frames)[:, None]
    b["regions"] = b["regions"] * b["frame_mask"][..., None, None]
    with torch.no_grad():
        s = model.ground(b, chunk_frames=2)
        q = model.temporal_weights(b)
        for i in range(4):
            K, T = int(b["obj_mask"][i].sum()), frames[i]
            one = _segment(b, i, K, T)
            assert torch.allclose(model.ground(one), s[i:i + 1, :K, :T], atol=1e-5)
            assert torch.allclose(model.temporal_weights(one), q[i:i + 1, :K, :T], atol=1e-5)
        assert torch.allclose(model.ground(b, chunk_frames=64), s, atol=1e-6)


def test_bilstm_ignores_padding_tokens():
    torch.manual_seed(0)
    enc = GloveBiLSTM(4, 3)
    tok = torch.randn(1, 5, 4)
    span = torch.tensor([[[1, 3], [-1, -1]]])
    o1, s1 = enc(tok[:, :3], torch.ones(1, 3, dtype=torch.bool), span)
    padded = torch.cat([tok[:, :3], torch.randn(1, 2, 4)], 1)
    o2, s2 = enc(padded, torch.tensor([[True, True, True, False, False]]), span)
    assert torch.allclose(o1, o2, atol=1e-6) and torch.allclose(s1, s2, atol=1e-6)
    assert torch.allclose(o1[0, 1], s1[0])  # an object with no span gets c(S)


def test_bf16_autocast_dtypes():
    torch.manual_seed(0)
    model = build_model(preset("scl", embed_dim=16, attn_heads=2), DIMS)
    b = synthetic_batch(4, 2, 3, DIMS["visual"], K=2, L=6, Dw=DIMS["glove"], Dc=DIMS["ctx"],
                        generator=torch.Generator().manual_seed(0))
    seen = {}
    orig = torch.nn.functional.linear

    def spy(x, w, bias=None):
        y = orig(x, w, bias)
        if w.shape[1] == DIMS["visual"]:
            seen["proj"] = y.dtype
        return y
    torch.nn.functional.linear = spy
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            losses = model.losses(b, sample_negatives(b["obj_class"], b["obj_mask"]))
            s = model.ground(b)
    finally:
        torch.nn.functional.linear = orig
    assert seen["proj"] == torch.bfloat16
    assert all(v.dtype == torch.float32 for v in losses.values()) and s.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in model.parameters())
