"""Issue 21: the context curve's table and figure show the training-time oracles where a world has them, and
say "absent" (no error) for a world simulated before they existed."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from workbench.io import DataError
from workbench.report import curve

OLD = ("random", "upper_bound", "oracle_class", "oracle_language", "oracle_state")


def _stats(names, base):
    split = {o: {"box_micro": base + i, "box_macro": base + i} for i, o in enumerate(names)}
    split["by_mention"] = {"cued": {o: {"box_micro": base + 10 + i} for i, o in enumerate(names)}}
    return {"validation": split, "testing": {o: {"box_micro": base + 20 + i, "box_macro": 0.0}
                                             for i, o in enumerate(names)}}


def _sweep(tmp_path):
    root, out = tmp_path / "worlds", tmp_path / "curve"
    for v, names in ((0.5, OLD), (0.9, curve.ORACLES)):            # ρ = 0.5: a world from before the EM oracles
        (root / f"context-{v:g}").mkdir(parents=True)
        (root / f"context-{v:g}" / "world_stats.json").write_text(json.dumps(_stats(names, 30.0)))
    out.mkdir()
    (out / "sweep.json").write_text(json.dumps({"axis": "context", "values": [0.5, 0.9], "seeds": [0],
                                                "presets": ["stvg"], "data_root": str(root), "world_preset": "demo",
                                                "world_seed": 0, "world_sets": {}, "overrides": {}}))
    return out


def test_table_shows_the_training_time_oracles_or_says_absent(tmp_path):
    out = _sweep(tmp_path)
    df = curve.results_frame(out)
    orc = df[df["kind"] == "oracle"]
    assert set(orc[orc["value"] == 0.5]["preset"]) == set(OLD)
    assert set(orc[orc["value"] == 0.9]["preset"]) == set(curve.ORACLES)
    em = orc[(orc["value"] == 0.9) & (orc["preset"] == "oracle_teacher_em")].iloc[0]
    assert em["validation_box_micro"] == 36.0 and em["testing_box_micro"] == 56.0
    assert em["validation_cued_box_micro"] == 46.0
    md = curve.results_markdown(out, df)
    half, nine = md.split("## context = 0.9")
    for o in curve.TRAINING_ORACLES:
        assert f"| *{o}* | - | absent" in half and f"| *{o}* | - | absent" not in nine
    assert "| *oracle_teacher_em* | - | 36.00 | 36.00 | 56.00 |" in nine


def test_predictions_and_figure_show_the_training_time_headroom(tmp_path, monkeypatch):
    out = _sweep(tmp_path)
    df = curve.results_frame(out)
    runs = pd.DataFrame([{"value": v, "preset": "stvg", "seed": 0, "kind": "run", "status": "ok",
                          "validation_box_micro": 40.0}
                         for v in (0.5, 0.9)])
    df = pd.concat([df[df["kind"] == "oracle"], runs], ignore_index=True)
    text = "\n".join(curve.predictions(df, [0.5, 0.9]))
    assert "**Training-time headroom**" in text and "absent / +1.00 (ρ = 0.5 / 0.9)" in text
    monkeypatch.setattr(curve, "load_frame", lambda o: df)
    traces = curve.curve_figure(out).data
    left, right = [t for t in traces if t.name == "training-time headroom (oracle_class_em .. oracle_teacher_em)"]
    assert list(left.x) == [0.9, 0.9] and list(left.y) == [36.0, 35.0]      # only the world that has them
    assert list(right.y) == [1.0, 0]                                        # in the gain panel: the headroom
    assert [list(t.x) for t in traces if t.name.startswith("oracle_class_box")] == [[0.9]]
    old = df[~df["preset"].isin(curve.TRAINING_ORACLES)]                     # no world has them: no band, no error
    monkeypatch.setattr(curve, "load_frame", lambda o: old)
    assert not any("training-time" in (t.name or "") for t in curve.curve_figure(out).data)


def test_committed_copy_gets_the_training_time_oracles_from_its_worlds_simulated_again(tmp_path):
    out = _sweep(tmp_path)
    curve.write_results(out)                                   # the committed copy: sweep.json + results.csv
    again = tmp_path / "again"
    for v, base in ((0.5, 30.0), (0.9, 30.0)):
        (again / f"context-{v:g}").mkdir(parents=True)
        (again / f"context-{v:g}" / "world_stats.json").write_text(json.dumps(_stats(curve.ORACLES, base)))
    df = curve.refresh_oracles(out, again)
    orc = df[(df["kind"] == "oracle") & (df["value"] == 0.5)]
    assert set(orc["preset"]) == set(curve.ORACLES)
    assert "| *oracle_class_em* | - | absent" not in (out / "results.md").read_text()
    assert set(curve.load_frame(out)["preset"]) >= set(curve.TRAINING_ORACLES)     # results.csv rewritten
    (again / "context-0.9" / "world_stats.json").write_text(json.dumps(_stats(curve.ORACLES, 31.0)))
    with pytest.raises(DataError, match=r"context-0.9/world_stats.json: random validation_box_micro = 31.0.*"
                                        r"not the world the sweep ran on"):
        curve.refresh_oracles(out, again)
