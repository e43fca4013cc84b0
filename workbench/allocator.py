"""Keep freed memory in the process instead of handing it back to the kernel (glibc only).

A CPU training step allocates the same large tensors every time: the matmul-dtype copy of the
(B, T, N, 4096) input (39 MB at the reference shape), the (B, T, N, 512) activations and their
gradients; evaluation allocates (segments x frames, N, d) blocks of several MB per group. glibc's
malloc serves blocks above its mmap threshold with fresh ``mmap`` pages and ``munmap``s them on
free (and trims the heap top above 128 KB), so each step page-faults those pages in again.
``heap`` (the default) sets ``M_MMAP_MAX = 0`` (large blocks come from the heap too) and a 1 GiB
``M_TRIM_THRESHOLD`` (freed heap is kept for the next step). Results are bit-identical: only where
memory comes from changes (torch aligns every tensor to 64 bytes either way).
``SCL_WORKBENCH_MALLOC=system`` (set before ``import workbench``) keeps glibc's defaults.

Measured (docs/PERFORMANCE.md, sections 0 and 5):
- At the research size (960 / 300 segments, 10 epochs, 1 thread; the ablation grid's run), paired
  processes on an idle AMX Xeon: system CPU time 2.0-2.5 s -> 0.9 s, minor page faults 0.76-1.1M ->
  85-97k, the whole run -1.1 s (stvg, -5 %) and -0.8 to -1.1 s (scl, -3 %) of CPU; same peak RSS
  (738 MB, scl 3 epochs); metrics.json and log.jsonl identical. This made it the default (stop 22).
- At the reference shape (bf16, B=48, T=5, N=20, D=4096): minor page faults per bench process
  770k -> 231k and kernel time 2.1 s -> 1.0 s, but no measurable wall-time change per step (10
  paired rounds at 2 threads: -13 ms, 95 % interval [-39, +12] ms), and peak RSS of a full-scale
  training run ~15 % higher.
Runs and ``bench`` record which mode was in effect. Other C libraries (musl, macOS) are left alone.
"""
from __future__ import annotations

import ctypes
import os
import platform
import warnings

ENV = "SCL_WORKBENCH_MALLOC"
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc <malloc.h>
TRIM_BYTES = 1 << 30

_state = {"mode": "system", "reason": "not configured"}


def configure() -> dict:
    """Apply the heap-only setting once per process (see the module docstring); returns ``state()``."""
    global _state
    if _state["reason"] != "not configured":
        return state()
    want = os.environ.get(ENV, "heap").strip().lower()
    if want not in ("heap", "system"):
        _state = {"mode": "system", "reason": f"{ENV}={want!r} is not 'heap' or 'system'; glibc defaults kept"}
        warnings.warn(f"workbench: {_state['reason']}", stacklevel=2)
    elif want == "system":
        _state = {"mode": "system", "reason": f"glibc defaults ({ENV}=system)"}
    elif not _glibc():
        _state = {"mode": "system", "reason": f"not glibc ({platform.system()})"}
    else:
        try:
            libc = ctypes.CDLL("libc.so.6")  # glibc's soname
            ok = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, TRIM_BYTES) == 1
        except (OSError, AttributeError) as e:
            ok, why = False, str(e)
        else:
            why = "mallopt refused"
        _state = ({"mode": "heap", "reason": "glibc mallopt: M_MMAP_MAX=0, M_TRIM_THRESHOLD=1 GiB"} if ok
                  else {"mode": "system", "reason": f"glibc defaults kept ({why})"})
    return state()


def _glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    except (ValueError, OSError, AttributeError):
        return False


def state() -> dict:
    """{"mode": "heap" | "system", "reason": one line}: the allocator setting of this process."""
    return dict(_state)
