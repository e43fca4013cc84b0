"""``gpu-check``: the whole GPU check in one command and one JSON report (docs/GPU.md).

``tools/gpu_check.sh`` runs it on the lent machine after laying out the carried packages on
PYTHONPATH (workbench/experiments/gpu_carry.py); nothing is installed and nothing is downloaded. Steps:

- ``device``: torch, CUDA, the GPU, bf16 support, the carried packages (SITE/CARRIED.json).
- ``world`` (a background process, CPU only, while the GPU steps run): ``prepare`` simulates the
  demo world, builds its stores and its text cache (the carried MiniLM, on the CPU).
- ``bench_{stvg,scl}_{bf16,fp32}``: ``bench`` at the reference shape (B=48, T=5, N=20, D=4096).
- ``yc2_epoch_{stvg,scl}``: one training epoch at YouCook2-BB's size: its 9,184 training segments
  with their real frame counts (183,017 frames), 20 proposals x 4096-d float16 features resident on
  the device (28 GiB), each batch gathered there (``sample_frames``, B=48), the training loop's step.
- ``dispatch_{stvg,scl}``: the research-size step (B=16, d=128, D=128) that dispatch bounds: the
  training loop's step, the same update without host syncs (``sync_free_step``), and that step
  captured once as a CUDA graph and replayed (``torch.compile`` too with ``--compile``).
- ``text_cache``: the world's text cache is finite (the encoder's left-out word pieces are NaN).
- ``sweep``: the main grid's notebooks under papermill on the device, one sweep folder per preset,
  ``--sweep-jobs`` at once (one GPU, many dispatch-bound runs), within the time left.

``--dry-run``: the same steps on the CPU at tiny sizes (smoke world, one preset in the sweep, no
graph capture): the test suite runs it through the lent machine's stand-in (tests/test_gpu_check.py).
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np
import torch

from ..bench import NUM_CLASSES, add_arguments as bench_arguments, run as bench_run, synthetic_batch
from ..config import preset
from ..engine import make_optimizer, train_step
from ..features.batches import sample_frames
from ..io import DataError, write_json
from ..model import build_model, loss_weights
from ..model.negatives import sample_negatives
from ..paths import REPO
from ..run import git_info
from ..sim.simulate import plan_segments
from .sweep import GRIDS

PRESETS = ("stvg", "scl")
DEFAULT_BUDGET_S = 460          # the whole check, shell start included: under 8 minutes


# name -> sizes of a full run (on the GPU) and of the dry run (CPU, seconds)
SIZES = {
    "full": dict(world="demo", bench=["--steps", "20", "--warmup", "5"], ref=(48, 5, 20, 4096),
                 research=(16, 128, 128), dispatch_steps=50, sweep=list(GRIDS["main"]), epochs=4,
                 sets=["threads=2"]),          # 7 runs at once on 16 cores: no run spreads over all of them
    "dry": dict(world="smoke", bench=["--batch", "4", "--frames", "2", "--proposals", "5", "--feature-dim", "32",
                                      "--steps", "2", "--warmup", "1"],
                ref=(4, 2, 5, 32), research=(4, 16, 16), dispatch_steps=2, sweep=["stvg"], epochs=1,
                sets=["embed_dim=32", "attn_heads=4", "batch_size=8", "max_train_segments=16", "max_eval_segments=5"]),
}

PREPARE = "import sys; from workbench.prepare import prepare; prepare(sys.argv[1], preset=sys.argv[2], quiet=False)"


class Check:
    """The report being written: one entry per step (ok, seconds, result or error), rewritten after each."""

    def __init__(self, out: Path, dry: bool, t0: float, budget_s: float):
        self.out, self.t0, self.budget_s = out, t0, budget_s
        self.report: dict[str, Any] = {"dry_run": dry, "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                       "budget_s": budget_s, "steps": []}

    def left(self) -> float:
        return self.t0 + self.budget_s - time.time()

    def step(self, name: str, fn: Callable[[], Any]) -> Any:
        print(f"== {name} ({time.time() - self.t0:.0f} s)", flush=True)
        t = time.time()
        row: dict[str, Any] = {"step": name}
        try:
            row["result"] = fn()
            row["ok"] = True
        except Exception as e:                          # noqa: BLE001 - a failed step is reported, the rest go on
            row["ok"] = False
            row["error"] = f"{type(e).__name__}: {e}"
            row["traceback"] = traceback.format_exc()[-3000:]
            print(f"   {name} failed: {row['error']}", file=sys.stderr, flush=True)
        row["seconds"] = round(time.time() - t, 2)
        self.report["steps"].append(row)
        self.save()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return row.get("result")

    def save(self) -> None:
        self.report["seconds"] = round(time.time() - self.t0, 1)
        self.report["ok"] = all(s["ok"] for s in self.report["steps"])
        write_json(self.out / "report.json", self.report, indent=2)


# --- device -------------------------------------------------------------------------------------

def device_info(device: torch.device) -> dict:
    out = {"git": git_info(), "python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
           "cuda_available": torch.cuda.is_available(), "cpus": os.cpu_count()}
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DataError("gpu-check: torch sees no CUDA device (use --dry-run on a CPU machine)")
        p = torch.cuda.get_device_properties(device)
        out.update(device=p.name, capability=f"{p.major}.{p.minor}", memory_gib=round(p.total_memory / 2**30, 1),
                   multiprocessors=p.multi_processor_count, bf16_supported=torch.cuda.is_bf16_supported())
    else:
        out.update(device=platform.processor() or platform.machine())
    out["transformers"] = metadata.version("transformers")
    for where in sys.path:
        carried = Path(where) / "CARRIED.json"
        if carried.is_file():
            info = json.loads(carried.read_text())
            out.update(site=where, carried=info["wheels"], encoder=info["encoder"])
            break
    return out


# --- bench --------------------------------------------------------------------------------------

def bench_row(name: str, dtype: str, device: torch.device, shape: list[str]) -> dict:
    """``python -m workbench bench`` in this process; its JSON line."""
    p = argparse.ArgumentParser()
    bench_arguments(p)
    args = p.parse_args(["--preset", name, "--dtype", dtype, "--device", str(device), *shape])
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        bench_run(args)
    return json.loads(buf.getvalue().strip().splitlines()[-1])


# --- the sync-free step and its CUDA graph ------------------------------------------------------

def amp_context(dtype: str, device: torch.device):
    """bf16 autocast as the training loop's (weights cast per use: no cache, as graph capture needs)."""
    if dtype == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False)


