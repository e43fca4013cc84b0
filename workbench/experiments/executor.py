"""Where the runs of a sweep execute, and how their progress is reported while they train.

A sweep hands an executor a list of ``JobSpec`` (one run each: a module-level function and its
keyword arguments, e.g. ``sweep.run_one``) and a ``record(spec, row)`` callback. Executors:

inline  this process; with ``jobs`` > 1 and several GPUs, one thread per GPU (``CUDA_VISIBLE_DEVICES``)
local   submitit's LocalExecutor: ``jobs`` worker processes on this machine (one GPU each when there are GPUs),
        each taking the next run nobody has claimed (``CLAIM``) until none is left (``WorkerJob``)
slurm   submitit's SlurmExecutor: one job array (partition, GPUs / CPUs per run, time limit, array
        parallelism); a pre-empted or timed-out run is requeued and resumes from its last checkpoint.
        GPUs per run default to 0 unless the run's device asks for CUDA or the partition has GPUs, so a
        CPU partition works as is; an ``sbatch`` refusal is a DataError quoting Slurm and naming the flag.
        Job states come from ``sacct`` where the cluster keeps accounting, else from ``squeue``
        (``SlurmStates``); a job is over when Slurm says so, not when an attempt of it wrote a result

Each process that runs units is a persistent worker (``worker``): it imports once, keeps a Jupyter kernel
and the dataset's Workspace for all its runs, and puts back what a run changes before the next.

Every executor reports a row per run: ``{"status": "ok" | "failed", "error", "seconds"}``. A job that
ends without an outcome (cancelled, pre-empted past its requeues, timed out, killed, node failure) is
reported ``failed`` with the scheduler's state in ``error``. The parent process reads outcomes from the
run's directory (``outcome.json``, written by the job), never by unpickling a job result.

``Progress`` tails each running run's ``run/progress.json`` (written by ``train`` every few seconds:
epoch, step, loss) and ``run/log.jsonl`` (one row per finished epoch) and prints a line when they move.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import worker
from ..io import DataError, read_json, write_json
from ..paths import RUN_LOG as LOG, RUN_PROGRESS as PROGRESS

EXECUTORS = ("inline", "local", "slurm")
OUTCOME = "outcome.json"                # SWEEP_DIR/<name>/outcome.json: the row the job returned
JOB = "job.json"                        # SWEEP_DIR/<name>/job.json: executor, job id, submitit folder
CLAIM = "claim"                         # SWEEP_DIR/<name>/claim: created by the local worker that took the run
# A unit's run/ and error.txt (why its run failed): ``report.runs`` (RUN, ERROR, recorded_error).


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
    # psutil is an optional heavy dependency: imported only when this runs
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
        # submitit is an optional heavy dependency: imported only when this runs
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)

    # submitit 1.5's signal handler requeues only a function with a ``checkpoint`` attribute (it then calls
    # ``__submitit_checkpoint__``): without this name a timed-out run ends "timed-out and not checkpointable"
    checkpoint = __submitit_checkpoint__


@dataclass(frozen=True)
class WorkerJob:
    """One worker process of a sweep (a submitit job): runs ``specs`` one after another, importing once and
    keeping its kernel and Workspaces (``worker``), then closes them. ``shared``: every worker of the sweep was
    given the same specs; each runs those it claims first (creates ``CLAIM``, then writes the run's ``job.json``).
    A spec that already has an ok outcome (this sweep's earlier attempt of a requeued job) is not run again."""

    specs: tuple[JobSpec, ...]
    kind: str = "local"
    shared: bool = False

    def __call__(self) -> None:
        try:
            for spec in self.specs:
                out = Path(spec.dir) / OUTCOME
                if out.is_file() and read_json(out).get("status") == "ok":
                    continue
                if self.shared and not self.claim(spec):
                    continue
                try:
                    spec()
                except Exception as e:                  # noqa: BLE001 - a failed run must not stop the others
                    write_json(out, _failed_row(spec, f"{type(e).__name__}: {e}"))
        finally:
            worker.close()

    def claim(self, spec: JobSpec) -> bool:
        import submitit                                 # optional heavy dependency: submitit

        d = Path(spec.dir)
        d.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(d / CLAIM, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False                                # another worker runs it
        env = submitit.JobEnvironment()
        write_json(d / JOB, {"executor": self.kind, "job_id": str(env.job_id), "folder": str(env.paths.folder),
                             "started": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2)
        return True

    def __submitit_checkpoint__(self, *args: Any, **kwargs: Any):
        """Pre-empted or out of time on Slurm: requeue the same worker (finished runs are not run again)."""
        import submitit                                 # optional heavy dependency: submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)

    checkpoint = __submitit_checkpoint__                # see JobSpec.checkpoint


Record = Callable[[JobSpec, dict], None]


def gpu_count() -> int:
    try:
        # torch is heavy: light commands (evaluate, --help) must not load it
        import torch
        return torch.cuda.device_count()
    except Exception:                                   # noqa: BLE001 - no torch / no driver: no GPU
        return 0


def _failed_row(spec: JobSpec, error: str, seconds: float | None = None) -> dict:
    return {"preset": spec.name, "status": "failed", "error": error, "seconds": seconds, "skipped": False}


# --- inline -------------------------------------------------------------------------------------

class InlineExecutor:
    """Runs in this process (a worker: ``worker.close`` at the end): one after another, or one thread per GPU
    with ``jobs`` > 1 and several GPUs unless ``threads`` is False (runs that share this process's RNG)."""

    def __init__(self, jobs: int = 1, log: Callable[[str], None] = print, threads: bool = True):
        self.jobs, self.log, self.threads = jobs, log, threads

    def run(self, specs: list[JobSpec], record: Record) -> None:
        try:
            self._run(specs, record)
        finally:
            worker.close()

    def _run(self, specs: list[JobSpec], record: Record) -> None:
        gpus = gpu_count()
        workers = max(1, min(self.jobs, gpus)) if gpus > 1 and self.threads else 1
        if self.jobs > 1 and workers == 1:
            why = f"{gpus} GPU(s)" if self.threads else "runs in this process (--no-notebooks)"
            self.log(f"sweep: {why}: running sequentially (--executor local runs CPU jobs in parallel)")
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
    gpus: int | None = None             # GPUs per run; None: Slurm, 1 when `device` asks for CUDA or the
                                        # partition has GPUs, else 0; local, the machine's GPUs when it has any
    device: str = "auto"                # the runs' Config.device (auto | cpu | cuda | cuda:N), set by the sweep
    cpus: int = 4                       # CPUs per run
    time_min: int = 240                 # time limit per run (minutes); a run past it is requeued on Slurm
    array_parallelism: int = 8          # Slurm: array tasks running at once
    units_per_task: int = 1             # Slurm: runs per array task (one worker runs them in turn; time_min each)
    mem: str = ""                       # Slurm: memory per run, e.g. "32G" ("" = the partition's default)
    account: str = ""                   # Slurm account ("" = none)
    qos: str = ""                       # Slurm quality of service ("" = none)
    requeues: int = 3                   # Slurm: how often a pre-empted / timed-out run is requeued
    setup: list[str] = field(default_factory=list)   # shell lines run before each job (module load, ...)


# --- Slurm: GPUs, submission errors, job states ------------------------------------------------

SIGNAL_DELAY_S = 90         # USR2 this long before a Slurm run's time limit (submitit checkpoints and requeues)
# Slurm only looks at time limits every 30 s (slurmctld's PERIODIC_TIMEOUT), and sends the warning signal
# at the first look within SIGNAL_DELAY + 30 s of the end: for a short --time-limit the delay shrinks so
# that the signal cannot come in the first seconds of a run, before submitit's handler is installed.
SLURM_CHECK_S, SIGNAL_EARLIEST_S = 30, 5


def signal_delay_s(time_min: int) -> int:
    """Seconds before the time limit at which Slurm sends USR2 (``--signal=USR2@N``): 90, or less for a
    limit under ~2 minutes (a 1-minute run gets it between 5 s and 35 s after it starts)."""
    return max(1, min(SIGNAL_DELAY_S, 60 * time_min - SLURM_CHECK_S - SIGNAL_EARLIEST_S))


def _slurm(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)


def partition_nodes(partition: str = "") -> dict | None:
    """The largest node of ``partition`` (the default partition for ""): ``{"partition", "cpus", "mem_mb",
    "gres"}`` from ``sinfo``, or None when sinfo cannot say (no such partition, no controller)."""
    try:
        p = _slurm("sinfo", "-h", "-o", "%P|%c|%m|%G")
    except (OSError, subprocess.SubprocessError):
        return None
    if p.returncode != 0:
        return None
    best: dict | None = None
    for line in p.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 4:
            continue
        name, default = parts[0].rstrip("*"), parts[0].endswith("*")
        if (partition and name != partition) or (not partition and not default):
            continue
        cpus = int(parts[1].rstrip("+")) if parts[1].rstrip("+").isdigit() else 0
        mem = int(parts[2].rstrip("+")) if parts[2].rstrip("+").isdigit() else 0
        gres = "" if parts[3] in ("(null)", "") else parts[3]
        if best is None:
            best = {"partition": name, "cpus": cpus, "mem_mb": mem, "gres": gres}
        else:
            best.update(cpus=max(best["cpus"], cpus), mem_mb=max(best["mem_mb"], mem),
                        gres=",".join(g for g in (best["gres"], gres) if g))
    return best


def slurm_gpus(opt: "ClusterOptions") -> tuple[int, str]:
    """GPUs per run of a Slurm sweep and why: ``--gpus-per-run`` when given; else 1 when the runs' device
    asks for CUDA, 0 for device cpu, and with device auto, 1 only when the partition's nodes have GPUs."""
    if opt.gpus is not None:
        return opt.gpus, "--gpus-per-run"
    if opt.device.startswith("cuda"):
        return 1, f"device {opt.device}"
    if opt.device == "cpu":
        return 0, "device cpu"
    nodes = partition_nodes(opt.partition)
    where = f"partition {nodes['partition'] if nodes else (opt.partition or '(default)')}"
    if nodes and "gpu" in nodes["gres"]:
        return 1, f"{where} has GPUs ({nodes['gres']})"
    return 0, f"{where} has no GPUs" if nodes else f"sinfo does not describe {where}: CPU runs"


def _mem_mb(text: str) -> int | None:
    """``--mem`` in MB as sbatch reads it (K, M, G, T suffixes; a bare number is MB), or None."""
    t = text.strip().upper().rstrip("B")
    scale = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 ** 2}
    try:
        return int(float(t[:-1]) * scale[t[-1]]) if t and t[-1] in scale else int(t)
    except ValueError:
        return None


def check_fits(opt: "ClusterOptions", nodes: dict | None) -> None:
    """Refuse up front what no node of the partition can hold: Slurm would accept such a job array and
    leave it pending for ever (reason PartitionConfig) instead of refusing it."""
    if not nodes:
        return
    part = nodes["partition"]
    if nodes["cpus"] and opt.cpus > nodes["cpus"]:
        raise DataError(f"--cpus-per-run {opt.cpus}: the nodes of partition {part} have at most {nodes['cpus']} "
                        "CPUs (sinfo); ask for fewer")
    mem = _mem_mb(opt.mem) if opt.mem else None
    if mem and nodes["mem_mb"] and mem > nodes["mem_mb"]:
        raise DataError(f"--mem {opt.mem}: the nodes of partition {part} have at most {nodes['mem_mb']} MB "
                        "(sinfo); ask for less")


def sbatch_refusal(stderr: str, opt: "ClusterOptions", gpus: int) -> str:
    """One line for an ``sbatch`` refusal: Slurm's reason and the flag that asked for what it refused."""
    lines = [ln.strip() for ln in str(stderr).splitlines() if ln.strip()]
    errs = [ln.split("error:", 1)[1].strip() for ln in lines if "error:" in ln]
    reason = "; ".join(dict.fromkeys(e.replace("Batch job submission failed: ", "") for e in errs)) or \
        (lines[-1] if lines else "no reason given")
    low = reason.lower()
    nodes = partition_nodes(opt.partition)
    part = opt.partition or (nodes["partition"] if nodes else "(default)")
    if "gres" in low or "generic resource" in low or "gpu" in low:
        flag = (f"--gpus-per-run {gpus} asks for GPUs that partition {part} does not offer; pass --gpus-per-run 0 "
                "for CPU runs or a GPU --partition")
    elif "partition" in low:
        flag = f"--partition {part}: not a partition of this cluster (see `sinfo`)"
    elif "memory" in low:
        flag = f"--mem {opt.mem}: more than the nodes of partition {part} have"
    elif "time limit" in low:
        flag = f"--time-limit {opt.time_min}: beyond partition {part}'s limit (see `sinfo -o %l`)"
    elif "account" in low:
        flag = f"--account {opt.account or '(none)'}"
    elif "qos" in low:
        flag = f"--qos {opt.qos or '(none)'}"
    else:
        if nodes and nodes["cpus"] and opt.cpus > nodes["cpus"]:
            flag = f"--cpus-per-run {opt.cpus}: partition {part}'s nodes have {nodes['cpus']} CPUs"
        elif gpus and nodes is not None and "gpu" not in nodes["gres"]:
            flag = f"--gpus-per-run {gpus}: partition {part} has no GPUs; pass --gpus-per-run 0"
        else:
            flag = (f"check --partition {part}, --cpus-per-run {opt.cpus}, --gpus-per-run {gpus}, --mem "
                    f"{opt.mem or '(default)'}, --time-limit {opt.time_min}")
    return f"--executor slurm: sbatch refused the job array: {reason} ({flag})"


class SlurmStates:
    """States of Slurm jobs and array tasks (``"12"``, ``"12_3"``): from ``sacct`` where the cluster keeps
    an accounting database, else from ``squeue --states=all`` (slurmctld's own memory: queued, running
    and recently ended jobs, for MinJobAge seconds). A job ``squeue`` no longer knows has ended: ``GONE``.
    A state that cannot be read (no controller, sacct erring) is ``UNKNOWN``, never taken as an end."""

    ALIVE = ("PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "COMPLETING", "CONFIGURING",
             "RESIZING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD")
    GONE, UNKNOWN = "GONE", "UNKNOWN"

    def __init__(self, source: str | None = None):
        self.source = source             # "sacct" | "squeue"; None: chosen on first use (``choose``)

    @staticmethod
    def choose() -> str:
        """``sacct`` when ``scontrol show config`` names an accounting storage (slurmdbd), ``squeue`` when it
        says accounting_storage/none (``sacct`` would answer "accounting storage is disabled")."""
        try:
            p = _slurm("scontrol", "show", "config")
        except (OSError, subprocess.SubprocessError):
            return "sacct" if shutil.which("sacct") else "squeue"
        for line in p.stdout.splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "AccountingStorageType":
                return "squeue" if value.strip() in ("accounting_storage/none", "(null)", "") else "sacct"
        return "sacct" if shutil.which("sacct") else "squeue"

    @classmethod
    def is_alive(cls, state: str) -> bool:
        return state.split()[0].upper() in cls.ALIVE if state else False

    def get(self, job_ids: list[str]) -> dict[str, str]:
        """job id -> state (``"CANCELLED by 0"`` keeps Slurm's words) for every id asked."""
        if self.source is None:
            self.source = self.choose()
        ids = sorted({str(j) for j in job_ids})
        if not ids:
            return {}
        if self.source == "sacct":
            cmd = ["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(sorted({i.split("_")[0] for i in ids}))]
        else:
            cmd = ["squeue", "-h", "-r", "--states=all", "-o", "%i|%T", "-j", ",".join(ids)]
        try:
            p = _slurm(*cmd)
        except (OSError, subprocess.SubprocessError):
            return {i: self.UNKNOWN for i in ids}
        if p.returncode != 0:
            if self.source == "squeue" and "invalid job id" in p.stderr.lower():
                return {i: self.GONE for i in ids}            # none of them is known to slurmctld any more
            return {i: self.UNKNOWN for i in ids}
        seen: dict[str, str] = {}
        for line in p.stdout.splitlines():
            parts = line.strip().split("|")
            if len(parts) < 2:
                continue
            for task in _expand_array(parts[0]):
                seen.setdefault(task, parts[1].strip())
        missing = self.GONE if self.source == "squeue" else self.UNKNOWN     # sacct: not recorded yet
        return {i: seen.get(i, missing) for i in ids}


def _expand_array(jid: str) -> list[str]:
    """``12_[1-3,5%2]`` -> 12_1, 12_2, 12_3, 12_5 (pending array tasks listed together); others as they are."""
    if "_[" not in jid:
        return [jid]
    base, rest = jid.split("_[", 1)
    out = []
    for part in rest.rstrip("]").split("%")[0].split(","):
        lo, _, hi = part.partition("-")
        if lo.isdigit() and (not hi or hi.isdigit()):
            out += [f"{base}_{i}" for i in range(int(lo), int(hi or lo) + 1)]
    return out


class SubmititExecutor:
    """Runs each spec as a submitit job (``kind`` local or slurm); job files under ``folder``."""

    def __init__(self, kind: str, folder: str | Path, jobs: int = 1, options: ClusterOptions | None = None,
                 log: Callable[[str], None] = print, poll_s: float = 2.0):
        if kind not in ("local", "slurm"):
            raise DataError(f"executor {kind!r}: expected local or slurm")
        self.kind, self.folder, self.jobs = kind, Path(folder), max(1, jobs)
        self.opt, self.log, self.poll_s = options or ClusterOptions(), log, poll_s
        self.states = SlurmStates()
        self.gpus: int | None = None                     # Slurm: GPUs per run, resolved by ``executor()``
        self.n_specs = 1                                  # runs of this sweep (a local worker's time limit)
        self.gpus_why = ""

    def executor(self):
        """The configured submitit executor (``%j`` in the folder: one log directory per job)."""
        # submitit is an optional heavy dependency: imported only when this runs
        import submitit

        folder = self.folder / "%j"
        o = self.opt
        if self.kind == "local":                         # a worker may run every run of the sweep
            ex = submitit.LocalExecutor(folder=folder)
            ex.update_parameters(timeout_min=o.time_min * max(1, self.n_specs))
            return ex
        if shutil.which("sbatch") is None:
            raise DataError("--executor slurm: no `sbatch` on PATH (run the sweep on a Slurm login node)")
        ex = submitit.SlurmExecutor(folder=folder, max_num_timeout=o.requeues)
        self.gpus, self.gpus_why = slurm_gpus(o)
        check_fits(o, partition_nodes(o.partition))
        task_min = o.time_min * o.units_per_task         # an array task runs units_per_task runs in turn
        params: dict[str, Any] = dict(job_name="scl-sweep", time=task_min, cpus_per_task=o.cpus,
                                      gpus_per_node=self.gpus or None, array_parallelism=o.array_parallelism,
                                      ntasks_per_node=1, nodes=1, signal_delay_s=signal_delay_s(task_min))
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
        self.n_specs = len(specs)
        ex = self.executor()
        if self.kind == "slurm":
            live = {s.name: self.live_job(s) for s in specs}    # still queued / running from an earlier sweep
            fresh = [s for s in specs if live[s.name] is None]
            jobs = []
            if fresh:
                # submitit is an optional heavy dependency: imported only when this runs
                from submitit.core.utils import FailedJobError

                if self.opt.gpus is None:
                    self.log(f"sweep: slurm: {self.gpus} GPU(s) per run ({self.gpus_why}; --gpus-per-run N to choose)")

                k = max(1, self.opt.units_per_task)       # each array task: a worker running k runs in turn
                chunks = [tuple(fresh[i:i + k]) for i in range(0, len(fresh), k)]
                try:                                      # submitit prints sbatch's stderr too: the error says it
                    with contextlib.redirect_stderr(io.StringIO()), ex.batch():
                        tasks = [ex.submit(WorkerJob(c, "slurm")) for c in chunks]   # one job array
                except FailedJobError as e:               # sbatch said no: its reason and the flag behind it
                    raise DataError(sbatch_refusal(str(e), self.opt, self.gpus or 0)) from None
                jobs = [t for c, t in zip(chunks, tasks) for _ in c]
                for s, j in zip(fresh, jobs):
                    self._submitted(s, j)
            pairs = [(s, live[s.name]) for s in specs if live[s.name] is not None] + list(zip(fresh, jobs))
            self._wait(pairs, record)
            return list({j.job_id: j for _, j in pairs}.values())
        return self._run_local(ex, specs, record)

    ALIVE = SlurmStates.ALIVE

    def live_job(self, spec: JobSpec):
        """The Slurm job an earlier sweep submitted for ``spec`` when it is still queued or running, else None."""
        # submitit is an optional heavy dependency: imported only when this runs
        import submitit

        path = Path(spec.dir) / JOB
        if not path.is_file():
            return None
        info = read_json(path)
        if info.get("executor") != "slurm" or not info.get("job_id"):
            return None
        job = submitit.SlurmJob(folder=self.folder / "%j", job_id=str(info["job_id"]))
        state = self.states.get([job.job_id])[job.job_id]
        if not self.states.is_alive(state):
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
        """``jobs`` worker jobs (at most one per spec), each running the specs it claims first; every spec is
        recorded as soon as its outcome is written, and the specs no worker finished once all have ended."""
        gpus = gpu_count()
        slots: list[int | None] = list(range(gpus))[: self.jobs] if gpus and self.opt.gpus != 0 else [None] * self.jobs
        for spec in specs:                              # what an earlier sweep's workers left
            for name in (OUTCOME, CLAIM, JOB):
                (Path(spec.dir) / name).unlink(missing_ok=True)
        shared = WorkerJob(tuple(specs), self.kind, shared=True)
        jobs: list = []
        left, started = {s.name: s for s in specs}, set()
        try:
            for gpu in slots[: len(specs)]:
                ex.update_parameters(gpus_per_node=1 if gpu is not None else 0,
                                     visible_gpus=(gpu,) if gpu is not None else ())
                with interruptible_children():
                    job = ex.submit(shared)
                jobs.append(job)
                self.log(f"sweep: local worker job {job.job_id} started" + (f" (GPU {gpu})" if gpu is not None else ""))
            while left:
                time.sleep(self.poll_s)
                over = all(job.done() for job in jobs)       # before the outcomes: a worker writes them first
                for spec in list(left.values()):
                    jid = self._claimed_by(spec)
                    if jid and spec.name not in started:
                        started.add(spec.name)
                        self.log(f"sweep: {spec.name}: running in local job {jid}")
                    if (Path(spec.dir) / OUTCOME).is_file():
                        record(spec, read_json(Path(spec.dir) / OUTCOME))
                        del left[spec.name]
                    elif over:
                        record(spec, self._unfinished(spec, jobs))
                        del left[spec.name]
        except BaseException as exc:                    # Ctrl-C, SIGTERM (terminate_as_interrupt), an error
            self._cancel_local(jobs, list(left.values()), record, exc)
            raise
        return jobs

    @staticmethod
    def _claimed_by(spec: JobSpec) -> str:
        """The id of the local job that took ``spec`` ("" while none has)."""
        try:
            return str(read_json(Path(spec.dir) / JOB).get("job_id", ""))
        except (OSError, ValueError, DataError):
            return ""

    def _unfinished(self, spec: JobSpec, jobs: list) -> dict:
        """The row of a spec without an outcome once every worker has ended: its worker's end, or not run."""
        jid = self._claimed_by(spec)
        job = next((j for j in jobs if str(j.job_id) == jid), None)
        if job is not None:
            return self.outcome(spec, job)
        tails = "; ".join(t for t in (_stderr_tail(j) for j in jobs) if t)
        return _failed_row(spec, f"not run: the sweep's local worker jobs ({', '.join(str(j.job_id) for j in jobs)}) "
                                 "ended before taking it" + (f": {tails}" if tails else ""))

    def _cancel_local(self, jobs: list, left: list[JobSpec], record: Record, exc: BaseException,
                      grace_s: float = 10.0) -> None:
        """Stop the local worker jobs of an interrupted sweep (their own processes would otherwise go on
        training as orphans) and record each spec not yet recorded (``left``) as failed, so that the next run of
        the sweep resubmits it; a spec whose run finished meanwhile (it wrote its outcome) keeps that outcome.

        First SIGINT, submitit's cancel (the worker stops, and shuts its kernel down); a job still alive after
        ``grace_s`` (one that does not stop on SIGINT) has its whole process tree killed."""
        for job in jobs:
            job.cancel(check=False)
            self.log(f"sweep: cancelling local job {job.job_id} ({type(exc).__name__}: {exc})")

        def wait(seconds: float) -> None:
            t0 = time.time()
            while any(not job.done() for job in jobs) and time.time() - t0 < seconds:
                time.sleep(0.2)

        wait(grace_s)
        for job in jobs:
            if not job.done():
                killed = kill_tree(int(job.job_id))     # a local job's id is its controller's pid
                self.log(f"sweep: local job {job.job_id} did not stop on SIGINT; killed {killed} process(es)")
        wait(grace_s)
        for spec in left:
            if (Path(spec.dir) / OUTCOME).is_file():   # it finished on its own before the cancel reached it
                record(spec, read_json(Path(spec.dir) / OUTCOME))
                continue
            jid = self._claimed_by(spec)
            record(spec, _failed_row(spec, f"cancelled: the sweep was interrupted ({type(exc).__name__}) "
                                           + (f"while local job {jid} ran it" if jid else "before a worker took it")))

    def _wait(self, pairs: list, record: Record) -> None:
        """Until Slurm says each job is over (an attempt that wrote a result may still be requeued, e.g. by
        ``scontrol requeue``), then record it. A state that cannot be read is waited on."""
        left = list(pairs)
        while left:
            time.sleep(self.poll_s)
            states = self.states.get([job.job_id for _, job in left])
            still = []
            for spec, job in left:
                state = states.get(job.job_id, SlurmStates.UNKNOWN)
                if state == SlurmStates.UNKNOWN or self.states.is_alive(state):
                    still.append((spec, job))
                else:
                    record(spec, self.slurm_outcome(spec, job, state))
            left = still

    @staticmethod
    def slurm_outcome(spec: JobSpec, job, state: str) -> dict:
        """The row of a Slurm job that is over: the outcome its run wrote when that is ok or Slurm says
        COMPLETED, else failed with Slurm's state (CANCELLED, TIMEOUT, ...) and what the run said, if anything."""
        path = Path(spec.dir) / OUTCOME
        row = read_json(path) if path.is_file() else None
        if row is not None and (row.get("status") == "ok" or state.upper().startswith("COMPLETED")):
            return row
        detail = (row or {}).get("error") or _stderr_tail(job)
        what = (f"ended {state}" if state != SlurmStates.GONE else "ended: Slurm no longer lists it (cancelled while "
                "pending, or its record expired; without an accounting database Slurm cannot say which)")
        return _failed_row(spec, f"slurm job {job.job_id} {what}" + (f": {detail}" if detail else ""))

    @staticmethod
    def outcome(spec: JobSpec, job) -> dict:
        """The row of a finished job: what it wrote to outcome.json, else the scheduler's state."""
        path = Path(spec.dir) / OUTCOME
        if path.is_file():
            return read_json(path)
        state = str(job.state)
        tail = _stderr_tail(job)
        return _failed_row(spec, f"job {job.job_id} ended {state} without an outcome" + (f": {tail}" if tail else ""))


def _stderr_tail(job) -> str:
    """The last two non-empty lines of a submitit job's stderr log, or ""."""
    try:
        err = Path(job.paths.stderr)
        if err.is_file():
            lines = [ln for ln in err.read_text(errors="replace").splitlines() if ln.strip()]
            return " | ".join(lines[-2:])
    except OSError:
        pass
    return ""


def make_executor(kind: str, folder: str | Path, jobs: int = 1, options: ClusterOptions | None = None,
                  log: Callable[[str], None] = print, threads: bool = True):
    """``threads``: the inline executor may run one thread per GPU (False: runs that share this process's RNG)."""
    if kind == "inline":
        return InlineExecutor(jobs, log, threads)
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
        p = read_json(run / PROGRESS) if (run / PROGRESS).is_file() else None
        n_epochs = 0
        last = None
        if (run / LOG).is_file():
            rows = [ln for ln in (run / LOG).read_text().splitlines() if ln.strip()]
            n_epochs = len(rows)
            if rows:
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
