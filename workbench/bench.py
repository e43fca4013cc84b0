"""``bench``: time training steps (forward + backward + Adam) of a preset on synthetic batches."""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import torch

from .config import preset
from .io import DataError

NUM_CLASSES = 67  # YouCook2-BB object vocabulary


def synthetic_batch(B: int, T: int, N: int, Dv: int, K: int = 5, L: int = 20, Dw: int = 300, Dc: int = 384,
                    generator: torch.Generator | None = None, device: str = "cpu") -> dict[str, torch.Tensor]:
    """A random batch in the layout of docs/ARCHITECTURE.md: 1..K objects per segment with distinct classes."""
    g = generator
    n_obj = torch.randint(1, K + 1, (B,), generator=g)
    obj_mask = torch.arange(K)[None, :] < n_obj[:, None]  # (B, K)
    cls = torch.stack([torch.randperm(NUM_CLASSES, generator=g)[:K] for _ in range(B)])
    obj_class = torch.where(obj_mask, cls, torch.full_like(cls, -1))
    tok_len = torch.randint(K + 3, L + 1, (B,), generator=g)
    start = torch.arange(K)[None, :].expand(B, K)  # object k is token k
    batch = dict(
        regions=torch.rand(B, T, N, Dv, generator=g).half(),  # float16, as the feature store serves them
        frame_mask=torch.ones(B, T, dtype=torch.bool),
        obj_glove=torch.randn(B, K, Dw, generator=g),
        obj_ctx=torch.randn(B, K, Dc, generator=g),
        sent_ctx=torch.randn(B, Dc, generator=g),
        obj_mask=obj_mask,
        obj_class=obj_class,
        tok_glove=torch.randn(B, L, Dw, generator=g),
        tok_mask=torch.arange(L)[None, :] < tok_len[:, None],
        obj_tok_span=torch.stack([start, start + 1], -1),
    )
    return {k: v.to(device) for k, v in batch.items()}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", required=True, help="preset name (config.PRESETS)")
    p.add_argument("--batch", type=int, default=48, help="segments per step")
    p.add_argument("--frames", type=int, default=5, help="T: frames per segment")
    p.add_argument("--proposals", type=int, default=20, help="N: proposals per frame")
    p.add_argument("--feature-dim", type=int, default=4096, help="Dv: region feature dimension")
    p.add_argument("--dtype", choices=("bf16", "fp32"), default="bf16", help="autocast dtype of the matmuls")
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--seed", type=int, default=0, help="RNG seed")
    p.add_argument("--data", default=None,
                   help="dataset directory: also time steps fed from its training store + text cache "
                        "(end to end, background reading) against the same batches held in memory")


def run(args: argparse.Namespace) -> int:
    from .engine import to_device, train_step
    from .model import build_model, loss_weights

    if min(args.batch, args.frames, args.proposals, args.feature_dim, args.steps) < 1 or args.warmup < 0:
        raise DataError("bench: --batch, --frames, --proposals, --feature-dim and --steps must be >= 1")
    if args.batch < 2:
        raise DataError("bench: --batch must be >= 2 (negatives come from the batch)")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cfg = preset(args.preset, dtype=args.dtype, num_frames=args.frames, num_proposals=args.proposals,
                 batch_size=args.batch, seed=args.seed)
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    weights = loss_weights(cfg)
    if args.data:
        from .data.batches import TrainBatches
        from .workspace import Workspace

        ws = Workspace(cfg.replace(data=args.data))
        data = TrainBatches(ws.stores["training"], ws.text, args.batch, args.frames, args.seed)
        dims = ws.dims
    else:
        dims = dict(visual=args.feature_dim, glove=300, ctx=384, classes=NUM_CLASSES)
    model = build_model(cfg, dims).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if args.data:
        batches = [to_device(b, device) for b, _ in zip(data.epoch(0), range(2))]
    else:
        batches = [synthetic_batch(args.batch, args.frames, args.proposals, args.feature_dim, generator=g,
                                   device=str(device)) for _ in range(2)]
    def step(batch):
        vals = train_step(model, weights, batch, opt, cfg, device, g, where="bench")
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return vals["total"]

    times = []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        step(batches[i % 2])
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    sec = statistics.median(times)
    out = dict(preset=args.preset, dtype=args.dtype, device=str(device), threads=torch.get_num_threads(),
               batch=args.batch, frames=args.frames, proposals=args.proposals, feature_dim=dims["visual"],
               steps=args.steps, warmup=args.warmup, sec_per_step=round(sec, 4),
               segments_per_s=round(args.batch / sec, 2))
    if args.data:
        # End to end: batches read from the store by the background thread while the model computes
        # (the first step, which waits for the thread's first batch, is not timed).
        n = min(args.steps, len(data) - 1)
        for i, batch in enumerate(data.epoch(1)):
            if i == 1:
                t0 = time.perf_counter()
            step(to_device(batch, device))
            if i == n:
                break
        e2e = (time.perf_counter() - t0) / n
        out.update(data=str(args.data), e2e_sec_per_step=round(e2e, 4),
                   e2e_over_model=round(e2e / statistics.mean(times), 3))
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if device.type == "cuda":
        out["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    print(json.dumps(out))
    return 0
