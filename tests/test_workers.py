"""Persistent sweep workers (issue 25): one process runs many units in turn, with the same results as one
process per run; a failed unit leaves nothing behind for the next; a Workspace is shared only between runs
of the same data; local workers share the sweep's units, each unit run once."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import TINY
from workbench.config import Config
from workbench.experiments import executor, sweep, worker
from workbench.paths import REPO
from workbench import workspace

# a tiny run (seconds); threads left to the process default: a unit must not inherit an earlier unit's
UNIT = {k: v for k, v in TINY.items() if k != "threads"} | {"epochs": 1, "max_train_segments": 24,
                                                              "max_eval_segments": 8}
OTHER_THREADS = 1 if torch.get_num_threads() > 1 else 2     # not this machine's default
WALL = re.compile(r'("(?:train_)?seconds": )[-+.0-9eE]+')     # wall-clock timings: the only bytes that may differ


def _record(run: Path) -> dict[str, str]:
    """metrics.json and log.jsonl of a run as bytes, their wall-clock seconds blanked."""
    return {f: WALL.sub(r"\1_", (run / f).read_text()) for f in ("metrics.json", "log.jsonl")}


@pytest.fixture(scope="module")
def fresh(smoke_data, tmp_path_factory) -> Path:
    """scl with seed 1 trained by `python -m workbench train` in a process of its own: the reference."""
    out = tmp_path_factory.mktemp("fresh") / "run"
    sets = [a for k, v in {**UNIT, "seed": 1}.items() for a in ("--set", f"{k}={v}")]
    subprocess.run([sys.executable, "-m", "workbench", "train", "--data", str(smoke_data), "--preset", "scl",
                    "--out", str(out), *sets], check=True, cwd=REPO, capture_output=True)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("runs", ["kernel", "inline"])
def test_a_workers_later_unit_is_byte_identical_to_a_fresh_process(smoke_data, tmp_path, fresh, runs):
    """One worker runs stvg on other threads than the default, then scl with seed 1 (and, in between in this
    process, an scl run that diverges after its first step): the scl run's metrics.json and log.jsonl are those
    of the run trained in a process of its own, byte for byte but for wall-clock seconds. A kept kernel is
    restarted after a failed unit (the failed unit comes last there: no second kernel start)."""
    units = [("stvg", {**UNIT, "threads": OTHER_THREADS}, 0), ("scl", UNIT, 1), ("scl", {**UNIT, "lr": 1e12}, 0)]
    if runs == "inline":                                # in a process of its own (this one's threads were set)
        units[1:] = units[:0:-1]                        # the failed unit before the compared one
        code = ("import json, sys; from pathlib import Path; from workbench.experiments import sweep, worker; "
                "units, data, out = json.loads(sys.argv[1]); print(json.dumps([sweep.run_one(p, Path(data), "
                "Path(out), over, seed=s, runs='inline') for p, over, s in units])); worker.close()")
        out = subprocess.run([sys.executable, "-c", code, json.dumps([units, str(smoke_data), str(tmp_path)])],
                             cwd=REPO, capture_output=True, text=True, check=True).stdout
        rows = {(r["preset"], r["seed"]): r for r in json.loads(out.splitlines()[-1])}
    else:                                               # this process drives a kept kernel
        try:
            rows = {(p, s): sweep.run_one(p, smoke_data, tmp_path, over, seed=s, runs=runs) for p, over, s in units}
            assert worker.kept_kernel().restart         # a new kernel, were there a unit after the failed one
        finally:
            worker.close()
    assert rows["stvg", 0]["status"] == "ok" and rows["scl", 1]["status"] == "ok", rows
    assert rows["scl", 0]["status"] == "failed" and "FloatingPointError" in rows["scl", 0]["error"]
    assert "FloatingPointError" in (sweep.unit_dir(tmp_path, "scl", 0) / sweep.ERROR).read_text()
    assert _record(sweep.unit_dir(tmp_path, "scl", 1) / sweep.RUN) == _record(fresh)
    notebook = sweep.unit_dir(tmp_path, "scl", 1) / sweep.OUT_NB
    if runs == "inline":
        assert not notebook.exists()
    else:                                               # the record: a notebook as a fresh kernel writes it
        nb = json.loads(notebook.read_text())
        counts = [c["execution_count"] for c in nb["cells"] if c["cell_type"] == "code"]
        assert counts == list(range(1, len(counts) + 1))
        assert nb["metadata"]["papermill"]["parameters"]["overrides"]["seed"] == 1
        assert not [o for c in nb["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]


def test_workspace_is_kept_only_for_the_same_data(smoke_data, tmp_path):
    """A Workspace opens from OPENED_BY's config fields alone (else a kept one could serve a run it does not
    fit); kept ones are shared between runs of the same data, not across num_proposals or a replaced file."""
    read: set[str] = set()

    class Recording:
        def __init__(self, cfg):
            self._cfg = cfg

        def __getattr__(self, name):
            read.add(name)
            return getattr(self._cfg, name)

    cfg = Config(data=str(smoke_data), max_eval_segments=4)
    workspace.Workspace(Recording(cfg), evaluated_only=True)            # as train opens it
    # max_eval_segments only bounds the ground truth parsed at first: eval_keys parses more for a run wanting more
    assert read and read <= {*workspace.OPENED_BY, "max_eval_segments"}
    assert workspace.open_workspace(cfg) is not workspace.open_workspace(cfg)    # not kept unless asked
    try:
        workspace.keep_open()
        ws = workspace.open_workspace(cfg)
        assert workspace.open_workspace(cfg.replace(seed=3, embed_dim=16)) is ws
        assert workspace.open_workspace(cfg.replace(num_proposals=10)) is not ws
        meta = smoke_data / "dataset.json"
        st = meta.stat()
        os.utime(meta, ns=(st.st_atime_ns, st.st_mtime_ns + 1))     # as if replaced: opened again
        try:
            assert workspace.open_workspace(cfg) is not ws
        finally:
            os.utime(meta, ns=(st.st_atime_ns, st.st_mtime_ns))
    finally:
        workspace.keep_open(False)


@pytest.mark.slow
def test_local_workers_take_each_unit_once(tmp_path):
    """Two local worker jobs share four units: each unit runs once, in one of the two; a unit that raises is
    recorded failed and the worker goes on with the next."""
    specs = [executor.JobSpec(n, str(tmp_path / n), dict, {"preset": n, "status": "ok", "seconds": 0.0})
             for n in ("a", "b", "c")]                  # builtins: what a job process can unpickle
    specs.insert(2, executor.JobSpec("bad", str(tmp_path / "bad"), int, {"x": "boom"}))
    rows: dict[str, dict] = {}
    lines: list[str] = []
    ex = executor.SubmititExecutor("local", tmp_path / "submitit", jobs=2, log=lines.append, poll_s=0.2)
    jobs = ex.run(specs, lambda sp, r: rows.update({sp.name: r}))
    assert len(jobs) == 2
    assert {n: r["status"] for n, r in rows.items()} == {"a": "ok", "b": "ok", "bad": "failed", "c": "ok"}
    assert "TypeError" in rows["bad"]["error"]
    ran_in = {sp.name: json.loads((Path(sp.dir) / executor.JOB).read_text())["job_id"] for sp in specs}
    assert set(ran_in.values()) <= {str(j.job_id) for j in jobs}
    assert sum("running in local job" in ln for ln in lines) == 4


def test_fresh_state_puts_back_the_thread_count_and_reseeds():
    """What a run may change in a worker's process: the torch thread count (as before the first unit) and the
    global RNG (seeded afresh, as a new process's)."""
    worker.fresh_state()
    start = torch.get_num_threads()
    torch.set_num_threads(OTHER_THREADS)
    torch.manual_seed(0)
    worker.fresh_state()
    assert torch.get_num_threads() == start
    drawn = torch.rand(4)
    torch.manual_seed(0)
    assert not torch.equal(drawn, torch.rand(4))


def test_a_slurm_array_task_takes_several_units(tmp_path, monkeypatch):
    """`--units-per-task 2`: three runs make a job array of two tasks (a worker each: 2 runs, then 1), each with
    twice the time limit of a run; every run's job.json names its task."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "sbatch").write_text("#!/bin/sh\ncp \"$1\" \"$(dirname \"$0\")/submitted.sh\"\n"
                                 "echo 'Submitted batch job 4242'\n")
    (bin_ / "sinfo").write_text("#!/bin/sh\nexit 1\n")
    for f in ("sbatch", "sinfo"):
        (bin_ / f).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_}:{os.environ['PATH']}")
    opts = executor.ClusterOptions(gpus=0, time_min=30, units_per_task=2)
    ex = executor.SubmititExecutor("slurm", tmp_path / "submitit", options=opts, log=lambda s: None)
    waited: list = []
    monkeypatch.setattr(ex, "_wait", lambda pairs, record: waited.extend(pairs))
    specs = [executor.JobSpec(n, str(tmp_path / n), dict, {}) for n in ("a", "b", "c")]
    ex.run(specs, lambda sp, r: None)
    assert [(sp.name, j.job_id) for sp, j in waited] == [("a", "4242_0"), ("b", "4242_0"), ("c", "4242_1")]
    assert [json.loads((Path(sp.dir) / executor.JOB).read_text())["job_id"] for sp in specs] == \
        ["4242_0", "4242_0", "4242_1"]
    sh = (bin_ / "submitted.sh").read_text()
    assert "#SBATCH --array=0-1%" in sh and "#SBATCH --time=60" in sh
