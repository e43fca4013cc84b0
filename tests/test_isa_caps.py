"""The dtype-sensitive tests pass on every CPU, not only on the one the suite runs on.

bf16 matmuls on a CPU run on different kernels by machine: AMX tiles (Intel Xeon with AMX), AVX-512
bf16 dot products (Xeon without AMX, AMD EPYC), or torch's own loop where the CPU has no bf16 ISA. They
round differently, and a test written on one of them can fail on another (issue 23: a cosine of
rounding noise passed on AMX and failed on an EPYC). oneDNN's ``ONEDNN_MAX_CPU_ISA`` caps the ISA oneDNN
may use, so one machine runs the kernels of the others; this module reruns the dtype-sensitive tests
under two caps in a child pytest:

- ``AVX512_CORE_BF16``: bf16 without AMX (the no-AMX Xeon's and the EPYC's kernels);
- ``AVX2``: no native bf16 (oneDNN declines bf16 matmuls and torch computes them itself).

How the cap is known to change the kernels: with ``ONEDNN_VERBOSE=1`` oneDNN prints the implementation
of every primitive it runs; ``workbench.precision.bf16_kernel()`` reads that line for one bf16 matmul.
On the developers' AMX Xeon (torch 2.13.0, oneDNN 3.12) it printed ``brg_matmul:avx10_1_512_amx``
uncapped, ``brg_matmul:avx512_core_bf16`` under ``AVX512_CORE_BF16`` and no oneDNN line at all under
``AVX2`` (reported as ``aten``); the reference projection took 12.6 / 97 / 626 ms in bf16 against
62-73 ms in fp32. ``test_cap_changes_the_bf16_kernel`` checks on whatever machine runs the suite that a
capped process runs no kernel of an ISA above its cap.

The child runs force ``dtype=bf16`` for the end-to-end training tests (``SCL_TEST_DTYPE``, read by
``conftest.TINY``): under a cap where bf16 is slower ``dtype=auto`` picks fp32, and the bf16 kernels
would go untested. Each child uses its own ``dtype=auto`` cache folder.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CAPS = ("AVX512_CORE_BF16", "AVX2")
# Every test whose outcome depends on the bf16 kernels: the fast step against the straightforward one
# (fp32 and bf16), fused Adam, the dtype=auto decision, the autocast dtypes, and the end-to-end training
# tests (train, resume after SIGKILL, predict/evaluate, baselines) -- the last ones in bf16.
SELECTION = ["tests/test_speed.py", "tests/test_model_equations.py::test_bf16_autocast_dtypes", "tests/test_train.py"]
# not dtype-sensitive, and seconds each: the GPU check's CPU dry run, the allocator, resident batches, bench
DESELECT = "not gpu_check_dry_run and not page_faulting and not resident_batches and not bench_prints"
# The reference projection under AVX2 is torch's own bf16 loop (~0.6 s a product); the decision logic is
# the same at a smaller shape (the cache key includes the shape).
SHAPE = (960, 1024, 256)


def _capped_env(cap: str, tmp_path: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")}
    return {**env, "ONEDNN_MAX_CPU_ISA": cap, "SCL_WORKBENCH_CACHE": str(tmp_path / "dtype-cache"), **extra}


def _python(code: str, env: dict) -> str:
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("cap", CAPS)
def test_cap_changes_the_bf16_kernel(cap, tmp_path):
    kernel = _python("from workbench.precision import bf16_kernel; print(bf16_kernel())", _capped_env(cap, tmp_path))
    assert kernel and kernel != "unknown"
    assert "amx" not in kernel                  # both caps are below AMX
    if cap == "AVX2":
        assert "avx512" not in kernel and "bf16" not in kernel.split(":")[-1], kernel


@pytest.mark.parametrize("cap", CAPS)
def test_auto_dtype_under_cap_picks_the_faster_and_names_the_isa(cap, tmp_path):
    """``dtype=auto`` measures under the cap (its cache key includes the kernel, so a decision taken
    uncapped is not reused) and its reason says which kernel and cap it saw."""
    env = _capped_env(cap, tmp_path)
    out = json.loads(_python(f"import json; from workbench import precision as p; d = p._decide_cpu({SHAPE}); "
                             "print(json.dumps({'dtype': d.dtype, 'reason': d.reason, 'kernel': p.bf16_kernel()}))", env))
    (rec,) = json.loads((tmp_path / "dtype-cache" / "dtype.json").read_text()).values()
    assert rec["isa_cap"] == cap and rec["bf16_kernel"] == out["kernel"]
    assert out["dtype"] == rec["dtype"] == ("bf16" if rec["bf16_ms"] < rec["fp32_ms"] else "fp32")
    assert f"ONEDNN_MAX_CPU_ISA={cap}" in out["reason"] and out["kernel"] in out["reason"]
    if out["kernel"] == "aten":
        # torch's own bf16 loop is several times slower than fp32 BLAS (8.5x on the developers' Xeon)
        assert out["dtype"] == "fp32", out["reason"]


@pytest.mark.slow
@pytest.mark.parametrize("cap", CAPS)
def test_dtype_sensitive_tests_pass_under_isa_cap(cap, tmp_path):
    env = _capped_env(cap, tmp_path, SCL_TEST_DTYPE="bf16")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-k", DESELECT,
                        "--basetemp", str(tmp_path / "t"), *SELECTION],
                       env=env, capture_output=True, text=True, cwd=ROOT, timeout=1200)
    assert r.returncode == 0, f"under ONEDNN_MAX_CPU_ISA={cap}:\n{r.stdout[-6000:]}\n{r.stderr[-2000:]}"
    assert " passed" in r.stdout.splitlines()[-1]
