"""How a sweep unit executes, and the persistent worker that runs many units in one process.

A sweep's ``runs`` mode (``sweep --no-notebooks`` / ``--process-per-run``):

kernel   (default) the 02_train notebook under papermill, in a Jupyter kernel this process keeps for all
         its units: started once (imports once), its dataset's Workspace opened once
         (``workspace.keep_open``); before each unit the kernel's namespace and history are reset and what
         a run may change in the process is put back (``fresh_state``); after a failed unit the kernel is
         restarted. The output notebook (SWEEP_DIR/<unit>/02_train.ipynb) is papermill's, as before.
inline   ``train.run_preset`` in this process (what the notebook calls), with the same kept Workspace and
         fresh state; no notebook is written.
process  one papermill process (and kernel) per unit: the path before workers.

The executors make the process that runs units a worker: ``inline`` is the sweep's own process; ``local``
starts ``jobs`` submitit jobs that take units from the sweep's queue until none is left, a Slurm array task
runs ``--units-per-task`` units (``executor.WorkerJob``). A run's metrics.json and log.jsonl are those of one
process per run, byte for byte but for wall-clock seconds (tests/test_workers.py).

Measured with ``python -m workbench throughput`` (docs/PERFORMANCE.md, section 5): once a kernel is up a unit
costs ~0.1-0.7 CPU s more than inline (the notebook's other cells, the reset); starting it ~5 CPU s, once per worker.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import torch

from ..io import write_text
from ..paths import REPO
from ..train import config_for, run_preset
from ..workspace import keep_open

RUNS = ("kernel", "inline", "process")
KERNEL = "python3"                                      # the kernel spec the notebooks run in
PAPERMILL_LOG = "papermill.log"                         # SWEEP_DIR/<unit>/papermill.log: the run's stdout and stderr
KERNEL_LOG = "kernel.log"                               # SWEEP_DIR/<unit>/kernel.log: a kept kernel's own output

# The torch thread count of this process before its first unit (a run with cfg.threads sets it for the whole
# process), taken once, at the first unit.
_START: dict[str, int] = {}
_kept = threading.Lock()
_workspaces_kept = False
_engine_registered = False


def fresh_state() -> None:
    """Put back what a unit may have changed in this process, before the next unit: torch's thread count (as
    before the first unit) and the global RNGs of torch, numpy and ``random``, seeded afresh as in a new process
    (a run seeds what it uses itself). (No ``gc.collect()``: 0.16 s a run, and nothing of a run is kept.)"""
    torch.set_num_threads(_START.setdefault("threads", torch.get_num_threads()))
    torch.seed()
    np.random.seed()
    random.seed()


def _keep_workspaces() -> None:
    global _workspaces_kept
    with _kept:
        if not _workspaces_kept:
            keep_open(True)
            _workspaces_kept = True


def next_unit(shell=None) -> None:
    """Called before each unit: Workspaces opened from now on stay open for the next units; ``fresh_state``; in a
    kept kernel (``shell``: its IPython shell) also a new namespace and history, so that the notebook's execution
    counts and ``nb.parameters`` (which reads the history) see what a fresh kernel would."""
    _keep_workspaces()
    if shell is not None:
        shell.reset(new_session=True)
    fresh_state()


def close() -> None:
    """The end of a worker: its kept kernels shut down, its kept Workspaces closed."""
    global _workspaces_kept
    with _kept:
        kernels = list(_KERNELS.values())
        _KERNELS.clear()
        if _workspaces_kept:
            keep_open(False)
            _workspaces_kept = False
    for k in kernels:
        k.close()


def failed() -> None:
    """After a unit failed in this process: its kept Workspaces are dropped (a failure may come from them)."""
    with _kept:
        if _workspaces_kept:
            keep_open(True)


def notebook_error(nb_path: Path, log: str) -> str:
    """The first error a papermill output notebook recorded, else the tail of the papermill log."""
    try:
        nb = json.loads(Path(nb_path).read_text())
        for cell in nb.get("cells", []):
            for o in cell.get("outputs", []):
                if o.get("output_type") == "error":
                    return f"{o.get('ename')}: {o.get('evalue')}"
    except (OSError, json.JSONDecodeError):
        pass
    lines = [ln for ln in log.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-3:]) if lines else "papermill failed without output"


def _env(gpu: int | None) -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1", WORKBENCH_INTERACTIVE="0")
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    return env


# --- process: one papermill process per unit ----------------------------------------------------

def run_process(notebook: Path, out_nb: Path, params_file: Path, gpu: int | None) -> str | None:
    """Execute ``notebook`` with ``params_file`` into ``out_nb`` in a papermill process of its own; returns the
    error, or None. Its output goes to ``papermill.log`` beside ``out_nb``."""
    cmd = [sys.executable, "-m", "papermill", str(notebook), str(out_nb), "-f", str(params_file),
           "-k", KERNEL, "--cwd", str(REPO), "--no-progress-bar", "--log-output"]
    proc = subprocess.run(cmd, env=_env(gpu), capture_output=True, text=True)
    write_text(Path(out_nb).parent / PAPERMILL_LOG, proc.stdout + proc.stderr)
    return None if proc.returncode == 0 else notebook_error(out_nb, proc.stdout + proc.stderr)


# --- inline: run_preset in this process ---------------------------------------------------------

def run_inline(params: dict, gpu: int | None = None) -> str | None:
    """Train one unit as the notebook does (``config_for`` + ``run_preset``), in this process; returns the error,
    or None. ``gpu``: the CUDA device of this thread."""
    next_unit()
    try:
        cfg = config_for(params["preset"], **params["overrides"], data=params["data"])
        on_gpu = torch.cuda.device(gpu) if gpu is not None and torch.cuda.is_available() else contextlib.nullcontext()
        with on_gpu:
            run_preset(params["preset"], cfg, params["out"])
    except Exception as e:                              # noqa: BLE001 - the unit's failure, recorded as its error
        failed()
        return f"{type(e).__name__}: {e}"
    return None


# --- kernel: papermill in a kept kernel ---------------------------------------------------------

# Run silently in the kernel before each notebook (no history, no execution count): ``next_unit``.
PRELUDE = "__import__('workbench.experiments.worker', fromlist=['next_unit']).next_unit(get_ipython())"
ENGINE = "workbench-kept-kernel"


def _register_engine() -> None:
    """papermill's nbclient engine, executing in the kernel of ``km`` (kept) and running ``PRELUDE`` first."""
    global _engine_registered
    with _kept:
        if _engine_registered:
            return
        _engine_registered = True
    from papermill.clientwrap import PapermillNotebookClient   # optional heavy dependency: papermill
    from papermill.engines import NBClientEngine, papermill_engines  # papermill
    from papermill.log import logger                    # papermill

    class Client(PapermillNotebookClient):
        def execute(self, **kwargs):
            self.reset_execution_trackers()
            with self.setup_kernel(**kwargs):
                self.log.info(f"Executing notebook with kernel: {self.kernel_name}")
                reply = self.wait_for_reply(self.kc.execute(PRELUDE, silent=True, store_history=False))
                if reply is None or reply["content"]["status"] != "ok":
                    content = (reply or {}).get("content", {})
                    raise RuntimeError(f"kept kernel: the reset before the notebook failed: "
                                       f"{content.get('ename')}: {content.get('evalue')}")
                self.papermill_execute_cells()
                info = self.wait_for_reply(self.kc.kernel_info())
                self.nb.metadata["language_info"] = info["content"]["language_info"]
                self.set_widgets_metadata()
            return self.nb

    class Engine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                     stderr_file=None, start_timeout=60, execution_timeout=None, km=None, **kwargs):
            client = Client(nb_man, km=km, timeout=execution_timeout, startup_timeout=start_timeout,
                            kernel_name=kernel_name, log=logger, log_output=log_output, stdout_file=stdout_file,
                            stderr_file=stderr_file)
            try:
                return client.execute()
            finally:                                    # the kernel stays; its client of this notebook goes
                if client.kc is not None:
                    client.kc.stop_channels()

    papermill_engines.register(ENGINE, Engine)