def sync_free_step(model, weights: dict[str, float], batch: dict, neg, optimizer, dtype: str,
                   device: torch.device) -> torch.Tensor:
    """``engine.train_step``'s update with nothing that waits for the device: the negatives are drawn
    beforehand (``neg``), the loss is not checked for finiteness and no value is read back. Returns the
    total loss (a device tensor). The same update as train_step's (tests/test_gpu_check.py)."""
    with amp_context(dtype, device):
        losses = model.losses(batch, neg)
    total = sum(weights.get(k, 0.0) * v.float() for k, v in losses.items())
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    optimizer.step()
    return total


def capture(fn: Callable[[], Any], device: torch.device, warmup: int = 3) -> "torch.cuda.CUDAGraph":
    """``fn`` recorded as one CUDA graph (after ``warmup`` runs on a side stream, as capture requires)."""
    s = torch.cuda.Stream(device)
    s.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(s):
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream(device).wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph


def _ms_per_call(fn: Callable[[], Any], n: int, device: torch.device, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t = time.perf_counter()
    for _ in range(n):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return round((time.perf_counter() - t) / n * 1e3, 3)


def dispatch(name: str, device: torch.device, dtype: str, sizes: tuple, steps: int, compile_: bool) -> dict:
    """ms per step of the research-size step: the loop's, sync-free, and as a replayed CUDA graph."""
    B, d, D = sizes
    cfg = preset(name, embed_dim=d, batch_size=B, dtype=dtype)
    dims = dict(visual=D, glove=300, ctx=384, classes=NUM_CLASSES)
    g = torch.Generator().manual_seed(0)
    batch = synthetic_batch(B, cfg.num_frames, cfg.num_proposals, D, generator=g, device=str(device))
    weights = loss_weights(cfg)
    torch.manual_seed(0)
    model = build_model(cfg, dims).to(device).train()
    opt = make_optimizer(model, cfg)
    out: dict[str, Any] = {"preset": name, "dtype": dtype, "batch": B, "embed_dim": d, "feature_dim": D,
                           "steps": steps}
    out["loop_ms"] = _ms_per_call(lambda: train_step(model, weights, batch, opt, cfg, device, g), steps, device)
    neg = sample_negatives(batch["obj_class"].cpu(), batch["obj_mask"].cpu(), g).to(device)
    cuda = device.type == "cuda"
    opt2 = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True,
                            capturable=cuda)
    step = lambda: sync_free_step(model, weights, batch, neg, opt2, dtype, device)  # noqa: E731
    out["sync_free_ms"] = _ms_per_call(step, steps, device)
    if not cuda:
        out["graph"] = "skipped: CUDA graphs need a CUDA device"
        return out
    try:
        graph = capture(step, device)
        out["graph_ms"] = _ms_per_call(graph.replay, steps, device)
        out["graph_speedup"] = round(out["loop_ms"] / out["graph_ms"], 2)
        out["graph_params_finite"] = bool(all(torch.isfinite(p).all() for p in model.parameters()))
    except Exception as e:                              # noqa: BLE001 - a step that cannot be captured is a result
        out["graph"] = f"capture failed: {type(e).__name__}: {str(e)[:400]}"
        out["graph_where"] = [ln.strip() for ln in traceback.format_exc().splitlines() if "workbench/model" in ln][-3:]
        with contextlib.suppress(Exception):            # a failed capture may leave an error behind
            torch.cuda.synchronize(device)
    if compile_:
        cstep = torch.compile(step, mode="reduce-overhead")
        t = time.perf_counter()
        cstep()
        out["compile_s"] = round(time.perf_counter() - t, 1)
        out["compiled_ms"] = _ms_per_call(cstep, steps, device)
    return out


