"""The positive control's teacher (cfg.teacher = "oracle", issue 21): M^c and Q^c are the world's
stated-state relevance, frozen; everything else is SCL as it is."""
import numpy as np
import pytest
import torch

from workbench.bench import synthetic_batch
from workbench.config import preset
from workbench.io import DataError
from workbench.model import build_model, sample_negatives
from workbench.model.cmakt import oracle_teacher, spatial_transfer_loss, temporal_transfer_loss

DIMS = dict(visual=6, glove=12, ctx=10, classes=67)


def test_oracle_teacher_is_the_cosine_with_the_stated_look_and_has_no_gradient():
    g = torch.Generator().manual_seed(0)
    regions = torch.randn(2, 3, 4, 6, generator=g).requires_grad_(True)    # (B, T, N, Dv)
    look = torch.randn(2, 2, 6, generator=g).requires_grad_(True)          # (B, K, Dv)
    om = torch.tensor([[True, True], [True, False]])
    cued = torch.tensor([[True, False], [True, True]])
    neg = torch.tensor([1, 0])
    t = oracle_teacher(regions, look, cued, om, neg)
    r = regions.detach().numpy()
    r = r / np.linalg.norm(r, axis=-1, keepdims=True)
    lk = look.detach().numpy()
    lk = lk / np.linalg.norm(lk, axis=-1, keepdims=True)
    want = np.einsum("bkd,btnd->bktn", lk, r)
    np.testing.assert_allclose(t["m_c"].numpy(), want, atol=1e-6)
    np.testing.assert_allclose(t["lg_c"].numpy(), want.max(-1), atol=1e-6)
    # the negative of slot k is object k mod K_j of the unmatched sentence j (segment 1 has one object)
    np.testing.assert_allclose(t["m_cneg"][0, 1].numpy(), np.einsum("d,tnd->tn", lk[1, 0], r[0]), atol=1e-6)
    np.testing.assert_allclose(t["m_cneg"][1, 1].numpy(), np.einsum("d,tnd->tn", lk[0, 1], r[1]), atol=1e-6)
    assert t["mask"].tolist() == [[True, False], [True, False]]
    for k in ("m_c", "lg_c", "m_cneg", "lg_cneg"):
        assert not t[k].requires_grad                      # frozen: nothing flows back into its inputs


def _batch(seed=1):
    b = synthetic_batch(4, 3, 5, DIMS["visual"], K=3, L=8, Dw=DIMS["glove"], Dc=DIMS["ctx"],
                        generator=torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed + 1)
    b["teacher_look"] = torch.randn(4, 3, DIMS["visual"], generator=g)
    b["teacher_cued"] = b["obj_mask"].clone()
    return b


def _transfer_grads(teacher: str, **over):
    torch.manual_seed(0)
    cfg = preset("scl", embed_dim=8, attn_heads=2, teacher=teacher, **over)
    model = build_model(cfg, DIMS)
    b = _batch()
    neg = sample_negatives(b["obj_class"], b["obj_mask"], torch.Generator().manual_seed(2))
    internals = {}
    out = model.losses(b, neg, internals)
    model.zero_grad()
    (out["stran"] + out["ttran"]).backward()
    norm = lambda mod: sum(float(p.grad.norm()) for p in mod.parameters() if p.grad is not None)  # noqa: E731
    return norm(model.ec) + norm(model.selector), norm(model.ef), internals, b


def test_oracle_transfer_moves_only_the_student():
    u_learned, f_learned, _, _ = _transfer_grads("learned")
    assert u_learned > 0 and f_learned > 0        # the paper's form: the transfer pulls U too
    u_oracle, f_oracle, internals, b = _transfer_grads("oracle")
    assert u_oracle == 0                          # the oracle teacher receives no gradient
    assert f_oracle > 0                           # ... and the transfer still acts on E_f
    t = internals["teacher"]
    r = torch.nn.functional.normalize(b["regions"].float(), dim=-1)
    lk = torch.nn.functional.normalize(b["teacher_look"], dim=-1)
    assert torch.allclose(t["m_c"], torch.einsum("bkd,btnd->bktn", lk, r), atol=1e-5)   # M^c is the truth


