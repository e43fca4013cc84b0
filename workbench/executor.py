"""Where the runs of a sweep execute, and how their progress is reported while they train.

A sweep hands an executor a list of ``JobSpec`` (one run each: a module-level function and its
keyword arguments, e.g. ``sweep.run_one``) and a ``record(spec, row)`` callback. Executors:

inline  this process; with ``jobs`` > 1 and several GPUs, one thread per GPU (``CUDA_VISIBLE_DEVICES``)
local   submitit's LocalExecutor: each run in its own process on this machine, at most ``jobs`` at once
        (one GPU each when there are GPUs)
slurm   submitit's SlurmExecutor: one job array (partition, GPUs / CPUs per run, time limit, array
        parallelism); a pre-empted or timed-out run is requeued and resumes from its last checkpoint

Every executor reports a row per run: ``{"status": "ok" | "failed", "error", "seconds"}``. A job that
ends without an outcome (cancelled, pre-empted past its requeues, timed out, killed, node failure) is
reported ``failed`` with the scheduler's state in ``error``. The parent process reads outcomes from the
run's directory (``outcome.json``, written by the job), never by unpickling a job result.

``Progress`` tails each running run's ``run/progress.json`` (written by ``train`` every few seconds:
epoch, step, loss) and ``run/log.jsonl`` (one row per finished epoch) and prints a line when they move.
"""
from __future__ import annotations

import contextlib
import queue
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .io import DataError, read_json, write_json

EXECUTORS = ("inline", "local", "slurm")
OUTCOME = "outcome.json"                # SWEEP_DIR/<name>/outcome.json: the row the job returned
JOB = "job.json"                        # SWEEP_DIR/<name>/job.json: executor, job id, submitit folder
ERROR = "error.txt"                     # SWEEP_DIR/<name>/error.txt: why the run failed
RUN = "run"                             # SWEEP_DIR/<name>/run: the run directory (run/metrics.json when finished)


def recorded_error(unit: str | Path) -> str | None:
    """The failure recorded in a sweep unit's ``error.txt``, or None when there is none or when the run's
    ``metrics.json`` is newer: a run that finished after a failed attempt was recorded (e.g. a job of an
    interrupted sweep that went on while a rerun found its run locked) is finished, not failed."""
    err, metrics = Path(unit) / ERROR, Path(unit) / RUN / "metrics.json"
    try:
        text, t_err = err.read_text().strip(), err.stat().st_mtime
    except FileNotFoundError:
        return None
    try:
        if metrics.stat().st_mtime > t_err:
            return None
    except FileNotFoundError:
        pass
    return text


@contextlib.contextmanager
def terminate_as_interrupt():
    """Inside the block, SIGTERM and SIGHUP raise KeyboardInterrupt (as Ctrl-C does) in the main thread,
    so that an executor's cleanup runs (local jobs cancelled, papermill and its kernel stopped) instead of
    the process vanishing with its runs still going. A signal this process ignores stays ignored (`nohup`
    ignores SIGHUP; a shell's background job ignores SIGINT). Elsewhere than the main thread: no change."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    old = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)
           if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def interruptible_children():
    """Processes started inside the block do not inherit an ignored SIGINT. A sweep started in the
    background (`cmd &` in a script) ignores SIGINT, and its local jobs would too, so that submitit's
    cancel and `kill -INT JOB_ID` could not stop them. With a Python handler installed here, a child
    starts with SIGINT at its default (a Python child turns it into KeyboardInterrupt). No change
    when SIGINT is not ignored or outside the main thread."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.SIG_IGN):
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def kill_tree(pid: int) -> int:
    """SIGKILL a process and all its descendants (a local job: submitit's controller, the job's Python,
    papermill, the notebook kernel); returns how many were signalled."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = root.children(recursive=True) + [root]
    except psutil.NoSuchProcess:
        return 0
    n = 0
    for p in procs:
        try:
            p.kill()
            n += 1
        except psutil.NoSuchProcess:
            pass
    return n


@dataclass(frozen=True)
class JobSpec:
    """One run of a sweep: ``fn(**kwargs)`` returns its row; ``dir`` is SWEEP_DIR/<name>."""

    name: str
    dir: str
    fn: Callable[..., dict]
    kwargs: dict = field(default_factory=dict)

    def __call__(self, gpu: int | None = None) -> dict:
        kw = dict(self.kwargs)
        if gpu is not None:
            kw["gpu"] = gpu
        row = self.fn(**kw)
        write_json(Path(self.dir) / OUTCOME, row)
        return row

    def __submitit_checkpoint__(self, *args: Any, **kwargs: Any):
        """Pre-empted or out of time on Slurm: requeue the same run (``train`` resumes from its checkpoint)."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


