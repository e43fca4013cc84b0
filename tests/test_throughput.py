"""`python -m workbench throughput`'s report (issue 25): runs per core-hour against one process per run and,
with --before, against another checkout's sweep; results compared with wall-clock seconds blanked."""
import argparse

import pytest

from workbench.experiments import throughput
from workbench.experiments.sweep import unit_dir
from workbench.io import DataError


def _row(size, mode, per_run):
    return {"size": size, "mode": mode, "runs": 4, "cpu_s_per_run": per_run, "runs_per_core_hour": 3600 / per_run}


def test_report_gives_each_mode_against_before_and_process():
    rows = [_row("grid", "before", 35.0), _row("grid", "process", 30.0), _row("grid", "inline", 25.0)]
    text = throughput.markdown(rows, {"grid-inline": False}, (1.0, 1.0))
    header, _, before, process, inline = text.splitlines()[:5]
    assert "vs before | vs process" in header
    assert "| 1.00x | 0.86x |" in before
    assert "| 1.17x | 1.00x |" in process
    assert "| 1.40x | 1.20x | DIFFER |" in inline


def test_report_without_before_has_one_ratio_column():
    text = throughput.markdown([_row("curve", "process", 16.0), _row("curve", "kernel", 8.0)], {}, (0.5, 0.5))
    assert "vs before" not in text and "| 2.00x | identical |" in text


def test_records_blank_wall_clock_seconds_only(tmp_path):
    for seconds, folder in ((1.5, "a"), (2.25, "b")):
        run = unit_dir(tmp_path / folder, "stvg", 0) / "run"
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(f'{{"box_micro": 50.1, "seconds": {seconds}}}')
        (run / "log.jsonl").write_text(f'{{"epoch": 1, "train_seconds": {seconds}, "loss": 2.5}}\n')
    a, b = (throughput.records(tmp_path / f, ["stvg"], 1) for f in ("a", "b"))
    assert a == b
    (unit_dir(tmp_path / "b", "stvg", 0) / "run" / "log.jsonl").write_text('{"epoch": 1, "train_seconds": 9, "loss": 2.6}\n')
    assert throughput.records(tmp_path / "b", ["stvg"], 1) != a


def test_before_must_be_a_workbench_checkout(tmp_path):
    args = argparse.Namespace(sizes="grid", modes="process", data=str(tmp_path), out=str(tmp_path / "o"),
                              presets="stvg", seeds=1, before=str(tmp_path), repeats=1)
    with pytest.raises(DataError, match="not a checkout of the workbench"):
        throughput.run(args)
    assert not (tmp_path / "o").exists()


def test_run_compares_every_mode_with_process_after_all_are_measured(tmp_path, monkeypatch):
    """`before` is measured first, before the `process` folder exists; a mode whose runs differ is flagged."""
    checkout = tmp_path / "old"
    (checkout / "workbench").mkdir(parents=True)
    (checkout / "workbench" / "__main__.py").write_text("")
    calls = []

    def fake_measure(data, out, presets, seeds, size, mode, log=print, code=None):
        calls.append((mode, code))
        run = unit_dir(out / f"{size}-{mode}", "stvg", 0) / "run"
        run.mkdir(parents=True)
        (run / "metrics.json").write_text('{"box_micro": %s, "seconds": 3}' % ("49.0" if mode == "kernel" else "50.0"))
        (run / "log.jsonl").write_text('{"epoch": 1}\n')
        return _row(size, mode, {"before": 30.0, "process": 24.0}.get(mode, 20.0))

    monkeypatch.setattr(throughput, "measure", fake_measure)
    monkeypatch.setattr(throughput, "fill_missing", lambda data: None)
    monkeypatch.setattr(throughput, "resolve", lambda *a: None)
    args = argparse.Namespace(sizes="grid", modes="process,kernel,inline", data=str(tmp_path), out=str(tmp_path / "o"),
                              presets="stvg", seeds=1, before=str(checkout), repeats=1)
    assert throughput.run(args) == 1                        # kernel's results differ: the command fails
    assert [m for m, _ in calls] == ["before", "process", "kernel", "inline"]
    assert calls[0][1] == checkout.resolve() and calls[1][1] == throughput.REPO
    report = (tmp_path / "o" / "throughput.md").read_text()
    assert "| grid | inline | 4 | 20.0 | 180 | 1.50x | 1.20x | identical |" in report
    assert "| grid | kernel | 4 | 20.0 | 180 | 1.50x | 1.20x | DIFFER |" in report


def test_repeats_measure_every_mode_per_round_and_pair_the_ratios(tmp_path, monkeypatch):
    """--repeats 3: rounds of (process, kernel); the table gives the median CPU per run and the median of the
    paired ratios with their range; a mode whose runs differ in any round is flagged."""
    calls, per_run = [], {"process": [30.0, 24.0, 27.0], "kernel": [20.0, 20.0, 18.0]}

    def fake_measure(data, out, presets, seeds, size, mode, log=print, code=None):
        i = sum(m == mode for m in calls)
        calls.append(mode)
        run = unit_dir(out / f"{size}-{mode}", "stvg", 0) / "run"
        run.mkdir(parents=True, exist_ok=True)
        differs = mode == "kernel" and i == 1                   # only the second round's kernel runs differ
        (run / "metrics.json").write_text('{"box_micro": %s, "seconds": 3}' % ("49.0" if differs else "50.0"))
        (run / "log.jsonl").write_text('{"epoch": 1}\n')
        return {**_row(size, mode, per_run[mode][i]), "cpu_s": 1.0, "wall_s": 1.0, "fixed_cpu_s": 0.5}

    monkeypatch.setattr(throughput, "measure", fake_measure)
    monkeypatch.setattr(throughput, "fill_missing", lambda data: None)
    monkeypatch.setattr(throughput, "resolve", lambda *a: None)
    args = argparse.Namespace(sizes="grid", modes="process,kernel", data=str(tmp_path), out=str(tmp_path / "o"),
                              presets="stvg", seeds=1, before=None, repeats=3)
    assert throughput.run(args) == 1
    assert calls == ["process", "kernel"] * 3
    report = (tmp_path / "o" / "throughput.md").read_text()
    # process: median 27.0 over 24-30; kernel median 20.0 (18-20); paired ratios 1.50, 1.20, 1.50
    assert "| grid | process | 4 | 27.0 | 24.0-30.0 | 133 | 1.00x (1.00-1.00) | identical |" in report
    assert "| grid | kernel | 4 | 20.0 | 18.0-20.0 | 180 | 1.50x (1.20-1.50) | DIFFER |" in report
    with pytest.raises(DataError, match="at least 1"):
        throughput.run(argparse.Namespace(**{**vars(args), "repeats": 0}))