def test_oracle_teacher_needs_the_truth_and_the_transfer():
    cfg = preset("scl", embed_dim=8, attn_heads=2, teacher="oracle")
    model = build_model(cfg, DIMS)
    b = _batch()
    del b["teacher_look"]
    neg = sample_negatives(b["obj_class"], b["obj_mask"], torch.Generator().manual_seed(2))
    with pytest.raises(DataError, match="teacher_look"):
        model.losses(b, neg)
    for name in ("stvg", "scl-no-cmakt"):
        with pytest.raises(DataError, match="teacher='oracle'"):
            build_model(preset(name, teacher="oracle"), DIMS)


def test_train_with_the_oracle_teacher_end_to_end(smoke_data, tmp_path):
    """`train --set teacher=oracle` on a world v2 dataset: the batches carry the world's truth (the looks of
    ``teacher_looks``, cued flags), the transfer runs on it, and a world without the truth is refused."""
    import json
    import shutil

    from conftest import TINY
    from workbench.__main__ import main
    from workbench.features.batches import TrainBatches
    from workbench.sim.oracles import teacher_looks
    from workbench.workspace import Workspace

    sets = [x for k, v in {**TINY, "epochs": 1, "max_eval_segments": 5, "teacher": "oracle"}.items()
            for x in ("--set", f"{k}={v}")]
    out = tmp_path / "run"
    assert main(["train", "--data", str(smoke_data), "--preset", "scl", "--out", str(out), *sets]) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[0]["losses"]["stran"] > 0 and 0 < log[0]["diagnostics"]["teacher_objects"] <= 1

    ws = Workspace(preset("scl", data=str(smoke_data), teacher="oracle"))
    # issue 21 item 4: the CAOS self-positive fraction of the probe batch and of the epoch's batches, logged
    from workbench.model.diagnostics import epoch_self_positive
    cfg = json.loads((out / "config.json").read_text())["config"]
    trained = TrainBatches(ws.stores["training"], ws.text, cfg["batch_size"], cfg["num_frames"], cfg["seed"],
                           max_segments=cfg["max_train_segments"])
    assert 0 <= log[0]["diagnostics"]["caos_self_positive"] <= 1
    assert log[0]["diagnostics"]["caos_self_positive_epoch"] == epoch_self_positive(trained, 0)
    data = TrainBatches(ws.stores["training"], ws.text, 4, 2, 0, teacher=lambda keys: teacher_looks(smoke_data, keys))
    segs = data.indices[:4]
    b = data.make(segs, np.random.default_rng(0))
    table = teacher_looks(smoke_data, [ws.stores["training"].seg_ids[i] for i in segs])
    for row, i in enumerate(segs):
        look, cued = table[ws.stores["training"].seg_ids[i]]
        assert torch.equal(b["teacher_look"][row, :len(look)], torch.from_numpy(look))
        assert b["teacher_cued"][row].tolist() == cued.tolist() + [False] * (b["teacher_cued"].shape[1] - len(cued))

    old = tmp_path / "old"                    # a world written before the training truth was recorded
    shutil.copytree(smoke_data, old)
    truth = json.loads((old / "world_truth.json").read_text())
    (old / "world_truth.json").write_text(json.dumps({k: v for k, v in truth.items() if k not in table}))
    with pytest.raises(DataError, match="re-simulate"):
        teacher_looks(old, list(table))


# --- the teacher variants of issue 21 item 3 (config keys; the paper's form stays the default) -------------

def test_teacher_grad_stop_detaches_u_from_the_transfer():
    u_both, _, _, _ = _transfer_grads("learned", teacher_grad="both")
    u_stop, f_stop, _, _ = _transfer_grads("learned", teacher_grad="stop")
    assert u_both > 0 and u_stop == 0 and f_stop > 0


