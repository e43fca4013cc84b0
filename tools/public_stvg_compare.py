"""The public STVG training step against ours, interleaved in ONE process (docs/PERFORMANCE.md).

    python tools/public_stvg_compare.py --public PATH/TO/WSVOG_Causal_Intervention [--rounds 5]

PATH is a checkout of github.com/ppj567/WSVOG_Causal_Intervention (its model_mm.py, Attention_mm.py,
memory.py and mm_data/.../youcook2/annotations/ are used as they are; nothing of it is copied
here). Its model class ``WSTOG`` runs unmodified with ``train_mode="STVG"``, on CPU through
shims for its ``.cuda()`` calls and ``torch.load`` (CUDA-saved tensors mapped to the CPU,
weights_only). Its own optimiser step (Adam, weight decay 1e-4, grad-norm clipping at 10) and
its separate negative batch, fp32 as its code runs. Ours: ``stvg`` and ``scl`` in bf16 and
fp32. Reference shape B=48, T=5, N=20, D=4096; one warm-up round, then ``--rounds`` timed rounds,
the order of the five steps reversed every other round. Prints one JSON object (medians).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import types
from pathlib import Path

import torch

B, T, N, D = 48, 5, 20, 4096


def public_model(root: Path):
    """WSTOG of the public code, train mode STVG, on the CPU; returns (model, optimiser)."""
    torch.Tensor.cuda = lambda self, *a, **k: self          # CPU shims; the model code is untouched
    torch.nn.Module.cuda = lambda self, *a, **k: self
    torch.cuda.FloatTensor = torch.FloatTensor
    load = torch.load
    torch.load = lambda f, *a, **k: load(f, map_location="cpu", weights_only=True)
    sys.path.insert(0, str(root))
    from model_mm import WSTOG  # noqa: E402  (the public code)

    ann = root / "mm_data/vg/video_grounding/data/youcook2/annotations"
    args = types.SimpleNamespace(mem_buffer_path="", class_times=str(ann / "yc2_class_times.json"),
                                 glove_dir_emb=str(ann / "YC2_glove_dict_512dim.pkl"),
                                 glove_dir=str(ann / "YC2_glove_dict.pth"), fusion_coef=0.5)
    torch.manual_seed(0)
    model = WSTOG(batch_size=B, args=args, paras=types.SimpleNamespace(train_mode="STVG"))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    return model, torch.optim.Adam(params, lr=1e-4, weight_decay=1e-4), params


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--public", required=True, type=Path, help="checkout of ppj567/WSVOG_Causal_Intervention")
    p.add_argument("--rounds", type=int, default=5, help="timed rounds after one warm-up")
    args = p.parse_args(argv)
    if not (args.public / "model_mm.py").is_file():
        raise SystemExit(f"{args.public}: no model_mm.py; expected a checkout of ppj567/WSVOG_Causal_Intervention")

    from workbench.bench import synthetic_batch
    from workbench.config import preset
    from workbench.engine import make_optimizer, train_step
    from workbench.model import build_model, loss_weights
    from workbench.precision import resolve

    pub, popt, pparams = public_model(args.public.resolve())
    g = torch.Generator().manual_seed(0)

    def pub_batch():
        labels = torch.zeros(B, 16, dtype=torch.long)  # its label layout: class id + 1, 0 = padding
        for b in range(B):
            k = int(torch.randint(1, 6, (1,), generator=g))
            labels[b, :k] = torch.randperm(67, generator=g)[:k] + 1
        return torch.rand(B, T, N, D, generator=g), labels

    pub_batches = [(pub_batch(), pub_batch()) for _ in range(2)]

    def pub_step(i):
        (pf, pl), (nf, nl) = pub_batches[i % 2]
        popt.zero_grad()
        cost = pub(pl, pf, nl, nf, is_training=True, is_finetune=True)
        cost.backward()
        torch.nn.utils.clip_grad_norm_(pparams, 10.0)
        popt.step()

    ours = [synthetic_batch(B, T, N, D, generator=g) for _ in range(2)]
    steps = {"public_stvg_fp32": pub_step}
    for name in ("stvg", "scl"):
        for dt in ("bf16", "fp32"):
            cfg = preset(name, dtype=dt)
            torch.manual_seed(0)
            model = build_model(cfg, dict(visual=D, glove=300, ctx=384))
            opt, w = make_optimizer(model, cfg), loss_weights(cfg)
            steps[f"ours_{name}_{dt}"] = (lambda i, m=model, o=opt, w=w, c=cfg:
                                          train_step(m, w, ours[i % 2], o, c, torch.device("cpu"), g))
    times = {k: [] for k in steps}
    names = list(steps)
    for i in range(args.rounds + 1):
        for k in (names if i % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            steps[k](i)
            if i >= 1:
                times[k].append(time.perf_counter() - t0)
        if i >= 1:
            print("round", i, {k: round(v[-1], 3) for k, v in times.items()}, file=sys.stderr, flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    auto = resolve("auto", "cpu")
    print(json.dumps({"sec_per_step_median": {k: round(v, 4) for k, v in med.items()},
                      "range": {k: f"{min(v):.4f}-{max(v):.4f}" for k, v in times.items()},
                      "auto_dtype": auto.dtype, "auto_reason": auto.reason, "threads": torch.get_num_threads(),
                      "rounds": args.rounds,
                      "public_over_ours": {k: round(med["public_stvg_fp32"] / v, 2)
                                           for k, v in med.items() if k.startswith("ours")}}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
