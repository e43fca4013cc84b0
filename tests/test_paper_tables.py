"""Every row of the paper's Tables 1-4 is either a preset we run or listed as not implemented, and
results.md shows the rows a sweep did not produce beside the paper's numbers."""
import json

from workbench.experiments import sweep
from workbench.config import MODEL_PRESETS
from workbench.report.paper import TABLES, paper_numbers
from workbench.train import BASELINES


def test_every_row_is_a_preset_or_says_why_not():
    for table in TABLES.values():
        for row in table.rows:
            assert row.preset is None or row.preset in MODEL_PRESETS or row.preset in BASELINES, (table.title, row)
            assert row.preset is not None or row.note.startswith(("not implemented", "the number")), row
            assert row.numbers, row
    assert [r.label for r in TABLES["table1"].rows if r.preset is None] == ["Chen et al. [2]"]
    assert [r.label for r in TABLES["table4"].rows if r.preset is None] == ["RA-MIL [16]"]
    assert paper_numbers("dvsa")["validation"]["box_micro"] == 43.62
    assert paper_numbers("vog")["testing"]["box_micro"] == 42.42
    assert paper_numbers("nafae", "activitynet-entities")["validation"]["box_micro"] == 28.08
    assert paper_numbers("stvg-no-attention") == {}


def test_results_list_the_rows_without_a_run(tmp_path):
    (tmp_path / "sweep.json").write_text(json.dumps({"grid": "main", "dataset": "youcook2-bb",
                                                     "presets": ["random", "scl"]}))
    (tmp_path / "scl" / "run").mkdir(parents=True)
    (tmp_path / "scl" / "run" / "metrics.json").write_text(json.dumps(
        {"selected_epoch": 0, "validation": {"box_micro": 30.0}, "testing": {"box_micro": 25.0}}))
    df = sweep.write_results(tmp_path)
    status = df.set_index("preset")["status"].to_dict()
    assert status["scl"] == "ok" and status["random"] == "missing"
    assert status["Chen et al. [2]"] == "not implemented"
    assert all(status[p] == "not run" for p in ("upper-bound", "dvsa", "vog", "nafae", "stvg"))
    md = (tmp_path / "results.md").read_text()
    assert "| Chen et al. [2] | 0 | not implemented |" in md and "(49.11)" in md
    assert "needs activity/action features" in md
    assert "| scl | 1 | ok |" in md and "30.00 (48.46)" in md


def test_rows_trained_on_a_contextual_encoder_show_its_name(tmp_path):
    import h5py

    from workbench.config import preset
    from workbench.run import RunDir

    from workbench.report.runs import run_label
    from workbench.text.contextual import encoder_name

    cache = tmp_path / "text.h5"
    with h5py.File(cache, "w") as f:
        f.attrs["encoder"] = "minilm"
        enc = encoder_name(f.attrs)                     # what train records in config.json (text_encoder)
    for name in ("stvg-bert", "stvg", "scl", "stvg-glove-bilstm"):
        run = RunDir(tmp_path / "sw" / name / "run")
        run.path.mkdir(parents=True)
        run.write_config(name, preset(name, data=str(tmp_path), text_features=str(cache)), extra={"text_encoder": enc})
        (run.path / "metrics.json").write_text(json.dumps({"validation": {"box_micro": 1.0}}))
    assert run_label("stvg-bert", tmp_path / "sw" / "stvg-bert" / "run") == "stvg-bert [MiniLM-L6]"
    assert run_label("stvg", tmp_path / "sw" / "stvg" / "run") == "stvg"
    (tmp_path / "sw" / "sweep.json").write_text(json.dumps({"grid": "ablations", "dataset": "youcook2-bb",
                                                           "presets": ["stvg", "stvg-bert", "scl",
                                                                       "stvg-glove-bilstm"]}))
    df = sweep.write_results(tmp_path / "sw").set_index("preset")
    assert df.loc["stvg-bert", "label"] == "stvg-bert [MiniLM-L6]" and df.loc["scl", "label"] == "scl [MiniLM-L6]"
    assert df.loc["stvg", "label"] == "stvg" and df.loc["stvg-glove-bilstm", "label"] == "stvg-glove-bilstm"
    md = (tmp_path / "sw" / "results.md").read_text()
    assert "| stvg-bert [MiniLM-L6] | 1 | ok |" in md and "| stvg | 1 | ok |" in md
    assert "| fusion-add | 0 | not run |" in md