def test_separate_spatial_and_temporal_temperatures():
    torch.manual_seed(0)
    model = build_model(preset("scl", embed_dim=8, attn_heads=2, tau_spatial=0.5, tau_temporal=2.0), DIMS).eval()
    b = _batch()
    neg = sample_negatives(b["obj_class"], b["obj_mask"], torch.Generator().manual_seed(2))
    i = {}
    out = model.losses(b, neg, i)
    om, fm, eta = b["obj_mask"], b["frame_mask"], model.cfg.eta
    assert torch.allclose(out["stran"], spatial_transfer_loss(i["m_f"], i["m_c"], i["m_cneg"], om, fm, 0.5, eta))
    assert torch.allclose(out["ttran"], temporal_transfer_loss(i["lg_f"], i["lg_c"], i["lg_cneg"], om, fm, 2.0, eta))
    at_tau = temporal_transfer_loss(i["lg_f"], i["lg_c"], i["lg_cneg"], om, fm, 0.1, eta)
    assert not torch.allclose(out["ttran"], at_tau)
    with pytest.raises(DataError, match="tau_spatial"):
        preset("scl", tau_learnable=True, tau_spatial=0.5)


@pytest.mark.parametrize("shared", [False, True])
def test_shared_dropout_mask_of_the_transfer_pairs(shared):
    """The temporal calls in one step: E_f on (S, V), (S', V), (S, V'); then U on (S, V), (S', V), U- on
    (S, V), U on (S, V'). With shared_dropout the three (S, V) calls of the transfer (0, 3, 5) use one mask."""
    torch.manual_seed(0)
    model = build_model(preset("scl", embed_dim=8, attn_heads=2, shared_dropout=shared), DIMS).train()
    masks = []
    model.temporal.drop.register_forward_hook(lambda m, inp, out: masks.append((out == 0) & (inp[0] != 0)))
    b = _batch()
    neg = sample_negatives(b["obj_class"], b["obj_mask"], torch.Generator().manual_seed(2))
    model.losses(b, neg)
    assert len(masks) == 7
    same = [torch.equal(masks[0], masks[k]) for k in (3, 5)]
    assert all(same) if shared else not any(same)
    assert not torch.equal(masks[0], masks[1])   # the other calls keep their own masks


def test_breakdown_of_the_contextual_branch_alone(smoke_data, tmp_path):
    """Issue 21 item 3: U's own grounding, from a trained run's checkpoint with no retraining
    (``curve.run_breakdown(..., infer="u")``); infer="f" is the run's own breakdown; a preset without U is refused."""
    from conftest import TINY
    from workbench.__main__ import main
    from workbench.experiments.world_sweep import run_breakdown

    sets = [x for k, v in {**TINY, "epochs": 1, "max_eval_segments": 5}.items() for x in ("--set", f"{k}={v}")]
    runs = {}
    for name in ("scl", "stvg"):
        runs[name] = tmp_path / name
        assert main(["train", "--data", str(smoke_data), "--preset", name, "--out", str(runs[name]), *sets]) == 0
    own = run_breakdown(runs["scl"], smoke_data)
    assert run_breakdown(runs["scl"], smoke_data, infer="f") == own
    u = run_breakdown(runs["scl"], smoke_data, infer="u")
    assert (runs["scl"] / "breakdown-infer-u.json").is_file() and (runs["scl"] / "breakdown.json").is_file()
    assert u["all"]["boxes"] == own["all"]["boxes"] and u != own
    with pytest.raises(DataError, match="no contextual branch U"):
        run_breakdown(runs["stvg"], smoke_data, infer="u")
    with pytest.raises(DataError, match="expected 'f', 'u' or 'both'"):
        run_breakdown(runs["scl"], smoke_data, infer="x")
