"""`sweep --executor slurm` against a real one-node Slurm (tests/slurm_cluster.py: munged, slurmctld and
slurmd started from a temporary folder, no accounting database), and the Slurm helpers of
workbench.experiments.executor with stand-in commands. The `slurm` tests are skipped, with the reason, only where a
cluster cannot be started (not root, the Debian packages missing: tools/bootstrap.sh installs them).

Timeouts below only guard against hangs; no assertion depends on how fast a run is."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slurm_cluster import SlurmCluster, why_not
from workbench.experiments import executor, sweep
from workbench.paths import CHECKPOINT_LAST

from conftest import TINY

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 12                     # a run's checkpoint after epoch 1 comes well before its end
SETS = [f"{k}={v}" for k, v in {**TINY, "epochs": EPOCHS, "max_eval_segments": 8}.items()]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A running one-node cluster (partition debug, 2 CPUs); SLURM_CONF points the clients at it."""
    reason = why_not()
    if reason:
        pytest.skip(f"no Slurm cluster here: {reason}")
    with SlurmCluster(tmp_path_factory.mktemp("slurm")) as c, pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLURM_CONF", str(c.conf))
        for k in [k for k in os.environ if k.startswith(("SLURM_", "SBATCH_")) and k != "SLURM_CONF"]:
            mp.delenv(k)
        yield c
        queued = c.run("squeue", "-h", "-o", "%i %T", "-t", "PENDING,RUNNING", check=False).stdout.strip()
    assert not c.left_behind and not c.root.exists(), c.left_behind         # nothing left running or on disk
    assert not queued, f"jobs left queued or running: {queued}"


def _args(data, out, *extra, presets="random,stvg", seeds=2, cpus=1):
    return ["sweep", "--grid", "main", "--presets", presets, "--seeds", str(seeds), "--data", str(data),
            "--out", str(out), "--executor", "slurm", "--partition", "debug", "--cpus-per-run", str(cpus),
            "--mem", "1G", *extra, *[a for s in SETS for a in ("--set", s)]]


