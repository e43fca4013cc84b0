"""Strict notebook parameters, the notebooks' stored form, and papermill sweeps (a failing run is
recorded without losing the others; re-running skips finished runs)."""
import ast
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.experiments import executor, sweep
from workbench import notebook
from workbench.io import DataError
from workbench.report import grid, runs

NOTEBOOKS = [Path(__file__).resolve().parents[1] / "notebooks" / f"{n}.ipynb"
             for n in ("02_train", "03_similarity_maps", "04_concept_tsne", "05_ablations")]


def test_check_parameters_rejects_unknown_and_wrong_types():
    declared = {"epochs": int, "lr": float, "overrides": dict, "name": str}
    assert notebook.check_parameters({"epochs": 3, "lr": 1}, declared) == {"epochs": 3, "lr": 1.0}
    assert notebook.check_parameters({"overrides": '{"a": 1}'}, declared) == {"overrides": {"a": 1}}
    with pytest.raises(DataError, match=r"unknown name\(s\) \['epoch'\]"):
        notebook.check_parameters({"epoch": 3}, declared)
    with pytest.raises(DataError, match="epochs expects int"):
        notebook.check_parameters({"epochs": "3"}, declared)
    with pytest.raises(DataError, match="epochs expects int"):
        notebook.check_parameters({"epochs": True}, declared)
    with pytest.raises(DataError, match="overrides expects dict"):
        notebook.check_parameters({"overrides": "[1]"}, declared)


PARAMS_CELL = 'seed: int = 0  # RNG seed\nname: str = "a"  # a name\nscale: float = 1.0  # a scale\n'


def test_parameters_sees_injected_names():
    injected = '# Parameters\nseed = 3\nscale = 2\n'
    check = "P = nb.parameters(globals())"
    ns = {"__annotations__": {"seed": int, "name": str, "scale": float}, "seed": 3, "name": "a", "scale": 2,
          "_ih": ["", PARAMS_CELL, injected, check]}
    p = notebook.parameters(ns)
    assert p.injected == ["seed", "scale"] and p.seed == 3 and p.name == "a"
    assert isinstance(ns["scale"], float) and p.scale == 2.0
    # a re-run of the check cell in Jupyter is not mistaken for an injection
    ns["_ih"] = ["", PARAMS_CELL, check, check]
    assert notebook.parameters(ns).injected == []
    ns["_ih"] = ["", PARAMS_CELL, "# Parameters\nsede = 3\n", check]
    ns["sede"] = 3
    with pytest.raises(DataError, match="sede"):
        notebook.parameters(ns)


def _code_cells(path):
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_stored_clean_with_annotated_parameters(path):
    cells = _code_cells(path)
    assert "parameters" in cells[0]["metadata"].get("tags", [])
    assert all(not c["outputs"] and c["execution_count"] is None for c in cells)
    src = "".join(cells[0]["source"])
    tree = ast.parse(src)
    assert tree.body and all(isinstance(n, ast.AnnAssign) for n in tree.body)
    assert all("  # " in line for line in src.splitlines() if line.strip())      # a comment on each parameter
    assert "parameters(globals())" in "".join(cells[1]["source"])


def test_train_notebook_defaults_are_the_smoke_config():
    src = "".join(_code_cells(Path(sweep.NOTEBOOK))[0]["source"])
    ns: dict = {}
    exec(compile(src, "parameters", "exec"), ns)            # the parameters cell is plain literals
    assert ns["overrides"] == notebook.SMOKE


def test_grids():
    from workbench.config import MODEL_PRESETS

    assert sweep.GRIDS["main"] == ["upper-bound", "random", "dvsa", "vog", "nafae", "stvg", "scl"]  # Table 1 order
    assert set(sweep.GRIDS["ablations"]) <= set(MODEL_PRESETS) and "scl" in sweep.GRIDS["ablations"]