# --- one resident epoch at YouCook2-BB size -----------------------------------------------------

def yc2_frame_counts(world: str) -> np.ndarray:
    """Frames of each training segment of the YouCook2-BB world ``world`` (demo: the real 9,184)."""
    return np.array([p.num_frames for p in plan_segments(world, 0)["training"]], np.int64)


def yc2_epoch(name: str, device: torch.device, dtype: str, counts: np.ndarray, ref: tuple) -> dict:
    """One epoch over ``counts``' segments with (F, N, D) float16 features resident on ``device``: per batch,
    ``sample_frames`` per segment, one gather there, the training loop's step (text side synthetic)."""
    B, T, N, D = ref
    cfg = preset(name, batch_size=B, num_frames=T, num_proposals=N, dtype=dtype)
    dims = dict(visual=D, glove=300, ctx=384, classes=NUM_CLASSES)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    F = int(counts.sum())
    t = time.perf_counter()
    feats = torch.empty((F, N, D), dtype=torch.float16, device=device)                      # (F, N, D)
    gen = torch.Generator(device=device).manual_seed(0)
    for f0 in range(0, F, 8192):
        feats[f0:f0 + 8192].normal_(generator=gen)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    fill_s = time.perf_counter() - t
    g = torch.Generator().manual_seed(0)
    texts = []
    for _ in range(2):                                   # two text sides, alternated (as bench does)
        b = synthetic_batch(B, T, 1, 1, generator=g, device=str(device))
        b.pop("regions")
        texts.append(b)
    weights = loss_weights(cfg)
    torch.manual_seed(0)
    model = build_model(cfg, dims).to(device).train()
    opt = make_optimizer(model, cfg)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(counts))
    steps = len(counts) // B

    def step(s: int) -> None:
        segs = order[s * B:(s + 1) * B]
        rows = np.stack([sample_frames(int(counts[i]), T, rng) + offsets[i] for i in segs])        # (B, T)
        batch = dict(texts[s % 2], regions=feats[torch.from_numpy(rows).to(device)])            # (B, T, N, D)
        train_step(model, weights, batch, opt, cfg, device, g)

    for s in range(min(3, steps)):                       # warm-up: kernels chosen, caches filled
        step(s)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t = time.perf_counter()
    for s in range(steps):
        step(s)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    epoch_s = time.perf_counter() - t
    out = {"preset": name, "dtype": dtype, "segments": len(counts), "frames": F, "batch": B, "frames_per_segment": T,
           "proposals": N, "feature_dim": D, "resident_gib": round(feats.numel() * 2 / 2**30, 2),
           "fill_s": round(fill_s, 2), "steps": steps, "epoch_s": round(epoch_s, 3),
           "sec_per_step": round(epoch_s / max(steps, 1), 5)}
    if device.type == "cuda":
        out["peak_cuda_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    return out


# --- the world, its text cache, the sweep -------------------------------------------------------

def _child_env(**extra: str) -> dict:
    return {**os.environ, **extra}


def start_world(data: Path, world: str, log: Path) -> subprocess.Popen:
    """``prepare`` in a background process that sees no GPU and uses half the cores."""
    half = str(max(1, (os.cpu_count() or 2) // 2))
    env = _child_env(CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS=half, MKL_NUM_THREADS=half)
    with open(log, "w") as f:
        return subprocess.Popen([sys.executable, "-c", PREPARE, str(data), world], stdout=f, stderr=subprocess.STDOUT,
                                env=env, cwd=REPO, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def wait_world(proc: subprocess.Popen, log: Path, timeout: float) -> dict:
    try:
        rc = proc.wait(timeout=max(1.0, timeout))
    except subprocess.TimeoutExpired:
        _stop(proc)
        raise DataError(f"the world was not ready within the time left ({timeout:.0f} s); see {log}") from None
    if rc != 0:
        raise DataError(f"prepare failed (exit {rc}): {log.read_text(errors='replace')[-1500:]}")
    return {"log_tail": log.read_text(errors="replace")[-600:]}


def text_cache_check(data: Path) -> dict:
    """The text cache is finite: a word piece the packed encoder left out would have made NaN."""
    with h5py.File(data / "text_features.h5", "r") as f:
        out = {k: int(f[k].shape[0]) for k in ("sent_ctx", "obj_ctx")}
        bad = {k: int((~np.isfinite(f[k][()])).any(axis=-1).sum()) for k in ("sent_ctx", "obj_ctx")}
        out.update(encoder=str(f.attrs["encoder"]), encoder_revision=str(f.attrs["encoder_revision"]),
                   encoder_path=str(f.attrs["encoder_path"]))
    if any(bad.values()):
        raise DataError(f"{data / 'text_features.h5'}: non-finite rows {bad}: a text needs a word piece the packed "
                        "encoder left out (workbench/experiments/gpu_carry.py yc2_texts)")
    return out


def sweep_cmd(name: str, data: Path, out: Path, device: str, epochs: int, sets: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "workbench", "sweep", "--grid", "main", "--presets", name, "--data", str(data),
           "--out", str(out), "--seeds", "1", "--set", f"device={device}", "--set", f"epochs={epochs}"]
    for s in sets:
        cmd += ["--set", s]
    return cmd


def sweep(presets: list[str], data: Path, root: Path, device: str, epochs: int, sets: list[str], jobs: int,
          deadline: float) -> dict:
    """One sweep folder per preset (``root/<preset>``), ``jobs`` at once; a sweep still running at
    ``deadline`` is stopped (its process group) and reported as timed out."""
    root.mkdir(parents=True, exist_ok=True)
    pending, running, done = list(presets), {}, {}
    while pending or running:
        while pending and len(running) < jobs:
            name = pending.pop(0)
            log = open(root / f"{name}.log", "w")
            p = subprocess.Popen(sweep_cmd(name, data, root / name, device, epochs, sets), stdout=log,
                                 stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
            running[name] = (p, time.time(), log)
        time.sleep(0.5)
        for name, (p, t, log) in list(running.items()):
            if p.poll() is None and time.time() < deadline:
                continue
            timed_out = p.poll() is None
            if timed_out:
                _stop(p)
            log.close()
            done[name] = {"rc": p.returncode, "seconds": round(time.time() - t, 1), "timed_out": timed_out}
            del running[name]
    rows = []
    for name in presets:
        res = root / name / "results.csv"
        mine = []
        if res.is_file():
            with open(res, newline="") as f:                # the grid's other rows are there as "not run"
                mine = [r for r in csv.DictReader(f) if r["preset"] == name]
        rows += mine
        if done[name]["rc"] != 0 or not any(r["status"] == "ok" for r in mine):
            errors = [r["error"] for r in mine if r.get("error")]
            done[name]["error"] = errors[0] if errors else (root / f"{name}.log").read_text(errors="replace")[-1500:]
    out = {"presets": done, "rows": rows, "epochs": epochs, "jobs": jobs}
    failed = {n: d for n, d in done.items() if "error" in d}
    if failed:
        raise DataError(f"sweep: {sorted(failed)} did not finish ok: {json.dumps(failed)[:2000]}")
    return out


def kernel_spec(root: Path) -> None:
    """A ``python3`` kernel of this interpreter, found first (JUPYTER_PATH), so papermill's kernels see
    exactly the packages this process sees (no kernelspec of another environment)."""
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    write_json(spec / "kernel.json", {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                                      "display_name": "Python 3 (gpu-check)", "language": "python"}, indent=1)
    os.environ.update(JUPYTER_PATH=str(root), JUPYTER_DATA_DIR=str(root), JUPYTER_RUNTIME_DIR=str(root / "runtime"),
                      IPYTHONDIR=str(root / "ipython"))


def summary(report: dict) -> dict:
    """The figures docs/GPU.md quotes, from the steps' results."""
    res = {s["step"]: s.get("result") or {} for s in report["steps"]}
    out: dict[str, Any] = {"device": res.get("device", {}).get("device")}
    out["bench_sec_per_step"] = {k[6:]: v.get("sec_per_step") for k, v in res.items() if k.startswith("bench_")}
    out["bench_efficiency"] = {k[6:]: v.get("efficiency") for k, v in res.items() if k.startswith("bench_")}
    out["yc2_epoch_s"] = {k[10:]: v.get("epoch_s") for k, v in res.items() if k.startswith("yc2_epoch_")}
    out["dispatch_ms"] = {k[9:]: {m: v.get(m) for m in ("loop_ms", "sync_free_ms", "graph_ms", "compiled_ms") if m in v}
                          for k, v in res.items() if k.startswith("dispatch_")}
    rows = res.get("sweep", {}).get("rows", [])
    out["sweep"] = [{k: r.get(k) for k in ("preset", "status", "seconds", "validation_box_micro", "testing_box_micro")}
                    for r in rows]
    out["failed"] = [s["step"] for s in report["steps"] if not s["ok"]]
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=str(REPO / "work" / "gpu_check"), help="folder of report.json, the world, the sweep")
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes, smoke world, one preset (the tests' run)")
    p.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S,
                   help="seconds for the whole check from GPU_CHECK_T0 (the shell's start); the sweep gets what is left")
    p.add_argument("--epochs", type=int, default=0, help="epochs per trained preset in the sweep (0: 4, dry run 1)")
    p.add_argument("--sweep-jobs", type=int, default=0, help="sweeps at once (0: one per preset; dry run 1)")
    p.add_argument("--compile", action="store_true", help="also time the research-size step under torch.compile")


def run(args: argparse.Namespace) -> int:
    t0 = float(os.environ.get("GPU_CHECK_T0") or time.time())
    sz = SIZES["dry" if args.dry_run else "full"]
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    kernel_spec(out / "jupyter")
    device = torch.device("cpu" if args.dry_run else "cuda")
    chk = Check(out, args.dry_run, t0, args.budget_s)
    info = chk.step("device", lambda: device_info(device))
    if info is None:
        return 1
    dtype = "bf16" if info.get("bf16_supported") else "fp32"
    data = out / "world"
    world = start_world(data, sz["world"], out / "world.log")
    try:
        for name in PRESETS:
            for dt in ("bf16", "fp32"):
                chk.step(f"bench_{name}_{dt}", lambda n=name, d=dt: bench_row(n, d, device, sz["bench"]))
        counts = yc2_frame_counts(sz["world"])
        for name in PRESETS:
            chk.step(f"yc2_epoch_{name}", lambda n=name: yc2_epoch(n, device, dtype, counts, sz["ref"]))
        for name in PRESETS:
            chk.step(f"dispatch_{name}", lambda n=name: dispatch(n, device, dtype, sz["research"],
                                                                 sz["dispatch_steps"], args.compile))
        chk.step("world", lambda: wait_world(world, out / "world.log", chk.left() - 30))
    finally:
        if world.poll() is None:
            _stop(world)
    chk.step("text_cache", lambda: text_cache_check(data))
    presets = sz["sweep"]
    jobs = args.sweep_jobs or (1 if args.dry_run else len(presets))
    chk.step("sweep", lambda: sweep(presets, data, out / "sweep", device.type, args.epochs or sz["epochs"], sz["sets"],
                                    jobs, t0 + args.budget_s - 10))
    chk.report["summary"] = summary(chk.report)
    chk.save()
    s = chk.report["summary"]
    print(json.dumps(s))
    print(f"gpu-check: {'ok' if chk.report['ok'] else 'FAILED: ' + ', '.join(s['failed'])} in "
          f"{chk.report['seconds']:.0f} s; report {out / 'report.json'}")
    return 0 if chk.report["ok"] else 1