@contextlib.contextmanager
def _papermill_log(stream):
    """papermill's log records of this thread go to ``stream`` (and not on to the worker's stderr) inside."""
    logger = logging.getLogger("papermill")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    me = threading.get_ident()
    handler.addFilter(lambda record: record.thread == me)
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


class KeptKernel:
    """A Jupyter kernel (cwd: the repository; ``gpu``: its CUDA_VISIBLE_DEVICES) that executes notebook after
    notebook; started at the first, restarted after a failed one, shut down by ``close``."""

    def __init__(self, gpu: int | None = None):
        self.gpu, self.km, self.restart = gpu, None, False

    def _start(self, log: Path) -> None:
        """Start the kernel; what it writes outside the notebook's cells (its own warnings, a crash) goes to ``log``."""
        import nbformat                                 # optional heavy dependency: Jupyter
        from nbclient import NotebookClient             # Jupyter
        from nbclient.util import run_sync              # Jupyter

        starter = NotebookClient(nbformat.v4.new_notebook(), kernel_name=KERNEL)   # as papermill starts one
        starter.create_kernel_manager()                 # (an async manager; history in memory)
        with open(log, "w") as f:
            run_sync(starter.async_start_new_kernel)(cwd=str(REPO), env=_env(self.gpu), stdout=f, stderr=f)
        self.km, self.restart = starter.km, False

    def execute(self, notebook: Path, out_nb: Path, params: dict) -> str | None:
        """Execute ``notebook`` with ``params`` into ``out_nb``; returns the error, or None. papermill's log (the
        cells' output among it) goes to ``papermill.log`` beside ``out_nb``, as ``papermill --log-output``
        writes it; the kernel's own output to ``kernel.log`` beside the notebook that started it."""
        import papermill                                # optional heavy dependency: papermill
        from papermill.exceptions import PapermillExecutionError  # papermill

        if self.km is not None and self.restart:
            self.close()
        if self.km is None:
            self._start(Path(out_nb).parent / KERNEL_LOG)
        _register_engine()
        log = Path(out_nb).parent / PAPERMILL_LOG
        try:
            with open(log, "w") as f, _papermill_log(f):
                papermill.execute_notebook(str(notebook), str(out_nb), parameters=params, engine_name=ENGINE,
                                           kernel_name=KERNEL, progress_bar=False, log_output=True, km=self.km)
        except Exception as e:                          # noqa: BLE001 - the unit's failure, recorded as its error
            self.restart = True                         # nothing of a failed unit reaches the next one
            if isinstance(e, PapermillExecutionError):
                return notebook_error(out_nb, log.read_text(errors="replace"))
            return f"{type(e).__name__}: {e}"
        return None

    def close(self) -> None:
        km, self.km = self.km, None
        if km is None:
            return
        from nbclient.util import run_sync              # optional heavy dependency: Jupyter

        try:
            run_sync(km.shutdown_kernel)(now=True)
        except Exception:                               # noqa: BLE001 - already gone, or the loop is broken: kill it
            proc = getattr(getattr(km, "provisioner", None), "process", None)
            if proc is not None:
                proc.kill()
                proc.wait()


_KERNELS: dict[int | None, KeptKernel] = {}


def kept_kernel(gpu: int | None = None) -> KeptKernel:
    """This process's kept kernel for ``gpu`` (one per GPU thread of the inline executor)."""
    with _kept:
        return _KERNELS.setdefault(gpu, KeptKernel(gpu))
