"""Which dtype the matmuls run in: ``dtype=auto`` picks bf16 only where it is faster.

CUDA: bf16 when the device supports it. CPU: a one-off micro-benchmark of the training step's
dominant operation (the region projection: float16 store features cast to the compute dtype,
then the forward product and the weight gradient at B*T*N = 4800 rows, 4096 -> 512) in bf16 and
in fp32, cached per machine under ``~/.cache/scl-workbench/dtype.json`` (``$SCL_WORKBENCH_CACHE``
overrides the folder), keyed by CPU model, CPU flags, torch version, thread count and the bf16
matmul kernel that actually runs. AMX / avx512_bf16 presence is recorded with the decision as a hint,
but the measurement decides.

The kernel matters because the CPU flags do not tell it: oneDNN's ``ONEDNN_MAX_CPU_ISA`` (e.g.
``AVX512_CORE_BF16``: bf16 without AMX; ``AVX2``: no native bf16) makes one machine run the kernels of
another, and the same flags then need another answer (on the AMX Xeon: bf16 12.6 ms vs fp32 62 ms
uncapped, 97 vs 62 ms at ``AVX512_CORE_BF16``, 626 vs 73 ms at ``AVX2``). ``bf16_kernel()`` asks oneDNN
which implementation ran a bf16 matmul (its verbose line, read from file descriptor 1), so the
decision's reason names the ISA it saw.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .io import DataError, write_json
from .paths import cache_dir

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


ISA_CAP_VARS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")


def isa_cap() -> str:
    """The oneDNN ISA cap this process runs under ("" = none: the machine's best)."""
    return next((os.environ[v] for v in ISA_CAP_VARS if os.environ.get(v)), "")


_KERNEL: list[str] = []


def bf16_kernel() -> str:
    """The implementation a CPU bf16 matmul runs on, e.g. ``brg_matmul:avx10_1_512_amx`` (AMX),
    ``brg_matmul:avx512_core_bf16`` (avx512_bf16 without AMX), or ``aten`` where oneDNN is not
    used for it (no bf16 ISA available to oneDNN: torch's own loop, much slower). Read from oneDNN's
    verbose line of one 64x64 product, with file descriptor 1 redirected to a temporary file for the
    moment; once per process."""
    if _KERNEL:
        return _KERNEL[0]
    out = ""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
        with tempfile.TemporaryFile() as tmp:
            os.dup2(tmp.fileno(), 1)
            try:
                with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
                    a = torch.ones(64, 64, dtype=torch.bfloat16)
                    a @ a
            finally:
                sys.stdout.flush()
                os.dup2(saved, 1)
                os.close(saved)
            tmp.seek(0)
            out = tmp.read().decode(errors="replace")
    except (OSError, RuntimeError, AttributeError):
        _KERNEL.append("unknown")
        return _KERNEL[0]
    for line in out.splitlines():
        parts = line.split(",")
        if "exec" in parts and "matmul" in parts:
            _KERNEL.append(parts[parts.index("matmul") + 1])
            break
    else:
        _KERNEL.append("aten")
    return _KERNEL[0]


def _cache_key(info: dict, threads: int, shape: tuple, kernel: str = "") -> str:
    raw = json.dumps([info["model"], sorted(info["flags"]), torch.__version__, threads, list(shape), kernel])
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


_RECORD_KEYS = {"dtype", "bf16_ms", "fp32_ms", "cpu", "amx_bf16", "avx512_bf16", "threads", "torch", "shape",
                "bf16_kernel", "isa_cap", "measured"}


def _read_table(path: Path) -> dict:
    try:
        table = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        table = {}  # a damaged cache is re-measured and rewritten, never trusted
    return table if isinstance(table, dict) else {}


@contextlib.contextmanager
def _cache_lock(folder: Path):
    """One writer of dtype.json at a time on this machine: without it two processes that both missed
    the cache each rewrote the table they had read, one dropped the other's record, and a third
    process measured again -- possibly to the other answer under load (a resumed run then changed dtype)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fh = open(folder / "dtype.lock", "a")
    except OSError:
        yield  # a read-only home: no cache to protect
        return
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _decide_cpu(shape: tuple = REFERENCE_SHAPE, refresh: bool = False) -> Precision:
    info = cpu_info()
    threads = torch.get_num_threads()
    kernel, cap = bf16_kernel(), isa_cap()
    key = _cache_key(info, threads, shape, kernel)
    path = cache_dir() / "dtype.json"
    with _cache_lock(path.parent):
        table = _read_table(path)
        rec = table.get(key)
        cached = (isinstance(rec, dict) and rec.get("dtype") in DTYPES and _RECORD_KEYS <= rec.keys()
                  and not refresh)
        if not cached:
            ms = measure_cpu(shape)
            rec = {"dtype": "bf16" if ms["bf16"] < ms["fp32"] else "fp32",
                   "bf16_ms": round(ms["bf16"], 2), "fp32_ms": round(ms["fp32"], 2),
                   "cpu": info["model"], "amx_bf16": info["amx_bf16"], "avx512_bf16": info["avx512_bf16"],
                   "threads": threads, "torch": torch.__version__, "shape": list(shape),
                   "bf16_kernel": kernel, "isa_cap": cap,
                   "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}
            table[key] = rec
            try:
                write_json(path, table, indent=2)
            except OSError:
                pass  # a read-only home: the decision still holds for this process
    hint = "AMX present" if rec["amx_bf16"] else ("avx512_bf16 without AMX" if rec["avx512_bf16"] else "no bf16 ISA")
    isa = f"bf16 kernel {rec['bf16_kernel']}" + (f" under ONEDNN_MAX_CPU_ISA={rec['isa_cap']}" if rec["isa_cap"] else "")
    reason = (f"cpu micro-benchmark{' (cached ' + rec['measured'] + ')' if cached else ''}: projection "
              f"{'x'.join(map(str, rec['shape']))} bf16 {rec['bf16_ms']} ms vs fp32 {rec['fp32_ms']} ms "
              f"on {rec['cpu']}, {rec['threads']} threads; {isa}; CPU flags: {hint}")
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


def pin(device: torch.device | str, precision: Precision) -> Precision:
    """Make ``precision`` the ``auto`` decision for ``device`` (at the current thread count) until the
    enclosing ``scope()`` ends: a resumed run goes on in the dtype its first start resolved ``auto`` to."""
    _DECIDED[(str(torch.device(device)), torch.get_num_threads())] = precision
    return precision


@contextlib.contextmanager
def scope():
    """Decisions pinned inside (one run) are forgotten after it: the next run in this process decides anew."""
    saved = dict(_DECIDED)
    try:
        yield
    finally:
        _DECIDED.clear()
        _DECIDED.update(saved)


def autocast(precision: Precision, device: torch.device):
    """bf16 autocast for the matmuls (fp32 master weights); a no-op context for fp32."""
    if precision.dtype == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
