"""Which dtype the matmuls run in: ``dtype=auto`` picks bf16 only where it is faster.

CUDA: bf16 when the device supports it. CPU: a one-off micro-benchmark of the training step's
dominant operation (the region projection: float16 store features cast to the compute dtype,
then the forward product and the weight gradient at B*T*N = 4800 rows, 4096 -> 512) in bf16 and
in fp32, cached per machine under ``~/.cache/scl-workbench/dtype.json`` (``$SCL_WORKBENCH_CACHE``
overrides the folder), keyed by CPU model, CPU flags, torch version and thread count. AMX /
avx512_bf16 presence is recorded with the decision as a hint, but the measurement decides.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .io import DataError, write_json

DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}
REFERENCE_SHAPE = (4800, 4096, 512)  # (B*T*N rows, Dv, d) of the reference step B=48, T=5, N=20


@dataclass(frozen=True)
class Precision:
    dtype: str                    # "bf16" | "fp32": what the matmuls run in
    reason: str                   # one line: why
    requested: str = "auto"       # what the config asked for
    cached: bool = False          # CPU auto: the decision came from the per-machine cache

    def to_dict(self) -> dict:
        return asdict(self)


def cache_dir() -> Path:
    return Path(os.environ.get("SCL_WORKBENCH_CACHE") or Path.home() / ".cache" / "scl-workbench")


def cpu_info() -> dict:
    """CPU model, its flags and the bf16-relevant ones (Linux /proc/cpuinfo; platform fallback)."""
    model, flags = "", []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            k, _, v = line.partition(":")
            if k.strip() == "model name" and not model:
                model = v.strip()
            elif k.strip() == "flags" and not flags:
                flags = v.split()
    except OSError:
        pass
    model = model or platform.processor() or platform.machine()
    return {"model": model, "flags": flags, "amx_bf16": "amx_bf16" in flags, "avx512_bf16": "avx512_bf16" in flags}


def _cache_key(info: dict, threads: int, shape: tuple) -> str:
    raw = json.dumps([info["model"], sorted(info["flags"]), torch.__version__, threads, list(shape)])
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def projection_ms(dtype: str, shape: tuple = REFERENCE_SHAPE, reps: int = 3, seed: int = 0) -> float:
    """Best-of-``reps`` milliseconds of the projection's work in ``dtype``: cast the float16
    input, forward product, weight gradient (what one training step spends most of its time on)."""
    M, K, N = shape
    g = torch.Generator().manual_seed(seed)
    x16 = torch.rand(M, K, generator=g).half()
    w = torch.randn(N, K, generator=g).to(DTYPES[dtype]) * 0.01
    grad = torch.randn(M, N, generator=g).to(DTYPES[dtype])
    best = float("inf")
    for _ in range(reps + 1):  # the first repetition warms up
        t0 = time.perf_counter()
        x = x16.to(DTYPES[dtype])
        y = x @ w.T
        gw = grad.T @ x
        del y, gw
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def measure_cpu(shape: tuple = REFERENCE_SHAPE, reps: int = 3) -> dict:
    """The CPU micro-benchmark: both dtypes, interleaved, best of ``reps`` each."""
    ms = {"bf16": float("inf"), "fp32": float("inf")}
    for r in range(reps):
        for d in ("bf16", "fp32") if r % 2 == 0 else ("fp32", "bf16"):
            ms[d] = min(ms[d], projection_ms(d, shape, reps=1, seed=r))
    return ms


def _decide_cpu(shape: tuple = REFERENCE_SHAPE, refresh: bool = False) -> Precision:
    info = cpu_info()
    threads = torch.get_num_threads()
    key = _cache_key(info, threads, shape)
    path = cache_dir() / "dtype.json"
    table: dict = {}
    if path.is_file():
        try:
            table = json.loads(path.read_text())
            if not isinstance(table, dict):
                table = {}
        except (OSError, json.JSONDecodeError):
            table = {}  # a damaged cache is re-measured and rewritten, never trusted
    rec = table.get(key)
    cached = isinstance(rec, dict) and rec.get("dtype") in DTYPES and not refresh
    if not cached:
        ms = measure_cpu(shape)
        rec = {"dtype": "bf16" if ms["bf16"] < ms["fp32"] else "fp32",
               "bf16_ms": round(ms["bf16"], 2), "fp32_ms": round(ms["fp32"], 2),
               "cpu": info["model"], "amx_bf16": info["amx_bf16"], "avx512_bf16": info["avx512_bf16"],
               "threads": threads, "torch": torch.__version__, "shape": list(shape),
               "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}
        table[key] = rec
        try:
            write_json(path, table, indent=2)
        except OSError:
            pass  # a read-only home: the decision still holds for this process
    hint = "AMX present" if rec["amx_bf16"] else ("avx512_bf16 without AMX" if rec["avx512_bf16"] else "no bf16 ISA")
    reason = (f"cpu micro-benchmark{' (cached ' + rec['measured'] + ')' if cached else ''}: projection "
              f"{'x'.join(map(str, rec['shape']))} bf16 {rec['bf16_ms']} ms vs fp32 {rec['fp32_ms']} ms "
              f"on {rec['cpu']}, {rec['threads']} threads; {hint}")
    return Precision(rec["dtype"], reason, "auto", cached)


_DECIDED: dict[tuple, Precision] = {}


def resolve(requested: str, device: torch.device | str = "cpu") -> Precision:
    """The dtype the matmuls run in for a config's ``dtype`` on ``device`` (auto | bf16 | fp32)."""
    device = torch.device(device)
    if requested in DTYPES:
        return Precision(requested, "requested", requested)
    if requested != "auto":
        raise DataError(f"dtype must be one of auto, bf16, fp32; got {requested!r}")
    key = (str(device), torch.get_num_threads())
    if key not in _DECIDED:
        if device.type == "cuda":
            ok = torch.cuda.is_bf16_supported()
            name = torch.cuda.get_device_name(device)
            _DECIDED[key] = Precision("bf16" if ok else "fp32",
                                      f"cuda {name}: bf16 {'supported' if ok else 'not supported'}", "auto")
        elif device.type == "cpu":
            _DECIDED[key] = _decide_cpu()
        else:
            _DECIDED[key] = Precision("fp32", f"{device.type}: no bf16 rule, fp32", "auto")
    return _DECIDED[key]


def autocast(precision: Precision, device: torch.device):
    """bf16 autocast for the matmuls (fp32 master weights); a no-op context for fp32."""
    import contextlib

    if precision.dtype == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