Record = Callable[[JobSpec, dict], None]


def gpu_count() -> int:
    try:
        import torch
        return torch.cuda.device_count()
    except Exception:                                   # noqa: BLE001 - no torch / no driver: no GPU
        return 0


def _failed_row(spec: JobSpec, error: str, seconds: float | None = None) -> dict:
    return {"preset": spec.name, "status": "failed", "error": error, "seconds": seconds, "skipped": False}


# --- inline -------------------------------------------------------------------------------------

class InlineExecutor:
    """Runs in this process: one after another, or one thread per GPU with ``jobs`` > 1 and several GPUs."""

    def __init__(self, jobs: int = 1, log: Callable[[str], None] = print):
        self.jobs, self.log = jobs, log

    def run(self, specs: list[JobSpec], record: Record) -> None:
        gpus = gpu_count()
        workers = max(1, min(self.jobs, gpus)) if gpus > 1 else 1
        if self.jobs > 1 and workers == 1:
            self.log(f"sweep: {gpus} GPU(s): running sequentially (--executor local runs CPU jobs in parallel)")
        todo: "queue.Queue[JobSpec]" = queue.Queue()
        for s in specs:
            todo.put(s)

        def worker(gpu: int | None) -> None:
            while True:
                try:
                    spec = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    row = spec(gpu)
                except Exception as e:                 # noqa: BLE001 - a failed run must not stop the others
                    row = _failed_row(spec, f"{type(e).__name__}: {e}")
                record(spec, row)

        if workers == 1:
            worker(0 if gpus == 1 else None)
            return
        threads = [threading.Thread(target=worker, args=(g,)) for g in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


# --- submitit: local and Slurm ------------------------------------------------------------------

@dataclass
class ClusterOptions:
    """Resources of each run on a submitit executor (Slurm fields are ignored by ``local``)."""

    partition: str = ""                 # Slurm partition ("" = the cluster's default)
    gpus: int = 1                       # GPUs per run (local: used when this machine has GPUs)
    cpus: int = 4                       # CPUs per run
    time_min: int = 240                 # time limit per run (minutes); a run past it is requeued on Slurm
    array_parallelism: int = 8          # Slurm: runs of the job array running at once
    mem: str = ""                       # Slurm: memory per run, e.g. "32G" ("" = the partition's default)
    account: str = ""                   # Slurm account ("" = none)
    qos: str = ""                       # Slurm quality of service ("" = none)
    requeues: int = 3                   # Slurm: how often a pre-empted / timed-out run is requeued
    setup: list[str] = field(default_factory=list)   # shell lines run before each job (module load, ...)


class SubmititExecutor:
    """Runs each spec as a submitit job (``kind`` local or slurm); job files under ``folder``."""

    def __init__(self, kind: str, folder: str | Path, jobs: int = 1, options: ClusterOptions | None = None,
                 log: Callable[[str], None] = print, poll_s: float = 2.0):
        if kind not in ("local", "slurm"):
            raise DataError(f"executor {kind!r}: expected local or slurm")
        self.kind, self.folder, self.jobs = kind, Path(folder), max(1, jobs)
        self.opt, self.log, self.poll_s = options or ClusterOptions(), log, poll_s

    def executor(self):
        """The configured submitit executor (``%j`` in the folder: one log directory per job)."""
        import submitit

        folder = self.folder / "%j"
        o = self.opt
        if self.kind == "local":
            ex = submitit.LocalExecutor(folder=folder)
            ex.update_parameters(timeout_min=o.time_min)
            return ex
        if shutil.which("sbatch") is None:
            raise DataError("--executor slurm: no `sbatch` on PATH (run the sweep on a Slurm login node)")
        ex = submitit.SlurmExecutor(folder=folder, max_num_timeout=o.requeues)
        params: dict[str, Any] = dict(job_name="scl-sweep", time=o.time_min, cpus_per_task=o.cpus,
                                      gpus_per_node=o.gpus or None, array_parallelism=o.array_parallelism,
                                      ntasks_per_node=1, nodes=1)
        for k in ("partition", "mem", "account", "qos"):
            if getattr(o, k):
                params[k] = getattr(o, k)
        if o.setup:
            params["setup"] = list(o.setup)
        ex.update_parameters(**params)
        return ex

    def run(self, specs: list[JobSpec], record: Record) -> list:
        if not specs:
            return []
        ex = self.executor()
        if self.kind == "slurm":
            live = {s.name: self.live_job(s) for s in specs}    # still queued / running from an earlier sweep
            fresh = [s for s in specs if live[s.name] is None]
            jobs = []
            if fresh:
                with ex.batch():                          # one job array; Slurm runs array_parallelism at once
                    jobs = [ex.submit(s) for s in fresh]
                for s, j in zip(fresh, jobs):
                    self._submitted(s, j)
            pairs = [(s, live[s.name]) for s in specs if live[s.name] is not None] + list(zip(fresh, jobs))
            self._wait(pairs, record)
            return [j for _, j in pairs]
        return self._run_local(ex, specs, record)

    ALIVE = ("PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "COMPLETING", "CONFIGURING", "RESIZING", "SUSPENDED")

    def live_job(self, spec: JobSpec):
        """The Slurm job an earlier sweep submitted for ``spec`` when it is still queued or running, else None."""
        import submitit

        path = Path(spec.dir) / JOB
        if not path.is_file():
            return None
        info = read_json(path)
        if info.get("executor") != "slurm" or not info.get("job_id"):
            return None
        job = submitit.SlurmJob(folder=self.folder / "%j", job_id=str(info["job_id"]))
        state = job.watcher.get_state(job.job_id, mode="force").upper()
        if not state.startswith(self.ALIVE):
            return None
        self.log(f"sweep: {spec.name}: slurm job {job.job_id} is still {state}: waiting for it, not resubmitting")
        return job

    def _submitted(self, spec: JobSpec, job) -> None:
        Path(spec.dir).mkdir(parents=True, exist_ok=True)
        (Path(spec.dir) / OUTCOME).unlink(missing_ok=True)
        write_json(Path(spec.dir) / JOB, {"executor": self.kind, "job_id": str(job.job_id),
                                          "folder": str(job.paths.folder), "submitted": time.strftime("%Y-%m-%dT%H:%M:%S")},
                   indent=2)
        self.log(f"sweep: {spec.name}: submitted as {self.kind} job {job.job_id}")

    def _run_local(self, ex, specs: list[JobSpec], record: Record) -> list:
        gpus = gpu_count()
        slots: list[int | None] = list(range(gpus))[: self.jobs] if gpus and self.opt.gpus else [None] * self.jobs
        pending, running, all_jobs = list(specs), [], []
        try:
            while pending or running:
                while pending and slots:
                    gpu = slots.pop(0)
                    spec = pending.pop(0)
                    ex.update_parameters(gpus_per_node=1 if gpu is not None else 0,
                                         visible_gpus=(gpu,) if gpu is not None else ())
                    (Path(spec.dir) / OUTCOME).unlink(missing_ok=True)
                    with interruptible_children():
                        job = ex.submit(spec)
                    self._submitted(spec, job)
                    running.append((spec, job, gpu))
                    all_jobs.append(job)
                time.sleep(self.poll_s)
                still = []
                for spec, job, gpu in running:
                    if job.done():
                        record(spec, self.outcome(spec, job))
                        slots.append(gpu)
                    else:
                        still.append((spec, job, gpu))
                running = still
        except BaseException as exc:                    # Ctrl-C, SIGTERM (terminate_as_interrupt), an error
            self._cancel_local(running, record, exc)
            raise
        return all_jobs

    def _cancel_local(self, running: list, record: Record, exc: BaseException, grace_s: float = 10.0) -> None:
        """Stop the local jobs of an interrupted sweep (their own processes would otherwise go on training as
        orphans) and record each as failed, so that the next run of the sweep resubmits it; a job that
        finished on its own meanwhile (it wrote its outcome) is recorded with that outcome.

        First SIGINT, submitit's cancel (the job's run stops papermill, whose kernel follows); a job still
        alive after ``grace_s`` (one that does not stop on SIGINT) has its whole process tree killed."""
        for spec, job, _ in running:
            job.cancel(check=False)
            self.log(f"sweep: {spec.name}: cancelling local job {job.job_id} ({type(exc).__name__}: {exc})")

        def wait(seconds: float) -> None:
            t0 = time.time()
            while any(not job.done() for _, job, _ in running) and time.time() - t0 < seconds:
                time.sleep(0.2)

        wait(grace_s)
        for spec, job, _ in running:
            if not job.done():
                killed = kill_tree(int(job.job_id))     # a local job's id is its controller's pid
                self.log(f"sweep: {spec.name}: local job {job.job_id} did not stop on SIGINT; killed {killed} process(es)")
        wait(grace_s)
        for spec, job, _ in running:
            if (Path(spec.dir) / OUTCOME).is_file():   # it finished on its own before the cancel reached it
                record(spec, self.outcome(spec, job))
                continue
            record(spec, _failed_row(spec, f"cancelled: the sweep was interrupted ({type(exc).__name__}) "
                                           f"while local job {job.job_id} ran"))

    def _wait(self, pairs: list, record: Record) -> None:
        left = list(pairs)
        while left:
            time.sleep(self.poll_s)
            still = []
            for spec, job in left:
                if job.done():
                    record(spec, self.outcome(spec, job))
                else:
                    still.append((spec, job))
            left = still

    @staticmethod
    def outcome(spec: JobSpec, job) -> dict:
        """The row of a finished job: what it wrote to outcome.json, else the scheduler's state."""
        path = Path(spec.dir) / OUTCOME
        if path.is_file():
            return read_json(path)
        state = str(job.state)
        tail = ""
        try:
            err = Path(job.paths.stderr)
            if err.is_file():
                lines = [ln for ln in err.read_text(errors="replace").splitlines() if ln.strip()]
                tail = " | ".join(lines[-2:])
        except OSError:
            pass
        return _failed_row(spec, f"job {job.job_id} ended {state} without an outcome" + (f": {tail}" if tail else ""))


def make_executor(kind: str, folder: str | Path, jobs: int = 1, options: ClusterOptions | None = None,
                  log: Callable[[str], None] = print):
    if kind == "inline":
        return InlineExecutor(jobs, log)
    if kind in ("local", "slurm"):
        return SubmititExecutor(kind, folder, jobs, options, log)
    raise DataError(f"executor {kind!r}: expected one of {EXECUTORS}")


# --- live progress ------------------------------------------------------------------------------

class Progress:
    """A thread that prints, for every run of ``dirs`` (name -> run directory), a line whenever its
    ``progress.json`` (epoch, step, loss; written while it trains) or ``log.jsonl`` (finished epochs) moves."""

    def __init__(self, dirs: dict[str, Path], log: Callable[[str], None] = print, every_s: float = 2.0):
        self.dirs, self.log, self.every_s = dict(dirs), log, every_s
        self.seen: dict[str, tuple] = {}
        self.done: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "Progress":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def finished(self, name: str) -> None:
        self.done.add(name)

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            for name, d in list(self.dirs.items()):
                if name not in self.done:
                    try:
                        self.poll(name, Path(d))
                    except (OSError, ValueError, KeyError):   # a file being replaced or not ours: next time
                        pass

    def poll(self, name: str, run: Path) -> str | None:
        """One look at a run directory; returns (and logs) a line when it moved."""
        from .paths import RUN_LOG as LOG, RUN_PROGRESS as PROGRESS

        p = read_json(run / PROGRESS) if (run / PROGRESS).is_file() else None
        n_epochs = 0
        last = None
        if (run / LOG).is_file():
            rows = [ln for ln in (run / LOG).read_text().splitlines() if ln.strip()]
            n_epochs = len(rows)
            if rows:
                import json
                last = json.loads(rows[-1])
        key = (n_epochs, None if p is None else (p.get("epoch"), p.get("step")))
        if key == self.seen.get(name, (0, None)) or (p is None and last is None):
            return None
        self.seen[name] = key
        line = format_progress(name, p, last)
        self.log(line)
        return line


def format_progress(name: str, p: dict | None, last_epoch: dict | None) -> str:
    """``sweep: scl: epoch 2/4 step 10/12 loss 3.1234 | epoch 1: val box_micro 41.2``."""
    parts = [f"sweep: {name}:"]
    if p is not None:
        parts.append(f"epoch {p['epoch'] + 1}/{p['epochs']} step {p['step'] + 1}/{p['steps']} loss {p['loss']:.4f}")
    if last_epoch is not None:
        val = last_epoch.get("val") or {}
        parts.append(("| " if p is not None else "") + f"epoch {last_epoch['epoch'] + 1} done: loss "
                     f"{last_epoch['losses']['total']:.4f}"
                     + (f", val box_micro {val['box_micro']:.2f}" if "box_micro" in val else ""))
    return " ".join(parts)