def test_jobs_spread_over_gpus(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "class_file.csv").write_text("")
    (tmp_path / "data" / "text_features.h5").write_text("")      # nothing for the sweep to build first
    seen = []

    def fake_run_one(preset, data, sweep_dir, overrides, gpu=None, notebook=None, seed=None, runs=None):
        seen.append((preset, gpu))
        if preset == "bad":
            raise RuntimeError("boom")
        d = sweep.unit_dir(sweep_dir, preset, seed) / sweep.RUN
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps({"selected_epoch": 0, "validation": {"box_micro": 1.0}}))
        return {"preset": preset, "status": "ok", "seconds": 0.0}

    monkeypatch.setattr(sweep, "run_one", fake_run_one)
    monkeypatch.setattr("workbench.experiments.sweep.require_ready", lambda *a, **k: None)   # the dataset here is a stand-in
    monkeypatch.setattr(executor, "gpu_count", lambda: 3)
    df = sweep.sweep(["a", "bad", "c", "d"], tmp_path / "data", tmp_path / "sw", jobs=2, log=lambda s: None)
    assert sorted(p for p, _ in seen) == ["a", "bad", "c", "d"] and {g for _, g in seen} <= {0, 1}
    assert df.set_index("preset")["status"].to_dict() == {"a": "ok", "bad": "failed", "c": "ok", "d": "ok"}
    assert "RuntimeError: boom" in (tmp_path / "sw" / "bad" / "seed-0" / sweep.ERROR).read_text()
    seen.clear()
    monkeypatch.setattr(executor, "gpu_count", lambda: 0)
    sweep.sweep(["a"], tmp_path / "data", tmp_path / "sw2", jobs=4, log=lambda s: None)
    assert seen == [("a", None)]


def test_sweep_cli_rejects_bad_set_before_running(tmp_path):
    from workbench.__main__ import main

    assert main(["sweep", "--grid", "main", "--data", str(tmp_path), "--out", str(tmp_path / "sw"),
                 "--set", "epoch=2"]) == 2
    assert not (tmp_path / "sw").exists()


def test_sweep_presets_subset_checks_names(tmp_path, capsys, monkeypatch):
    from workbench.__main__ import main

    assert main(["sweep", "--grid", "ablations", "--data", str(tmp_path), "--out", str(tmp_path / "sw"),
                 "--presets", "scl,nope"]) == 2
    assert "--presets" in capsys.readouterr().err and not (tmp_path / "sw").exists()
    from workbench.experiments import sweep_command

    seen = {}
    monkeypatch.setattr(sweep_command, "sweep", lambda presets, *a, **k: seen.setdefault("presets", presets) and
                        pd.DataFrame({"status": ["ok"]}))
    (tmp_path / "sw").mkdir()
    (tmp_path / "sw" / "results.md").write_text("")
    assert main(["sweep", "--grid", "ablations", "--data", str(tmp_path), "--out", str(tmp_path / "sw"),
                 "--presets", "scl, stvg", "--set", "temporal=additive"]) == 0
    assert seen["presets"] == ["scl", "stvg"]


@pytest.fixture(scope="module")
def smoke_data():
    from workbench.prepare import prepare

    return prepare()


@pytest.mark.slow
def test_sweep_keeps_others_records_failure_and_skips_finished(smoke_data, tmp_path):
    out = tmp_path / "sweep"
    logs: list[str] = []
    presets = ["no-such-preset", "upper-bound"]
    df = sweep.sweep(presets, smoke_data, out, overrides={"max_eval_segments": 8}, grid="test", log=logs.append,
                     seeds=2)
    assert df[["preset", "seed"]].astype(str).values.tolist() == [[p, str(s)] for p in presets for s in (0, 1)]
    status = df.groupby("preset", sort=False)["status"].agg(set).to_dict()
    assert status == {"no-such-preset": {"failed"}, "upper-bound": {"ok"}}
    for p in ("upper-bound",):
        for s in (0, 1):
            u = out / p / f"seed-{s}"
            assert (u / "02_train.ipynb").is_file() and (u / "run" / "metrics.json").is_file()
            cfg = json.loads((u / "run" / "config.json").read_text())
            assert cfg["preset"] == p and cfg["config"]["seed"] == s
    assert "unknown preset 'no-such-preset'" in (out / "no-such-preset" / "seed-0" / "error.txt").read_text()

    csv = pd.read_csv(out / "results.csv")
    assert list(csv["preset"]) == [p for p in presets for _ in (0, 1)] and list(csv["seed"]) == [0, 1] * 2
    ub = csv[(csv["preset"] == "upper-bound") & (csv["seed"] == 1)].iloc[0]
    metrics = json.loads((out / "upper-bound" / "seed-1" / "run" / "metrics.json").read_text())
    assert ub["validation_box_micro"] == pytest.approx(metrics["validation"]["box_micro"], abs=1e-4)
    assert ub["paper_testing_box_micro"] == pytest.approx(68.74)
    assert csv[csv["preset"] == "no-such-preset"]["paper_testing_box_micro"].isna().all()
    md = (out / "results.md").read_text()
    assert "| upper-bound | 2 | ok |" in md and "(68.74)" in md and "- no-such-preset (seed 0): DataError" in md
    assert (out / "learning_curves.csv").is_file()

    mtime = (out / "upper-bound" / "seed-0" / "02_train.ipynb").stat().st_mtime_ns
    logs.clear()
    df2 = sweep.sweep(presets, smoke_data, out, overrides={"max_eval_segments": 8}, grid="test", log=logs.append,
                      seeds=2)
    assert (out / "upper-bound" / "seed-0" / "02_train.ipynb").stat().st_mtime_ns == mtime
    assert sum("skipped" in m for m in logs) == 2 and any("no-such-preset/seed-0: failed" in m for m in logs)
    assert df2["status"].tolist() == df["status"].tolist()
    with pytest.raises(DataError, match="other parameters"):
        sweep.sweep(["upper-bound"], smoke_data, out, overrides={"max_eval_segments": 4}, log=logs.append)