def _sweep(args, timeout_s=600) -> subprocess.CompletedProcess:
    """`python -m workbench sweep ...` to its end (the timeout only guards against a hang)."""
    return subprocess.run([sys.executable, "-m", "workbench", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout_s, env=dict(os.environ, PYTHONUNBUFFERED="1"))


def _wait(cond, what, timeout_s=300.0, every_s=0.05):
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout_s, f"timed out waiting for {what}"
        time.sleep(every_s)


def _job_id(out, preset, seed):
    path = sweep.unit_dir(out, preset, seed) / executor.JOB
    return json.loads(path.read_text())["job_id"] if path.is_file() else None


def _run_procs(job_id: str):
    """The processes training in Slurm job ``job_id`` (array task ``A_T``, or a job of one task): its worker's
    kept Jupyter kernel (its environment names the job; the worker itself stays awake to take Slurm's signals)."""
    import psutil

    array, _, task = job_id.partition("_")
    want = {"SLURM_ARRAY_JOB_ID": array, "SLURM_ARRAY_TASK_ID": task} if task else {"SLURM_JOB_ID": job_id}
    found = []
    for p in psutil.process_iter(["cmdline", "environ"]):
        env = p.info["environ"] or {}
        if all(env.get(k) == v for k, v in want.items()) and "ipykernel" in " ".join(p.info["cmdline"] or []):
            found.append(p)
    return found


@pytest.mark.slurm
def test_sweep_on_slurm_cancel_requeue_rerun_and_inline_equality(cluster, smoke_data, tmp_path):
    """The issue's command shape (no --gpus-per-run) on a CPU partition, 2 presets x 2 seeds, one job array:
    - `scancel` of one array task is recorded in its error.txt (Slurm's CANCELLED);
    - the sweep stopped and run again while tasks are pending waits for them and resubmits exactly the
      cancelled one;
    - `scontrol requeue` of a running task (after its first checkpoint) resumes it from that checkpoint, with
      the same metrics as the uninterrupted inline run;
    - results.csv has the inline sweep's columns and, run for run, its numbers."""
    out = tmp_path / "sw"
    args = _args(smoke_data, out)
    victim, requeued = ("random", 1), ("stvg", 0)
    requeue_at: list[str] = []

    def requeue_after_first_checkpoint():                       # what an admin or a pre-emption does
        ck = sweep.unit_dir(out, *requeued) / sweep.RUN / CHECKPOINT_LAST
        _wait(ck.is_file, "the first checkpoint", 300, 0.02)
        jid = _job_id(out, *requeued)
        cluster.run("scontrol", "requeue", jid)
        requeue_at.append(jid)

    helper = threading.Thread(target=requeue_after_first_checkpoint, daemon=True)
    helper.start()

    # 1. the sweep as a user starts it; one task is cancelled; then the sweep itself is stopped
    first = subprocess.Popen([sys.executable, "-m", "workbench", *args], cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        units = [(p, s) for p in ("random", "stvg") for s in (0, 1)]
        _wait(lambda: all(_job_id(out, *u) for u in units), "the job array", 120)
        jid = _job_id(out, *victim)
        _wait(lambda: cluster.run("squeue", "-h", "-o", "%T", "-j", jid).stdout.strip() == "RUNNING", "the victim to run")
        cluster.run("scancel", jid)
        err = sweep.unit_dir(out, *victim) / sweep.ERROR
        _wait(lambda: err.is_file(), "the cancelled task's error.txt", 120)
        first.send_signal(signal.SIGTERM)                       # the login session ends; the jobs go on
        log1 = first.communicate(timeout=60)[0]
    finally:
        if first.poll() is None:
            first.kill()
    assert "sweep: slurm: 0 GPU(s) per run (partition debug has no GPUs" in log1, log1
    assert log1.count("submitted as slurm job") == 4, log1
    assert "CANCELLED" in err.read_text() and _job_id(out, *victim) in err.read_text()

    # 2. the same command again while the others are queued or running (one of them requeued meanwhile)
    second = _sweep(args)
    helper.join(10)
    log2 = second.stdout
    assert second.returncode == 0, log2[-3000:]
    waited = [ln for ln in log2.splitlines() if "waiting for it, not resubmitting" in ln]
    assert waited and all(re.search(r"slurm job \d+_\d+ is still [A-Z_]+", ln) for ln in waited), log2
    for p, s in units:
        if (p, s) != victim:
            assert f"{p}/seed-{s}: skipped (finished)" in log2 or any(f"{p}/seed-{s}: slurm job" in ln for ln in waited)
    assert log2.count("submitted as slurm job") == 1 and f"{victim[0]}/seed-{victim[1]}: submitted" in log2, log2
    assert not err.exists()                                     # the resubmitted run finished
    assert requeue_at, "the requeue did not happen"
    nb_log = (sweep.unit_dir(out, *requeued) / "papermill.log").read_text()
    resumed = re.search(r"train: resuming \S+ after epoch (\d+)", nb_log)
    assert resumed and int(resumed.group(1)) < EPOCHS - 1, nb_log[-2000:]     # from a checkpoint before the end

    # 3. the same units inline: same columns, same numbers (the requeued run included)
    inline = tmp_path / "inline"
    sweep.sweep(["random", "stvg"], smoke_data, inline, overrides={**TINY, "epochs": EPOCHS, "max_eval_segments": 8},
                seeds=1, log=lambda s: None)
    a, b = pd.read_csv(out / "results.csv"), pd.read_csv(inline / "results.csv")
    assert list(a.columns) == list(b.columns)
    assert set(a[a["preset"].isin(["random", "stvg"])]["status"]) == {"ok"}
    cols = [c for c in b.columns if c.startswith(("validation_", "testing_"))]
    for p in ("random", "stvg"):
        x = a[(a["preset"] == p) & (a["seed"] == 0)][cols].astype(float).values
        y = b[(b["preset"] == p) & (b["seed"] == 0)][cols].astype(float).values
        assert x.shape == y.shape == (1, len(cols)) and np.allclose(x, y, equal_nan=True), p
    for p, s in units:
        assert json.loads((sweep.unit_dir(out, p, s) / executor.JOB).read_text())["executor"] == "slurm"


@pytest.mark.slurm
def test_run_past_its_time_limit_gets_usr2_checkpoints_and_is_requeued(cluster, smoke_data, tmp_path):
    """--time-limit 1: Slurm sends USR2 (--signal=USR2@25, between 5 s and 35 s into the run: it looks at
    time limits every 30 s); submitit's handler saves the job and requeues it, and the requeued run resumes
    from its last checkpoint. The run is made to outlast its limit by stopping (SIGSTOP) its training
    processes after the first checkpoint, which costs no CPU and does not depend on the machine's speed;
    once requeued its limit is raised so that the resumed attempt finishes."""
    out = tmp_path / "tl"
    args = _args(smoke_data, out, "--time-limit", "1", presets="stvg", seeds=1)
    unit = sweep.unit_dir(out, "stvg", 0)
    seen: dict = {}

    def outlast_the_limit():
        ck = unit / sweep.RUN / CHECKPOINT_LAST
        _wait(ck.is_file, "the first checkpoint", 300, 0.02)
        jid = _job_id(out, "stvg", 0)
        requeues = _job_log(out, jid).count("Requeued job")     # a slow start may have met USR2 already
        procs = _run_procs(jid)
        for p in procs:
            p.suspend()
        seen["stopped"] = len(procs)
        _wait(lambda: _job_log(out, jid).count("Requeued job") > requeues, "submitit's requeue", 120, 0.2)
        seen["log"] = _job_log(out, jid)
        cluster.run("scontrol", "update", f"JobId={jid}", "TimeLimit=10")

    helper = threading.Thread(target=outlast_the_limit, daemon=True)
    helper.start()
    p = _sweep(args)
    helper.join(10)
    log = p.stdout
    assert p.returncode == 0, log[-3000:]
    assert seen.get("stopped"), "no training process found to stop"
    sbatch = next((out / "submitit").glob("**/*_submission.sh"), None) or next((out / "submitit").glob(".submission_file_*.sh"))
    assert "#SBATCH --signal=USR2@25" in sbatch.read_text() and "#SBATCH --time=1" in sbatch.read_text()
    assert "Caught signal SIGUSR2" in seen["log"] and "timed-out" in seen["log"], seen["log"][-2000:]
    assert "Requeued job" in seen["log"]
    assert "train: resuming" in (unit / "papermill.log").read_text()
    assert "stvg/seed-0: ok" in log and not (unit / sweep.ERROR).exists()


def _job_log(out: Path, job_id: str) -> str:
    """submitit's stdout + stderr logs of a job (array task ``A_i`` logs under ``A_i``)."""
    d = out / "submitit" / job_id
    return "".join(f.read_text(errors="replace") for f in sorted(d.glob("*.out")) + sorted(d.glob("*.err"))) \
        if d.is_dir() else ""


@pytest.mark.slurm
def test_sbatch_refusal_is_one_error_line_naming_the_flag(cluster, smoke_data, tmp_path):
    """--gpus-per-run 1 on the CPU partition: exit 2, one line quoting Slurm and naming the flag; jobs that
    no node can hold are refused up front (Slurm would leave them pending for ever)."""
    for cpus, extra, words in ((1, ["--gpus-per-run", "1"], ("Invalid generic resource (gres) specification",
                                                            "--gpus-per-run 1", "--gpus-per-run 0")),
                               (8, [], ("--cpus-per-run 8", "at most 2 CPUs"))):
        args = _args(smoke_data, tmp_path / "sw", "--time-limit", "10", *extra, presets="random", seeds=1, cpus=cpus)
        p = _sweep(args, 300)
        assert p.returncode == 2, p.stderr
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
        assert all(w in lines[0] for w in words), lines[0]
    assert cluster.run("squeue", "-h").stdout.strip() == ""               # nothing was left queued


@pytest.mark.slurm
def test_job_states_without_accounting_come_from_squeue(cluster):
    """No accounting database: sacct cannot answer, so states are read with squeue (running, pending,
    ended, and jobs slurmctld no longer knows)."""
    assert "accounting storage is disabled" in cluster.run("sacct", check=False).stderr.lower()
    assert executor.SlurmStates.choose() == "squeue"
    ids = []
    for _ in range(3):                                          # 2 CPUs: two run, the third waits
        p = cluster.run("sbatch", "--parsable", "-c", "1", "--mem", "100M", "-o", "/dev/null", "--wrap", "sleep 600")
        ids.append(p.stdout.strip().split(";")[0])
    states = executor.SlurmStates()
    _wait(lambda: [states.get(ids)[i] for i in ids] == ["RUNNING", "RUNNING", "PENDING"], "two running, one pending", 60)
    cluster.run("scancel", ids[0])
    _wait(lambda: states.get(ids)[ids[0]].startswith("CANCELLED"), "the cancel", 60)
    assert states.is_alive(states.get(ids)[ids[2]]) and not states.is_alive(states.get(ids)[ids[0]])
    assert states.get(["999999"]) == {"999999": executor.SlurmStates.GONE}
    cluster.run("scancel", *ids)


# --- without a cluster: stand-in commands ---------------------------------------------------------

def _bin(tmp_path, monkeypatch, **scripts):
    b = tmp_path / "bin"
    b.mkdir(exist_ok=True)
    for name, body in scripts.items():
        (b / name).write_text("#!/bin/sh\n" + body)
        (b / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{b}:{os.environ['PATH']}")


def test_job_states_with_accounting_come_from_sacct(tmp_path, monkeypatch):
    """With an accounting database (scontrol names one), states come from sacct: array tasks, pending ranges
    and Slurm's words ("CANCELLED by 0")."""
    _bin(tmp_path, monkeypatch,
         scontrol="echo 'AccountingStorageType   = accounting_storage/slurmdbd'\n",
         sacct="echo \"$@\" > " + str(tmp_path / "sacct.args") + "\n"
               "cat <<EOF\n12_0|COMPLETED\n12_1|CANCELLED by 0\n12_[2-3%1]|PENDING\n13|RUNNING\nEOF\n")
    states = executor.SlurmStates()
    got = states.get(["12_0", "12_1", "12_3", "13", "14"])
    assert states.source == "sacct"
    assert got == {"12_0": "COMPLETED", "12_1": "CANCELLED by 0", "12_3": "PENDING", "13": "RUNNING",
                   "14": executor.SlurmStates.UNKNOWN}                   # not in sacct yet: not an end
    assert "-j 12,13,14" in (tmp_path / "sacct.args").read_text()
    _bin(tmp_path, monkeypatch, scontrol="echo 'AccountingStorageType   = accounting_storage/none'\n")
    assert executor.SlurmStates.choose() == "squeue"


def test_gpus_per_run_default_follows_device_and_partition(tmp_path, monkeypatch):
    _bin(tmp_path, monkeypatch, sinfo="printf 'debug*|2|4000|(null)\\ngpu|16|64000|gpu:4\\n'\n")
    o = executor.ClusterOptions
    assert executor.slurm_gpus(o())[0] == 0                                   # default partition: CPU
    assert executor.slurm_gpus(o(partition="gpu"))[0] == 1
    assert executor.slurm_gpus(o(partition="gpu", device="cpu"))[0] == 0
    assert executor.slurm_gpus(o(device="cuda:0"))[0] == 1
    assert executor.slurm_gpus(o(partition="gpu", gpus=0)) == (0, "--gpus-per-run")
    assert executor.signal_delay_s(10) == 90 and executor.signal_delay_s(1) == 25
    msg = executor.sbatch_refusal("sbatch: error: Batch job submission failed: Invalid partition name specified",
                                  o(partition="nope"), 0)
    assert "Invalid partition name specified" in msg and "--partition nope" in msg and "\n" not in msg
