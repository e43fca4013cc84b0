"""``python -m workbench bench-public``: the public STVG training step against ours, interleaved in ONE
process (docs/PERFORMANCE.md).

    python -m workbench bench-public --public PATH/TO/WSVOG_Causal_Intervention [--rounds 5]

PATH is a checkout of github.com/ppj567/WSVOG_Causal_Intervention (its model_mm.py, Attention_mm.py,
memory.py and mm_data/.../youcook2/annotations/ are used as they are; nothing of it is copied here). Its
files are executed from the checkout (nothing is added to sys.path; its modules are not left in
sys.modules). Its model class ``WSTOG`` runs unmodified with ``train_mode="STVG"``, on the CPU: while
it is built and while each of its steps runs, ``cpu_shims`` maps its ``.cuda()`` calls and CUDA-saved
tensors to the CPU, and torch is restored after, so our steps run on torch as it is. Its own optimiser
step (Adam, weight decay 1e-4, grad-norm clipping at 10) and its separate negative batch, fp32 as its
code runs. Ours: ``stvg`` and ``scl`` in bf16 and fp32. Reference shape B=48, T=5, N=20, D=4096; one
warm-up round, then ``--rounds`` timed rounds, the order of the five steps reversed every other round.
Prints one JSON object (medians).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import statistics
import sys
import time
import types
from pathlib import Path
from typing import Callable

import torch

from ..bench import synthetic_batch
from ..config import preset
from ..engine import make_optimizer, train_step
from ..io import DataError
from ..model import build_model, loss_weights
from ..precision import resolve

B, T, N, D = 48, 5, 20, 4096                          # the reference shape
PUBLIC_MODULES = ("Attention_mm", "memory", "model_mm")   # model_mm imports the other two by these names
ANNOTATIONS = Path("mm_data/vg/video_grounding/data/youcook2/annotations")
PUBLIC = "public_stvg_fp32"
_ABSENT = object()


@contextlib.contextmanager
def cpu_shims():
    """Inside the block the public (CUDA-only) code runs on the CPU: ``.cuda()`` of a tensor or module
    returns it unchanged, ``torch.cuda.FloatTensor`` is the CPU FloatTensor and ``torch.load`` maps
    CUDA-saved tensors to the CPU (weights_only). On exit every patched name is as it was."""
    load = torch.load
    patches = [(torch.Tensor, "cuda", lambda self, *a, **k: self),
               (torch.nn.Module, "cuda", lambda self, *a, **k: self),
               (torch.cuda, "FloatTensor", torch.FloatTensor),
               (torch, "load", lambda f, *a, **k: load(f, map_location="cpu", weights_only=True))]
    saved = [(owner, name, vars(owner).get(name, _ABSENT)) for owner, name, _ in patches]
    try:
        for owner, name, value in patches:
            setattr(owner, name, value)
        yield
    finally:
        for owner, name, old in saved:
            if old is _ABSENT:                  # inherited (Tensor.cuda is TensorBase's): drop the override
                delattr(owner, name)
            else:
                setattr(owner, name, old)


def public_module(root: Path) -> types.ModuleType:
    """The checkout's model_mm, executed from its file. While it loads, the names it imports (Attention_mm,
    memory) resolve to the checkout's files; sys.modules is as before afterwards."""
    missing = [n for n in PUBLIC_MODULES if not (root / f"{n}.py").is_file()]
    if missing:
        raise DataError(f"{root}: no {', '.join(f'{n}.py' for n in missing)}; expected a checkout of "
                        "ppj567/WSVOG_Causal_Intervention")
    before = {n: sys.modules.get(n) for n in PUBLIC_MODULES}
    try:
        for name in PUBLIC_MODULES:
            spec = importlib.util.spec_from_file_location(name, root / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        return module
    finally:
        for name, old in before.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


def public_model(root: Path, batch: int = B):
    """WSTOG of the public code, train mode STVG, on the CPU; returns (model, optimiser, parameters)."""
    ann = root / ANNOTATIONS
    args = types.SimpleNamespace(mem_buffer_path="", class_times=str(ann / "yc2_class_times.json"),
                                 glove_dir_emb=str(ann / "YC2_glove_dict_512dim.pkl"),
                                 glove_dir=str(ann / "YC2_glove_dict.pth"), fusion_coef=0.5)
    wstog = public_module(root).WSTOG
    torch.manual_seed(0)
    with cpu_shims():
        model = wstog(batch_size=batch, args=args, paras=types.SimpleNamespace(train_mode="STVG"))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    return model, torch.optim.Adam(params, lr=1e-4, weight_decay=1e-4), params


def public_batch(g: torch.Generator, b: int = B, t: int = T, n: int = N, d: int = D):
    """(features (b, t, n, d), labels (b, 16)) in the public code's layout: class id + 1, 0 = padding."""
    labels = torch.zeros(b, 16, dtype=torch.long)
    for i in range(b):
        k = int(torch.randint(1, 6, (1,), generator=g))
        labels[i, :k] = torch.randperm(67, generator=g)[:k] + 1
    return torch.rand(b, t, n, d, generator=g), labels


def public_step(model, opt, params, batches) -> Callable[[int], None]:
    """Step i of the public code: its positive and negative batch ``batches[i % 2]``, its clipping and Adam."""
    def step(i: int) -> None:
        (pf, pl), (nf, nl) = batches[i % 2]
        with cpu_shims():
            opt.zero_grad()
            cost = model(pl, pf, nl, nf, is_training=True, is_finetune=True)
            cost.backward()
            torch.nn.utils.clip_grad_norm_(params, 10.0)
            opt.step()
    return step


def our_steps(g: torch.Generator) -> dict[str, Callable[[int], None]]:
    """ours_<preset>_<dtype> -> step i on one of two synthetic batches of the reference shape."""
    ours = [synthetic_batch(B, T, N, D, generator=g) for _ in range(2)]
    steps = {}
    for name in ("stvg", "scl"):
        for dt in ("bf16", "fp32"):
            cfg = preset(name, dtype=dt)
            torch.manual_seed(0)
            model = build_model(cfg, dict(visual=D, glove=300, ctx=384))
            opt, w = make_optimizer(model, cfg), loss_weights(cfg)
            steps[f"ours_{name}_{dt}"] = (lambda i, m=model, o=opt, w=w, c=cfg:
                                          train_step(m, w, ours[i % 2], o, c, torch.device("cpu"), g))
    return steps


def interleave(steps: dict[str, Callable[[int], None]], rounds: int, log=print) -> dict[str, list[float]]:
    """Seconds of each step per timed round: round 0 warms up, then ``rounds`` rounds, each running every
    step once, in reverse order every other round."""
    times: dict[str, list[float]] = {k: [] for k in steps}
    names = list(steps)
    for i in range(rounds + 1):
        for k in (names if i % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            steps[k](i)
            if i >= 1:
                times[k].append(time.perf_counter() - t0)
        if i >= 1:
            log(f"round {i} {({k: round(v[-1], 3) for k, v in times.items()})}")
    return times


def summary(times: dict[str, list[float]], rounds: int) -> dict:
    med = {k: statistics.median(v) for k, v in times.items()}
    auto = resolve("auto", "cpu")
    return {"sec_per_step_median": {k: round(v, 4) for k, v in med.items()},
            "range": {k: f"{min(v):.4f}-{max(v):.4f}" for k, v in times.items()},
            "auto_dtype": auto.dtype, "auto_reason": auto.reason, "threads": torch.get_num_threads(),
            "rounds": rounds,
            "public_over_ours": {k: round(med[PUBLIC] / v, 2) for k, v in med.items() if k.startswith("ours")}}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--public", required=True, type=Path, help="checkout of ppj567/WSVOG_Causal_Intervention")
    p.add_argument("--rounds", type=int, default=5, help="timed rounds after one warm-up")


def run(args: argparse.Namespace) -> int:
    model, opt, params = public_model(args.public.resolve())
    g = torch.Generator().manual_seed(0)
    batches = [(public_batch(g), public_batch(g)) for _ in range(2)]
    steps = {PUBLIC: public_step(model, opt, params, batches), **our_steps(g)}
    times = interleave(steps, args.rounds, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps(summary(times, args.rounds), indent=1))
    return 0