SHORT = ["--set", "epochs=1", "--set", "max_eval_segments=8", "--set", "max_train_segments=24", "--set",
         "embed_dim=32", "--set", "attn_heads=4", "--set", "batch_size=8", "--set", "lstm_hidden=16",
         "--set", "threads=1"]


@pytest.mark.slow
def test_sweep_main_grid_on_submitit_local_executor(smoke_data, tmp_path, capsys):
    """`sweep --grid main --executor local` for real: same results.csv columns (and baseline numbers) as
    the inline path; the run of a cancelled worker job is recorded, the other workers take the rest;
    re-running runs only that one."""
    import signal
    import threading

    from workbench.__main__ import main

    out = tmp_path / "local"
    args = ["sweep", "--grid", "main", "--data", str(smoke_data), "--out", str(out), "--executor", "local",
            "--jobs", "5", "--seeds", "1", *SHORT]
    grid = sweep.GRIDS["main"]
    victim = grid[2]                                    # among the runs submitted at once
    killed: list[str] = []

    def cancel_victim():                                # what Ctrl-C / `scancel` does to a running job
        job = sweep.unit_dir(out, victim, 0) / executor.JOB
        for _ in range(6000):
            if job.is_file():
                time.sleep(3.0)                         # let it start (a loaded machine imports slowly)
                jid = json.loads(job.read_text())["job_id"]
                os.kill(int(jid), signal.SIGINT)        # the local job id is its controller's pid
                killed.append(jid)
                return
            time.sleep(0.1)

    t = threading.Thread(target=cancel_victim, daemon=True)
    t.start()
    assert main(args) == 1                              # the victim did not finish
    t.join()
    first = capsys.readouterr().out
    assert killed and f"{victim}/seed-0: running in local job {killed[0]}" in first
    assert "ended INTERRUPTED" in (sweep.unit_dir(out, victim, 0) / sweep.ERROR).read_text()
    status = pd.read_csv(out / "results.csv").set_index("preset")["status"].to_dict()
    assert {p: status[p] for p in grid} == {p: "failed" if p == victim else "ok" for p in grid}

    assert main(args) == 0                              # resubmits the victim only
    again = capsys.readouterr().out
    assert again.count("running in local job") == 1 and f"{victim}/seed-0: running" in again
    assert again.count("skipped (finished)") == len(grid) - 1

    sweep.sweep(["random"], smoke_data, tmp_path / "inline", overrides={"max_eval_segments": 8}, log=print)
    local, inline = pd.read_csv(out / "results.csv"), pd.read_csv(tmp_path / "inline" / "results.csv")
    assert list(local.columns) == list(inline.columns)
    ran = local[local["preset"].isin(grid)]             # then the paper's rows without a preset
    assert ran["preset"].tolist() == grid and set(ran["status"]) == {"ok"}
    assert set(local["status"]) <= {"ok", "not implemented"}
    cols = [c for c in inline.columns if c.startswith(("validation_", "testing_"))]
    for p in ("random",):                               # same data, seed and eval segments: same numbers
        a, b = local.set_index("preset").loc[p, cols], inline.set_index("preset").loc[p, cols]
        assert np.allclose(a.astype(float), b.astype(float))
    for p in grid:
        u = sweep.unit_dir(out, p, 0)
        assert (u / "02_train.ipynb").is_file() and (u / "run" / "metrics.json").is_file()
        assert json.loads((u / executor.JOB).read_text())["executor"] == "local"


