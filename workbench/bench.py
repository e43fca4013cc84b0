"""``bench``: time training steps (forward + backward + Adam) of a preset on synthetic batches."""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import torch

from .allocator import state as allocator_state
from .config import preset
from .engine import make_optimizer, to_device, train_step
from .features.batches import TrainBatches
from .io import DataError, atomic_path
from .model import build_model, loss_weights
from .precision import DTYPES, resolve
from .workspace import Workspace

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
    p.add_argument("--preset", required=True, help="preset name (config.MODEL_PRESETS)")
    p.add_argument("--batch", type=int, default=48, help="segments per step")
    p.add_argument("--frames", type=int, default=5, help="T: frames per segment")
    p.add_argument("--proposals", type=int, default=20, help="N: proposals per frame")
    p.add_argument("--feature-dim", type=int, default=4096, help="Dv: region feature dimension")
    p.add_argument("--dtype", choices=("auto", "bf16", "fp32"), default="auto",
                   help="matmul dtype; auto (default) reports the chosen dtype and times both")
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--seed", type=int, default=0, help="RNG seed")
    p.add_argument("--data", default=None,
                   help="dataset directory: also time steps fed from its training store + text cache "
                        "(end to end, background reading) against the same batches held in memory")
    p.add_argument("--e2e-steps", type=int, default=0,
                   help="with --data: streamed steps to time (0 = --steps), each batch then stepped again from "
                        "memory in blocks of 10 (e2e_over_model); the whole epoch if larger")
    p.add_argument("--profile", default="",
                   help="write a torch.profiler summary table of 3 steps (chosen dtype) to this file")


def matmul_gflops(rows: int, in_dim: int, out_dim: int, dtype: str, device: torch.device, reps: int = 5) -> float:
    """This machine's matmul rate (GFLOP/s) at the step's dominant shape: the projection's forward
    (rows x in_dim) @ (in_dim x out_dim) and its weight gradient, in ``dtype``, best of ``reps``."""
    g = torch.Generator().manual_seed(0)
    dt = DTYPES[dtype]
    x = torch.rand(rows, in_dim, generator=g).to(device, dt)
    w = torch.randn(out_dim, in_dim, generator=g).to(device, dt)
    gy = torch.randn(rows, out_dim, generator=g).to(device, dt)
    best = float("inf")
    for _ in range(reps + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        y = x @ w.T
        gw = gy.T @ x
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - t0)
        del y, gw
    return 2 * 2 * rows * in_dim * out_dim / best / 1e9


def count_flops(step, batch) -> int:
    """FLOPs of one training step (forward + backward matmuls), counted by FlopCounterMode."""
    # torch is heavy: light commands (evaluate, --help) must not load it
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        step(batch)
    return int(fc.get_total_flops())


def end_to_end(step, data, device: torch.device, steps: int, block: int = 10) -> dict:
    """Streamed steps against the model alone on the same batches, in the same minutes.

    Epoch 1 is read by the background reader as in training (from disk when the page cache is
    cold). In blocks of ``block`` steps: the streamed steps are timed (waiting for a batch
    included), each batch is kept, and then the same batches are stepped again from memory.
    Pairing the blocks in time keeps the machine's drift out of the ratio (this CPU's matmul rate
    moved 2.5x between minutes); using the same batches keeps their object counts out of it.
    ``e2e_over_model`` = streamed / in-memory time; the end-to-end rate is 1 / that of the model's.
    The first streamed step (the reader's first batch) is not timed. While a block is stepped
    from memory the reader may still prefetch up to two batches (its queue), so the in-memory side
    carries a little of the reader's work: the ratio errs towards streaming looking cheaper.
    """
    if len(data) < 2:
        raise DataError(f"bench --data: {data.store.path} gives {len(data)} training batch(es) of {data.batch_size}; "
                        "the end-to-end timing needs at least 2 (lower --batch)")
    n = min(steps, len(data) - 1)
    streamed = replayed = 0.0
    kept: list = []
    it = data.epoch(1)
    step(to_device(next(it), device))  # the reader's first batch: not timed
    for i in range(n):
        t0 = time.perf_counter()
        batch = to_device(next(it), device)
        step(batch)
        streamed += time.perf_counter() - t0
        kept.append(batch)
        if len(kept) == block or i == n - 1:
            t0 = time.perf_counter()
            for b in kept:
                step(b)
            replayed += time.perf_counter() - t0
            kept = []
    it.close()
    return dict(e2e_steps=n, e2e_sec_per_step=round(streamed / n, 4),
                e2e_model_sec_per_step=round(replayed / n, 4), e2e_over_model=round(streamed / replayed, 3))


