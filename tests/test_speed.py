"""The fast training step computes what the straightforward formulation computes: losses and
gradients on tiny tensors (fp32 tightly, bf16 within bf16 rounding), and fused Adam makes the
update of the plain Adam loop. Also the dtype=auto decision and its per-machine cache."""
import json

import pytest
import torch
import torch.nn.functional as F

from workbench import allocator, precision
from workbench.bench import synthetic_batch
from workbench.config import preset
from workbench.engine import autocast, make_optimizer
from workbench.model import build_model, loss_weights, sample_negatives
from workbench.model.visual import VisualEmbedding

DIMS = dict(visual=64, glove=300, ctx=384, classes=67)
SMALL = dict(embed_dim=32, attn_heads=4)


def straightforward_visual(self, regions):
    """E_v(r) = tanh(x + Attn(x)), x = Linear(r / |r|): the input normalised first, in fp32,
    attention as softmax(q k^T / sqrt(hd)) v spelled out per head."""
    B, T, N, _ = regions.shape
    r = regions.float()
    x = F.linear(r / r.norm(dim=-1, keepdim=True), self.proj.weight.float(), self.proj.bias.float())
    if self.attention == "frame":
        d, h = x.shape[-1], self.heads
        qkv = F.linear(x, self.qkv.weight.float(), self.qkv.bias.float()).view(B, T, N, 3, h, d // h)
        q, k, v = (qkv[..., i, :, :].transpose(-2, -3) for i in range(3))       # (B, T, h, N, hd)
        w = torch.softmax(q @ k.transpose(-1, -2) / (d // h) ** 0.5, dim=-1)
        a = (w @ v).transpose(-2, -3).reshape(B, T, N, d)
        x = x + F.linear(a, self.out.weight.float(), self.out.bias.float())
    return torch.tanh(x)


def _losses_and_grads(name, dtype, reference, monkeypatch, seed=0):
    cfg = preset(name, dtype=dtype, **SMALL)
    torch.manual_seed(seed)
    model = build_model(cfg, DIMS)
    g = torch.Generator().manual_seed(seed)
    batch = synthetic_batch(6, 3, 5, DIMS["visual"], generator=g)
    neg = sample_negatives(batch["obj_class"], batch["obj_mask"], g)
    with monkeypatch.context() as m:
        if reference:
            m.setattr(VisualEmbedding, "forward", straightforward_visual)
        with autocast(cfg, torch.device("cpu")):
            losses = model.losses(batch, neg)
        w = loss_weights(cfg)
        total = sum(w[k] * v.float() for k, v in losses.items())
        total.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return {k: float(v.detach()) for k, v in losses.items()}, grads


@pytest.mark.parametrize("name", ["stvg", "scl", "fusion-ensemble", "stvg-no-attention"])
def test_fast_step_matches_straightforward_fp32(name, monkeypatch):
    fast, gf = _losses_and_grads(name, "fp32", False, monkeypatch)
    ref, gr = _losses_and_grads(name, "fp32", True, monkeypatch)
    assert fast.keys() == ref.keys() and gf.keys() == gr.keys()
    for k in ref:
        assert fast[k] == pytest.approx(ref[k], rel=1e-5, abs=1e-6), k
    for n in gr:
        torch.testing.assert_close(gf[n], gr[n], rtol=1e-4, atol=1e-6, msg=n)


@pytest.mark.parametrize("name", ["stvg", "scl"])
def test_fast_step_matches_straightforward_bf16(name, monkeypatch):
    """Under bf16 the fast step is as close to the fp32 straightforward step as the straightforward
    step run in bf16 is (the temporal MLP's gradients are ill-conditioned in bf16 in either form)."""
    fast, gf = _losses_and_grads(name, "bf16", False, monkeypatch)
    ref16, g16 = _losses_and_grads(name, "bf16", True, monkeypatch)
    ref, gr = _losses_and_grads(name, "fp32", True, monkeypatch)
    for k in ref:
        assert fast[k] == pytest.approx(ref[k], rel=3e-2, abs=3e-3), k
    cos = lambda a, b: float(F.cosine_similarity(a.flatten().double(), b.flatten().double(), dim=0))  # noqa: E731
    # A gradient that is zero up to rounding has no direction: its cosine compares the signs of rounding
    # noise, which differ between bf16 kernels (AMX, avx512_bf16, torch's own loop). The temporal score's
    # bias is one: it shifts every frame's logit alike and the softmax over frames is shift-invariant, so
    # its exact gradient is 0 (fp32 gives ~1e-7 of the step's largest gradient entry). Such a parameter
    # is checked with an absolute tolerance of bf16's relative precision (2^-8, doubled for the sums)
    # times that scale; the rest by direction.
    scale = max(float(g.abs().max()) for g in gr.values())
    zero = {n for n in gr if float(gr[n].abs().max()) <= 1e-5 * scale}
    assert zero <= {"temporal.score.bias"}, zero  # a new zero gradient is a finding, not noise to hide
    for n in gr:
        if n in zero:
            assert float(gf[n].abs().max()) <= 2 ** -7 * scale, (n, float(gf[n].abs().max()), scale)
            continue
        assert cos(gf[n], gr[n]) > min(0.99, cos(g16[n], gr[n]) - 0.05), n
        if not n.startswith("temporal."):
            assert cos(gf[n], gr[n]) > 0.99, n


def test_fused_adam_is_plain_adam():
    cfg = preset("scl", dtype="fp32", **SMALL)
    torch.manual_seed(0)
    a = build_model(cfg, DIMS)
    b = build_model(cfg, DIMS)
    b.load_state_dict(a.state_dict())
    oa = make_optimizer(a, cfg)
    ob = torch.optim.Adam(b.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=False)
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        batch = synthetic_batch(6, 3, 5, DIMS["visual"], generator=g)
        neg = sample_negatives(batch["obj_class"], batch["obj_mask"], g)
        step_seed = int(torch.randint(1 << 30, (1,), generator=g))
        for model, opt in ((a, oa), (b, ob)):
            torch.manual_seed(step_seed)  # the same dropout masks in both models
            opt.zero_grad()
            sum(model.losses(batch, neg).values()).backward()
            opt.step()
    for (n, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7, msg=n)


def test_auto_dtype_is_measured_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("SCL_WORKBENCH_CACHE", str(tmp_path))
    calls = []
    real = precision.measure_cpu

    def counting(shape=precision.REFERENCE_SHAPE, reps=3):
        calls.append(shape)
        return real((64, 128, 32), reps=1)  # tiny: the decision logic, not this machine's answer

    monkeypatch.setattr(precision, "measure_cpu", counting)
    first = precision._decide_cpu()
    second = precision._decide_cpu()
    assert len(calls) == 1 and not first.cached and second.cached
    assert first.dtype == second.dtype and first.dtype in ("bf16", "fp32")
    rec = next(iter(json.loads((tmp_path / "dtype.json").read_text()).values()))
    assert {"bf16_ms", "fp32_ms", "cpu", "amx_bf16", "avx512_bf16", "threads", "torch"} <= set(rec)
    assert rec["dtype"] == ("bf16" if rec["bf16_ms"] < rec["fp32_ms"] else "fp32")
    assert ("AMX present" in first.reason) == rec["amx_bf16"]
    # the reason names the bf16 kernel that ran (and the oneDNN ISA cap, if any): tests/test_isa_caps.py
    assert rec["bf16_kernel"] == precision.bf16_kernel() and precision.bf16_kernel() in first.reason
    assert rec["isa_cap"] == precision.isa_cap()
    # a damaged cache is measured again, never trusted
    (tmp_path / "dtype.json").write_text("{not json")
    assert not precision._decide_cpu().cached and len(calls) == 2


def test_requested_dtypes_pass_through():
    assert precision.resolve("fp32", "cpu").dtype == "fp32"
    assert precision.resolve("bf16", "cpu").reason == "requested"
    with pytest.raises(Exception, match="auto, bf16, fp32"):
        precision.resolve("fp16", "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_paths_agree_with_cpu():
    """CUDA-only code (fused scaled_dot_product_attention in E_v, CUDA bf16 autocast) against the CPU path."""
    for dtype in ("fp32", "bf16"):
        cfg = preset("scl", dtype=dtype, **SMALL)
        torch.manual_seed(0)
        model = build_model(cfg, DIMS)
        g = torch.Generator().manual_seed(0)
        batch = synthetic_batch(6, 3, 5, DIMS["visual"], generator=g)
        neg = sample_negatives(batch["obj_class"], batch["obj_mask"], g)
        out = {}
        for dev in ("cpu", "cuda"):
            m = model.to(dev)
            b = {k: v.to(dev) for k, v in batch.items()}
            with autocast(cfg, torch.device(dev)):
                out[dev] = {k: float(v) for k, v in m.losses(b, neg.to(dev)).items()}
                s = m.ground(b).float().cpu()
            out[dev + "_scores"] = s
        tol = 1e-4 if dtype == "fp32" else 3e-2
        for k in out["cpu"]:
            assert out["cuda"][k] == pytest.approx(out["cpu"][k], rel=tol, abs=tol), (dtype, k)
        torch.testing.assert_close(out["cuda_scores"], out["cpu_scores"], rtol=tol, atol=tol)


def test_resident_batches_are_the_streamed_batches(smoke_data):
    """Features held on the device (here the CPU) give exactly the batches read from the store."""
    from workbench.features.batches import ResidentBatches, TrainBatches
    from workbench.features.store import FeatureStore
    from workbench.features.text_cache import TextFeatures

    store = FeatureStore(smoke_data / "store" / "training.h5")
    text = TextFeatures(smoke_data / "text_features.h5")
    a = TrainBatches(store, text, 8, 3, seed=5)
    b = ResidentBatches(store, text, 8, 3, seed=5, device="cpu", chunk_frames=7)
    n = 0
    # streamed with a reader thread (prefetch 2), resident, and streamed in the loop (prefetch 0): the same batches
    for x, y, z in zip(a.epoch(2), b.epoch(2), a.epoch(2, prefetch=0), strict=True):
        assert x.keys() == y.keys() == z.keys()
        for k in x:
            torch.testing.assert_close(x[k], y[k], rtol=0, atol=0, msg=k)
            torch.testing.assert_close(x[k], z[k], rtol=0, atol=0, msg=k)
        n += 1
    assert n == len(a) > 0


def test_prefetch_auto_reads_in_the_loop_on_cpu_and_ahead_on_cuda():
    """cfg.prefetch -1 (auto): 0 on CPU (the reader thread cost CPU time, PERFORMANCE.md section 5), 2 on CUDA;
    an explicit value is kept; below -1 is refused."""
    from workbench.config import Config
    from workbench.engine import read_ahead
    from workbench.io import DataError

    assert read_ahead(Config(), torch.device("cpu")) == 0
    assert read_ahead(Config(), torch.device("cuda")) == 2
    assert read_ahead(Config(prefetch=3), torch.device("cpu")) == 3
    with pytest.raises(DataError, match="prefetch"):
        Config().replace(prefetch=-2)


_FAULTS = """
import resource, sys, torch, workbench
from workbench import allocator
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for i in range(30):  # glibc settles on reusing the block after a few rounds
    if i == 20:
        f0 = faults()
    x = torch.empty(48 * 5 * 20 * 4096, dtype=torch.bfloat16).fill_(1.0)  # the step's 39 MB input copy
    del x
print(allocator.state()["mode"], (faults() - f0) // 10)
"""


@pytest.mark.skipif(not allocator._glibc(), reason="glibc only")
@pytest.mark.parametrize("setting", ["heap", "system", None])
def test_large_tensors_reuse_memory_instead_of_page_faulting(setting, monkeypatch):
    """By default (None: SCL_WORKBENCH_MALLOC unset) and with ``heap``, import workbench keeps freed memory
    (allocator.py): allocating the step's largest tensor again costs no page faults; with glibc's defaults
    (``system``) every 4 KB page faults again (~9,600)."""
    import subprocess
    import sys

    if setting is None:
        monkeypatch.delenv("SCL_WORKBENCH_MALLOC", raising=False)
    else:
        monkeypatch.setenv("SCL_WORKBENCH_MALLOC", setting)
    out = subprocess.run([sys.executable, "-c", _FAULTS], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == (setting or "heap")
    per_alloc = int(out[1])
    if setting != "system":
        assert per_alloc < 500
    else:
        assert per_alloc > 5000


def test_perf_reference_script_refuses_a_dataset_without_store(tmp_path):
    """tools/perf_reference.sh (the one-run reference of docs/PERFORMANCE.md) checks its inputs first."""
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "tools" / "perf_reference.sh"
    r = subprocess.run(["bash", str(script), str(tmp_path / "nodata"), str(tmp_path / "out")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "no store/ folder" in r.stderr and not (tmp_path / "out").exists()
    (tmp_path / "out").mkdir()
    r = subprocess.run(["bash", str(script), str(tmp_path), str(tmp_path / "out")], capture_output=True, text=True)
    assert r.returncode == 2 and "exists" in r.stderr