def test_progress_reports_epoch_step_and_loss(tmp_path):
    from workbench.paths import RUN_LOG as LOG, RUN_PROGRESS as PROGRESS

    run = tmp_path / "run"
    run.mkdir()
    lines: list[str] = []
    prog = executor.Progress({"scl": run}, lines.append)
    assert prog.poll("scl", run) is None                  # nothing yet
    (run / PROGRESS).write_text(json.dumps({"epoch": 0, "epochs": 3, "step": 4, "steps": 10, "loss": 2.5}))
    assert prog.poll("scl", run) == "sweep: scl: epoch 1/3 step 5/10 loss 2.5000"
    assert prog.poll("scl", run) is None                  # unchanged: no new line
    (run / LOG).write_text(json.dumps({"epoch": 0, "losses": {"total": 2.25}, "val": {"box_micro": 40.5}}) + "\n")
    assert prog.poll("scl", run).endswith("| epoch 1 done: loss 2.2500, val box_micro 40.50")
    assert lines[-1].startswith("sweep: scl: epoch 1/3")


def test_slurm_job_array_carries_the_cluster_options(tmp_path, monkeypatch):
    """The sbatch file of `--executor slurm` (a stand-in `sbatch` / `srun` on PATH records the submission)."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "sbatch").write_text("#!/bin/sh\ncp \"$1\" \"$(dirname \"$0\")/submitted.sh\"\necho 'Submitted batch job 4242'\n")
    (bin_ / "srun").write_text("#!/bin/sh\nexit 0\n")
    for f in ("sbatch", "srun"):
        (bin_ / f).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_}:{os.environ['PATH']}")
    opts = executor.ClusterOptions(partition="gpu", gpus=1, cpus=8, time_min=120, array_parallelism=3,
                                   mem="32G", setup=["module load cuda"])
    ex = executor.SubmititExecutor("slurm", tmp_path / "submitit", options=opts).executor()
    specs = [executor.JobSpec(p, str(tmp_path / p), sweep.run_one, {}) for p in ("a", "b", "c", "d")]
    with ex.batch():
        jobs = [ex.submit(s) for s in specs]
    assert [j.job_id for j in jobs] == [f"4242_{i}" for i in range(4)]
    sh = (bin_ / "submitted.sh").read_text()
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=1", "#SBATCH --cpus-per-task=8",
                 "#SBATCH --time=120", "#SBATCH --array=0-3%3", "#SBATCH --mem=32G", "#SBATCH --signal=USR2@90",
                 "module load cuda"):
        assert line in sh, line


def test_job_spec_requeues_itself_on_preemption(tmp_path):
    spec = executor.JobSpec("scl", str(tmp_path / "scl"), sweep.run_one, {"preset": "scl"})
    delayed = spec.__submitit_checkpoint__()
    assert delayed.function is spec and delayed.args == () and delayed.kwargs == {}


def test_slurm_rerun_waits_for_a_job_still_running(tmp_path, monkeypatch):
    """A job an earlier sweep submitted and that Slurm still runs is waited for, not submitted again."""
    import threading

    bin_, state = tmp_path / "bin", tmp_path / "state"
    bin_.mkdir()
    state.write_text("RUNNING")
    (bin_ / "sbatch").write_text(f"#!/bin/sh\ntouch {tmp_path}/sbatch-called\necho 'Submitted batch job 1'\n")
    (bin_ / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_ / "sacct").write_text(f"#!/bin/sh\necho 'JobID|State|NodeList'\necho \"4242_1|$(cat {state})|n1\"\n")
    for f in ("sbatch", "srun", "sacct"):
        (bin_ / f).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_}:{os.environ['PATH']}")
    d = tmp_path / "sw" / "scl"
    d.mkdir(parents=True)
    (d / executor.JOB).write_text(json.dumps({"executor": "slurm", "job_id": "4242_1"}))
    spec = executor.JobSpec("scl", str(d), sweep.run_one, {})
    rows, lines = [], []
    ex = executor.SubmititExecutor("slurm", tmp_path / "sw" / "submitit", log=lines.append, poll_s=0.2)
    t = threading.Thread(target=ex.run, args=([spec], lambda s, r: rows.append(r)))
    t.start()
    time.sleep(1.0)
    assert not rows and "still RUNNING: waiting for it" in lines[0]
    (d / executor.OUTCOME).write_text(json.dumps({"preset": "scl", "status": "ok", "seconds": 9.0}))
    state.write_text("COMPLETED")
    t.join(30)
    assert rows == [{"preset": "scl", "status": "ok", "seconds": 9.0}]
    assert not (tmp_path / "sbatch-called").exists()
    state.write_text("CANCELLED by 0")                  # a dead job is not waited for: submitted again
    assert ex.live_job(spec) is None


def test_generalization_results_show_held_out_columns_beside_the_paper(tmp_path):
    from workbench.report.paper import TABLES

    assert "nafae" in sweep.GRIDS["generalization"] and sweep.GRID_SETS["generalization"] == {"object_query": "glove"}
    sw = tmp_path / "sw"
    for preset, seed, every, held in (("dvsa", 0, 20.0, 9.0), ("dvsa", 1, 22.0, 11.0), ("stvg", 0, 40.0, 15.0)):
        d = sweep.unit_dir(sw, preset, seed) / sweep.RUN
        d.mkdir(parents=True)
        m = {"selected_epoch": 1, "testing": {"query_micro": every, "query_macro": every, "box_micro": every,
                                              "box_macro": every},
             "heldout": {"classes": [4, 6], "validation": {"query_micro": None, "box_micro": None},
                         "testing": {"query_micro": held, "query_macro": held - 1, "box_micro": held}}}
        (d / "metrics.json").write_text(json.dumps(m))
    (sw / "sweep.json").write_text(json.dumps({"grid": "generalization", "dataset": "youcook2-bb-holdout",
                                               "presets": ["dvsa", "stvg"], "seeds": [0, 1]}))
    df = grid.write_results(sw)
    dvsa = df[df["preset"] == "dvsa"].set_index("seed")
    assert dvsa.loc[0, "testing_heldout_query_micro"] == 9.0 and dvsa.loc[1, "testing_heldout_query_macro"] == 10.0
    assert "testing_heldout_query_micro" in (sw / "results.csv").read_text().splitlines()[0]
    md = (sw / "results.md").read_text()
    section = md[md.index("Held-out classes"):]
    line = next(ln for ln in section.splitlines() if ln.startswith("| dvsa "))
    paper = TABLES["table4"].row("dvsa").numbers["testing"]["query_micro"]
    assert "21.00 ± 1.41" in line and "10.00 ± 1.41" in line and line.rstrip(" |").endswith(f"{paper:.2f}")
    assert "val query micro, held-out" not in section          # validation holds no held-out object
    assert "| nafae |" not in section and "RA-MIL" in md         # not run / not implemented rows stay out of it


def test_a_run_that_finished_after_its_recorded_failure_counts_as_finished(tmp_path):
    """error.txt older than run/metrics.json (a job of an interrupted sweep finished after a rerun found its
    run locked and recorded that) does not shadow the finished run; a newer error.txt does."""
    sw = tmp_path / "sw"
    unit = sweep.unit_dir(sw, "stvg", 0)
    (unit / sweep.RUN).mkdir(parents=True)
    metrics = unit / sweep.RUN / "metrics.json"
    metrics.write_text(json.dumps({"selected_epoch": 2, "validation": {"box_micro": 41.0}}))
    err = unit / sweep.ERROR
    err.write_text("RunLocked: in use by another run (pid 1)\n")
    now = time.time()
    os.utime(err, (now - 60, now - 60))                 # the failure was recorded first, the run ended later
    os.utime(metrics, (now, now))
    assert runs.recorded_error(unit) is None
    params = sweep.run_params("stvg", tmp_path, sw, {}, 0)
    (unit / sweep.PARAMS).write_text(json.dumps(params))
    assert sweep.is_finished(unit, params)
    row = grid.results_frame(sw, ["stvg"]).iloc[0]
    assert row["status"] == "ok" and row["validation_box_micro"] == 41.0
    os.utime(err, (now + 60, now + 60))                 # failed after the metrics were written: failed
    assert runs.recorded_error(unit).startswith("RunLocked")
    assert not sweep.is_finished(unit, params)
    assert grid.results_frame(sw, ["stvg"]).iloc[0]["status"] == "failed"
    err.unlink()
    assert runs.recorded_error(unit) is None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs /proc to see processes")
@pytest.mark.parametrize("case", ["sweep ignores SIGINT", "job ignores cancel"])
def test_a_terminated_local_sweep_stops_its_jobs_and_their_children(tmp_path, monkeypatch, case):
    """SIGTERM to a sweep running local jobs cancels them: the job's own child (papermill and its kernel in
    a sweep; here a sleeping process) is gone, and the run is recorded as cancelled, not left running.
    "sweep ignores SIGINT": a sweep started in the background (`cmd &`) ignores SIGINT; its jobs must not
    inherit that, so submitit's cancel (SIGINT) stops them. "job ignores cancel": a job that SIGINT does
    not stop has its process tree killed."""
    import signal
    import subprocess
    import sys
    import threading

    import submitit

    if case == "job ignores cancel":
        monkeypatch.setattr(submitit.LocalJob, "cancel", lambda self, check=True: None)

    pidfile = tmp_path / "child.pid"
    code = f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(300)"
    spec = executor.JobSpec("slow/seed-0", str(tmp_path / "slow"), subprocess.run,
                            {"args": [sys.executable, "-c", code]})
    (tmp_path / "slow").mkdir()
    rows, lines, running = [], [], threading.Event()
    ex = executor.SubmititExecutor("local", tmp_path / "submitit", jobs=1, log=lines.append, poll_s=0.2)

    def terminate():                                    # what `kill PID` does to the sweep's process
        for _ in range(1200):
            if pidfile.is_file() and pidfile.read_text():
                break
            time.sleep(0.1)
        if running.is_set():
            os.kill(os.getpid(), signal.SIGTERM)

    before, before_hup = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    running.set()
    threading.Thread(target=terminate, daemon=True).start()
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN) if case == "sweep ignores SIGINT" else None
    try:
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            with executor.terminate_as_interrupt():
                ex.run([spec], lambda s, r: rows.append(r))
    finally:
        running.clear()
        if old_int is not None:
            signal.signal(signal.SIGINT, old_int)
    child = int(pidfile.read_text())
    for _ in range(100):
        if not _alive(child):
            break
        time.sleep(0.1)
    assert not _alive(child), "the cancelled job's child process is still running"
    assert [r["status"] for r in rows] == ["failed"] and "cancelled: the sweep was interrupted" in rows[0]["error"]
    assert any("cancelling local job" in ln for ln in lines)
    assert any("did not stop on SIGINT; killed" in ln for ln in lines) == (case == "job ignores cancel")
    assert signal.getsignal(signal.SIGTERM) is before and signal.getsignal(signal.SIGHUP) is before_hup


def test_terminate_as_interrupt_leaves_ignored_signals_ignored():
    """`nohup sweep ...` ignores SIGHUP: the sweep must not turn a hangup into an interrupt."""
    import signal

    old = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    term = signal.getsignal(signal.SIGTERM)
    try:
        with executor.terminate_as_interrupt():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not term
            with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
                signal.raise_signal(signal.SIGTERM)
        assert signal.getsignal(signal.SIGTERM) is term and signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, old)


def test_cancelling_records_a_job_that_finished_meanwhile_with_its_outcome(tmp_path):
    """An interrupted sweep records its running jobs as cancelled, except one that wrote its outcome
    before the cancel reached it: that run finished and keeps its row."""
    class Job:
        def __init__(self, jid):
            self.job_id, self.cancelled = jid, False

        def cancel(self, check=True):
            self.cancelled = True

        def done(self):
            return True

    specs = [executor.JobSpec(n, str(tmp_path / n), sweep.run_one, {}) for n in ("done", "cut")]
    for sp in specs:
        Path(sp.dir).mkdir()
    (tmp_path / "done" / executor.OUTCOME).write_text(json.dumps({"preset": "done", "status": "ok", "seconds": 3.0}))
    jobs = [Job("11"), Job("12")]
    rows = {}
    ex = executor.SubmititExecutor("local", tmp_path / "submitit", log=lambda s: None)
    ex._cancel_local(jobs, specs, lambda sp, r: rows.update({sp.name: r}), KeyboardInterrupt("signal SIGTERM"),
                     grace_s=0.0)
    assert all(j.cancelled for j in jobs)
    assert rows["done"] == {"preset": "done", "status": "ok", "seconds": 3.0}
    assert rows["cut"]["status"] == "failed" and "cancelled: the sweep was interrupted" in rows["cut"]["error"]
