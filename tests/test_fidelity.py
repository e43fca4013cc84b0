"""Method fidelity on tiny tensors: the temporal forms, the bounded CAOS form, the learnable inverse
temperature, the StepLR schedule, and the statistics of multi-seed results."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from workbench.config import Config, preset
from workbench.io import DataError
from workbench.model import build_model, sample_negatives
from workbench.model.caos import caos_loss
from workbench.model.mil import AdditiveTemporal, STVGTemporal, build_temporal, pool_frames, temporal_logits

DIMS = dict(visual=24, glove=12, ctx=10)


def _set(linear: torch.nn.Linear, weight, bias=None):
    with torch.no_grad():
        linear.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
        if bias is not None:
            linear.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))


def test_stvg_temporal_is_the_mlp_over_the_four_part_concatenation():
    """score = w2 . tanh(W1 [R*q ; R ; max_k q ; q] + b1) + b2, written out by hand for d = 2, H = 1."""
    torch.manual_seed(0)
    tm = STVGTemporal(2, hidden=1).eval()                 # eval: no dropout
    W1 = torch.tensor([[0.5, -1.0, 2.0, 0.25, -0.5, 1.5, 1.0, -2.0]])  # (H, 4d) blocks: prod, frame, sent, text
    _set(tm.prod, W1[:, 0:2], [0.1])
    _set(tm.frame, W1[:, 2:4])
    _set(tm.sent, W1[:, 4:6])
    _set(tm.text, W1[:, 6:8])
    _set(tm.score, [[2.0]], [-0.3])
    frames = torch.tensor([[[0.6, 0.8], [1.0, 0.0], [0.0, -1.0]]])        # (B=1, T=3, d)
    text = torch.tensor([[[0.6, -0.8], [0.0, 1.0], [9.0, 9.0]]])            # (B, K=3, d), slot 2 padding
    mask = torch.tensor([[True, True, False]])
    got = tm(frames, text, mask)                                             # (1, 3, 3)
    sent = torch.tensor([0.6, 1.0])                                          # max over the real objects only
    for k in range(2):
        for t in range(3):
            x = torch.cat([frames[0, t] * text[0, k], frames[0, t], sent, text[0, k]])
            want = 2.0 * math.tanh(float(W1[0] @ x) + 0.1) - 0.3
            assert got[0, k, t].item() == pytest.approx(want, abs=1e-6)
    # the padded slot does not change the real objects' scores
    text2 = text.clone()
    text2[0, 2] = -5.0
    assert torch.allclose(tm(frames, text2, mask)[:, :2], got[:, :2])


def test_stvg_temporal_pools_the_max_of_unit_regions_and_uses_dropout():
    raw = torch.tensor([[[[3.0, 0.0], [0.0, -2.0]]]])                        # (1, 1, N=2, d=2)
    unit = torch.nn.functional.normalize(raw, dim=-1)
    assert torch.equal(pool_frames(STVGTemporal(2), raw, unit), torch.tensor([[[1.0, 0.0]]]))
    assert torch.equal(pool_frames(AdditiveTemporal(2), raw, unit), torch.tensor([[[1.5, -1.0]]]))
    assert torch.equal(pool_frames(None, raw, unit), torch.tensor([[[1.5, -1.0]]]))
    tm = STVGTemporal(8)
    assert tm.drop.p == pytest.approx(0.1)
    frames, text = torch.randn(2, 4, 8), torch.randn(2, 3, 8)
    tm.eval()
    assert torch.equal(tm(frames, text), tm(frames, text))
    tm.train()
    torch.manual_seed(1)
    a = tm(frames, text)
    assert not torch.equal(a, tm(frames, text))                              # dropout acts in training


def test_additive_temporal_is_relu_of_two_linear_maps():
    tm = AdditiveTemporal(2, hidden=2)
    _set(tm.frame, [[1.0, 0.0], [0.0, 1.0]], [0.0, -1.0])
    _set(tm.text, [[0.0, 2.0], [1.0, 0.0]])
    _set(tm.score, [[1.0, 3.0]], [0.5])
    frames = torch.tensor([[[1.0, 2.0]]])
    text = torch.tensor([[[0.5, -1.0]]])
    # h = relu([1, 2] + [0, -1] + [-2, 0.5]) = relu([-1, 1.5]) = [0, 1.5]; score = 3 * 1.5 + 0.5
    assert tm(frames, text).item() == pytest.approx(5.0)


def test_mean_temporal_gives_uniform_weights_and_the_registry():
    assert build_temporal("mean", 4) is None
    lg = temporal_logits(None, torch.zeros(2, 3, 4), torch.zeros(2, 5, 4))
    assert lg.shape == (2, 5, 3) and not lg.any()
    assert isinstance(build_temporal("stvg", 4), STVGTemporal)
    assert isinstance(build_temporal("additive", 4), AdditiveTemporal)
    with pytest.raises(ValueError):
        build_temporal("attention-typo", 4)
    assert Config().temporal == "stvg" and preset("stvg-no-attention").temporal == "mean"
    assert Config().replace(temporal="attention").temporal == "additive"      # the old name of the form
    with pytest.raises(DataError):
        Config().replace(temporal="nope")


@pytest.mark.parametrize("temporal", ["stvg", "additive", "mean"])
def test_scl_trains_one_step_with_each_temporal_form(temporal):
    from workbench.bench import synthetic_batch

    cfg = preset("scl", embed_dim=16, attn_heads=2, temporal=temporal)
    torch.manual_seed(0)
    model = build_model(cfg, DIMS)
    batch = synthetic_batch(6, 3, 5, DIMS["visual"], generator=torch.Generator().manual_seed(0),
                            Dw=DIMS["glove"], Dc=DIMS["ctx"])
    neg = sample_negatives(batch["obj_class"], batch["obj_mask"], torch.Generator().manual_seed(0))
    losses = model.losses(batch, neg)
    assert ("ttran" in losses) == (temporal != "mean")
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    if temporal != "mean":
        assert model.temporal.score.weight.grad.abs().sum() > 0


def test_caos_bounded_form():
    # one object per class, 2 classes: d+ = cos(D_o, E_f(o)), d- = cos(D_other, E_f(o))
    ef = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    concept = torch.tensor([[[1.0, 1.0], [0.0, 1.0]]])           # D_0 at 45 deg to E_f(0); D_1 = E_f(1)
    cls, mask = torch.tensor([[0, 1]]), torch.tensor([[True, True]])
    c = 1 / math.sqrt(2)
    # object 0: d+ = c, d- = cos(D_1, E_f(0)) = 0; object 1: d+ = 1, d- = cos(D_0, E_f(1)) = c
    want = -((1 + c) / (2 + c + 0) + (1 + 1) / (2 + 1 + c)) / 2
    assert caos_loss(ef, concept, cls, mask, "bounded").item() == pytest.approx(want, abs=1e-6)
    # bounded in [-1, 0] where the literal ratio explodes (d- -> 0)
    ef2 = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    concept2 = torch.tensor([[[1.0, 0.0], [1.0, 1e-7]]])         # d-(o_0) = cos(D_1, E_f(0)) ~ 1, d-(o_1) ~ 1e-7
    ratio = caos_loss(ef2, concept2, cls, mask, "ratio").item()
    bounded = caos_loss(ef2, concept2, cls, mask, "bounded").item()
    assert abs(ratio) > 1e5 and -1.0 <= bounded <= 0.0
    with pytest.raises(ValueError):
        caos_loss(ef, concept, cls, mask, "nope")


def test_learnable_inverse_temperature():
    from workbench.bench import synthetic_batch

    fixed = build_model(preset("scl", embed_dim=16, attn_heads=2, tau=0.1), DIMS)
    assert fixed.transfer_tau() == 0.1 and fixed.log_inv_tau is None
    model = build_model(preset("scl", embed_dim=16, attn_heads=2, tau=0.5, tau_learnable=True), DIMS)
    assert float(model.transfer_tau().detach()) == pytest.approx(0.5)
    batch = synthetic_batch(6, 3, 5, DIMS["visual"], generator=torch.Generator().manual_seed(0),
                            Dw=DIMS["glove"], Dc=DIMS["ctx"])
    neg = sample_negatives(batch["obj_class"], batch["obj_mask"], torch.Generator().manual_seed(0))
    losses = model.losses(batch, neg)
    (losses["stran"] + losses["ttran"]).backward()
    assert model.log_inv_tau.grad is not None and torch.isfinite(model.log_inv_tau.grad)
    with torch.no_grad():
        model.log_inv_tau.fill_(50.0)
    assert float(model.transfer_tau().detach()) == pytest.approx(0.01)                # 1/tau kept <= 100


def test_step_lr_schedule():
    from workbench.train import lr_at

    cfg = Config(lr=8e-4, lr_schedule="step", lr_step=40, lr_gamma=0.1)
    assert [lr_at(cfg, e) for e in (0, 39, 40, 79, 80)] == pytest.approx([8e-4, 8e-4, 8e-5, 8e-5, 8e-6])
    assert lr_at(Config(lr=1e-3), 100) == 1e-3
    for bad in (dict(lr_schedule="cosine"), dict(lr_step=0), dict(lr_gamma=0.0), dict(lr_gamma=1.5),
                dict(tau_learnable=True, tau=5.0)):
        with pytest.raises(DataError):
            Config().replace(**bad)


# --- statistics --------------------------------------------------------------------------------

def _per_seed():
    rows = []
    for p, base in (("stvg", 40.0), ("scl", 41.0)):
        for s, noise in zip((0, 1, 2), (0.0, 1.0, -1.0)):
            v = base + noise + (0.5 * s if p == "scl" else 0.0)
            rows.append({"preset": p, "seed": s, "label": p, "status": "ok", "error": "",
                         "validation_box_micro": v, "testing_box_micro": v - 1})
    return pd.DataFrame(rows)


def test_summary_and_paired_t_interval():
    from scipy import stats

    from workbench.report.results import paired_differences, summarize

    df = _per_seed()
    summ = summarize(df).set_index("preset")
    assert summ.loc["stvg", "validation_box_micro"] == pytest.approx(40.0)
    assert summ.loc["stvg", "validation_box_micro_std"] == pytest.approx(1.0)
    assert summ.loc["scl", "n_seeds"] == 3
    d = paired_differences(df).set_index("preset").loc["scl"]
    diffs = np.array([1.0, 1.5, 2.0])                                         # per-seed scl - stvg
    half = stats.t.ppf(0.975, 2) * diffs.std(ddof=1) / math.sqrt(3)
    assert d["validation_box_micro_diff"] == pytest.approx(1.5)
    assert d["validation_box_micro_lo"] == pytest.approx(1.5 - half)
    assert d["validation_box_micro_hi"] == pytest.approx(1.5 + half)
    assert d["validation_box_micro_pairs"] == 3
    one = paired_differences(df[df["seed"] == 0]).set_index("preset").loc["scl"]
    assert one["validation_box_micro_pairs"] == 1 and math.isnan(one["validation_box_micro_lo"])


def test_markdown_states_seeds_and_interval():
    from workbench.report.results import markdown

    df = _per_seed()
    df.loc[df["preset"] == "scl", "label"] = "scl [MiniLM-L6]"
    md = markdown(df)
    assert "| stvg | 3 | ok | " in md and "40.00 ± 1.00" in md
    assert "| scl [MiniLM-L6] | +1.50 [" in md and "(n=3)" in md and "t-interval" in md


def test_display_name_tells_the_encoder():
    from workbench.report.results import display_name
    from workbench.text.contextual import encoder_name

    assert encoder_name({"encoder": "minilm"}) == "MiniLM-L6"
    assert encoder_name({"encoder": "/models/my-bert/"}) == "my-bert"
    assert display_name("stvg-bert", preset("stvg-bert").to_dict(), "MiniLM-L6") == "stvg-bert [MiniLM-L6]"
    assert display_name("scl", preset("scl").to_dict(), "MiniLM-L6") == "scl [MiniLM-L6]"
    assert display_name("stvg", preset("stvg").to_dict(), "MiniLM-L6") == "stvg"
    assert display_name("scl-glove-bilstm", preset("scl-glove-bilstm").to_dict(), "MiniLM-L6") == "scl-glove-bilstm"
