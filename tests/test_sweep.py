"""Strict notebook parameters, the notebooks' stored form, and papermill sweeps (a failing run is
recorded without losing the others; re-running skips finished runs)."""
import ast
import json
from pathlib import Path

import pandas as pd
import pytest

from workbench import notebook, sweep
from workbench.io import DataError

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
    from workbench.config import PRESETS

    assert sweep.GRIDS["main"] == ["upper-bound", "random", "dvsa", "vog", "nafae", "stvg", "scl"]  # Table 1 order
    assert set(sweep.GRIDS["ablations"]) <= set(PRESETS) and "scl" in sweep.GRIDS["ablations"]


def test_jobs_spread_over_gpus(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "class_file.csv").write_text("")
    seen = []

    def fake_run_one(preset, data, out, overrides, gpu=None, notebook=None, seed=None):
        seen.append((preset, gpu))
        if preset == "bad":
            raise RuntimeError("boom")
        d = sweep.unit_dir(out, preset, seed) / sweep.RUN
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps({"selected_epoch": 0, "validation": {"box_micro": 1.0}}))
        return {"preset": preset, "status": "ok", "seconds": 0.0}

    monkeypatch.setattr(sweep, "run_one", fake_run_one)
    monkeypatch.setattr(sweep, "_gpu_count", lambda: 3)
    df = sweep.sweep(["a", "bad", "c", "d"], tmp_path / "data", tmp_path / "sw", jobs=2, log=lambda s: None)
    assert sorted(p for p, _ in seen) == ["a", "bad", "c", "d"] and {g for _, g in seen} <= {0, 1}
    assert df.set_index("preset")["status"].to_dict() == {"a": "ok", "bad": "failed", "c": "ok", "d": "ok"}
    assert "RuntimeError: boom" in (tmp_path / "sw" / "bad" / "seed-0" / sweep.ERROR).read_text()
    seen.clear()
    monkeypatch.setattr(sweep, "_gpu_count", lambda: 0)
    sweep.sweep(["a"], tmp_path / "data", tmp_path / "sw2", jobs=4, log=lambda s: None)
    assert seen == [("a", None)]


def test_sweep_cli_rejects_bad_set_before_running(tmp_path):
    from workbench.__main__ import main

    assert main(["sweep", "--grid", "main", "--data", str(tmp_path), "--out", str(tmp_path / "sw"),
                 "--set", "epoch=2"]) == 2
    assert not (tmp_path / "sw").exists()


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