def run(args: argparse.Namespace) -> int:
    if min(args.batch, args.frames, args.proposals, args.feature_dim, args.steps) < 1 or args.warmup < 0:
        raise DataError("bench: --batch, --frames, --proposals, --feature-dim and --steps must be >= 1")
    if args.batch < 2:
        raise DataError("bench: --batch must be >= 2 (negatives come from the batch)")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cfg = preset(args.preset, dtype=args.dtype, num_frames=args.frames, num_proposals=args.proposals,
                 batch_size=args.batch, seed=args.seed)
    precision = resolve(cfg.dtype, device)
    g = torch.Generator().manual_seed(cfg.seed)
    weights = loss_weights(cfg)
    if args.data:
        ws = Workspace(cfg.replace(data=args.data))
        data = TrainBatches(ws.stores["training"], ws.text, args.batch, args.frames, args.seed)
        dims = ws.dims
        batches = [to_device(b, device) for b, _ in zip(data.epoch(0), range(2))]
    else:
        dims = dict(visual=args.feature_dim, glove=300, ctx=384, classes=NUM_CLASSES)
        batches = [synthetic_batch(args.batch, args.frames, args.proposals, args.feature_dim, generator=g,
                                   device=str(device)) for _ in range(2)]

    # One model per timed dtype (auto: both, so the report shows the choice was the faster one);
    # their steps are interleaved so that load from other processes hits both alike.
    dtypes = ["bf16", "fp32"] if args.dtype == "auto" else [args.dtype]
    runs = {}
    for dt in dtypes:
        torch.manual_seed(cfg.seed)
        c = cfg.replace(dtype=dt)
        model = build_model(c, dims).to(device)
        opt = make_optimizer(model, c)

        def step(batch, model=model, opt=opt, c=c):
            vals = train_step(model, weights, batch, opt, c, device, g, where="bench")
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return vals["total"]
        runs[dt] = step
    times: dict[str, list[float]] = {dt: [] for dt in dtypes}
    for i in range(args.warmup + args.steps):
        for dt in (dtypes if i % 2 == 0 else dtypes[::-1]):
            t0 = time.perf_counter()
            runs[dt](batches[i % 2])
            if i >= args.warmup:
                times[dt].append(time.perf_counter() - t0)
    sec = {dt: statistics.median(t) for dt, t in times.items()}
    chosen = precision.dtype
    step = runs[chosen]
    rows = args.batch * args.frames * args.proposals
    flops = count_flops(step, batches[0])
    gflops = matmul_gflops(rows, dims["visual"], cfg.embed_dim, chosen, device)

    out = dict(preset=args.preset, dtype=chosen, dtype_reason=precision.reason, device=str(device),
               allocator=allocator_state()["mode"],
               threads=torch.get_num_threads(), batch=args.batch, frames=args.frames, proposals=args.proposals,
               feature_dim=dims["visual"], steps=args.steps, warmup=args.warmup,
               sec_per_step=round(sec[chosen], 4), segments_per_s=round(args.batch / sec[chosen], 2))
    if len(dtypes) > 1:
        out["sec_per_step_by_dtype"] = {dt: round(s, 4) for dt, s in sec.items()}
        out["segments_per_s_by_dtype"] = {dt: round(args.batch / s, 2) for dt, s in sec.items()}
    out.update(flops_per_step=flops, matmul_gflops=round(gflops, 1),
               efficiency=round(flops / (sec[chosen] * gflops * 1e9), 3))
    if args.profile:
        # torch is heavy: light commands (evaluate, --help) must not load it
        from torch.profiler import ProfilerActivity, profile

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profile(activities=acts) as prof:
            for i in range(3):
                step(batches[i % 2])
        table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25)

        with atomic_path(args.profile) as tmp:
            tmp.write_text(f"# bench --preset {args.preset} dtype {chosen}, 3 steps\n{table}\n")
        out["profile"] = str(args.profile)
    if args.data:
        out.update(data=str(args.data), **end_to_end(step, data, device, args.e2e_steps or args.steps))
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if device.type == "cuda":
        out["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    print(json.dumps(out))
    return 0
