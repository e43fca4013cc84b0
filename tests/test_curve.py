"""World sweeps: the context grid end to end on a tiny world (1 seed, 1 epoch, 2 ρ, 2 presets), the axis
parser, the mean ± std / paired-gain table, and the one results schema (old column names read as today's)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from workbench.__main__ import main
from workbench.experiments import world_sweep as worlds
from workbench.io import DataError
from workbench.report import curve, results

REPO = Path(__file__).resolve().parents[1]
VAL = "validation_box_micro"


def test_parse_axis_checks_knob_and_values():
    assert worlds.parse_axis("twin_prob=0,0.5,1") == ("twin_prob", (0.0, 0.5, 1.0))
    with pytest.raises(DataError, match="twin_prob"):
        worlds.parse_axis("twin_prob=0,2")
    with pytest.raises(DataError, match="nope"):
        worlds.parse_axis("nope=1")


def test_summary_means_stds_and_paired_gain():
    rows = [{"value": 0.5, "preset": p, "seed": s, "kind": "run", "status": "ok", VAL: v}
            for p, s, v in (("stvg", 0, 40.0), ("stvg", 1, 42.0), ("scl", 0, 41.0), ("scl", 1, 45.0))]
    summ = curve.summary_frame(pd.DataFrame(rows)).set_index("preset")
    assert summ.loc["scl", f"{VAL}_mean"] == 43.0 and summ.loc["scl", "seeds"] == 2
    assert summ.loc["scl", "gain_vs_stvg_mean"] == 2.0                     # paired: (1 + 3) / 2
    assert summ.loc["scl", "gain_vs_stvg_std"] == pytest.approx(2 ** 0.5)


@pytest.mark.slow
def test_context_grid_on_a_tiny_world(tmp_path):
    root, out = tmp_path / "worlds", tmp_path / "curve"
    args = ["sweep", "--grid", "context", "--data-root", str(root), "--out", str(out), "--seeds", "1",
            "--axis", "context=0,0.9", "--presets", "dvsa,stvg", "--world-preset", "smoke",
            "--set", "epochs=1", "--set", "embed_dim=32", "--set", "attn_heads=4", "--set", "batch_size=8",
            "--set", "threads=1", "--set", "max_eval_segments=8"]
    assert main(args) == 0
    for v in ("context-0", "context-0.9"):
        meta = json.loads((root / v / "dataset.json").read_text())
        assert meta["generator_version"] == "yc2-sim-2" and meta["knobs"]["context"] == float(v.split("-")[1])
    df = pd.read_csv(out / "results.csv")
    runs = df[df["kind"] == "run"]
    assert len(runs) == 4 and (runs["status"] == "ok").all()
    assert {"validation_cued_box_micro", "validation_uncued_box_micro", "validation_with_twin_box_micro",
            VAL, "testing_box_micro", "label"} <= set(df.columns)
    assert not [c for c in df.columns if c.startswith(("val_", "test_"))] and "row" not in df.columns
    assert set(df[df["kind"] == "oracle"]["preset"]) == set(curve.ORACLES)
    md = (out / "results.md").read_text()
    assert "## context = 0.9" in md and "*oracle_language*" in md and "| stvg | 1 |" in md
    fig = curve.curve_figure(out)
    assert len(fig.data) >= 3
    seconds = json.loads((out / "sweep.json").read_text())["seconds"]
    assert main(args) == 0                                                  # resumes: everything skipped
    assert json.loads((out / "sweep.json").read_text())["seconds"] == seconds


def _curve_rows(gains: dict, stvg=(40.0, 42.0, 44.0), values=(0.0, 0.9)):
    """Per-seed rows: stvg at ``stvg`` per seed, every other preset at stvg + gains[(preset, value)][seed]."""
    rows = []
    for v in values:
        for s, base in enumerate(stvg):
            rows.append({"value": v, "preset": "stvg", "seed": s, "kind": "run", "status": "ok", VAL: base,
                         curve.val("with_twin"): base, curve.val("without_twin"): base, curve.val("uncued"): base})
            for (p, pv), g in gains.items():
                if pv == v:
                    rows.append({"value": v, "preset": p, "seed": s, "kind": "run", "status": "ok",
                                 VAL: base + g[s], curve.val("with_twin"): base,
                                 curve.val("without_twin"): base + 2 * g[s], curve.val("uncued"): base})
        for o, acc in (("oracle_class", 50.0), ("oracle_language", 50.0 + 5 * v)):
            rows.append({"value": v, "preset": o, "seed": None, "kind": "oracle", "status": "ok", VAL: acc,
                         curve.val("cued"): acc, curve.val("uncued"): 50.0})
    return pd.DataFrame(rows)


def test_predictions_are_computed_from_the_table():
    noise, up = (-0.5, 0.4, 0.1), (1.6, 1.7, 1.8)
    df = _curve_rows({("scl", 0.0): noise, ("scl", 0.9): up, ("stvg-bert", 0.0): (-1.0, -1.2, -0.8),
                      ("stvg-bert", 0.9): (-1.6, -1.5, -1.7), ("fusion-ensemble", 0.0): noise,
                      ("fusion-ensemble", 0.9): (0.4, 0.5, 0.6), ("dvsa", 0.0): (1.0, 1.0, 1.2),
                      ("dvsa", 0.9): (-1.0, -2.0, -3.0)})
    text = "\n".join(curve.predictions(df, [0.0, 0.9]))
    assert "scl − stvg +0.00" in text and "(within noise)" in text           # P0: mean 0, interval crosses 0
    assert "stvg-bert − stvg -1.00" in text and "(holds)" in text
    assert "all +0.00 / +4.50" in text and "monotone" in text              # P1 from the oracle rows
    assert "scl +0.00 / +1.70" in text                                      # P2 gains by ρ
    assert "never above stvg" in text
    assert "ρ = 0: -1.07" in text and "(fails)" in text                    # P4: stvg − dvsa at ρ = 0 is negative
    assert "reproduced at ρ = 0.9" in text                                  # signs agree, scl's interval covers +1.66


def test_predictions_say_when_no_rho_matches_the_paper():
    df = _curve_rows({("scl", 0.0): (0.1, -0.1, 0.0), ("stvg-bert", 0.0): (0.5, 0.6, 0.7),
                      ("fusion-ensemble", 0.0): (0.1, 0.2, 0.3)}, values=(0.0,))
    text = "\n".join(curve.predictions(df, [0.0]))
    assert "reproduced at no ρ" in text
    assert "stvg-bert − stvg +0.60" in text and "(fails)" in text           # stvg-bert above stvg beyond noise


def test_curve_figure_names_rows_with_the_encoder_that_ran(tmp_path, monkeypatch):
    df = _curve_rows({("stvg-bert", 0.0): (1.0, 1.0, 1.0), ("stvg-bert", 0.9): (2.0, 2.0, 2.0)})
    df["label"] = df["preset"].map({"stvg": "stvg", "stvg-bert": "stvg-bert [MiniLM-L6]"})
    (tmp_path / "sweep.json").write_text(json.dumps({"axis": "context", "world_preset": "curve", "seeds": [0, 1, 2],
                                                     "presets": ["stvg", "stvg-bert"]}))
    monkeypatch.setattr(curve, "load_frame", lambda out: df)
    names = {t.name for t in curve.curve_figure(tmp_path).data}
    assert {"stvg", "stvg-bert [MiniLM-L6]"} <= names and "stvg-bert" not in names


def test_one_schema_reads_old_world_sweep_columns(tmp_path):
    """A world sweep's results.csv of before one schema (``val_box_micro``, ``val_cued``, ``row``) reads under
    today's names; a file naming one column under both names is refused."""
    assert results.canonical_column("val_box_micro") == VAL
    assert results.canonical_column("test_query_macro") == "testing_query_macro"
    assert results.canonical_column("val_cued") == "validation_cued_box_micro"
    assert results.canonical_column("row") == "label"
    for name in ("validation_box_micro", "testing_heldout_query_micro", "value", "paper_testing_box_micro"):
        assert results.canonical_column(name) == name
    src = REPO / "figures" / "context_curve"                                # its table, under the old names
    (tmp_path / "sweep.json").write_text((src / "sweep.json").read_text())
    lines = (src / "results.csv").read_text().splitlines()
    old = {VAL: "val_box_micro", "testing_box_micro": "test_box_micro", "label": "row"}
    lines[0] = ",".join(old.get(c, c) for c in lines[0].split(","))
    assert "val_box_micro" in lines[0] and "row" in lines[0].split(",")
    (tmp_path / "results.csv").write_text("\n".join(lines) + "\n")
    df = curve.load_frame(tmp_path)
    assert {VAL, "testing_box_micro", "validation_with_twin_box_micro", "label"} <= set(df.columns)
    assert not [c for c in df.columns if c.startswith(("val_", "test_"))]


def test_every_committed_results_csv_reads(tmp_path):
    for path in sorted((REPO / "figures").glob("*/results.csv")):
        df = results.read_results_csv(path, required=("preset", "status", VAL))
        assert len(df) and VAL in df.columns, path
    head = (REPO / "figures" / "context_curve" / "results.csv").read_text().splitlines()
    old = ",".join("val_box_micro" if c == VAL else c for c in head[0].split(","))    # the column's old name
    both = tmp_path / "results.csv"
    both.write_text("\n".join([old + ",validation_box_micro"] + [ln + ",1.0" for ln in head[1:]]) + "\n")
    with pytest.raises(DataError, match=r"\['validation_box_micro'\] twice \(under its old and its new name\)"):
        results.read_results_csv(both)
