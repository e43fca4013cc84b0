"""Every preset builds, trains one step with finite losses and changing parameters, and grounds."""
import pytest
import torch

from workbench.bench import synthetic_batch
from workbench.config import _CHOICES, MODEL_PRESETS, preset
from workbench.model import build_model, loss_weights, sample_negatives
from workbench.model.scl import INFER_PARTS

DIMS = dict(visual=24, glove=12, ctx=10, classes=67)  # classes: label embeddings of dvsa / vog


def tiny(name, **kw):
    return preset(name, embed_dim=16, attn_heads=2, lstm_hidden=8, **kw)


def batch(B=6, T=3, N=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return synthetic_batch(B, T, N, DIMS["visual"], K=3, L=8, Dw=DIMS["glove"], Dc=DIMS["ctx"], generator=g)


@pytest.mark.parametrize("name", sorted(MODEL_PRESETS))
def test_preset_trains_one_step(name):
    torch.manual_seed(0)
    cfg = tiny(name)
    model = build_model(cfg, DIMS)
    b = batch()
    neg = sample_negatives(b["obj_class"], b["obj_mask"], torch.Generator().manual_seed(1))
    weights = loss_weights(cfg)
    losses = model.losses(b, neg)
    assert set(losses) == set(weights)
    assert all(torch.isfinite(v) and v.dtype == torch.float32 for v in losses.values()), losses
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sum(weights[k] * v for k, v in losses.items()).backward()
    opt.step()
    # Every parameter receives a gradient (no dead module) and moves.
    unused = [k for k, p in model.named_parameters() if p.grad is None]
    assert not unused, unused
    moved = [k for k, p in model.named_parameters() if not torch.equal(p, before[k])]
    assert len(moved) == len(before)
    with torch.no_grad():
        if cfg.fusion == "ensemble":
            with pytest.raises(Exception, match="ensemble_weight"):
                model.ground(b)
            s = model.ground(b, ensemble_weight=0.3)
            parts = model.ground_parts(b)
            assert torch.allclose(s, 0.3 * parts["f"] + 0.7 * parts["c"])
        else:
            s = model.ground(b)
        assert s.shape == (6, 3, 3, 4) and torch.isfinite(s).all()
        q = model.temporal_weights(b)
        assert torch.allclose(q.sum(-1), torch.ones(6, 3))


def test_ablations_are_weights_and_switches():
    assert loss_weights(tiny("scl")) == {"mil_f": 1.0, "mil_c": 1.0, "clust": 0.4, "stran": 0.2, "ttran": 0.2}
    assert "clust" not in loss_weights(tiny("scl-no-caos"))
    assert set(loss_weights(tiny("scl-no-cmakt"))) == {"mil_f", "mil_c", "clust"}
    assert "stran" not in loss_weights(tiny("scl-no-spatial-transfer"))
    assert "ttran" not in loss_weights(tiny("scl-no-temporal-transfer"))
    assert loss_weights(tiny("stvg")) == {"mil_f": 1.0}
    # The full model and its ablations hold the same parameters (one model, not copies).
    shapes = lambda n: {k: p.shape for k, p in build_model(tiny(n), DIMS).named_parameters()}  # noqa: E731
    assert shapes("scl") == shapes("scl-no-caos") == shapes("scl-no-cmakt") == shapes("scl-infer-u")


def test_infer_modes():
    torch.manual_seed(0)
    b = batch()
    m = build_model(tiny("scl"), DIMS)
    sd = m.state_dict()
    with torch.no_grad():
        parts = m.ground_parts(b)
        for name, want in (("scl", parts["f"]), ("scl-infer-u", parts["u"]),
                           ("scl-infer-both", parts["f"] + parts["u"])):
            other = build_model(tiny(name), DIMS)
            other.load_state_dict(sd)
            assert torch.equal(other.ground(b), want)   # ground computes only the parts it adds: same bits
    assert set(INFER_PARTS) == set(_CHOICES["infer"])


def test_bad_config_is_refused():
    with pytest.raises(Exception, match="infer"):
        build_model(tiny("stvg", infer="u"), DIMS)
    with pytest.raises(Exception, match="fusion"):
        build_model(tiny("stvg", fusion="add"), DIMS)
